//! Draws a scene (meshes, sphere impostors, lines) into an offscreen colour + depth target. The
//! app shows that target as an egui texture; `cryoforge render` reads it back to a PNG, so the
//! window and the headless path draw the same pixels. Pipelines are built once; per-frame work
//! is uploading the camera and whatever geometry changed.

use std::mem::offset_of;

use wgpu::util::DeviceExt as _;

use crate::camera::{CameraUniform, OrbitCamera};
use crate::error::RenderError;
use crate::shaders::attribute;

pub const COLOR_FORMAT: wgpu::TextureFormat = wgpu::TextureFormat::Rgba8UnormSrgb;
const DEPTH_FORMAT: wgpu::TextureFormat = wgpu::TextureFormat::Depth32Float;

/// A triangle mesh: positions, normals (Å), and optionally a colour per vertex.
#[derive(Clone, Debug, Default)]
pub struct MeshData {
    pub positions: Vec<[f32; 3]>,
    pub normals: Vec<[f32; 3]>,
    pub triangles: Vec<[u32; 3]>,
    /// Per-vertex colours (slices); the instance's colour when None.
    pub vertex_colors: Option<Vec<[f32; 4]>>,
}

/// A mesh to draw in a colour (alpha < 1 draws it transparent). Meshes are shared, so a scene
/// rebuilt with the same mesh and colour reuses its GPU buffers.
#[derive(Clone, Debug)]
pub struct MeshInstance {
    pub mesh: std::sync::Arc<MeshData>,
    pub color: [f32; 4],
}

/// Spheres: centres, radii, colours (one per sphere).
#[derive(Clone, Debug, Default)]
pub struct SpheresData {
    pub centers: Vec<[f32; 3]>,
    pub radii: Vec<f32>,
    pub colors: Vec<[f32; 4]>,
}

/// Line segments: pairs of points with a colour per point.
#[derive(Clone, Debug, Default)]
pub struct LinesData {
    pub points: Vec<[f32; 3]>,
    pub colors: Vec<[f32; 4]>,
}

/// Everything in one frame.
#[derive(Clone, Debug, Default)]
pub struct SceneData {
    pub meshes: Vec<MeshInstance>,
    pub spheres: Vec<SpheresData>,
    pub lines: Vec<LinesData>,
    pub background: [f32; 4],
}

/// One mesh vertex. Keep in sync with `VertexIn` in shaders/mesh.wgsl (via [`Self::ATTRIBUTES`]).
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, bytemuck::Pod, bytemuck::Zeroable)]
pub struct MeshVertex {
    pub position: [f32; 3],
    pub normal: [f32; 3],
    pub color: [f32; 4],
}

impl MeshVertex {
    pub const ATTRIBUTES: [wgpu::VertexAttribute; 3] = [
        attribute(0, wgpu::VertexFormat::Float32x3, offset_of!(Self, position)),
        attribute(1, wgpu::VertexFormat::Float32x3, offset_of!(Self, normal)),
        attribute(2, wgpu::VertexFormat::Float32x4, offset_of!(Self, color)),
    ];
}

/// One sphere impostor. Keep in sync with `Instance` in shaders/spheres.wgsl (via
/// [`Self::ATTRIBUTES`]).
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, bytemuck::Pod, bytemuck::Zeroable)]
pub struct SphereInstance {
    pub center: [f32; 3],
    pub radius: f32,
    pub color: [f32; 4],
}

impl SphereInstance {
    pub const ATTRIBUTES: [wgpu::VertexAttribute; 3] = [
        attribute(0, wgpu::VertexFormat::Float32x3, offset_of!(Self, center)),
        attribute(1, wgpu::VertexFormat::Float32, offset_of!(Self, radius)),
        attribute(2, wgpu::VertexFormat::Float32x4, offset_of!(Self, color)),
    ];
}

/// One line end point. Keep in sync with `VertexIn` in shaders/lines.wgsl (via
/// [`Self::ATTRIBUTES`]).
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, bytemuck::Pod, bytemuck::Zeroable)]
pub struct LineVertex {
    pub position: [f32; 3],
    pub color: [f32; 4],
}

impl LineVertex {
    pub const ATTRIBUTES: [wgpu::VertexAttribute; 2] = [
        attribute(0, wgpu::VertexFormat::Float32x3, offset_of!(Self, position)),
        attribute(1, wgpu::VertexFormat::Float32x4, offset_of!(Self, color)),
    ];
}

struct GpuMesh {
    vertices: wgpu::Buffer,
    indices: wgpu::Buffer,
    index_count: u32,
    transparent: bool,
}

struct GpuInstances {
    buffer: wgpu::Buffer,
    count: u32,
}

/// The offscreen target and the pipelines that draw into it.
pub struct SceneRenderer {
    mesh_opaque: wgpu::RenderPipeline,
    mesh_transparent: wgpu::RenderPipeline,
    spheres: wgpu::RenderPipeline,
    lines: wgpu::RenderPipeline,
    camera_buffer: wgpu::Buffer,
    camera_bind_group: wgpu::BindGroup,
    target: Option<(wgpu::Texture, wgpu::TextureView, wgpu::TextureView, [u32; 2])>,
    meshes: Vec<std::sync::Arc<GpuMesh>>,
    /// Uploaded meshes by (mesh, colour), reused across scene rebuilds.
    mesh_cache: Vec<(MeshInstance, std::sync::Arc<GpuMesh>)>,
    sphere_sets: Vec<GpuInstances>,
    line_sets: Vec<GpuInstances>,
    background: [f32; 4],
}

impl SceneRenderer {
    pub fn new(device: &wgpu::Device) -> Self {
        let (camera_layout, camera_buffer, camera_bind_group) =
            crate::uniform_binding(device, "camera", size_of::<CameraUniform>());
        let layout = device.create_pipeline_layout(&wgpu::PipelineLayoutDescriptor {
            label: Some("scene"),
            bind_group_layouts: &[Some(&camera_layout)],
            immediate_size: 0,
        });
        let mesh_module = crate::shaders::module(device, "mesh.wgsl", crate::shaders::MESH);
        let sphere_module = crate::shaders::module(device, "spheres.wgsl", crate::shaders::SPHERES);
        let line_module = crate::shaders::module(device, "lines.wgsl", crate::shaders::LINES);
        let pipeline = |label: &str,
                        module: &wgpu::ShaderModule,
                        (stride, step_mode, attributes): (usize, wgpu::VertexStepMode, &[wgpu::VertexAttribute]),
                        topology: wgpu::PrimitiveTopology,
                        transparent: bool| {
            device.create_render_pipeline(&wgpu::RenderPipelineDescriptor {
                label: Some(label),
                layout: Some(&layout),
                vertex: wgpu::VertexState {
                    module,
                    entry_point: Some("vs_main"),
                    compilation_options: Default::default(),
                    buffers: &[Some(wgpu::VertexBufferLayout {
                        array_stride: stride as u64,
                        step_mode,
                        attributes,
                    })],
                },
                primitive: wgpu::PrimitiveState {
                    topology,
                    cull_mode: None,
                    ..Default::default()
                },
                depth_stencil: Some(wgpu::DepthStencilState {
                    format: DEPTH_FORMAT,
                    depth_write_enabled: Some(!transparent),
                    depth_compare: Some(wgpu::CompareFunction::Less),
                    stencil: Default::default(),
                    bias: Default::default(),
                }),
                multisample: Default::default(),
                fragment: Some(wgpu::FragmentState {
                    module,
                    entry_point: Some("fs_main"),
                    compilation_options: Default::default(),
                    targets: &[Some(wgpu::ColorTargetState {
                        format: COLOR_FORMAT,
                        blend: transparent.then_some(wgpu::BlendState::ALPHA_BLENDING),
                        write_mask: wgpu::ColorWrites::ALL,
                    })],
                }),
                multiview_mask: None,
                cache: None,
            })
        };
        let tri = wgpu::PrimitiveTopology::TriangleList;
        let mesh_buffer = (
            size_of::<MeshVertex>(),
            wgpu::VertexStepMode::Vertex,
            &MeshVertex::ATTRIBUTES[..],
        );
        let sphere_buffer = (
            size_of::<SphereInstance>(),
            wgpu::VertexStepMode::Instance,
            &SphereInstance::ATTRIBUTES[..],
        );
        let line_buffer = (
            size_of::<LineVertex>(),
            wgpu::VertexStepMode::Vertex,
            &LineVertex::ATTRIBUTES[..],
        );
        Self {
            mesh_opaque: pipeline("mesh", &mesh_module, mesh_buffer, tri, false),
            mesh_transparent: pipeline("mesh transparent", &mesh_module, mesh_buffer, tri, true),
            spheres: pipeline("spheres", &sphere_module, sphere_buffer, tri, false),
            lines: pipeline(
                "lines",
                &line_module,
                line_buffer,
                wgpu::PrimitiveTopology::LineList,
                false,
            ),
            camera_buffer,
            camera_bind_group,
            target: None,
            meshes: Vec::new(),
            mesh_cache: Vec::new(),
            sphere_sets: Vec::new(),
            line_sets: Vec::new(),
            background: [0.1, 0.1, 0.12, 1.0],
        }
    }

    /// Replaces the scene's geometry (call only when something changed).
    pub fn set_scene(&mut self, device: &wgpu::Device, scene: &SceneData) {
        let init = |label: &str, contents: &[u8], usage: wgpu::BufferUsages| {
            device.create_buffer_init(&wgpu::util::BufferInitDescriptor {
                label: Some(label),
                contents,
                usage,
            })
        };
        self.background = scene.background;
        let mut cache = Vec::with_capacity(scene.meshes.len());
        let mut meshes = Vec::with_capacity(scene.meshes.len());
        for instance in scene.meshes.iter().filter(|m| !m.mesh.triangles.is_empty()) {
            let same = |(cached, _): &&(MeshInstance, std::sync::Arc<GpuMesh>)| {
                std::sync::Arc::ptr_eq(&cached.mesh, &instance.mesh) && cached.color == instance.color
            };
            let gpu = match self.mesh_cache.iter().find(same) {
                Some((_, gpu)) => gpu.clone(),
                None => {
                    let m = &instance.mesh;
                    let color = |i: usize| {
                        m.vertex_colors
                            .as_ref()
                            .and_then(|c| c.get(i).copied())
                            .unwrap_or(instance.color)
                    };
                    let vertices: Vec<MeshVertex> = m
                        .positions
                        .iter()
                        .zip(&m.normals)
                        .enumerate()
                        .map(|(i, (&position, &normal))| MeshVertex {
                            position,
                            normal,
                            color: color(i),
                        })
                        .collect();
                    std::sync::Arc::new(GpuMesh {
                        vertices: init(
                            "mesh vertices",
                            bytemuck::cast_slice(&vertices),
                            wgpu::BufferUsages::VERTEX,
                        ),
                        indices: init(
                            "mesh indices",
                            bytemuck::cast_slice(&m.triangles),
                            wgpu::BufferUsages::INDEX,
                        ),
                        index_count: (m.triangles.len() * 3) as u32,
                        transparent: instance.color[3] < 0.999,
                    })
                }
            };
            cache.push((instance.clone(), gpu.clone()));
            meshes.push(gpu);
        }
        self.mesh_cache = cache;
        self.meshes = meshes;
        self.sphere_sets = scene
            .spheres
            .iter()
            .filter(|s| !s.centers.is_empty())
            .map(|s| {
                let instances: Vec<SphereInstance> = s
                    .centers
                    .iter()
                    .zip(&s.radii)
                    .zip(&s.colors)
                    .map(|((&center, &radius), &color)| SphereInstance { center, radius, color })
                    .collect();
                GpuInstances {
                    buffer: init("spheres", bytemuck::cast_slice(&instances), wgpu::BufferUsages::VERTEX),
                    count: s.centers.len() as u32,
                }
            })
            .collect();
        self.line_sets = scene
            .lines
            .iter()
            .filter(|l| l.points.len() >= 2)
            .map(|l| {
                let vertices: Vec<LineVertex> = l
                    .points
                    .iter()
                    .zip(&l.colors)
                    .map(|(&position, &color)| LineVertex { position, color })
                    .collect();
                GpuInstances {
                    buffer: init("lines", bytemuck::cast_slice(&vertices), wgpu::BufferUsages::VERTEX),
                    count: (l.points.len() / 2 * 2) as u32,
                }
            })
            .collect();
    }

    /// The colour texture of the last render (for showing in the UI).
    pub fn color_view(&self) -> Option<&wgpu::TextureView> {
        self.target.as_ref().map(|t| &t.1)
    }

    pub fn color_texture(&self) -> Option<&wgpu::Texture> {
        self.target.as_ref().map(|t| &t.0)
    }

    /// Whether the target was (re)created by the last render: the UI must re-register it.
    fn ensure_target(&mut self, device: &wgpu::Device, size: [u32; 2]) -> bool {
        if self.target.as_ref().is_some_and(|t| t.3 == size) {
            return false;
        }
        let extent = wgpu::Extent3d {
            width: size[0],
            height: size[1],
            depth_or_array_layers: 1,
        };
        let color = colour_target(device, "scene colour", size);
        let depth = device.create_texture(&wgpu::TextureDescriptor {
            label: Some("scene depth"),
            size: extent,
            mip_level_count: 1,
            sample_count: 1,
            dimension: wgpu::TextureDimension::D2,
            format: DEPTH_FORMAT,
            usage: wgpu::TextureUsages::RENDER_ATTACHMENT,
            view_formats: &[],
        });
        let color_view = color.create_view(&Default::default());
        let depth_view = depth.create_view(&Default::default());
        self.target = Some((color, color_view, depth_view, size));
        true
    }

    /// Renders into the offscreen target of `size` pixels; returns true if the target texture
    /// is new (the caller must re-register it with the UI).
    pub fn render(&mut self, device: &wgpu::Device, queue: &wgpu::Queue, camera: &OrbitCamera, size: [u32; 2]) -> bool {
        let size = [size[0].clamp(1, 8192), size[1].clamp(1, 8192)];
        let recreated = self.ensure_target(device, size);
        queue.write_buffer(
            &self.camera_buffer,
            0,
            bytemuck::bytes_of(&camera.uniform(size[0] as f32 / size[1] as f32)),
        );
        let Some((_, color_view, depth_view, _)) = &self.target else {
            return recreated;
        };
        let mut encoder = device.create_command_encoder(&wgpu::CommandEncoderDescriptor { label: Some("scene") });
        {
            let mut pass = encoder.begin_render_pass(&wgpu::RenderPassDescriptor {
                label: Some("scene"),
                color_attachments: &[Some(cleared(color_view, self.background))],
                depth_stencil_attachment: Some(wgpu::RenderPassDepthStencilAttachment {
                    view: depth_view,
                    depth_ops: Some(wgpu::Operations {
                        load: wgpu::LoadOp::Clear(1.0),
                        store: wgpu::StoreOp::Store,
                    }),
                    stencil_ops: None,
                }),
                timestamp_writes: None,
                occlusion_query_set: None,
                multiview_mask: None,
            });
            pass.set_bind_group(0, &self.camera_bind_group, &[]);
            // Opaque first, transparent surfaces last so what is behind them is already drawn.
            pass.set_pipeline(&self.spheres);
            for s in &self.sphere_sets {
                pass.set_vertex_buffer(0, s.buffer.slice(..));
                pass.draw(0..6, 0..s.count);
            }
            pass.set_pipeline(&self.lines);
            for l in &self.line_sets {
                pass.set_vertex_buffer(0, l.buffer.slice(..));
                pass.draw(0..l.count, 0..1);
            }
            for transparent in [false, true] {
                pass.set_pipeline(if transparent {
                    &self.mesh_transparent
                } else {
                    &self.mesh_opaque
                });
                for m in self.meshes.iter().filter(|m| m.transparent == transparent) {
                    pass.set_vertex_buffer(0, m.vertices.slice(..));
                    pass.set_index_buffer(m.indices.slice(..), wgpu::IndexFormat::Uint32);
                    pass.draw_indexed(0..m.index_count, 0, 0..1);
                }
            }
        }
        queue.submit([encoder.finish()]);
        recreated
    }

    /// Copies the last render back as tightly packed RGBA8 (sRGB) rows.
    pub fn read_pixels(&self, device: &wgpu::Device, queue: &wgpu::Queue) -> Result<(u32, u32, Vec<u8>), RenderError> {
        let (texture, _, _, size) = self.target.as_ref().ok_or(RenderError::NothingRendered)?;
        read_texture(device, queue, texture, *size)
    }
}

/// Copies an RGBA8 texture of `size` back as tightly packed rows (waits for the GPU).
pub fn read_texture(
    device: &wgpu::Device,
    queue: &wgpu::Queue,
    texture: &wgpu::Texture,
    [width, height]: [u32; 2],
) -> Result<(u32, u32, Vec<u8>), RenderError> {
    let padded_row = (width * 4).div_ceil(256) * 256;
    let buffer = device.create_buffer(&wgpu::BufferDescriptor {
        label: Some("readback"),
        size: u64::from(padded_row * height),
        usage: wgpu::BufferUsages::COPY_DST | wgpu::BufferUsages::MAP_READ,
        mapped_at_creation: false,
    });
    let mut encoder = device.create_command_encoder(&wgpu::CommandEncoderDescriptor {
        label: Some("readback"),
    });
    encoder.copy_texture_to_buffer(
        texture.as_image_copy(),
        wgpu::TexelCopyBufferInfo {
            buffer: &buffer,
            layout: wgpu::TexelCopyBufferLayout {
                offset: 0,
                bytes_per_row: Some(padded_row),
                rows_per_image: Some(height),
            },
        },
        wgpu::Extent3d {
            width,
            height,
            depth_or_array_layers: 1,
        },
    );
    queue.submit([encoder.finish()]);
    let slice = buffer.slice(..);
    let (tx, rx) = std::sync::mpsc::channel();
    slice.map_async(wgpu::MapMode::Read, move |r| {
        let _ = tx.send(r);
    });
    device.poll(wgpu::PollType::wait_indefinitely())?;
    rx.recv().map_err(|_| RenderError::MappingDropped)??;
    let view = slice.get_mapped_range()?;
    let mut pixels = Vec::with_capacity((width * height * 4) as usize);
    for row in 0..height {
        let start = (row * padded_row) as usize;
        pixels.extend_from_slice(&view[start..start + (width * 4) as usize]);
    }
    drop(view);
    buffer.unmap();
    Ok((width, height, pixels))
}

/// An offscreen colour target the UI can show (texture binding) and tests can read (copy source).
pub(crate) fn colour_target(device: &wgpu::Device, label: &str, [width, height]: [u32; 2]) -> wgpu::Texture {
    device.create_texture(&wgpu::TextureDescriptor {
        label: Some(label),
        size: wgpu::Extent3d {
            width,
            height,
            depth_or_array_layers: 1,
        },
        mip_level_count: 1,
        sample_count: 1,
        dimension: wgpu::TextureDimension::D2,
        format: COLOR_FORMAT,
        usage: wgpu::TextureUsages::RENDER_ATTACHMENT
            | wgpu::TextureUsages::TEXTURE_BINDING
            | wgpu::TextureUsages::COPY_SRC,
        view_formats: &[],
    })
}

/// A colour attachment cleared to `background` and stored.
pub(crate) fn cleared(view: &wgpu::TextureView, background: [f32; 4]) -> wgpu::RenderPassColorAttachment<'_> {
    let [r, g, b, a] = background.map(f64::from);
    wgpu::RenderPassColorAttachment {
        view,
        depth_slice: None,
        resolve_target: None,
        ops: wgpu::Operations {
            load: wgpu::LoadOp::Clear(wgpu::Color { r, g, b, a }),
            store: wgpu::StoreOp::Store,
        },
    }
}
