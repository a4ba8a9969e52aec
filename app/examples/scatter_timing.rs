//! Times the latent-space scatter: the GUI's GPU point splats (`PointsRenderer`, on the adapter
//! wgpu finds: a hardware GPU, else llvmpipe) against the CPU rasteriser that the CLI's PNG plots
//! and the GUI's fallback use, on the same points (five Gaussian blobs) at 800 × 800 px.
//! `scripts/bench.sh hetero` runs it; `cargo run -p cryoforge --example scatter_timing [N…]`.

use std::time::Instant;

use cryoforge::scatter::{ScatterStyle, bounds_of, cluster_colour, edges, rasterise};
use cryoforge_compute::gpu::{AdapterChoice, GpuContext};
use cryoforge_compute::numeric::rng::Rng;
use cryoforge_renderer::{PointsRenderer, PointsView};

fn main() {
    let sizes: Vec<usize> = std::env::args().skip(1).filter_map(|a| a.parse().ok()).collect();
    let sizes = if sizes.is_empty() {
        vec![100_000, 1_000_000]
    } else {
        sizes
    };
    let context = match GpuContext::new(AdapterChoice::AllowSoftware) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("no graphics adapter: {e}");
            std::process::exit(1);
        }
    };
    println!("adapter: {}", context.describe());
    let side = 800;
    let mut renderer = PointsRenderer::new(&context.device);
    for n in sizes {
        let mut rng = Rng::new(1);
        let mut points = Vec::with_capacity(2 * n);
        let mut labels = Vec::with_capacity(n);
        for i in 0..n {
            let c = i % 5;
            let angle = c as f64 * std::f64::consts::TAU / 5.0;
            points.push((4.0 * angle.cos() + rng.normal()) as f32);
            points.push((4.0 * angle.sin() + rng.normal()) as f32);
            labels.push(c);
        }
        let colours: Vec<[u8; 3]> = labels.iter().map(|&l| cluster_colour(l)).collect();
        let bounds = bounds_of(&points);
        // CPU: one full redraw, as the PNG plots and the fallback do.
        let repeats = if n > 300_000 { 3 } else { 10 };
        let started = Instant::now();
        for _ in 0..repeats {
            std::hint::black_box(rasterise(
                &points,
                &colours,
                side,
                side,
                Some(bounds),
                &ScatterStyle::default(),
            ));
        }
        let cpu = started.elapsed().as_secs_f64() / f64::from(repeats);
        // GPU: upload once (on a change of layout or colouring), then frames (on a resize or a
        // change of selection), each waited for.
        let positions: Vec<[f32; 2]> = points.chunks_exact(2).map(|p| [p[0], p[1]]).collect();
        let rgba: Vec<[u8; 4]> = colours.iter().map(|&[r, g, b]| [r, g, b, 255]).collect();
        let view = PointsView {
            bounds: edges(&bounds),
            radius_px: 1.2,
            alpha: 0.35,
            background: [0.97, 0.97, 0.97, 1.0],
        };
        let started = Instant::now();
        renderer.set_points(&context.device, &positions, &rgba);
        renderer.render(&context.device, &context.queue, &view, [side as u32; 2]);
        let _ = context.device.poll(wgpu::PollType::wait_indefinitely());
        let first = started.elapsed().as_secs_f64();
        let started = Instant::now();
        for _ in 0..repeats {
            renderer.render(&context.device, &context.queue, &view, [side as u32; 2]);
            let _ = context.device.poll(wgpu::PollType::wait_indefinitely());
        }
        let frame = started.elapsed().as_secs_f64() / f64::from(repeats);
        let drawn = renderer
            .read_pixels(&context.device, &context.queue)
            .map(|(_, _, p)| p.chunks_exact(4).filter(|c| c[0] < 200 || c[2] < 200).count())
            .unwrap_or(0);
        println!(
            "{n:>9} points at {side}²: GPU splats {:7.1} ms a frame ({:7.1} ms with the upload), CPU raster {:7.1} ms  (CPU/GPU frame = {:.2}×; {drawn} pixels drawn)",
            frame * 1e3,
            first * 1e3,
            cpu * 1e3,
            cpu / frame
        );
    }
}
