//! The coarse elastic network behind the guided sampler's prior: residues as groups of atoms,
//! one node per residue (clustered for large models), and the smooth weights by which every
//! atom follows the nodes around it.

use crate::formats::model::Structure;
use crate::geometry::distance2;
use crate::guided::pointcloud::weighted_kmeans;

/// Atoms grouped by residue (chain, number, insertion code), in file order.
pub fn residue_groups(structure: &Structure, atoms: &[usize]) -> Vec<Vec<usize>> {
    let mut groups: Vec<Vec<usize>> = Vec::new();
    let mut last: Option<(&str, i32, &str)> = None;
    for (local, &i) in atoms.iter().enumerate() {
        let a = &structure.atoms[i];
        let key = (a.chain_id.as_str(), a.residue_number, a.insertion_code.as_str());
        if last != Some(key) {
            groups.push(Vec::new());
            last = Some(key);
        }
        if let Some(g) = groups.last_mut() {
            g.push(local);
        }
    }
    groups
}

/// The nodes of the network: one per residue (its Cα, or P for nucleotides, else its centre),
/// clustered to at most `max_nodes`. Returns the node positions and their spacing (Å).
pub(super) fn network_nodes(
    positions: &[[f64; 3]],
    residues: &[Vec<usize>],
    anchors: &[Option<usize>],
    max_nodes: usize,
) -> (Vec<[f64; 3]>, f64) {
    let per_residue: Vec<[f64; 3]> = residues
        .iter()
        .zip(anchors)
        .map(|(group, anchor)| match anchor {
            Some(a) => positions[*a],
            None => {
                let n = group.len().max(1) as f64;
                std::array::from_fn(|k| group.iter().map(|&i| positions[i][k]).sum::<f64>() / n)
            }
        })
        .collect();
    let nodes = if per_residue.len() > max_nodes.max(8) {
        weighted_kmeans(&per_residue, &vec![1.0; per_residue.len()], max_nodes.max(8), 11, 30).points
    } else {
        per_residue
    };
    (nodes.clone(), mean_nearest_distance(&nodes))
}

fn mean_nearest_distance(nodes: &[[f64; 3]]) -> f64 {
    if nodes.len() < 2 {
        return 3.8;
    }
    let total: f64 = nodes
        .iter()
        .enumerate()
        .map(|(i, p)| {
            nodes
                .iter()
                .enumerate()
                .filter(|(j, _)| *j != i)
                .map(|(_, q)| distance2(p, q))
                .fold(f64::INFINITY, f64::min)
                .sqrt()
        })
        .sum();
    total / nodes.len() as f64
}

/// Interpolation weights of every atom over the nodes near it (Gaussian in distance, width
/// ~ the node spacing, normalised; at least the nearest node).
pub(super) fn carry_weights(positions: &[[f64; 3]], nodes: &[[f64; 3]], spacing: f64) -> Vec<Vec<(usize, f64)>> {
    use rayon::prelude::*;
    let width = 0.8 * spacing;
    let radius2 = (2.5 * width).powi(2);
    positions
        .par_iter()
        .map(|p| {
            let mut w: Vec<(usize, f64)> = nodes
                .iter()
                .enumerate()
                .filter_map(|(n, q)| {
                    let d2 = distance2(p, q);
                    (d2 <= radius2).then(|| (n, (-d2 / (2.0 * width * width)).exp()))
                })
                .collect();
            if w.is_empty() {
                let nearest = (0..nodes.len())
                    .min_by(|&a, &b| distance2(p, &nodes[a]).total_cmp(&distance2(p, &nodes[b])))
                    .unwrap_or(0);
                w.push((nearest, 1.0));
            }
            let total: f64 = w.iter().map(|(_, v)| v).sum();
            w.iter_mut().for_each(|(_, v)| *v /= total);
            w
        })
        .collect()
}
