//! Tracing: Cα candidates joined into chains. Every pair 3.2–4.4 Å apart is a possible link,
//! scored by how close it is to 3.8 Å, by the weakest density along it (a real link runs through
//! backbone density) and, where the network predicts it, by how well the step agrees with the
//! predicted vector to the next Cα (which also gives the chain its N → C direction). Links are
//! taken greedily from the best, each candidate keeping at most one successor and one
//! predecessor, no cycles, and pseudo-angles (Cα(i−1), Cα(i), Cα(i+1)) of real proteins
//! (75–155°); what remains is a set of fragments that threading places on the sequence.

use std::collections::HashMap;

use super::candidates::Candidate;
use crate::geometry::{SparsePoints, distance};

/// How candidates are linked.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct TraceOptions {
    pub min_link_angstrom: f64,
    pub max_link_angstrom: f64,
    /// σ of the link length about 3.8 Å.
    pub link_sigma_angstrom: f64,
    /// Weight of the weakest density along the link (normalised map: protein ≈ 1).
    pub density_weight: f64,
    /// σ (Å) of the distance between the predicted next Cα and the linked one.
    pub direction_sigma_angstrom: f64,
    pub min_angle_degrees: f64,
    pub max_angle_degrees: f64,
    /// Fragments shorter than this are dropped.
    pub min_fragment: usize,
    /// A residue whose Cα is closer than this to a Cα of a longer fragment is cut out (real
    /// proteins keep non-bonded Cα about 4 Å apart or more; closer pairs are two traces through
    /// the same density, and their backbones would clash).
    #[serde(default = "default_separation")]
    pub min_separation_angstrom: f64,
}

fn default_separation() -> f64 {
    TraceOptions::default().min_separation_angstrom
}

impl Default for TraceOptions {
    fn default() -> Self {
        Self {
            min_link_angstrom: 3.2,
            max_link_angstrom: 4.4,
            link_sigma_angstrom: 0.25,
            density_weight: 2.0,
            direction_sigma_angstrom: 1.0,
            min_angle_degrees: 75.0,
            max_angle_degrees: 155.0,
            min_fragment: 3,
            min_separation_angstrom: 3.6,
        }
    }
}

/// A chain fragment: candidate indices from N to C (when directions were predicted; otherwise
/// in an arbitrary direction that threading resolves).
pub type Fragment = Vec<usize>;

/// Links `candidates` into fragments. `next` holds, per candidate, the predicted vector (Å) to
/// the next Cα, if the network gave one; `density` reads the normalised map at a point.
pub fn trace(
    candidates: &[Candidate],
    next: Option<&[[f64; 3]]>,
    density: &dyn Fn([f64; 3]) -> f64,
    options: &TraceOptions,
) -> Vec<Fragment> {
    let n = candidates.len();
    let links = scored_links(candidates, next, density, options);
    let mut successor: Vec<Option<usize>> = vec![None; n];
    let mut predecessor: Vec<Option<usize>> = vec![None; n];
    let mut component: Vec<usize> = (0..n).collect();
    let find = |component: &mut Vec<usize>, mut i: usize| {
        while component[i] != i {
            component[i] = component[component[i]];
            i = component[i];
        }
        i
    };
    let directed = next.is_some();
    let position = |i: usize| candidates[i].position;
    let angle_ok = |a: usize, b: usize, c: usize| {
        let angle = crate::guided::restraints::angle(&position(a), &position(b), &position(c)).to_degrees();
        (options.min_angle_degrees..=options.max_angle_degrees).contains(&angle)
    };
    for (_, i, j) in links {
        // Undirected tracing may link either end of a fragment: orient the link so i's
        // successor and j's predecessor are free, reversing j's fragment when that helps.
        let (i, j) = if directed || (successor[i].is_none() && predecessor[j].is_none()) {
            (i, j)
        } else if successor[j].is_none() && predecessor[i].is_none() {
            (j, i)
        } else if successor[i].is_none() && successor[j].is_none() {
            reverse_fragment(j, &mut successor, &mut predecessor);
            (i, j)
        } else if predecessor[i].is_none() && predecessor[j].is_none() {
            reverse_fragment(i, &mut successor, &mut predecessor);
            (i, j)
        } else {
            continue;
        };
        if successor[i].is_some() || predecessor[j].is_some() {
            continue;
        }
        let (ri, rj) = (find(&mut component, i), find(&mut component, j));
        if ri == rj {
            continue;
        }
        if predecessor[i].is_some_and(|p| !angle_ok(p, i, j)) || successor[j].is_some_and(|s| !angle_ok(i, j, s)) {
            continue;
        }
        successor[i] = Some(j);
        predecessor[j] = Some(i);
        component[rj] = ri;
    }
    let mut fragments = Vec::new();
    for (start, before) in predecessor.iter().enumerate() {
        if before.is_some() {
            continue;
        }
        let mut fragment = vec![start];
        let mut at = start;
        while let Some(s) = successor[at] {
            fragment.push(s);
            at = s;
        }
        if fragment.len() >= options.min_fragment {
            fragments.push(fragment);
        }
    }
    fragments.sort_by_key(|f| std::cmp::Reverse(f.len()));
    uncrowded(fragments, candidates, options)
}

/// The fragments, longest first, with every residue closer than the minimum separation to a
/// residue of a fragment kept before cut out (the pieces left of at least `min_fragment` stay).
pub(crate) fn uncrowded(fragments: Vec<Fragment>, candidates: &[Candidate], options: &TraceOptions) -> Vec<Fragment> {
    let limit = options.min_separation_angstrom;
    if limit <= 0.0 {
        return fragments;
    }
    let mut kept = SparsePoints::new(limit);
    let mut out = Vec::new();
    for fragment in fragments {
        let crowded = |k: usize| kept.crowds(&candidates[k].position);
        let free: Vec<bool> = fragment.iter().map(|&k| !crowded(k)).collect();
        let mut piece = Vec::new();
        let mut pieces = Vec::new();
        for (&k, &ok) in fragment.iter().zip(&free) {
            if ok {
                piece.push(k);
            } else if !piece.is_empty() {
                pieces.push(std::mem::take(&mut piece));
            }
        }
        pieces.push(piece);
        for piece in pieces.into_iter().filter(|p| p.len() >= options.min_fragment) {
            for &k in &piece {
                kept.insert(candidates[k].position);
            }
            out.push(piece);
        }
    }
    out.sort_by_key(|f| std::cmp::Reverse(f.len()));
    out
}

/// Reverses the fragment holding `i` in place (successors become predecessors).
fn reverse_fragment(i: usize, successor: &mut [Option<usize>], predecessor: &mut [Option<usize>]) {
    let mut start = i;
    while let Some(p) = predecessor[start] {
        start = p;
    }
    let mut at = Some(start);
    while let Some(k) = at {
        let next = successor[k];
        std::mem::swap(&mut successor[k], &mut predecessor[k]);
        at = next;
    }
}

/// Every candidate pair within link range with its score, best first: (score, from, to).
fn scored_links(
    candidates: &[Candidate],
    next: Option<&[[f64; 3]]>,
    density: &dyn Fn([f64; 3]) -> f64,
    options: &TraceOptions,
) -> Vec<(f64, usize, usize)> {
    let cell_size = options.max_link_angstrom;
    let cell = |p: &[f64; 3]| p.map(|v| (v / cell_size).floor() as i64);
    let mut grid: HashMap<[i64; 3], Vec<usize>> = HashMap::new();
    for (i, c) in candidates.iter().enumerate() {
        grid.entry(cell(&c.position)).or_default().push(i);
    }
    let mut links = Vec::new();
    for (i, c) in candidates.iter().enumerate() {
        let [cx, cy, cz] = cell(&c.position);
        for dx in -1..=1 {
            for dy in -1..=1 {
                for dz in -1..=1 {
                    for &j in grid.get(&[cx + dx, cy + dy, cz + dz]).map_or(&[][..], |v| v.as_slice()) {
                        // Undirected: each pair once; directed: both directions.
                        if j == i || (next.is_none() && j < i) {
                            continue;
                        }
                        let d = distance(&c.position, &candidates[j].position);
                        if d < options.min_link_angstrom || d > options.max_link_angstrom {
                            continue;
                        }
                        let mut score = -0.5 * ((d - 3.8) / options.link_sigma_angstrom).powi(2);
                        let weakest = [0.25, 0.5, 0.75]
                            .iter()
                            .map(|&t| {
                                let p = std::array::from_fn(|a| {
                                    c.position[a] + t * (candidates[j].position[a] - c.position[a])
                                });
                                density(p)
                            })
                            .fold(f64::INFINITY, f64::min);
                        score += options.density_weight * weakest.min(1.5);
                        if let Some(next) = next {
                            let predicted: [f64; 3] = std::array::from_fn(|a| c.position[a] + next[i][a]);
                            let miss = distance(&predicted, &candidates[j].position);
                            score -= 0.5 * (miss / options.direction_sigma_angstrom).powi(2);
                        }
                        links.push((score, i, j));
                    }
                }
            }
        }
    }
    links.sort_by(|a, b| b.0.total_cmp(&a.0).then(a.1.cmp(&b.1)).then(a.2.cmp(&b.2)));
    links
}

#[cfg(test)]
mod tests {
    use super::*;

    fn helix(n: usize) -> Vec<[f64; 3]> {
        // An α-helix's Cα: radius 2.3 Å, 100° per residue, 1.5 Å rise (3.8 Å steps).
        (0..n)
            .map(|i| {
                let t = (i as f64 * 100.0).to_radians();
                [2.3 * t.cos(), 2.3 * t.sin(), 1.5 * i as f64]
            })
            .collect()
    }

    fn candidates(points: &[[f64; 3]]) -> Vec<Candidate> {
        points
            .iter()
            .enumerate()
            .map(|(i, &position)| Candidate {
                position,
                score: 0.9,
                voxel: i,
            })
            .collect()
    }

    #[test]
    fn a_helix_traces_as_one_fragment_with_or_without_directions() {
        let points = helix(20);
        // Shuffle the candidates so the order is not given away.
        let order: Vec<usize> = (0..20).map(|i| (i * 7) % 20).collect();
        let shuffled: Vec<[f64; 3]> = order.iter().map(|&i| points[i]).collect();
        let c = candidates(&shuffled);
        let flat = |_: [f64; 3]| 1.0;
        let undirected = trace(&c, None, &flat, &TraceOptions::default());
        assert_eq!(undirected.len(), 1, "{undirected:?}");
        let chain: Vec<usize> = undirected[0].iter().map(|&k| order[k]).collect();
        let forward = chain == (0..20).collect::<Vec<_>>();
        let backward = chain == (0..20).rev().collect::<Vec<_>>();
        assert!(forward || backward, "{chain:?}");
        // With the predicted next-Cα vectors the chain runs N → C.
        let next: Vec<[f64; 3]> = order
            .iter()
            .map(|&i| {
                if i + 1 < 20 {
                    std::array::from_fn(|a| points[i + 1][a] - points[i][a])
                } else {
                    [0.0, 0.0, 3.8]
                }
            })
            .collect();
        let directed = trace(&c, Some(&next), &flat, &TraceOptions::default());
        assert_eq!(directed.len(), 1);
        let chain: Vec<usize> = directed[0].iter().map(|&k| order[k]).collect();
        assert_eq!(chain, (0..20).collect::<Vec<_>>());
    }

    #[test]
    fn no_density_between_two_helices_keeps_them_apart() {
        let mut points = helix(10);
        // A second helix whose first Cα sits 3.8 Å past the first helix's end.
        let end = points[9];
        points.extend(helix(10).iter().map(|p| [p[0] + end[0] + 3.8, p[1], p[2] + end[2]]));
        let c = candidates(&points);
        // Density only near the helices' axes' own points, nothing between the two.
        let density = |p: [f64; 3]| {
            let nearest = points.iter().map(|q| distance(&p, q)).fold(f64::INFINITY, f64::min);
            if p[0] > end[0] + 0.5 && p[0] < end[0] + 3.3 && (p[2] - end[2]).abs() < 0.5 {
                -1.0
            } else if nearest < 2.5 {
                1.0
            } else {
                -1.0
            }
        };
        let fragments = trace(&c, None, &density, &TraceOptions::default());
        assert_eq!(fragments.len(), 2, "{fragments:?}");
    }

    #[test]
    fn a_second_trace_through_the_same_density_is_cut_out() {
        // A 20-residue strand and, 3 Å beside its middle, a 6-residue one: two traces of one
        // stretch of density (real neighbouring strands are about 4.8 Å apart).
        let strand = |n: usize, offset: [f64; 3]| -> Vec<[f64; 3]> {
            (0..n)
                .map(|i| {
                    [
                        offset[0] + 3.3 * i as f64,
                        offset[1] + if i % 2 == 0 { 0.0 } else { 1.7 },
                        offset[2],
                    ]
                })
                .collect()
        };
        let mut points = strand(20, [0.0, 0.0, 0.0]);
        points.extend(strand(6, [3.3 * 7.0, 0.0, 3.0]));
        let c = candidates(&points);
        let flat = |_: [f64; 3]| 1.0;
        let apart = TraceOptions {
            min_separation_angstrom: 0.0,
            ..TraceOptions::default()
        };
        assert_eq!(trace(&c, None, &flat, &apart).len(), 2);
        let fragments = trace(&c, None, &flat, &TraceOptions::default());
        assert_eq!(fragments.len(), 1, "{fragments:?}");
        assert_eq!(fragments[0].len(), 20);
        // 4.8 Å apart, both stay.
        let mut points = strand(20, [0.0, 0.0, 0.0]);
        points.extend(strand(6, [3.3 * 7.0, 0.0, 4.8]));
        assert_eq!(
            trace(&candidates(&points), None, &flat, &TraceOptions::default()).len(),
            2
        );
    }
}
