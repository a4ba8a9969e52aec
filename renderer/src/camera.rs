//! An orbit camera: the view turns about a target point; drag to orbit, shift-drag or
//! right-drag to pan, scroll to zoom; fit frames a bounding sphere.

use glam::{Mat4, Vec3};

/// The camera uniform block: three column-major matrices and the eye (w = 1), 208 bytes.
/// Keep in sync with `Camera` in shaders/camera.wgsl.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, bytemuck::Pod, bytemuck::Zeroable)]
pub struct CameraUniform {
    pub clip_from_world: [[f32; 4]; 4],
    pub view_from_world: [[f32; 4]; 4],
    pub clip_from_view: [[f32; 4]; 4],
    pub eye_world: [f32; 4],
}

#[derive(Clone, Copy, Debug, PartialEq)]
pub struct OrbitCamera {
    pub target_world: Vec3,
    pub distance_angstrom: f32,
    /// Rotation about the world y axis, radians.
    pub yaw: f32,
    /// Elevation, radians, within ±89°.
    pub pitch: f32,
    pub fov_y: f32,
}

impl Default for OrbitCamera {
    fn default() -> Self {
        Self {
            target_world: Vec3::ZERO,
            distance_angstrom: 100.0,
            yaw: 0.0,
            pitch: 0.0,
            fov_y: 30f32.to_radians(),
        }
    }
}

impl OrbitCamera {
    pub fn eye_world(&self) -> Vec3 {
        let dir = Vec3::new(
            self.pitch.cos() * self.yaw.sin(),
            self.pitch.sin(),
            self.pitch.cos() * self.yaw.cos(),
        );
        self.target_world + dir * self.distance_angstrom
    }

    pub fn view_from_world(&self) -> Mat4 {
        Mat4::look_at_rh(self.eye_world(), self.target_world, Vec3::Y)
    }

    pub fn clip_from_view(&self, aspect: f32) -> Mat4 {
        let near = (self.distance_angstrom * 0.01).max(0.1);
        let far = self.distance_angstrom * 4.0 + 1000.0;
        Mat4::perspective_rh(self.fov_y, aspect.max(1e-3), near, far)
    }

    /// Drag by (dx, dy) pixels.
    pub fn orbit(&mut self, dx: f32, dy: f32) {
        self.yaw -= dx * 0.01;
        self.pitch = (self.pitch + dy * 0.01).clamp(-1.55, 1.55);
    }

    /// Moves the target in the view plane by (dx, dy) pixels of a view `height_px` tall.
    pub fn pan(&mut self, dx: f32, dy: f32, height_px: f32) {
        let per_pixel = 2.0 * self.distance_angstrom * (self.fov_y / 2.0).tan() / height_px.max(1.0);
        let view = self.view_from_world();
        let right = view.row(0).truncate();
        let up = view.row(1).truncate();
        self.target_world += (-right * dx + up * dy) * per_pixel;
    }

    /// Multiplies the distance by `factor` (< 1 zooms in).
    pub fn zoom(&mut self, factor: f32) {
        self.distance_angstrom = (self.distance_angstrom * factor).clamp(1.0, 1e5);
    }

    /// Frames a sphere of `radius` about `center`.
    pub fn fit(&mut self, center: Vec3, radius: f32) {
        self.target_world = center;
        self.distance_angstrom = (radius.max(1.0) / (self.fov_y / 2.0).sin()) * 1.05;
    }

    /// The uniform block for the shaders.
    pub fn uniform(&self, aspect: f32) -> CameraUniform {
        let view = self.view_from_world();
        let proj = self.clip_from_view(aspect);
        CameraUniform {
            clip_from_world: (proj * view).to_cols_array_2d(),
            view_from_world: view.to_cols_array_2d(),
            clip_from_view: proj.to_cols_array_2d(),
            eye_world: self.eye_world().extend(1.0).to_array(),
        }
    }

    /// World-space ray through pixel (x, y) of a `width × height` view: (origin, direction).
    pub fn ray(&self, x: f32, y: f32, width: f32, height: f32) -> (Vec3, Vec3) {
        let ndc = glam::Vec2::new(2.0 * x / width.max(1.0) - 1.0, 1.0 - 2.0 * y / height.max(1.0));
        let inverse = (self.clip_from_view(width / height.max(1.0)) * self.view_from_world()).inverse();
        let near = inverse.project_point3(ndc.extend(0.0));
        let far = inverse.project_point3(ndc.extend(1.0));
        (near, (far - near).normalize())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fit_frames_the_sphere_and_the_centre_ray_hits_the_target() {
        let mut camera = OrbitCamera::default();
        camera.fit(Vec3::new(10.0, 20.0, 30.0), 25.0);
        camera.orbit(40.0, -25.0);
        let (origin, dir) = camera.ray(400.0, 300.0, 800.0, 600.0);
        let to_target = camera.target_world - origin;
        let miss = (to_target - dir * to_target.dot(dir)).length();
        assert!(miss < 1e-2, "centre ray misses the target by {miss}");
        assert!((camera.eye_world() - camera.target_world).length() > 25.0);
    }

    #[test]
    fn the_uniform_holds_the_matrices_column_major_and_the_eye() {
        let mut camera = OrbitCamera::default();
        camera.orbit(30.0, 10.0);
        let u = camera.uniform(1.5);
        let (view, proj) = (camera.view_from_world(), camera.clip_from_view(1.5));
        assert_eq!(Mat4::from_cols_array_2d(&u.clip_from_world), proj * view);
        assert_eq!(Mat4::from_cols_array_2d(&u.view_from_world), view);
        assert_eq!(Mat4::from_cols_array_2d(&u.clip_from_view), proj);
        assert_eq!(u.eye_world, camera.eye_world().extend(1.0).to_array());
        assert_eq!(bytemuck::bytes_of(&u).len(), 208);
    }

    #[test]
    fn pan_moves_the_target_sideways_and_zoom_changes_distance() {
        let mut camera = OrbitCamera::default();
        let before = camera.target_world;
        camera.pan(100.0, 0.0, 600.0);
        assert!((camera.target_world - before).length() > 1.0);
        camera.zoom(0.5);
        assert_eq!(camera.distance_angstrom, 50.0);
    }
}
