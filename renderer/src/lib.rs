//! cryoforge's renderer: wgpu pipelines that draw maps (isosurface meshes), models (sphere
//! impostors, traces), guides (boxes) and scatter plots (point splats) into offscreen targets.
//! No burn, no domain logic: the app turns maps and models into [`scene::SceneData`].
//!
//! Every struct uploaded to a GPU buffer is `#[repr(C)]` plain old data ([`bytemuck::Pod`]) and
//! names the WGSL struct it mirrors; the shader tests check their sizes against naga's layout.

pub mod camera;
pub mod error;
pub mod points;
pub mod scene;
pub mod shaders;

pub use camera::{CameraUniform, OrbitCamera};
pub use error::RenderError;
pub use points::{PointInstance, PointsRenderer, PointsUniform, PointsView};
pub use scene::{
    LineVertex, LinesData, MeshData, MeshInstance, MeshVertex, SceneData, SceneRenderer, SphereInstance, SpheresData,
};
