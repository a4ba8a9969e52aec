//! 3D FFTs of maps and volumes (rustfft along each axis in turn) and the signed index of a
//! Fourier bin: the one FFT helper that map scores, map tools, reconstruction and
//! heterogeneity analysis share.

use rustfft::FftPlanner;
use rustfft::num_complex::Complex;

use crate::maps::MapGrid;

/// Complex 3D FFT of real values on `grid` (x fastest).
pub fn fft3(grid: &MapGrid, values: &[f32], inverse: bool) -> Vec<Complex<f32>> {
    let mut data: Vec<Complex<f32>> = values.iter().map(|&v| Complex::new(v, 0.0)).collect();
    fft3_in_place(grid.dims, &mut data, inverse);
    data
}

/// In-place complex 3D FFT along x, then y, then z.
pub fn fft3_in_place(dims: [usize; 3], data: &mut [Complex<f32>], inverse: bool) {
    fft3_in_place_with(dims, data, inverse, &mut FftPlanner::new());
}

/// [`fft3_in_place`] with a planner the caller keeps (plans are cached across calls).
pub fn fft3_in_place_with(dims: [usize; 3], data: &mut [Complex<f32>], inverse: bool, planner: &mut FftPlanner<f32>) {
    let [nx, ny, nz] = dims;
    let plan = |n: usize, planner: &mut FftPlanner<f32>| {
        if inverse {
            planner.plan_fft_inverse(n)
        } else {
            planner.plan_fft_forward(n)
        }
    };
    plan(nx, planner).process(data);
    let mut line = vec![Complex::new(0.0, 0.0); ny.max(nz)];
    // y lines are `nx` apart, z lines `nx·ny`; each is gathered, transformed and scattered back.
    for axis in [1, 2] {
        let (n, stride, others) = if axis == 1 {
            (ny, nx, nx * nz)
        } else {
            (nz, nx * ny, nx * ny)
        };
        if n <= 1 {
            continue;
        }
        let fft = plan(n, planner);
        for o in 0..others {
            // A y line starts at (x, 0, z) with o = z·nx + x; a z line at (x, y, 0) with o = y·nx + x.
            let start = if axis == 1 { (o / nx) * nx * ny + o % nx } else { o };
            for (i, v) in line[..n].iter_mut().enumerate() {
                *v = data[start + i * stride];
            }
            fft.process(&mut line[..n]);
            for (i, v) in line[..n].iter().enumerate() {
                data[start + i * stride] = *v;
            }
        }
    }
}

/// Calls `f` with every FFT bin of `grid`: its index, its spatial frequency (1/Å) and its signed
/// frequency indices.
pub fn for_each_frequency(grid: &MapGrid, f: &mut dyn FnMut(usize, f64, [i64; 3])) {
    let [nx, ny, nz] = grid.dims;
    let h = grid.voxel_size_angstrom.map(f64::from);
    for z in 0..nz {
        let fz = signed_index(z, nz) / (nz as f64 * h[2]);
        for y in 0..ny {
            let fy = signed_index(y, ny) / (ny as f64 * h[1]);
            for x in 0..nx {
                let fx = signed_index(x, nx) / (nx as f64 * h[0]);
                let k = [
                    signed_index(x, nx) as i64,
                    signed_index(y, ny) as i64,
                    signed_index(z, nz) as i64,
                ];
                f((z * ny + y) * nx + x, (fx * fx + fy * fy + fz * fz).sqrt(), k);
            }
        }
    }
}

/// Signed frequency index of FFT bin `i` of `n`.
pub fn signed_index(i: usize, n: usize) -> f64 {
    if i <= n / 2 { i as f64 } else { i as f64 - n as f64 }
}

/// In-place complex 2D FFT of an n × n image (x fastest).
pub fn fft2_in_place(n: usize, data: &mut [Complex<f32>], inverse: bool, planner: &mut FftPlanner<f32>) {
    fft3_in_place_with([n, n, 1], data, inverse, planner);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_a_direct_dft_on_an_uneven_box_and_inverts() {
        let dims = [3, 4, 5];
        let n: usize = dims.iter().product();
        let values: Vec<f32> = (0..n).map(|i| ((i * 7919) % 13) as f32 - 6.0).collect();
        let grid = MapGrid::new(dims, [1.0; 3], [0.0; 3]);
        let fast = fft3(&grid, &values, false);
        let tau = std::f64::consts::TAU;
        for (k, f) in fast.iter().enumerate() {
            let (kx, ky, kz) = (k % 3, (k / 3) % 4, k / 12);
            let (mut re, mut im) = (0.0f64, 0.0f64);
            for (i, &v) in values.iter().enumerate() {
                let (x, y, z) = (i % 3, (i / 3) % 4, i / 12);
                let phase = -tau * ((kx * x) as f64 / 3.0 + (ky * y) as f64 / 4.0 + (kz * z) as f64 / 5.0);
                re += f64::from(v) * phase.cos();
                im += f64::from(v) * phase.sin();
            }
            assert!(
                (f64::from(f.re) - re).abs() < 1e-3 && (f64::from(f.im) - im).abs() < 1e-3,
                "bin {k}"
            );
        }
        let mut back = fast;
        fft3_in_place(dims, &mut back, true);
        for (b, &v) in back.iter().zip(&values) {
            assert!((b.re / n as f32 - v).abs() < 1e-4);
        }
    }
}
