//! The WGSL sources of the renderer's pipelines, exactly as the pipelines compile them: shared
//! declarations (`shaders/camera.wgsl`) are prepended to every shader that uses them, so they are
//! written once. The shader tests validate these assembled sources.

/// `Camera` and its binding (group 0, binding 0), shared by the scene's shaders.
pub const CAMERA: &str = include_str!("../../shaders/camera.wgsl");

/// Lit triangle meshes (isosurfaces).
pub const MESH: &str = concat!(
    include_str!("../../shaders/camera.wgsl"),
    include_str!("../../shaders/mesh.wgsl")
);

/// Sphere impostors (atoms).
pub const SPHERES: &str = concat!(
    include_str!("../../shaders/camera.wgsl"),
    include_str!("../../shaders/spheres.wgsl")
);

/// Coloured line segments (boxes, traces).
pub const LINES: &str = concat!(
    include_str!("../../shaders/camera.wgsl"),
    include_str!("../../shaders/lines.wgsl")
);

/// Scatter-plot point splats (no camera: a 2D data → clip mapping).
pub const POINTS: &str = include_str!("../../shaders/points.wgsl");

/// Every pipeline's assembled source, by the file that holds its entry points.
pub const ALL: [(&str, &str); 4] = [
    ("mesh.wgsl", MESH),
    ("spheres.wgsl", SPHERES),
    ("lines.wgsl", LINES),
    ("points.wgsl", POINTS),
];

/// A shader module from an assembled source.
pub(crate) fn module(device: &wgpu::Device, label: &str, source: &'static str) -> wgpu::ShaderModule {
    device.create_shader_module(wgpu::ShaderModuleDescriptor {
        label: Some(label),
        source: wgpu::ShaderSource::Wgsl(source.into()),
    })
}

/// A vertex attribute at `offset` bytes (use `std::mem::offset_of!`) into its struct.
pub(crate) const fn attribute(location: u32, format: wgpu::VertexFormat, offset: usize) -> wgpu::VertexAttribute {
    wgpu::VertexAttribute {
        format,
        offset: offset as u64,
        shader_location: location,
    }
}
