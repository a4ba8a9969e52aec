//! Cα placement: the local maxima of the Cα likelihood above a floor, refined to the centroid
//! of their neighbourhood, kept greedily from the most likely with no two closer than the
//! suppression radius (non-maximum suppression). Adjacent Cα are 3.8 Å apart and the closest
//! non-adjacent ones ~4.5 Å, so the default radius, 2.8 Å, suppresses a peak's own shoulders but
//! not its neighbours.

/// One Cα candidate.
#[derive(Clone, Debug, PartialEq)]
pub struct Candidate {
    /// Position, Å.
    pub position: [f64; 3],
    /// The likelihood at the peak (probability, 0–1).
    pub score: f32,
    /// The voxel it came from (index into the prepared grid).
    pub voxel: usize,
}

/// How candidates are picked.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct CandidateOptions {
    /// Peaks below this probability are ignored.
    pub min_score: f32,
    pub suppression_angstrom: f64,
    /// At most this many candidates per expected residue (extra ones are the weakest).
    pub max_per_residue: f64,
}

impl Default for CandidateOptions {
    fn default() -> Self {
        Self {
            min_score: 0.05,
            suppression_angstrom: 2.8,
            max_per_residue: 1.5,
        }
    }
}

/// Candidates from a per-voxel probability on a grid of `dims` voxels of `voxel_angstrom`, whose
/// voxel (0,0,0) sits at `origin`; at most `max_per_residue × residues` of them.
pub fn pick_candidates(
    probability: &[f32],
    dims: [usize; 3],
    origin: [f32; 3],
    voxel_angstrom: f32,
    residues: usize,
    options: &CandidateOptions,
) -> Vec<Candidate> {
    let [nx, ny, nz] = dims;
    let index = |x: usize, y: usize, z: usize| x + nx * (y + ny * z);
    let mut peaks: Vec<Candidate> = Vec::new();
    for z in 0..nz {
        for y in 0..ny {
            for x in 0..nx {
                let v = probability[index(x, y, z)];
                if v < options.min_score {
                    continue;
                }
                let (mut is_peak, mut mass, mut centre) = (true, 0f64, [0f64; 3]);
                for dz in -1i64..=1 {
                    for dy in -1i64..=1 {
                        for dx in -1i64..=1 {
                            let (qx, qy, qz) = (x as i64 + dx, y as i64 + dy, z as i64 + dz);
                            if qx < 0 || qy < 0 || qz < 0 || qx >= nx as i64 || qy >= ny as i64 || qz >= nz as i64 {
                                continue;
                            }
                            let w = probability[index(qx as usize, qy as usize, qz as usize)];
                            if w > v {
                                is_peak = false;
                            }
                            let w = f64::from(w.max(0.0));
                            mass += w;
                            centre[0] += w * dx as f64;
                            centre[1] += w * dy as f64;
                            centre[2] += w * dz as f64;
                        }
                    }
                }
                if !is_peak || mass <= 0.0 {
                    continue;
                }
                let voxel = [x, y, z];
                let position = std::array::from_fn(|a| {
                    f64::from(origin[a]) + (voxel[a] as f64 + centre[a] / mass) * f64::from(voxel_angstrom)
                });
                peaks.push(Candidate {
                    position,
                    score: v,
                    voxel: index(x, y, z),
                });
            }
        }
    }
    peaks.sort_by(|a, b| b.score.total_cmp(&a.score).then(a.voxel.cmp(&b.voxel)));
    suppress(
        peaks,
        options.suppression_angstrom,
        (options.max_per_residue * residues.max(1) as f64).ceil() as usize,
    )
}

/// Greedy non-maximum suppression of candidates sorted best first, using a hash grid of cells as
/// wide as the radius.
fn suppress(sorted: Vec<Candidate>, radius: f64, limit: usize) -> Vec<Candidate> {
    use std::collections::HashMap;
    let cell = |p: &[f64; 3]| p.map(|v| (v / radius).floor() as i64);
    let mut grid: HashMap<[i64; 3], Vec<usize>> = HashMap::new();
    let mut kept: Vec<Candidate> = Vec::new();
    let r2 = radius * radius;
    for c in sorted {
        if kept.len() >= limit {
            break;
        }
        let [cx, cy, cz] = cell(&c.position);
        let mut near = false;
        'search: for dx in -1..=1 {
            for dy in -1..=1 {
                for dz in -1..=1 {
                    for &k in grid.get(&[cx + dx, cy + dy, cz + dz]).map_or(&[][..], |v| v.as_slice()) {
                        if crate::geometry::distance2(&kept[k].position, &c.position) < r2 {
                            near = true;
                            break 'search;
                        }
                    }
                }
            }
        }
        if !near {
            grid.entry([cx, cy, cz]).or_default().push(kept.len());
            kept.push(c);
        }
    }
    kept
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn peaks_are_refined_and_suppressed_within_the_radius() {
        let dims = [20, 20, 20];
        let mut p = vec![0f32; 8000];
        let mut blob = |centre: [f64; 3], height: f32| {
            for z in 0..20 {
                for y in 0..20 {
                    for x in 0..20 {
                        let d2 = (x as f64 - centre[0]).powi(2)
                            + (y as f64 - centre[1]).powi(2)
                            + (z as f64 - centre[2]).powi(2);
                        let v = height * (-d2 / 1.0).exp() as f32;
                        let i = x + 20 * (y + 20 * z);
                        p[i] = p[i].max(v);
                    }
                }
            }
        };
        blob([5.3, 5.0, 5.0], 0.9);
        blob([9.1, 5.0, 5.0], 0.8); // 3.8 Å away: kept
        blob([6.8, 6.5, 5.0], 0.7); // 2.1 Å from the first: suppressed
        blob([15.0, 15.0, 15.0], 0.02); // below the floor
        let c = pick_candidates(&p, dims, [0.0; 3], 1.0, 10, &CandidateOptions::default());
        assert_eq!(c.len(), 2, "{c:?}");
        assert!((c[0].position[0] - 5.3).abs() < 0.3, "{:?}", c[0].position);
        assert!((c[1].position[0] - 9.1).abs() < 0.3, "{:?}", c[1].position);
        let one = pick_candidates(
            &p,
            dims,
            [0.0; 3],
            1.0,
            1,
            &CandidateOptions {
                max_per_residue: 1.0,
                ..CandidateOptions::default()
            },
        );
        assert_eq!(one.len(), 1);
    }
}
