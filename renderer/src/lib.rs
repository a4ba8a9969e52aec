//! cryoforge's renderer: wgpu pipelines that draw maps (isosurface meshes), models (sphere
//! impostors, traces), guides (boxes) and scatter plots (point splats) into offscreen targets.
//! No burn, no domain logic: the app turns maps and models into [`scene::SceneData`].

pub mod camera;
pub mod points;
pub mod scene;

pub use camera::OrbitCamera;
pub use points::{PointsRenderer, PointsView};
pub use scene::{LinesData, MeshData, MeshInstance, SceneData, SceneRenderer, SpheresData};
