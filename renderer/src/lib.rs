//! cryoforge's renderer: wgpu pipelines that draw maps (isosurface meshes), models (sphere
//! impostors, traces) and guides (boxes) into an offscreen target. No burn, no domain logic:
//! the app turns maps and models into [`scene::SceneData`].

pub mod camera;
pub mod scene;

pub use camera::OrbitCamera;
pub use scene::{LinesData, MeshData, MeshInstance, SceneData, SceneRenderer, SpheresData};
