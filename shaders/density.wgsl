// Atoms → density and its gradient: the WGSL twin of compute/src/maps/density.rs (keep in sync).
//
// Each atom is a normalised 3D Gaussian, amplitude A, width σ, truncated to a box of ±5σ per
// axis. `simulate_voxels` runs one invocation per voxel and sums the atoms of the 27 neighbouring
// cells of a uniform cell list (cell edge ≥ the largest reach). `backward_atoms` runs one
// invocation per atom over its box and reads ∂L/∂value, so no two invocations write one value.

// Keep in sync with `DensityParams` in compute/src/maps/density_gpu.rs.
struct Params {
    dims: vec3<u32>,
    atom_count: u32,
    first_voxel: vec3<f32>,
    cutoff_sigmas: f32,
    voxel_size: vec3<f32>,
    cell_size: f32,
    cell_dims: vec3<u32>,
    // Invocations per row of the 2D dispatch (workgroups in x × 64).
    row_stride: u32,
    cell_origin: vec3<f32>,
    _padding: f32,
}

// Keep in sync with `GpuAtom` in compute/src/gpu.rs.
struct Atom {
    // Å.
    position: vec3<f32>,
    amplitude: f32,
}

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> atoms: array<Atom>;
@group(0) @binding(2) var<storage, read> sigmas: array<f32>;
// Cell c holds cell_atoms[cell_start[c] .. cell_start[c + 1]].
@group(0) @binding(3) var<storage, read> cell_start: array<u32>;
@group(0) @binding(4) var<storage, read> cell_atoms: array<u32>;
@group(0) @binding(5) var<storage, read_write> values: array<f32>;

// Backward pass: ∂L/∂value in, per-atom gradients out.
// Separate bindings: each pipeline's layout holds only what its entry point uses.
@group(0) @binding(6) var<storage, read> b_atoms: array<Atom>;
@group(0) @binding(7) var<storage, read> b_sigmas: array<f32>;
@group(0) @binding(8) var<storage, read> dloss_dmap: array<f32>;
// xyz = ∂L/∂position, w = ∂L/∂amplitude.
@group(0) @binding(9) var<storage, read_write> grad_atoms: array<vec4<f32>>;
@group(0) @binding(10) var<storage, read_write> grad_sigmas: array<f32>;

const TWO_PI_POW_1_5: f32 = 15.749609945722419;

fn normalisation(sigma: f32) -> f32 {
    return 1.0 / (TWO_PI_POW_1_5 * sigma * sigma * sigma);
}

@compute @workgroup_size(64)
fn simulate_voxels(@builtin(global_invocation_id) id: vec3<u32>) {
    let index = id.y * params.row_stride + id.x;
    let total = params.dims.x * params.dims.y * params.dims.z;
    if (index >= total) {
        return;
    }
    let x = index % params.dims.x;
    let y = (index / params.dims.x) % params.dims.y;
    let z = index / (params.dims.x * params.dims.y);
    let p = params.first_voxel + vec3<f32>(f32(x), f32(y), f32(z)) * params.voxel_size;
    let cell = vec3<i32>(floor((p - params.cell_origin) / params.cell_size));
    let cell_dims = vec3<i32>(params.cell_dims);
    var sum = 0.0;
    for (var dz = -1; dz <= 1; dz++) {
        for (var dy = -1; dy <= 1; dy++) {
            for (var dx = -1; dx <= 1; dx++) {
                let c = cell + vec3<i32>(dx, dy, dz);
                if (any(c < vec3<i32>(0)) || any(c >= cell_dims)) {
                    continue;
                }
                let c_index = u32((c.z * cell_dims.y + c.y) * cell_dims.x + c.x);
                for (var k = cell_start[c_index]; k < cell_start[c_index + 1u]; k++) {
                    let i = cell_atoms[k];
                    let atom = atoms[i];
                    let sigma = sigmas[i];
                    let d = p - atom.position;
                    let reach = params.cutoff_sigmas * sigma;
                    if (all(abs(d) <= vec3<f32>(reach))) {
                        sum += atom.amplitude * normalisation(sigma) * exp(-dot(d, d) / (2.0 * sigma * sigma));
                    }
                }
            }
        }
    }
    values[index] = sum;
}

@compute @workgroup_size(64)
fn backward_atoms(@builtin(global_invocation_id) id: vec3<u32>) {
    let i = id.y * params.row_stride + id.x;
    if (i >= params.atom_count) {
        return;
    }
    let atom = b_atoms[i];
    let sigma = b_sigmas[i];
    let reach = params.cutoff_sigmas * sigma;
    let lo_f = max(ceil((atom.position - reach - params.first_voxel) / params.voxel_size), vec3<f32>(0.0));
    let hi_f = min(floor((atom.position + reach - params.first_voxel) / params.voxel_size), vec3<f32>(params.dims) - 1.0);
    if (any(lo_f > hi_f)) {
        grad_atoms[i] = vec4<f32>(0.0);
        grad_sigmas[i] = 0.0;
        return;
    }
    let lo = vec3<u32>(lo_f);
    let hi = vec3<u32>(hi_f);
    let inv_two_sigma2 = 1.0 / (2.0 * sigma * sigma);
    var s0 = 0.0;
    var sd = vec3<f32>(0.0);
    var sr2 = 0.0;
    for (var z = lo.z; z <= hi.z; z++) {
        for (var y = lo.y; y <= hi.y; y++) {
            for (var x = lo.x; x <= hi.x; x++) {
                let p = params.first_voxel + vec3<f32>(f32(x), f32(y), f32(z)) * params.voxel_size;
                let d = p - atom.position;
                let r2 = dot(d, d);
                let w = dloss_dmap[(z * params.dims.y + y) * params.dims.x + x] * exp(-r2 * inv_two_sigma2);
                s0 += w;
                sd += w * d;
                sr2 += w * r2;
            }
        }
    }
    let norm = normalisation(sigma);
    let s2 = sigma * sigma;
    grad_atoms[i] = vec4<f32>(atom.amplitude * norm * sd / s2, norm * s0);
    grad_sigmas[i] = atom.amplitude * norm * (sr2 / (s2 * sigma) - 3.0 * s0 / sigma);
}
