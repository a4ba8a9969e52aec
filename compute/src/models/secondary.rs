//! Secondary structure of a protein model, per residue: from the file's HELIX/SHEET records or
//! `_struct_conf`/`_struct_sheet_range` when it has them, otherwise assigned from the backbone
//! as DSSP does (Kabsch & Sander 1983): backbone hydrogen bonds by the electrostatic energy of
//! the C=O and N–H groups (below −0.5 kcal/mol, H placed 1 Å from N opposite the previous C=O),
//! an α-helix where two consecutive residues start 4-turns, a strand where bridges (parallel or
//! antiparallel) pair residues in ladders of at least two.

use std::collections::HashMap;

use crate::formats::model::Structure;

/// A residue's secondary structure.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
pub enum Secondary {
    Helix,
    Strand,
    Coil,
}

/// A protein residue of the model: its chain, number, insertion code and backbone atom indices.
#[derive(Clone, Debug, PartialEq)]
pub struct BackboneResidue {
    pub chain_id: String,
    pub number: i32,
    pub insertion_code: String,
    /// Atom indices of N, CA, C, O (CA always present; the others where the file has them).
    pub n: Option<usize>,
    pub ca: usize,
    pub c: Option<usize>,
    pub o: Option<usize>,
}

/// The residues with a Cα, in file order (first conformer).
pub fn backbone_residues(structure: &Structure) -> Vec<BackboneResidue> {
    let mut out: Vec<BackboneResidue> = Vec::new();
    let mut index: HashMap<(&str, i32, &str), usize> = HashMap::new();
    let mut atoms_of: Vec<[Option<usize>; 4]> = Vec::new();
    let mut keys: Vec<(String, i32, String)> = Vec::new();
    for (i, a) in structure.atoms.iter().enumerate() {
        if !(a.alt_loc.is_empty() || a.alt_loc == "A") || a.hetero && a.residue_name == "HOH" {
            continue;
        }
        let key = (a.chain_id.as_str(), a.residue_number, a.insertion_code.as_str());
        let k = *index.entry(key).or_insert_with(|| {
            atoms_of.push([None; 4]);
            keys.push((a.chain_id.clone(), a.residue_number, a.insertion_code.clone()));
            atoms_of.len() - 1
        });
        let slot = &mut atoms_of[k];
        match a.name.as_str() {
            "N" => slot[0] = Some(i),
            "CA" if a.element == "C" => slot[1] = Some(i),
            "C" => slot[2] = Some(i),
            "O" => slot[3] = Some(i),
            _ => {}
        }
    }
    for ((chain_id, number, insertion_code), [n, ca, c, o]) in keys.into_iter().zip(atoms_of) {
        if let Some(ca) = ca {
            out.push(BackboneResidue {
                chain_id,
                number,
                insertion_code,
                n,
                ca,
                c,
                o,
            });
        }
    }
    out
}

/// Secondary structure of every residue of [`backbone_residues`] at `frame`: the file's records
/// when it has any, else assigned from the backbone.
pub fn secondary_structure(structure: &Structure, frame: usize) -> (Vec<BackboneResidue>, Vec<Secondary>) {
    let residues = backbone_residues(structure);
    let info = &structure.info;
    if !info.helices.is_empty() || !info.strands.is_empty() {
        let within = |r: &BackboneResidue, range: &crate::formats::model::ResidueRange| {
            r.chain_id == range.chain_id && r.number >= range.start.0 && r.number <= range.end.0
        };
        let kinds = residues
            .iter()
            .map(|r| {
                if info.helices.iter().any(|h| within(r, h)) {
                    Secondary::Helix
                } else if info.strands.iter().any(|s| within(r, s)) {
                    Secondary::Strand
                } else {
                    Secondary::Coil
                }
            })
            .collect();
        return (residues, kinds);
    }
    let coords = &structure.frames[frame.min(structure.frames.len().saturating_sub(1))];
    let kinds = assign_from_backbone(&residues, coords);
    (residues, kinds)
}

fn sub(a: [f32; 3], b: [f32; 3]) -> [f32; 3] {
    [a[0] - b[0], a[1] - b[1], a[2] - b[2]]
}

fn dist(a: [f32; 3], b: [f32; 3]) -> f32 {
    let d = sub(a, b);
    (d[0] * d[0] + d[1] * d[1] + d[2] * d[2]).sqrt()
}

/// DSSP's assignment of helices and strands from backbone hydrogen bonds.
pub fn assign_from_backbone(residues: &[BackboneResidue], coords: &[[f32; 3]]) -> Vec<Secondary> {
    let n = residues.len();
    let at = |i: Option<usize>| i.map(|i| coords[i]);
    // Residue k follows k−1 in the chain (peptide bond present).
    let linked: Vec<bool> = (0..n)
        .map(|k| {
            k > 0
                && residues[k].chain_id == residues[k - 1].chain_id
                && matches!((at(residues[k - 1].c), at(residues[k].n)), (Some(c), Some(nn)) if dist(c, nn) < 2.0)
        })
        .collect();
    // H of residue k: 1 Å from N, opposite the previous residue's C=O.
    let hydrogen: Vec<Option<[f32; 3]>> = (0..n)
        .map(|k| {
            if !linked[k] {
                return None;
            }
            let (c, o, nn) = (at(residues[k - 1].c)?, at(residues[k - 1].o)?, at(residues[k].n)?);
            let d = sub(c, o);
            let l = dist(c, o).max(1e-6);
            Some([nn[0] + d[0] / l, nn[1] + d[1] / l, nn[2] + d[2] / l])
        })
        .collect();
    // hbond[(i, j)]: C=O of i accepts from N–H of j.
    let cell = 9.0f32;
    let key = |p: [f32; 3]| p.map(|v| (v / cell).floor() as i32);
    let mut grid: HashMap<[i32; 3], Vec<usize>> = HashMap::new();
    for (k, r) in residues.iter().enumerate() {
        grid.entry(key(coords[r.ca])).or_default().push(k);
    }
    let mut hbond: std::collections::HashSet<(usize, usize)> = Default::default();
    for (i, r) in residues.iter().enumerate() {
        let (Some(c), Some(o)) = (at(r.c), at(r.o)) else {
            continue;
        };
        let k = key(coords[r.ca]);
        for dx in -1..=1 {
            for dy in -1..=1 {
                for dz in -1..=1 {
                    for &j in grid
                        .get(&[k[0] + dx, k[1] + dy, k[2] + dz])
                        .map_or(&[][..], |v| v.as_slice())
                    {
                        if j == i || j == i + 1 || i == j + 1 {
                            continue;
                        }
                        let (Some(h), Some(nn)) = (hydrogen[j], at(residues[j].n)) else {
                            continue;
                        };
                        if dist(coords[r.ca], coords[residues[j].ca]) > 9.0 {
                            continue;
                        }
                        let energy = 0.084
                            * 332.0
                            * (1.0 / dist(o, nn) + 1.0 / dist(c, h) - 1.0 / dist(o, h) - 1.0 / dist(c, nn));
                        if energy < -0.5 {
                            hbond.insert((i, j));
                        }
                    }
                }
            }
        }
    }
    let bond = |i: usize, j: usize| hbond.contains(&(i, j));
    let mut kinds = vec![Secondary::Coil; n];
    // α-helix: 4-turns starting at i−1 and i cover residues i..i+3.
    let turn4 = |i: usize| i + 4 < n && bond(i, i + 4);
    for i in 1..n.saturating_sub(4) {
        if turn4(i - 1) && turn4(i) {
            for kind in &mut kinds[i..i + 4] {
                *kind = Secondary::Helix;
            }
        }
    }
    // β-bridges between i and j (|i − j| > 2), then ladders of two or more consecutive bridges.
    let mut bridge_partners: Vec<Vec<(usize, bool)>> = vec![Vec::new(); n];
    for (i, partners) in bridge_partners.iter_mut().enumerate().take(n.saturating_sub(1)).skip(1) {
        for j in 1..n.saturating_sub(1) {
            if i.abs_diff(j) <= 2 {
                continue;
            }
            let parallel = (bond(i - 1, j) && bond(j, i + 1)) || (bond(j - 1, i) && bond(i, j + 1));
            let antiparallel = (bond(i, j) && bond(j, i)) || (bond(i - 1, j + 1) && bond(j - 1, i + 1));
            if parallel || antiparallel {
                partners.push((j, parallel));
            }
        }
    }
    for i in 0..n {
        for &(j, parallel) in &bridge_partners[i] {
            let next_j = if parallel { j + 1 } else { j.wrapping_sub(1) };
            let continues = bridge_partners
                .get(i + 1)
                .is_some_and(|p| p.iter().any(|&(k, par)| k == next_j && par == parallel));
            if continues && kinds[i] != Secondary::Helix && kinds[i + 1] != Secondary::Helix {
                kinds[i] = Secondary::Strand;
                kinds[i + 1] = Secondary::Strand;
                for k in [j, next_j] {
                    if k < n && kinds[k] != Secondary::Helix {
                        kinds[k] = Secondary::Strand;
                    }
                }
            }
        }
    }
    kinds
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn assignment_from_the_backbone_agrees_with_the_file_records_of_adk() {
        let structure = crate::test_shapes::adk_1ake();
        let (residues, from_file) = secondary_structure(&structure, 0);
        assert!(from_file.contains(&Secondary::Helix) && from_file.contains(&Secondary::Strand));
        let assigned = assign_from_backbone(&residues, &structure.frames[0]);
        let agree = from_file.iter().zip(&assigned).filter(|(a, b)| a == b).count();
        let fraction = agree as f64 / residues.len() as f64;
        let helix = assigned.iter().filter(|k| **k == Secondary::Helix).count();
        let strand = assigned.iter().filter(|k| **k == Secondary::Strand).count();
        eprintln!(
            "DSSP-like vs HELIX/SHEET: {agree} of {} agree; helix {helix}, strand {strand}",
            residues.len()
        );
        assert!(fraction > 0.8, "{fraction}");
        assert!(helix > 80 && strand > 20, "{helix} {strand}");
    }
}
