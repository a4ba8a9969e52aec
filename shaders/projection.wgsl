// Atoms → particle projections and their gradient: the WGSL twin of the burn forward model in
// compute/src/refine/forward.rs (keep in sync; compute/src/particles/projection_gpu.rs drives it).
//
// Atom a, at r (Å, relative to the box centre) with amplitude A and width σ² (Å²), lands in
// particle p at pixel (A_p·r)x,y / pixel + offset_p and is a 2D Gaussian integrating to A, cut
// off at 5σ. `project_pixels` runs one invocation per (particle, pixel) over every atom;
// `backward_atoms` runs one invocation per atom over every particle's window around it and reads
// ∂L/∂pixel, so no two invocations write one value.

// Keep in sync with `ProjectionParams` in compute/src/particles/projection_gpu.rs.
struct Params {
    box_size: u32,
    atom_count: u32,
    particle_count: u32,
    // Invocations per row of the 2D dispatch (workgroups in x × 64).
    row_stride: u32,
    pixel_size: f32,
    cutoff_sigmas: f32,
    _padding: vec2<f32>,
}

// Keep in sync with `GpuAtom` in compute/src/gpu.rs.
struct Atom {
    // Å, relative to the box centre.
    position: vec3<f32>,
    amplitude: f32,
}

// One particle's view: image x = dot(x.xyz, r) / pixel + x.w, likewise y.
// Keep in sync with `ProjectionView` in compute/src/particles/projection_gpu.rs.
struct View {
    // (A00, A01, A02, offset x).
    x: vec4<f32>,
    // (A10, A11, A12, offset y).
    y: vec4<f32>,
}

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> atoms: array<Atom>;
@group(0) @binding(2) var<storage, read> widths: array<f32>;
@group(0) @binding(3) var<storage, read> views: array<View>;
@group(0) @binding(4) var<storage, read_write> images: array<f32>;

@group(0) @binding(5) var<storage, read> b_atoms: array<Atom>;
@group(0) @binding(6) var<storage, read> b_widths: array<f32>;
@group(0) @binding(7) var<storage, read> b_views: array<View>;
@group(0) @binding(8) var<storage, read> dloss_dimage: array<f32>;
// xyz = ∂L/∂position, w = ∂L/∂amplitude.
@group(0) @binding(9) var<storage, read_write> grad_atoms: array<vec4<f32>>;
@group(0) @binding(10) var<storage, read_write> grad_widths: array<f32>;

const TWO_PI: f32 = 6.283185307179586;

@compute @workgroup_size(64)
fn project_pixels(@builtin(global_invocation_id) id: vec3<u32>) {
    let index = id.y * params.row_stride + id.x;
    let n = params.box_size;
    if (index >= params.particle_count * n * n) {
        return;
    }
    let p = index / (n * n);
    let x = f32(index % n);
    let y = f32((index / n) % n);
    let row0 = views[p].x;
    let row1 = views[p].y;
    let apix2 = params.pixel_size * params.pixel_size;
    var sum = 0.0;
    for (var a = 0u; a < params.atom_count; a = a + 1u) {
        let atom = atoms[a];
        let px = dot(row0.xyz, atom.position) / params.pixel_size + row0.w;
        let py = dot(row1.xyz, atom.position) / params.pixel_size + row1.w;
        let s2 = widths[a] / apix2;
        let reach = params.cutoff_sigmas * sqrt(s2);
        let dx = x - px;
        let dy = y - py;
        if (abs(dx) > reach || abs(dy) > reach) {
            continue;
        }
        sum = sum + atom.amplitude / (TWO_PI * s2) * exp(-(dx * dx + dy * dy) / (2.0 * s2));
    }
    images[index] = sum;
}

@compute @workgroup_size(64)
fn backward_atoms(@builtin(global_invocation_id) id: vec3<u32>) {
    let a = id.y * params.row_stride + id.x;
    if (a >= params.atom_count) {
        return;
    }
    let n = i32(params.box_size);
    let atom = b_atoms[a];
    let apix2 = params.pixel_size * params.pixel_size;
    let s2 = b_widths[a] / apix2;
    let reach = params.cutoff_sigmas * sqrt(s2);
    var g_pos = vec3<f32>(0.0);
    var g_amp = 0.0;
    var g_s2 = 0.0;
    for (var p = 0u; p < params.particle_count; p = p + 1u) {
        let row0 = b_views[p].x;
        let row1 = b_views[p].y;
        let px = dot(row0.xyz, atom.position) / params.pixel_size + row0.w;
        let py = dot(row1.xyz, atom.position) / params.pixel_size + row1.w;
        let x0 = max(i32(ceil(px - reach)), 0);
        let x1 = min(i32(floor(px + reach)), n - 1);
        let y0 = max(i32(ceil(py - reach)), 0);
        let y1 = min(i32(floor(py + reach)), n - 1);
        var g_px = 0.0;
        var g_py = 0.0;
        for (var y = y0; y <= y1; y = y + 1) {
            for (var x = x0; x <= x1; x = x + 1) {
                let dx = f32(x) - px;
                let dy = f32(y) - py;
                let d2 = dx * dx + dy * dy;
                let unit = exp(-d2 / (2.0 * s2)) / (TWO_PI * s2);
                let dl = dloss_dimage[(p * params.box_size + u32(y)) * params.box_size + u32(x)];
                let g = dl * atom.amplitude * unit;
                g_px = g_px + g * dx / s2;
                g_py = g_py + g * dy / s2;
                g_amp = g_amp + dl * unit;
                g_s2 = g_s2 + g * (d2 / (2.0 * s2 * s2) - 1.0 / s2);
            }
        }
        g_pos = g_pos + (g_px * row0.xyz + g_py * row1.xyz) / params.pixel_size;
    }
    grad_atoms[a] = vec4<f32>(g_pos, g_amp);
    grad_widths[a] = g_s2 / apix2;
}
