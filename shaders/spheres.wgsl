// Atoms as ray-traced sphere impostors: each instance is a camera-facing quad; the fragment
// shader intersects the view ray with the sphere and writes the true depth, so spheres
// intersect each other and the map surface correctly. `Camera` and its binding come from
// camera.wgsl, which the renderer prepends.

struct Instance {
    @location(0) center: vec3<f32>,
    @location(1) radius: f32,
    @location(2) color: vec4<f32>,
}

struct VertexOut {
    @builtin(position) clip: vec4<f32>,
    @location(0) view_pos: vec3<f32>,
    @location(1) center_view: vec3<f32>,
    @location(2) radius: f32,
    @location(3) color: vec4<f32>,
}

@vertex
fn vs_main(@builtin(vertex_index) corner: u32, instance: Instance) -> VertexOut {
    var corners = array<vec2<f32>, 6>(
        vec2<f32>(-1.0, -1.0), vec2<f32>(1.0, -1.0), vec2<f32>(1.0, 1.0),
        vec2<f32>(-1.0, -1.0), vec2<f32>(1.0, 1.0), vec2<f32>(-1.0, 1.0),
    );
    let center_view = (camera.view_from_world * vec4<f32>(instance.center, 1.0)).xyz;
    // A quad a little larger than the sphere covers its perspective silhouette.
    let offset = corners[corner] * instance.radius * 1.5;
    let view_pos = center_view + vec3<f32>(offset, instance.radius);
    var out: VertexOut;
    out.clip = camera.clip_from_view * vec4<f32>(view_pos, 1.0);
    out.view_pos = view_pos;
    out.center_view = center_view;
    out.radius = instance.radius;
    out.color = instance.color;
    return out;
}

struct FragmentOut {
    @location(0) color: vec4<f32>,
    @builtin(frag_depth) depth: f32,
}

@fragment
fn fs_main(in: VertexOut) -> FragmentOut {
    // The eye is at the origin of view space, looking down −z.
    let dir = normalize(in.view_pos);
    let b = dot(dir, in.center_view);
    let c = dot(in.center_view, in.center_view) - in.radius * in.radius;
    let discriminant = b * b - c;
    if (discriminant < 0.0) {
        discard;
    }
    let t = b - sqrt(discriminant);
    let hit = dir * t;
    let n = normalize(hit - in.center_view);
    let l = -dir;
    let diffuse = max(dot(n, l), 0.0);
    let specular = pow(max(dot(n, l), 0.0), 60.0) * 0.3;
    let clip = camera.clip_from_view * vec4<f32>(hit, 1.0);
    var out: FragmentOut;
    out.color = vec4<f32>(in.color.rgb * (0.3 + 0.7 * diffuse) + vec3<f32>(specular), in.color.a);
    out.depth = clip.z / clip.w;
    return out;
}
