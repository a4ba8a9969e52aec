//! The WGSL twin of particle refinement's projection (`shaders/projection.wgsl`): every atom a
//! 2D Gaussian at its projected position in each particle, forward and backward, on a wgpu
//! device. Tested against the burn forward model and its autodiff gradient (on llvmpipe here);
//! it is the kernel a hardware GPU runs the projection with.

use crate::geometry::Mat3;
use crate::gpu::{GpuAtom, GpuContext, GpuError, Kernels, dispatch_size};

/// The kernels' source, shaders/projection.wgsl.
pub const SHADER: &str = include_str!("../../../shaders/projection.wgsl");
/// Gaussians are cut off at this many σ (the simulator's cutoff).
pub const CUTOFF_SIGMAS: f32 = 5.0;

/// The kernels' parameters: two rows of 16 bytes. Keep in sync with `Params` in
/// shaders/projection.wgsl.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, bytemuck::Pod, bytemuck::Zeroable)]
pub struct ProjectionParams {
    pub box_size: u32,
    pub atom_count: u32,
    pub particle_count: u32,
    /// Invocations per row of the 2D dispatch.
    pub row_stride: u32,
    pub pixel_size: f32,
    pub cutoff_sigmas: f32,
    pub _padding: [f32; 2],
}

/// One particle's view: the first two rows of its RELION matrix, each with the image offset
/// (pixels) of the box centre in w. Keep in sync with `View` in shaders/projection.wgsl.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, bytemuck::Pod, bytemuck::Zeroable)]
pub struct ProjectionView {
    pub x: [f32; 4],
    pub y: [f32; 4],
}

/// Atoms as the projection sees them: positions relative to the box centre (Å), amplitudes and
/// widths σ² (Å²).
pub struct ProjectionAtoms<'a> {
    pub positions: &'a [[f32; 3]],
    pub amplitudes: &'a [f32],
    pub widths: &'a [f32],
}

/// Gradients of a loss with respect to every atom's parameters.
#[derive(Clone, Debug, PartialEq)]
pub struct ProjectionGradients {
    pub positions: Vec<[f32; 3]>,
    pub amplitudes: Vec<f32>,
    pub widths: Vec<f32>,
}

/// The particles to project: RELION matrices, origins in pixels, and the box they share.
#[derive(Clone, Copy, Debug)]
pub struct Views<'a> {
    pub rotations: &'a [Mat3],
    pub origins_px: &'a [[f64; 2]],
    pub box_size: usize,
    pub pixel_size: f64,
}

/// Compiled projection pipelines on one device.
pub struct GpuProjector {
    kernels: Kernels,
}

impl GpuProjector {
    pub fn new(context: GpuContext) -> Self {
        Self {
            kernels: Kernels::new(context, "projection.wgsl", SHADER, ["project_pixels", "backward_atoms"]),
        }
    }

    pub fn context(&self) -> &GpuContext {
        &self.kernels.context
    }

    fn buffers(&self, atoms: &ProjectionAtoms<'_>, views: &Views<'_>) -> [wgpu::Buffer; 3] {
        let packed: Vec<GpuAtom> = atoms
            .positions
            .iter()
            .zip(atoms.amplitudes)
            .map(|(&position, &amplitude)| GpuAtom { position, amplitude })
            .collect();
        let centre = (views.box_size / 2) as f64;
        let gpu_views: Vec<ProjectionView> = views
            .rotations
            .iter()
            .zip(views.origins_px)
            .map(|(a, o)| ProjectionView {
                x: [a[0][0], a[0][1], a[0][2], centre - o[0]].map(|v| v as f32),
                y: [a[1][0], a[1][1], a[1][2], centre - o[1]].map(|v| v as f32),
            })
            .collect();
        [
            self.kernels.context.storage("atoms", &packed, false),
            self.kernels.context.storage("widths", atoms.widths, false),
            self.kernels.context.storage("views", &gpu_views, false),
        ]
    }

    fn params(&self, atoms: usize, views: &Views<'_>, invocations: usize) -> wgpu::Buffer {
        let (particles, box_size, pixel_size) = (views.rotations.len(), views.box_size, views.pixel_size);
        let (_, _, row_stride) = dispatch_size(invocations);
        let params = ProjectionParams {
            box_size: box_size as u32,
            atom_count: atoms as u32,
            particle_count: particles as u32,
            row_stride,
            pixel_size: pixel_size as f32,
            cutoff_sigmas: CUTOFF_SIGMAS,
            _padding: [0.0; 2],
        };
        self.kernels.context.uniform(&params)
    }

    /// Projections (box² each, x fastest, particle after particle) at RELION matrices
    /// `rotations` and origins `origins_px` (pixels).
    pub fn project(&self, atoms: &ProjectionAtoms<'_>, views: &Views<'_>) -> Result<Vec<f32>, GpuError> {
        let count = views.rotations.len() * views.box_size * views.box_size;
        let uniform = self.params(atoms.positions.len(), views, count);
        let [atom_buffer, width_buffer, view_buffer] = self.buffers(atoms, views);
        let images = self.kernels.context.storage("images", &vec![0f32; count], true);
        self.kernels.context.run(
            &self.kernels.forward,
            &[
                (0, &uniform),
                (1, &atom_buffer),
                (2, &width_buffer),
                (3, &view_buffer),
                (4, &images),
            ],
            count,
        );
        self.kernels.context.read_back(&images, count)
    }

    /// Back-propagates ∂L/∂pixel (laid out as [`Self::project`]'s output) to the atoms.
    pub fn backward(
        &self,
        atoms: &ProjectionAtoms<'_>,
        views: &Views<'_>,
        dloss_dimage: &[f32],
    ) -> Result<ProjectionGradients, GpuError> {
        let n = atoms.positions.len();
        let uniform = self.params(n, views, n);
        let [atom_buffer, width_buffer, view_buffer] = self.buffers(atoms, views);
        let dloss = self.kernels.context.storage("dloss_dimage", dloss_dimage, false);
        // xyz = ∂L/∂position, w = ∂L/∂amplitude.
        let grad_atoms = self.kernels.context.storage("grad_atoms", &vec![[0f32; 4]; n], true);
        let grad_widths = self.kernels.context.storage("grad_widths", &vec![0f32; n], true);
        self.kernels.context.run(
            &self.kernels.backward,
            &[
                (0, &uniform),
                (5, &atom_buffer),
                (6, &width_buffer),
                (7, &view_buffer),
                (8, &dloss),
                (9, &grad_atoms),
                (10, &grad_widths),
            ],
            n,
        );
        let packed: Vec<[f32; 4]> = self.kernels.context.read_back(&grad_atoms, n)?;
        Ok(ProjectionGradients {
            positions: packed.iter().map(|g| [g[0], g[1], g[2]]).collect(),
            amplitudes: packed.iter().map(|g| g[3]).collect(),
            widths: self.kernels.context.read_back(&grad_widths, n)?,
        })
    }
}

#[cfg(test)]
mod tests {
    use burn::tensor::{Tensor, TensorData};

    use super::*;
    use crate::geometry::relion_matrix;
    use crate::refine::{Device, ForwardModel};

    /// The WGSL projection and its gradient agree with the burn forward model and autodiff.
    #[test]
    fn wgsl_projection_and_gradient_match_burn() {
        let Some(context) = crate::gpu::test_context() else {
            return;
        };
        let gpu = GpuProjector::new(context);
        let mut rng = crate::numeric::rng::Rng::new(11);
        let mut rand = || rng.uniform() as f32;
        let n = 120;
        let positions: Vec<[f32; 3]> = (0..n)
            .map(|_| [rand() * 24.0 - 12.0, rand() * 24.0 - 12.0, rand() * 24.0 - 12.0])
            .collect();
        let amplitudes: Vec<f32> = (0..n).map(|_| 6.0 + 10.0 * rand()).collect();
        let widths: Vec<f32> = (0..n).map(|_| 0.8 + 1.5 * rand()).collect();
        let atoms = ProjectionAtoms {
            positions: &positions,
            amplitudes: &amplitudes,
            widths: &widths,
        };
        let (box_size, apix) = (32usize, 1.2);
        let rotations = [
            relion_matrix(20.0, 60.0, -30.0),
            relion_matrix(-100.0, 140.0, 10.0),
            relion_matrix(0.0, 0.0, 0.0),
        ];
        let origins = [[1.5, -0.5], [0.0, 2.25], [-3.0, 0.0]];
        let views = Views {
            rotations: &rotations,
            origins_px: &origins,
            box_size,
            pixel_size: apix,
        };
        let wgsl = gpu.project(&atoms, &views).expect("gpu project");

        // burn: the same projection, and the gradient of Σ weights·image.
        let device = Device::flex().autodiff();
        let model = ForwardModel::new(&device, box_size, apix, 4);
        let dummy = vec![0f32; box_size * box_size];
        let ctf = crate::particles::ctf::CtfParams {
            voltage_kv: 300.0,
            spherical_aberration_mm: 2.7,
            amplitude_contrast: 0.1,
            defocus_u_angstrom: 1e4,
            defocus_v_angstrom: 1e4,
            defocus_angle_deg: 0.0,
            phase_shift_deg: 0.0,
            b_factor: 0.0,
        };
        let batch = model.batch(&rotations, &origins, &[ctf; 3], &[dummy.as_slice(); 3]);
        let pos = Tensor::<2>::from_data(
            TensorData::new(positions.iter().flatten().copied().collect::<Vec<_>>(), [n, 3]),
            &device,
        )
        .require_grad();
        let amp = Tensor::<1>::from_data(TensorData::new(amplitudes.clone(), [n]), &device).require_grad();
        let wid = Tensor::<1>::from_data(TensorData::new(widths.clone(), [n]), &device).require_grad();
        let images = model.project(pos.clone(), amp.clone(), wid.clone(), &batch);
        let reference = images.clone().inner().into_data().try_to_vec::<f32>().expect("f32");
        let peak = reference.iter().copied().fold(0f32, f32::max);
        let worst = reference
            .iter()
            .zip(&wgsl)
            .map(|(a, b)| (a - b).abs())
            .fold(0f32, f32::max);
        assert!(worst < 1e-4 * peak, "projection differs by {worst} (peak {peak})");

        let weights: Vec<f32> = (0..reference.len()).map(|_| rand() - 0.5).collect();
        let w = Tensor::<3>::from_data(TensorData::new(weights.clone(), [3, box_size, box_size]), &device);
        let grads = (images * w).sum().backward();
        let read = |t: Option<Tensor<1>>| t.expect("gradient").into_data().try_to_vec::<f32>().expect("f32");
        let g_pos = pos
            .grad(&grads)
            .expect("gradient")
            .into_data()
            .try_to_vec::<f32>()
            .expect("f32");
        let g_amp = read(amp.grad(&grads));
        let g_wid = read(wid.grad(&grads));
        let gpu_g = gpu.backward(&atoms, &views, &weights).expect("gpu backward");
        let close = |a: &[f32], b: &[f32], what: &str| {
            let scale = a.iter().map(|v| v.abs()).fold(0f32, f32::max);
            for (i, (x, y)) in a.iter().zip(b).enumerate() {
                assert!((x - y).abs() < 2e-3 * scale, "{what} {i}: burn {x} vs WGSL {y}");
            }
        };
        close(
            &g_pos,
            &gpu_g.positions.iter().flatten().copied().collect::<Vec<_>>(),
            "position gradient",
        );
        close(&g_amp, &gpu_g.amplitudes, "amplitude gradient");
        close(&g_wid, &gpu_g.widths, "width gradient");
    }
}
