// Scatter plots as GPU point splats: each instance is one data point, drawn as a small
// screen-aligned quad whose fragment shader cuts a disc with a soft edge. `view` maps data
// coordinates to clip space; `radius` is the splat's half-size in clip units per axis.

struct View {
    scale: vec2<f32>,
    offset: vec2<f32>,
    radius: vec2<f32>,
    alpha: f32,
    _pad: f32,
}

@group(0) @binding(0) var<uniform> view: View;

struct Instance {
    @location(0) position: vec2<f32>,
    @location(1) color: vec4<f32>,
}

struct VertexOut {
    @builtin(position) clip: vec4<f32>,
    @location(0) corner: vec2<f32>,
    @location(1) color: vec4<f32>,
}

@vertex
fn vs_main(@builtin(vertex_index) index: u32, instance: Instance) -> VertexOut {
    var corners = array<vec2<f32>, 6>(
        vec2<f32>(-1.0, -1.0), vec2<f32>(1.0, -1.0), vec2<f32>(1.0, 1.0),
        vec2<f32>(-1.0, -1.0), vec2<f32>(1.0, 1.0), vec2<f32>(-1.0, 1.0),
    );
    let corner = corners[index];
    var out: VertexOut;
    let centre = instance.position * view.scale + view.offset;
    out.clip = vec4<f32>(centre + corner * view.radius, 0.0, 1.0);
    out.corner = corner;
    out.color = instance.color;
    return out;
}

@fragment
fn fs_main(in: VertexOut) -> @location(0) vec4<f32> {
    let r = length(in.corner);
    if (r > 1.0) {
        discard;
    }
    let edge = 1.0 - smoothstep(0.6, 1.0, r);
    // Colours pass through as they arrive (sRGB bytes): egui samples the target and shows the
    // values it reads as they are, so what is written here is what appears on screen.
    return vec4<f32>(in.color.rgb, in.color.a * view.alpha * edge);
}
