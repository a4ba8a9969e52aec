//! The elastic network of closed adenylate kinase predicts its opening: the closed→open
//! displacement lies mostly in a handful of the softest normal modes (the classic normal-mode
//! analysis result that guided sampling's prior relies on).

use cryoforge_compute::formats::model::Structure;
use cryoforge_compute::models::compare::{alpha_carbons, superpose};
use cryoforge_compute::models::enm::{ModePrior, NormalModes};
use cryoforge_tests::asset;

#[test]
fn adk_opening_lies_in_the_softest_modes() {
    let closed = Structure::read(&asset("models/adk_closed.pdb")).expect("closed");
    let open = Structure::read(&asset("models/adk_open.pdb")).expect("open");
    let c: Vec<[f64; 3]> = alpha_carbons(&closed, 0).iter().map(|r| r.ca).collect();
    let o: Vec<[f64; 3]> = alpha_carbons(&open, 0).iter().map(|r| r.ca).collect();
    assert_eq!(c.len(), 214);
    let fit = superpose(&o, &c);
    let o_on_c: Vec<[f64; 3]> = o.iter().map(|&p| fit.apply(p)).collect();
    let displacement: Vec<f64> = o_on_c
        .iter()
        .zip(&c)
        .flat_map(|(a, b)| [a[0] - b[0], a[1] - b[1], a[2] - b[2]])
        .collect();

    let start = std::time::Instant::now();
    let network = NormalModes::anm(&c, 15.0, 1.0);
    eprintln!("ANM of 214 Cα (642 × 642) in {:.2} s", start.elapsed().as_secs_f64());
    let overlaps = network.overlaps(&displacement);
    let rigid: f64 = overlaps[..6].iter().sum();
    let soft10: f64 = overlaps[6..16].iter().sum();
    let soft20: f64 = overlaps[6..26].iter().sum();
    // Ten random directions among 636 elastic ones would hold about 10/636 = 1.6%.
    eprintln!("closed→open in rigid modes {rigid:.3}, 10 softest {soft10:.3}, 20 softest {soft20:.3}");
    assert!(rigid < 0.01, "superposition removed rigid motion");
    assert!(soft10 > 0.5, "the 10 softest modes hold {soft10:.3} of the opening");

    // A prior built on these modes keeps most of the opening through heavy noise. The
    // temperature sets the overall scale (unit springs: soft-mode variances of thousands of Å²
    // in the 3N-dimensional mode coordinates are what a 7 Å-RMSD motion needs).
    let prior = ModePrior::new(&network, 26, 1000.0, 1e6, 1e-2);
    let target: Vec<f64> = o_on_c.iter().flatten().copied().collect();
    let denoised = prior.denoise(&target, 3.0);
    let moved: f64 = denoised
        .iter()
        .zip(&prior.mean)
        .zip(&displacement)
        .map(|((x, m), d)| (x - m) * d)
        .sum::<f64>()
        / displacement.iter().map(|d| d * d).sum::<f64>();
    eprintln!("fraction of the opening the σ = 3 Å denoiser keeps: {moved:.3}");
    assert!(moved > 0.4, "{moved}");
}
