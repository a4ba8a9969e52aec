//! Scatter plots drawn on the GPU: up to millions of 2D points as instanced splats into an
//! offscreen target, which the UI shows as a texture. Points are uploaded once per change of
//! layout or colouring; redrawing for a new size or view is one instanced draw call.

use std::mem::offset_of;

use wgpu::util::DeviceExt as _;

use crate::error::RenderError;
use crate::scene::{COLOR_FORMAT, cleared, colour_target, read_texture};
use crate::shaders::attribute;

/// The data → clip mapping and splat size. Keep in sync with `View` in shaders/points.wgsl.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, bytemuck::Pod, bytemuck::Zeroable)]
pub struct PointsUniform {
    /// Clip = data × scale + offset, per axis.
    pub scale: [f32; 2],
    pub offset: [f32; 2],
    /// The splat's half-size in clip units per axis.
    pub radius: [f32; 2],
    pub alpha: f32,
    pub _pad: f32,
}

impl PointsUniform {
    /// The uniform that draws `view` into a target of `size` pixels.
    pub fn new(view: &PointsView, size: [u32; 2]) -> Self {
        // Data → clip: x from [left, right] to [−1, 1], y from [bottom, top] to [−1, 1].
        let [left, bottom, right, top] = view.bounds;
        let sx = 2.0 / (right - left).max(f32::MIN_POSITIVE);
        let sy = 2.0 / (top - bottom).max(f32::MIN_POSITIVE);
        Self {
            scale: [sx, sy],
            offset: [-1.0 - left * sx, -1.0 - bottom * sy],
            radius: [
                2.0 * view.radius_px / size[0] as f32,
                2.0 * view.radius_px / size[1] as f32,
            ],
            alpha: view.alpha,
            _pad: 0.0,
        }
    }
}

/// One point: data coordinates and an sRGB colour with alpha. Keep in sync with `Instance` in
/// shaders/points.wgsl (via [`Self::ATTRIBUTES`]).
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, bytemuck::Pod, bytemuck::Zeroable)]
pub struct PointInstance {
    pub position: [f32; 2],
    pub colour: [u8; 4],
}

impl PointInstance {
    pub const ATTRIBUTES: [wgpu::VertexAttribute; 2] = [
        attribute(0, wgpu::VertexFormat::Float32x2, offset_of!(Self, position)),
        attribute(1, wgpu::VertexFormat::Unorm8x4, offset_of!(Self, colour)),
    ];
}

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
        let (bind_layout, view_buffer, view_bind_group) =
            crate::uniform_binding(device, "points view", size_of::<PointsUniform>());
        let layout = device.create_pipeline_layout(&wgpu::PipelineLayoutDescriptor {
            label: Some("points"),
            bind_group_layouts: &[Some(&bind_layout)],
            immediate_size: 0,
        });
        let module = crate::shaders::module(device, "points.wgsl", crate::shaders::POINTS);
        let pipeline = device.create_render_pipeline(&wgpu::RenderPipelineDescriptor {
            label: Some("points"),
            layout: Some(&layout),
            vertex: wgpu::VertexState {
                module: &module,
                entry_point: Some("vs_main"),
                compilation_options: Default::default(),
                buffers: &[Some(wgpu::VertexBufferLayout {
                    array_stride: size_of::<PointInstance>() as u64,
                    step_mode: wgpu::VertexStepMode::Instance,
                    attributes: &PointInstance::ATTRIBUTES,
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
        let instances: Vec<PointInstance> = positions
            .iter()
            .zip(colours)
            .map(|(&position, &colour)| PointInstance { position, colour })
            .collect();
        let n = instances.len();
        self.instances = (n > 0).then(|| {
            let buffer = device.create_buffer_init(&wgpu::util::BufferInitDescriptor {
                label: Some("points"),
                contents: bytemuck::cast_slice(&instances),
                usage: wgpu::BufferUsages::VERTEX,
            });
            (buffer, n as u32)
        });
    }

    pub fn color_view(&self) -> Option<&wgpu::TextureView> {
        self.target.as_ref().map(|t| &t.1)
    }

    /// Copies the last render back as tightly packed RGBA8 (sRGB) rows.
    pub fn read_pixels(&self, device: &wgpu::Device, queue: &wgpu::Queue) -> Result<(u32, u32, Vec<u8>), RenderError> {
        let (texture, _, size) = self.target.as_ref().ok_or(RenderError::NothingRendered)?;
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
        queue.write_buffer(
            &self.view_buffer,
            0,
            bytemuck::bytes_of(&PointsUniform::new(view, size)),
        );
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_uniform_maps_the_bounds_to_clip_space_and_pixels_to_clip_units() {
        let view = PointsView {
            bounds: [-2.0, 1.0, 6.0, 5.0],
            radius_px: 3.0,
            alpha: 0.5,
            background: [1.0; 4],
        };
        let u = PointsUniform::new(&view, [300, 150]);
        let clip = |p: [f32; 2]| [p[0] * u.scale[0] + u.offset[0], p[1] * u.scale[1] + u.offset[1]];
        // Left-bottom to (−1, −1), right-top to (1, 1): y up, as clip space.
        assert_eq!(clip([-2.0, 1.0]), [-1.0, -1.0]);
        assert_eq!(clip([6.0, 5.0]), [1.0, 1.0]);
        // 3 px of 300 (150) is 0.02 (0.04) of the clip width 2.
        assert!((u.radius[0] - 0.02).abs() < 1e-6 && (u.radius[1] - 0.04).abs() < 1e-6);
        assert_eq!(u.alpha, 0.5);
    }
}
