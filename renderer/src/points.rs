//! Scatter plots drawn on the GPU: up to millions of 2D points as instanced splats into an
//! offscreen target, which the UI shows as a texture. Points are uploaded once per change of
//! layout or colouring; redrawing for a new size or view is one instanced draw call.

use wgpu::util::DeviceExt as _;

use crate::scene::{COLOR_FORMAT, cleared, colour_target, read_texture};

/// Bytes of the `View` uniform in points.wgsl.
const VIEW_BYTES: u64 = 32;

/// The data rectangle shown and how points look.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct PointsView {
    /// Data coordinates at the target's left, bottom, right and top edges.
    pub bounds: [f32; 4],
    /// Splat radius in pixels.
    pub radius_px: f32,
    /// Opacity of one splat (overlapping splats build up density).
    pub alpha: f32,
    pub background: [f32; 4],
}

/// The points pipeline and its offscreen target.
pub struct PointsRenderer {
    pipeline: wgpu::RenderPipeline,
    view_buffer: wgpu::Buffer,
    view_bind_group: wgpu::BindGroup,
    instances: Option<(wgpu::Buffer, u32)>,
    target: Option<(wgpu::Texture, wgpu::TextureView, [u32; 2])>,
}

impl PointsRenderer {
    pub fn new(device: &wgpu::Device) -> Self {
        let layout_entry = wgpu::BindGroupLayoutEntry {
            binding: 0,
            visibility: wgpu::ShaderStages::VERTEX_FRAGMENT,
            ty: wgpu::BindingType::Buffer {
                ty: wgpu::BufferBindingType::Uniform,
                has_dynamic_offset: false,
                min_binding_size: None,
            },
            count: None,
        };
        let bind_layout = device.create_bind_group_layout(&wgpu::BindGroupLayoutDescriptor {
            label: Some("points view"),
            entries: &[layout_entry],
        });
        let view_buffer = device.create_buffer(&wgpu::BufferDescriptor {
            label: Some("points view"),
            size: VIEW_BYTES,
            usage: wgpu::BufferUsages::UNIFORM | wgpu::BufferUsages::COPY_DST,
            mapped_at_creation: false,
        });
        let view_bind_group = device.create_bind_group(&wgpu::BindGroupDescriptor {
            label: Some("points view"),
            layout: &bind_layout,
            entries: &[wgpu::BindGroupEntry {
                binding: 0,
                resource: view_buffer.as_entire_binding(),
            }],
        });
        let layout = device.create_pipeline_layout(&wgpu::PipelineLayoutDescriptor {
            label: Some("points"),
            bind_group_layouts: &[Some(&bind_layout)],
            immediate_size: 0,
        });
        let module = device.create_shader_module(wgpu::ShaderModuleDescriptor {
            label: Some("points.wgsl"),
            source: wgpu::ShaderSource::Wgsl(include_str!("../../shaders/points.wgsl").into()),
        });
        let attributes = [
            wgpu::VertexAttribute {
                format: wgpu::VertexFormat::Float32x2,
                offset: 0,
                shader_location: 0,
            },
            wgpu::VertexAttribute {
                format: wgpu::VertexFormat::Unorm8x4,
                offset: 8,
                shader_location: 1,
            },
        ];
        let pipeline = device.create_render_pipeline(&wgpu::RenderPipelineDescriptor {
            label: Some("points"),
            layout: Some(&layout),
            vertex: wgpu::VertexState {
                module: &module,
                entry_point: Some("vs_main"),
                compilation_options: Default::default(),
                buffers: &[Some(wgpu::VertexBufferLayout {
                    array_stride: 12,
                    step_mode: wgpu::VertexStepMode::Instance,
                    attributes: &attributes,
                })],
            },
            primitive: wgpu::PrimitiveState {
                topology: wgpu::PrimitiveTopology::TriangleList,
                cull_mode: None,
                ..Default::default()
            },
            depth_stencil: None,
            multisample: Default::default(),
            fragment: Some(wgpu::FragmentState {
                module: &module,
                entry_point: Some("fs_main"),
                compilation_options: Default::default(),
                targets: &[Some(wgpu::ColorTargetState {
                    format: COLOR_FORMAT,
                    blend: Some(wgpu::BlendState::ALPHA_BLENDING),
                    write_mask: wgpu::ColorWrites::ALL,
                })],
            }),
            multiview_mask: None,
            cache: None,
        });
        Self {
            pipeline,
            view_buffer,
            view_bind_group,
            instances: None,
            target: None,
        }
    }

    /// Uploads points (data coordinates, [x, y] pairs) and their colours (sRGB bytes, alpha
    /// included). Points are drawn in order, so later ones (a selection) land on top.
    pub fn set_points(&mut self, device: &wgpu::Device, positions: &[[f32; 2]], colours: &[[u8; 4]]) {
        let n = positions.len().min(colours.len());
        let mut bytes = Vec::with_capacity(n * 12);
        for (p, c) in positions.iter().zip(colours).take(n) {
            bytes.extend_from_slice(&p[0].to_le_bytes());
            bytes.extend_from_slice(&p[1].to_le_bytes());
            bytes.extend_from_slice(c);
        }
        self.instances = (n > 0).then(|| {
            let buffer = device.create_buffer_init(&wgpu::util::BufferInitDescriptor {
                label: Some("points"),
                contents: &bytes,
                usage: wgpu::BufferUsages::VERTEX,
            });
            (buffer, n as u32)
        });
    }

    pub fn color_view(&self) -> Option<&wgpu::TextureView> {
        self.target.as_ref().map(|t| &t.1)
    }

    /// Copies the last render back as tightly packed RGBA8 (sRGB) rows.
    pub fn read_pixels(&self, device: &wgpu::Device, queue: &wgpu::Queue) -> Result<(u32, u32, Vec<u8>), String> {
        let (texture, _, size) = self.target.as_ref().ok_or("nothing rendered yet")?;
        read_texture(device, queue, texture, *size)
    }

    /// Renders into the offscreen target of `size` pixels; returns true if the target texture
    /// is new (the caller must re-register it with the UI).
    pub fn render(&mut self, device: &wgpu::Device, queue: &wgpu::Queue, view: &PointsView, size: [u32; 2]) -> bool {
        let size = [size[0].clamp(1, 8192), size[1].clamp(1, 8192)];
        let recreated = self.target.as_ref().is_none_or(|t| t.2 != size);
        if recreated {
            let texture = colour_target(device, "points colour", size);
            let texture_view = texture.create_view(&Default::default());
            self.target = Some((texture, texture_view, size));
        }
        // Data → clip: x from [left, right] to [−1, 1], y from [bottom, top] to [−1, 1].
        let [left, bottom, right, top] = view.bounds;
        let sx = 2.0 / (right - left).max(f32::MIN_POSITIVE);
        let sy = 2.0 / (top - bottom).max(f32::MIN_POSITIVE);
        let uniform = [
            sx,
            sy,
            -1.0 - left * sx,
            -1.0 - bottom * sy,
            2.0 * view.radius_px / size[0] as f32,
            2.0 * view.radius_px / size[1] as f32,
            view.alpha,
            0.0,
        ];
        let bytes: Vec<u8> = uniform.iter().flat_map(|v| v.to_le_bytes()).collect();
        queue.write_buffer(&self.view_buffer, 0, &bytes);
        let Some((_, target, _)) = &self.target else {
            return recreated;
        };
        let mut encoder = device.create_command_encoder(&wgpu::CommandEncoderDescriptor { label: Some("points") });
        {
            let mut pass = encoder.begin_render_pass(&wgpu::RenderPassDescriptor {
                label: Some("points"),
                color_attachments: &[Some(cleared(target, view.background))],
                depth_stencil_attachment: None,
                timestamp_writes: None,
                occlusion_query_set: None,
                multiview_mask: None,
            });
            if let Some((buffer, count)) = &self.instances {
                pass.set_pipeline(&self.pipeline);
                pass.set_bind_group(0, &self.view_bind_group, &[]);
                pass.set_vertex_buffer(0, buffer.slice(..));
                pass.draw(0..6, 0..*count);
            }
        }
        queue.submit([encoder.finish()]);
        recreated
    }
}
