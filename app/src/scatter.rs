//! Scatter plots of many points (up to millions) as an image: each point is splatted into a
//! per-pixel colour sum and count, and every pixel shows the mean colour of its points with an
//! opacity that grows with their number, so dense regions read as dense. One pass over the
//! points, so a million redraw in milliseconds; the GUI shows the image as a texture and the CLI
//! writes it as PNG.

/// Colours and sizes of a plot.
#[derive(Clone, Debug)]
pub struct ScatterStyle {
    pub background: [u8; 4],
    /// Half-size of a point's square in pixels when there are few points.
    pub radius: i32,
    /// Above this many points each point is one pixel.
    pub dense_above: usize,
}

impl Default for ScatterStyle {
    fn default() -> Self {
        Self {
            background: [250, 250, 250, 255],
            radius: 1,
            dense_above: 50_000,
        }
    }
}

/// The data rectangle shown: [x min, x max, y min, y max].
pub type Bounds = [f32; 4];

/// `bounds` as [left, bottom, right, top]: the order of the GPU scatter's
/// `cryoforge_renderer::PointsView::bounds`.
pub fn edges(bounds: &Bounds) -> [f32; 4] {
    [bounds[0], bounds[2], bounds[1], bounds[3]]
}

/// Bounds holding all points with a 5 % margin.
pub fn bounds_of(points: &[f32]) -> Bounds {
    let mut b = [f32::INFINITY, f32::NEG_INFINITY, f32::INFINITY, f32::NEG_INFINITY];
    for p in points.chunks_exact(2) {
        if p[0].is_finite() && p[1].is_finite() {
            b = [b[0].min(p[0]), b[1].max(p[0]), b[2].min(p[1]), b[3].max(p[1])];
        }
    }
    if !b[0].is_finite() {
        return [-1.0, 1.0, -1.0, 1.0];
    }
    let (mx, my) = (((b[1] - b[0]) * 0.05).max(1e-3), ((b[3] - b[2]) * 0.05).max(1e-3));
    [b[0] - mx, b[1] + mx, b[2] - my, b[3] + my]
}

/// Pixel (x right, y down) of a data point.
pub fn to_pixel(p: [f32; 2], bounds: &Bounds, width: usize, height: usize) -> [f32; 2] {
    [
        (p[0] - bounds[0]) / (bounds[1] - bounds[0]) * width as f32,
        (bounds[3] - p[1]) / (bounds[3] - bounds[2]) * height as f32,
    ]
}

/// Data point at a pixel.
pub fn from_pixel(px: [f32; 2], bounds: &Bounds, width: usize, height: usize) -> [f32; 2] {
    [
        bounds[0] + px[0] / width as f32 * (bounds[1] - bounds[0]),
        bounds[3] - px[1] / height as f32 * (bounds[3] - bounds[2]),
    ]
}

/// RGBA pixels (row-major, `width × height`) of the points ([N, 2]) in their colours.
pub fn rasterise(
    points: &[f32],
    colours: &[[u8; 3]],
    width: usize,
    height: usize,
    bounds: Option<Bounds>,
    style: &ScatterStyle,
) -> Vec<u8> {
    let bounds = bounds.unwrap_or_else(|| bounds_of(points));
    let n = points.len() / 2;
    let mut sums = vec![[0u32; 4]; width * height];
    let radius = if n > style.dense_above { 0 } else { style.radius };
    for (p, colour) in points.chunks_exact(2).zip(colours) {
        let [x, y] = to_pixel([p[0], p[1]], &bounds, width, height);
        if !(x.is_finite() && y.is_finite()) {
            continue;
        }
        let (cx, cy) = (x as i32, y as i32);
        for dy in -radius..=radius {
            for dx in -radius..=radius {
                let (px, py) = (cx + dx, cy + dy);
                if px >= 0 && py >= 0 && (px as usize) < width && (py as usize) < height {
                    let s = &mut sums[py as usize * width + px as usize];
                    s[0] += u32::from(colour[0]);
                    s[1] += u32::from(colour[1]);
                    s[2] += u32::from(colour[2]);
                    s[3] += 1;
                }
            }
        }
    }
    let max = sums.iter().map(|s| s[3]).max().unwrap_or(1).max(1) as f32;
    let mut out = Vec::with_capacity(width * height * 4);
    for s in &sums {
        if s[3] == 0 {
            out.extend_from_slice(&style.background);
            continue;
        }
        let alpha = 0.45 + 0.55 * ((1.0 + s[3] as f32).ln() / (1.0 + max).ln());
        for c in 0..3 {
            let mean = s[c] as f32 / s[3] as f32;
            out.push((mean * alpha + f32::from(style.background[c]) * (1.0 - alpha)).round() as u8);
        }
        out.push(255);
    }
    out
}

/// A distinct colour per cluster (the Tableau 10 palette, then golden-ratio hues).
pub fn cluster_colour(i: usize) -> [u8; 3] {
    const PALETTE: [[u8; 3]; 10] = [
        [31, 119, 180],
        [255, 127, 14],
        [44, 160, 44],
        [214, 39, 40],
        [148, 103, 189],
        [140, 86, 75],
        [227, 119, 194],
        [127, 127, 127],
        [188, 189, 34],
        [23, 190, 207],
    ];
    if i < PALETTE.len() {
        return PALETTE[i];
    }
    let h = (i as f32 * 0.618_034).fract();
    hsv(h, 0.65, 0.85)
}

fn hsv(h: f32, s: f32, v: f32) -> [u8; 3] {
    let i = (h * 6.0).floor();
    let f = h * 6.0 - i;
    let (p, q, t) = (v * (1.0 - s), v * (1.0 - f * s), v * (1.0 - (1.0 - f) * s));
    let (r, g, b) = match i as i32 % 6 {
        0 => (v, t, p),
        1 => (q, v, p),
        2 => (p, v, t),
        3 => (p, q, v),
        4 => (t, p, v),
        _ => (v, p, q),
    };
    [(r * 255.0) as u8, (g * 255.0) as u8, (b * 255.0) as u8]
}

/// A value in 0…1 as a colour (blue → teal → yellow, like viridis' ends).
pub fn value_colour(t: f32) -> [u8; 3] {
    let t = t.clamp(0.0, 1.0);
    let stops = [
        [68.0, 1.0, 84.0],
        [59.0, 82.0, 139.0],
        [33.0, 145.0, 140.0],
        [94.0, 201.0, 98.0],
        [253.0, 231.0, 37.0],
    ];
    let x = t * 4.0;
    let i = (x.floor() as usize).min(3);
    let f = x - i as f32;
    std::array::from_fn(|c| (stops[i][c] * (1.0 - f) + stops[i + 1][c] * f) as u8)
}

/// Whether `p` lies inside the polygon `polygon` (even-odd rule).
pub fn inside_polygon(p: [f32; 2], polygon: &[[f32; 2]]) -> bool {
    let mut inside = false;
    let n = polygon.len();
    for i in 0..n {
        let (a, b) = (polygon[i], polygon[(i + n - 1) % n]);
        if (a[1] > p[1]) != (b[1] > p[1]) && p[0] < (b[0] - a[0]) * (p[1] - a[1]) / (b[1] - a[1]) + a[0] {
            inside = !inside;
        }
    }
    inside
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn points_land_where_their_coordinates_say() {
        let points = [0.0, 0.0, 1.0, 1.0];
        let colours = [[255, 0, 0], [0, 0, 255]];
        let bounds = [-1.0, 2.0, -1.0, 2.0];
        let pixels = rasterise(
            &points,
            &colours,
            30,
            30,
            Some(bounds),
            &ScatterStyle {
                radius: 0,
                ..ScatterStyle::default()
            },
        );
        let at = |x: usize, y: usize| &pixels[(y * 30 + x) * 4..(y * 30 + x) * 4 + 3];
        // (0, 0) → pixel (10, 20); (1, 1) → (20, 10).
        assert!(at(10, 20)[0] > 200 && at(10, 20)[2] < 150);
        assert!(at(20, 10)[2] > 200 && at(20, 10)[0] < 150);
        assert_eq!(at(0, 0), &[250, 250, 250]);
        let back = from_pixel(to_pixel([1.0, 1.0], &bounds, 30, 30), &bounds, 30, 30);
        assert!((back[0] - 1.0).abs() < 1e-5 && (back[1] - 1.0).abs() < 1e-5);
    }

    #[test]
    fn polygon_membership() {
        let square = [[0.0, 0.0], [1.0, 0.0], [1.0, 1.0], [0.0, 1.0]];
        assert!(inside_polygon([0.5, 0.5], &square));
        assert!(!inside_polygon([1.5, 0.5], &square));
        let l_shape = [[0.0, 0.0], [2.0, 0.0], [2.0, 1.0], [1.0, 1.0], [1.0, 2.0], [0.0, 2.0]];
        assert!(inside_polygon([0.5, 1.5], &l_shape));
        assert!(!inside_polygon([1.5, 1.5], &l_shape));
    }
}
