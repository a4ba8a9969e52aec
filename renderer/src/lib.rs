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

/// A uniform buffer of `size` bytes at binding 0 of a new bind group, visible to the vertex and
/// fragment stages: its layout, the buffer and the bind group.
pub(crate) fn uniform_binding(
    device: &wgpu::Device,
    label: &str,
    size: usize,
) -> (wgpu::BindGroupLayout, wgpu::Buffer, wgpu::BindGroup) {
    let layout = device.create_bind_group_layout(&wgpu::BindGroupLayoutDescriptor {
        label: Some(label),
        entries: &[wgpu::BindGroupLayoutEntry {
            binding: 0,
            visibility: wgpu::ShaderStages::VERTEX_FRAGMENT,
            ty: wgpu::BindingType::Buffer {
                ty: wgpu::BufferBindingType::Uniform,
                has_dynamic_offset: false,
                min_binding_size: None,
            },
            count: None,
        }],
    });
    let buffer = device.create_buffer(&wgpu::BufferDescriptor {
        label: Some(label),
        size: size as u64,
        usage: wgpu::BufferUsages::UNIFORM | wgpu::BufferUsages::COPY_DST,
        mapped_at_creation: false,
    });
    let bind_group = device.create_bind_group(&wgpu::BindGroupDescriptor {
        label: Some(label),
        layout: &layout,
        entries: &[wgpu::BindGroupEntry {
            binding: 0,
            resource: buffer.as_entire_binding(),
        }],
    });
    (layout, buffer, bind_group)
}
