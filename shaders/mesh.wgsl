// Lit triangle meshes (isosurfaces): two-sided Lambert with a headlight, alpha for the
// transparent style. `Camera` and its binding come from camera.wgsl, which the renderer prepends.

struct VertexIn {
    @location(0) position: vec3<f32>,
    @location(1) normal: vec3<f32>,
    @location(2) color: vec4<f32>,
}

struct VertexOut {
    @builtin(position) clip: vec4<f32>,
    @location(0) normal_world: vec3<f32>,
    @location(1) to_eye: vec3<f32>,
    @location(2) color: vec4<f32>,
}

@vertex
fn vs_main(v: VertexIn) -> VertexOut {
    var out: VertexOut;
    out.clip = camera.clip_from_world * vec4<f32>(v.position, 1.0);
    out.normal_world = v.normal;
    out.to_eye = camera.eye_world.xyz - v.position;
    out.color = v.color;
    return out;
}

@fragment
fn fs_main(in: VertexOut, @builtin(front_facing) front: bool) -> @location(0) vec4<f32> {
    var n = normalize(in.normal_world);
    let l = normalize(in.to_eye);
    // Light both sides of the surface so cut-open surfaces are not black inside.
    if (dot(n, l) < 0.0) {
        n = -n;
    }
    let diffuse = max(dot(n, l), 0.0);
    let specular = pow(diffuse, 40.0) * 0.25;
    let shade = 0.25 + 0.75 * diffuse;
    return vec4<f32>(in.color.rgb * shade + vec3<f32>(specular), in.color.a);
}
