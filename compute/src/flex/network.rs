//! Map-free flexibility estimators from the model alone: Gaussian network model fluctuations
//! (the diagonal of the Kirchhoff matrix's pseudo-inverse, Bahar et al. 1997) and the inverse
//! weighted contact number (Lin et al. 2008: Σ 1/r² over the other Cα).

use crate::geometry::distance2;
use crate::numeric::eigen::symmetric_eigen;

/// GNM's usual Cα cutoff (Å).
pub const GNM_CUTOFF: f64 = 7.3;

/// GNM mean-square fluctuation of each node (arbitrary units: kT/γ = 1), from every non-zero
/// mode (one zero mode per connected piece of the network is left out).
pub fn gnm_fluctuations(nodes: &[[f64; 3]], cutoff: f64) -> Vec<f64> {
    let n = nodes.len();
    if n < 3 {
        return vec![1.0; n];
    }
    let mut k = vec![0.0; n * n];
    let c2 = cutoff * cutoff;
    for i in 0..n {
        for j in i + 1..n {
            if distance2(&nodes[i], &nodes[j]) <= c2 {
                k[i * n + j] = -1.0;
                k[j * n + i] = -1.0;
                k[i * n + i] += 1.0;
                k[j * n + j] += 1.0;
            }
        }
    }
    let (values, vectors) = symmetric_eigen(k, n);
    let largest = values.last().copied().unwrap_or(1.0).abs().max(1e-12);
    let mut out = vec![0.0; n];
    for (lambda, v) in values.iter().zip(&vectors) {
        if *lambda <= 1e-6 * largest {
            continue;
        }
        for (o, x) in out.iter_mut().zip(v) {
            *o += x * x / lambda;
        }
    }
    out
}

/// The weighted contact number Σⱼ 1/r²ᵢⱼ of each node over the others.
pub fn weighted_contact_number(nodes: &[[f64; 3]]) -> Vec<f64> {
    (0..nodes.len())
        .map(|i| {
            nodes
                .iter()
                .enumerate()
                .filter(|&(j, _)| j != i)
                .map(|(_, q)| 1.0 / distance2(&nodes[i], q).max(1.0))
                .sum()
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A compact block of nodes with a tail hanging off one side.
    fn block_with_tail() -> Vec<[f64; 3]> {
        let mut nodes = Vec::new();
        for x in 0..4 {
            for y in 0..4 {
                for z in 0..4 {
                    nodes.push([x as f64 * 3.8, y as f64 * 3.8, z as f64 * 3.8]);
                }
            }
        }
        for t in 1..=5 {
            nodes.push([-3.8 * t as f64, 0.0, 0.0]);
        }
        nodes
    }

    #[test]
    fn the_tail_fluctuates_most_and_has_fewest_contacts() {
        let nodes = block_with_tail();
        let gnm = gnm_fluctuations(&nodes, GNM_CUTOFF);
        let wcn = weighted_contact_number(&nodes);
        let tip = nodes.len() - 1;
        let core = 21; // (1,1,1): inside the block.
        assert!(gnm[tip] > 5.0 * gnm[core], "gnm tip {} core {}", gnm[tip], gnm[core]);
        assert!(wcn[tip] < 0.5 * wcn[core], "wcn tip {} core {}", wcn[tip], wcn[core]);
        // Fluctuations rise along the tail.
        for t in 65..tip {
            assert!(gnm[t + 1] > gnm[t]);
        }
    }
}
