//! The WGSL twin of [`crate::maps::density`] (`shaders/density.wgsl`): the same Gaussians,
//! truncation and gradient, computed on a wgpu device. Tested against the CPU kernel on llvmpipe;
//! used for real work only on a hardware GPU (see [`crate::gpu`]).

use crate::gpu::{GpuAtom, GpuContext, GpuError, Kernels, dispatch_size};
use crate::maps::MapGrid;
use crate::maps::density::{CUTOFF_SIGMAS, GaussianAtoms, GaussianGradients};

/// The kernels' source, shaders/density.wgsl.
pub const SHADER: &str = include_str!("../../../shaders/density.wgsl");

/// The kernels' parameters: five rows of 16 bytes. Keep in sync with `Params` in
/// shaders/density.wgsl.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, bytemuck::Pod, bytemuck::Zeroable)]
pub struct DensityParams {
    pub dims: [u32; 3],
    pub atom_count: u32,
    pub first_voxel: [f32; 3],
    pub cutoff_sigmas: f32,
    pub voxel_size: [f32; 3],
    pub cell_size: f32,
    pub cell_dims: [u32; 3],
    /// Invocations per row of the 2D dispatch.
    pub row_stride: u32,
    pub cell_origin: [f32; 3],
    pub _padding: f32,
}

/// Compiled density pipelines on one device.
pub struct GpuDensity {
    kernels: Kernels,
}

impl GpuDensity {
    pub fn new(context: GpuContext) -> Self {
        Self {
            kernels: Kernels::new(context, "density.wgsl", SHADER, ["simulate_voxels", "backward_atoms"]),
        }
    }

    pub fn context(&self) -> &GpuContext {
        &self.kernels.context
    }

    fn params(&self, grid: &MapGrid, atoms: &GaussianAtoms, row_stride: u32, cells: &CellList) -> DensityParams {
        DensityParams {
            dims: grid.dims.map(|d| d as u32),
            atom_count: atoms.len() as u32,
            first_voxel: grid.first_voxel_angstrom(),
            cutoff_sigmas: CUTOFF_SIGMAS,
            voxel_size: grid.voxel_size_angstrom,
            cell_size: cells.cell_size,
            cell_dims: cells.dims,
            row_stride,
            cell_origin: cells.origin,
            _padding: 0.0,
        }
    }

    fn atom_buffers(&self, atoms: &GaussianAtoms) -> (wgpu::Buffer, wgpu::Buffer) {
        let packed: Vec<GpuAtom> = atoms
            .positions
            .iter()
            .zip(&atoms.amplitudes)
            .map(|(&position, &amplitude)| GpuAtom { position, amplitude })
            .collect();
        (
            self.kernels.context.storage("atoms", &packed, false),
            self.kernels.context.storage("sigmas", &atoms.sigmas, false),
        )
    }

    /// Sums the Gaussians onto `grid` (values x fastest), as [`crate::maps::density::simulate`].
    pub fn simulate(&self, grid: &MapGrid, atoms: &GaussianAtoms) -> Result<Vec<f32>, GpuError> {
        let voxels = grid.voxel_count();
        let cells = CellList::build(atoms);
        let (_, _, row_stride) = dispatch_size(voxels);
        let params = self.params(grid, atoms, row_stride, &cells);
        let device = &self.kernels.context.device;
        let uniform = self.kernels.context.uniform(&params);
        let (atom_buffer, sigma_buffer) = self.atom_buffers(atoms);
        let start = self.kernels.context.storage("cell_start", &cells.start, false);
        let members = self.kernels.context.storage("cell_atoms", &cells.atoms, false);
        let values = device.create_buffer(&wgpu::BufferDescriptor {
            label: Some("values"),
            size: (voxels.max(1) * 4) as u64,
            usage: wgpu::BufferUsages::STORAGE | wgpu::BufferUsages::COPY_SRC,
            mapped_at_creation: false,
        });
        self.kernels.context.run(
            &self.kernels.forward,
            &[
                (0, &uniform),
                (1, &atom_buffer),
                (2, &sigma_buffer),
                (3, &start),
                (4, &members),
                (5, &values),
            ],
            voxels,
        );
        self.kernels.context.read_back(&values, voxels)
    }

    /// Back-propagates ∂L/∂value to the atoms, as [`crate::maps::density::simulate_backward`].
    pub fn backward(
        &self,
        grid: &MapGrid,
        atoms: &GaussianAtoms,
        dloss_dmap: &[f32],
    ) -> Result<GaussianGradients, GpuError> {
        let n = atoms.len();
        let (_, _, row_stride) = dispatch_size(n);
        let cells = CellList::empty();
        let params = self.params(grid, atoms, row_stride, &cells);
        let uniform = self.kernels.context.uniform(&params);
        let (atom_buffer, sigma_buffer) = self.atom_buffers(atoms);
        let dloss = self.kernels.context.storage("dloss_dmap", dloss_dmap, false);
        // xyz = ∂L/∂position, w = ∂L/∂amplitude.
        let grad_atoms = self.kernels.context.storage("grad_atoms", &vec![[0f32; 4]; n], true);
        let grad_sigmas = self.kernels.context.storage("grad_sigmas", &vec![0f32; n], true);
        self.kernels.context.run(
            &self.kernels.backward,
            &[
                (0, &uniform),
                (6, &atom_buffer),
                (7, &sigma_buffer),
                (8, &dloss),
                (9, &grad_atoms),
                (10, &grad_sigmas),
            ],
            n,
        );
        let packed: Vec<[f32; 4]> = self.kernels.context.read_back(&grad_atoms, n)?;
        let sigmas = self.kernels.context.read_back(&grad_sigmas, n)?;
        Ok(GaussianGradients {
            positions: packed.iter().map(|g| [g[0], g[1], g[2]]).collect(),
            amplitudes: packed.iter().map(|g| g[3]).collect(),
            sigmas,
        })
    }
}

/// Atoms sorted into cubic cells at least one reach (5σ) wide, so a voxel needs only the 27
/// cells around it.
struct CellList {
    origin: [f32; 3],
    cell_size: f32,
    dims: [u32; 3],
    /// Prefix sums: cell c holds atoms[start[c]..start[c + 1]].
    start: Vec<u32>,
    atoms: Vec<u32>,
}

impl CellList {
    fn empty() -> Self {
        Self {
            origin: [0.0; 3],
            cell_size: 1.0,
            dims: [1; 3],
            start: vec![0, 0],
            atoms: Vec::new(),
        }
    }

    fn build(atoms: &GaussianAtoms) -> Self {
        if atoms.is_empty() {
            return Self::empty();
        }
        let reach = atoms.sigmas.iter().copied().fold(0.0f32, f32::max) * CUTOFF_SIGMAS;
        let cell_size = reach.max(1e-3);
        let mut lo = [f32::INFINITY; 3];
        let mut hi = [f32::NEG_INFINITY; 3];
        for p in &atoms.positions {
            for a in 0..3 {
                lo[a] = lo[a].min(p[a]);
                hi[a] = hi[a].max(p[a]);
            }
        }
        let dims: [u32; 3] = std::array::from_fn(|a| ((hi[a] - lo[a]) / cell_size).floor() as u32 + 1);
        let cell_of = |p: &[f32; 3]| -> usize {
            let c: [u32; 3] = std::array::from_fn(|a| (((p[a] - lo[a]) / cell_size).floor() as u32).min(dims[a] - 1));
            ((c[2] * dims[1] + c[1]) * dims[0] + c[0]) as usize
        };
        let cell_count = dims.iter().map(|&d| d as usize).product::<usize>();
        let mut counts = vec![0u32; cell_count + 1];
        for p in &atoms.positions {
            counts[cell_of(p) + 1] += 1;
        }
        for c in 1..counts.len() {
            counts[c] += counts[c - 1];
        }
        let mut fill = counts.clone();
        let mut members = vec![0u32; atoms.len()];
        for (i, p) in atoms.positions.iter().enumerate() {
            let c = cell_of(p);
            members[fill[c] as usize] = i as u32;
            fill[c] += 1;
        }
        Self {
            origin: lo,
            cell_size,
            dims,
            start: counts,
            atoms: members,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::maps::density::{simulate, simulate_backward};

    #[test]
    fn params_fill_five_rows_of_sixteen_bytes() {
        let p = DensityParams {
            dims: [1, 2, 3],
            atom_count: 4,
            first_voxel: [0.0; 3],
            cutoff_sigmas: 5.0,
            voxel_size: [1.0; 3],
            cell_size: 2.0,
            cell_dims: [1; 3],
            row_stride: 64,
            cell_origin: [0.0; 3],
            _padding: 0.0,
        };
        let bytes = bytemuck::bytes_of(&p);
        assert_eq!(bytes.len(), 80);
        assert_eq!(u32::from_le_bytes([bytes[12], bytes[13], bytes[14], bytes[15]]), 4);
        assert_eq!(f32::from_le_bytes([bytes[44], bytes[45], bytes[46], bytes[47]]), 2.0);
        assert_eq!(u32::from_le_bytes([bytes[60], bytes[61], bytes[62], bytes[63]]), 64);
    }

    /// The WGSL kernels agree with the CPU kernels (on llvmpipe here, on the GPU where present).
    #[test]
    fn wgsl_density_and_gradient_match_the_cpu_kernel() {
        let Some(context) = crate::gpu::test_context() else {
            return;
        };
        let gpu = GpuDensity::new(context);
        let mut rng = crate::numeric::rng::Rng::new(5);
        let mut rand = || rng.uniform() as f32;
        let n = 300;
        let atoms = GaussianAtoms {
            positions: (0..n).map(|_| [rand() * 20.0, rand() * 18.0, rand() * 16.0]).collect(),
            amplitudes: (0..n).map(|_| 6.0 + 10.0 * rand()).collect(),
            sigmas: (0..n).map(|_| 0.8 + 0.6 * rand()).collect(),
        };
        let grid = MapGrid::new([40, 37, 35], [0.7, 0.75, 0.8], [-3.0, -4.0, -5.0]);
        let cpu = simulate(&grid, &atoms);
        let wgsl = gpu.simulate(&grid, &atoms).expect("gpu simulate");
        let peak = cpu.iter().copied().fold(0.0f32, f32::max);
        let worst = cpu.iter().zip(&wgsl).map(|(a, b)| (a - b).abs()).fold(0.0f32, f32::max);
        assert!(worst < 1e-4 * peak, "max difference {worst} vs peak {peak}");

        let weights: Vec<f32> = (0..grid.voxel_count()).map(|_| rand() - 0.5).collect();
        let cpu_g = simulate_backward(&grid, &atoms, &weights);
        let gpu_g = gpu.backward(&grid, &atoms, &weights).expect("gpu backward");
        let scale = cpu_g.positions.iter().flatten().map(|v| v.abs()).fold(0.0f32, f32::max);
        for i in 0..n {
            for k in 0..3 {
                assert!(
                    (cpu_g.positions[i][k] - gpu_g.positions[i][k]).abs() < 2e-3 * scale,
                    "atom {i} axis {k}"
                );
            }
            assert!(
                (cpu_g.amplitudes[i] - gpu_g.amplitudes[i]).abs()
                    < 2e-3 * cpu_g.amplitudes.iter().map(|v| v.abs()).fold(0.0, f32::max)
            );
            assert!(
                (cpu_g.sigmas[i] - gpu_g.sigmas[i]).abs()
                    < 2e-3 * cpu_g.sigmas.iter().map(|v| v.abs()).fold(0.0, f32::max)
            );
        }
    }
}
