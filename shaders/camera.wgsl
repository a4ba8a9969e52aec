// The scene camera, shared by mesh.wgsl, spheres.wgsl and lines.wgsl: the renderer prepends this
// file to each of them (renderer/src/shaders.rs). Keep in sync with `CameraUniform` in
// renderer/src/camera.rs.

struct Camera {
    clip_from_world: mat4x4<f32>,
    view_from_world: mat4x4<f32>,
    clip_from_view: mat4x4<f32>,
    // xyz: eye position in world space.
    eye_world: vec4<f32>,
}

@group(0) @binding(0) var<uniform> camera: Camera;
