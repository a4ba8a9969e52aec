//! Turns the atom records of a PDB or mmCIF file, in file order, into a [`Structure`], grouping
//! them as gemmi does so both read a file with the same atoms in the same order:
//! - a chain part starts wherever the chain id changes; within it, atoms join the residue with
//!   the same number, insertion code, name and segment, even when the file interleaves them;
//! - parts of one chain (a chain's waters listed after every polymer, say) are then merged, in
//!   the order the chains first appear;
//! - the first model is the topology; a later model becomes a frame when it holds the same atoms
//!   in the same order, and is skipped with a warning otherwise.

use std::collections::HashMap;

use crate::formats::model::{Atom, ModelInfo, Structure};

/// One atom record as a reader sees it, borrowing the file's text.
pub(crate) struct Site<'a> {
    pub chain: &'a str,
    pub residue_number: i32,
    pub insertion_code: &'a str,
    pub residue_name: &'a str,
    pub segment: &'a str,
    pub name: &'a str,
    pub alt_loc: &'a str,
    pub element: &'static str,
    pub formal_charge: i8,
    pub occupancy: f32,
    pub b_factor: f32,
    pub hetero: bool,
    pub position: [f64; 3],
    pub label_asym_id: &'a str,
    pub label_seq_id: Option<i32>,
    pub entity_id: &'a str,
}

type ResidueKey = (i32, String, String, String);

struct ChainPart {
    name: String,
    /// Atom indices (into the first model's file order) of each residue, in order of appearance.
    residues: Vec<Vec<usize>>,
    index: HashMap<ResidueKey, usize>,
}

/// Warnings counted by kind, so a file with 10,000 odd lines gives one line, not 10,000.
#[derive(Default)]
pub(crate) struct Warnings {
    entries: Vec<(String, usize, String)>,
}

impl Warnings {
    /// Records one occurrence of `kind`; `example` (a line number, say) is kept for the first.
    pub fn add(&mut self, kind: &str, example: impl FnOnce() -> String) {
        match self.entries.iter_mut().find(|(k, _, _)| k == kind) {
            Some(entry) => entry.1 += 1,
            None => self.entries.push((kind.to_owned(), 1, example())),
        }
    }

    pub fn into_lines(self) -> Vec<String> {
        self.entries
            .into_iter()
            .map(|(kind, count, example)| {
                if count == 1 {
                    format!("{kind} ({example})")
                } else {
                    format!("{kind}: {count} times (first: {example})")
                }
            })
            .collect()
    }
}

#[derive(Default)]
pub(crate) struct Builder {
    atoms: Vec<Atom>,
    first_positions: Vec<[f32; 3]>,
    parts: Vec<ChainPart>,
    /// Current residue of the first model: (part, residue index).
    current: Option<(usize, usize)>,
    /// Models after the first: positions in first-model file order, or why they differ.
    frames: Vec<Result<Vec<[f32; 3]>, String>>,
    model_numbers: Vec<i32>,
    pub warnings: Warnings,
}

fn to_f32(p: [f64; 3]) -> [f32; 3] {
    p.map(|c| c as f32)
}

impl Builder {
    /// Starts a model (a MODEL record, a new model number); atoms before any call go to model 1.
    pub fn begin_model(&mut self, number: i32) {
        if self.atoms.is_empty() && self.frames.is_empty() {
            self.model_numbers = vec![number];
            return;
        }
        self.model_numbers.push(number);
        self.frames.push(Ok(Vec::with_capacity(self.atoms.len())));
    }

    pub fn models_seen(&self) -> usize {
        self.frames.len() + usize::from(!self.atoms.is_empty())
    }

    pub fn add(&mut self, site: Site<'_>) {
        match self.frames.last_mut() {
            None => self.add_to_first(site),
            Some(Err(_)) => {}
            Some(Ok(frame)) => {
                let i = frame.len();
                let same = self.atoms.get(i).is_some_and(|a| {
                    a.name == site.name
                        && a.alt_loc == site.alt_loc
                        && a.residue_number == site.residue_number
                        && a.residue_name == site.residue_name
                        && a.chain_id == site.chain
                        && a.insertion_code == site.insertion_code
                });
                if same {
                    frame.push(to_f32(site.position));
                } else {
                    let why = match self.atoms.get(i) {
                        Some(a) => format!(
                            "its atom {} is {} {} {}{} where model 1 has {} {} {}{}",
                            i + 1,
                            site.name,
                            site.residue_name,
                            site.chain,
                            site.residue_number,
                            a.name,
                            a.residue_name,
                            a.chain_id,
                            a.residue_number
                        ),
                        None => format!("it has more atoms than model 1 ({})", self.atoms.len()),
                    };
                    *self.frames.last_mut().expect("a frame") = Err(why);
                }
            }
        }
    }

    fn add_to_first(&mut self, site: Site<'_>) {
        let index = self.atoms.len();
        let same_part = self.current.is_some_and(|(p, _)| self.parts[p].name == site.chain);
        if !same_part {
            self.parts.push(ChainPart {
                name: site.chain.to_owned(),
                residues: Vec::new(),
                index: HashMap::new(),
            });
            self.current = None;
        }
        let part_index = self.parts.len() - 1;
        let same_residue = self.current.is_some_and(|(_, r)| {
            let first = self.parts[part_index].residues[r][0];
            let a = &self.atoms[first];
            a.residue_number == site.residue_number
                && a.insertion_code == site.insertion_code
                && a.residue_name == site.residue_name
                && a.segment == site.segment
        });
        if !same_residue {
            let part = &mut self.parts[part_index];
            let key = (
                site.residue_number,
                site.insertion_code.to_owned(),
                site.residue_name.to_owned(),
                site.segment.to_owned(),
            );
            let next = part.residues.len();
            let r = *part.index.entry(key).or_insert(next);
            if r == next {
                part.residues.push(Vec::new());
            }
            self.current = Some((part_index, r));
        }
        let (p, r) = self.current.expect("a residue");
        self.parts[p].residues[r].push(index);
        self.first_positions.push(to_f32(site.position));
        self.atoms.push(Atom {
            name: site.name.to_owned(),
            alt_loc: site.alt_loc.to_owned(),
            residue_name: site.residue_name.to_owned(),
            chain_id: site.chain.to_owned(),
            residue_number: site.residue_number,
            insertion_code: site.insertion_code.to_owned(),
            segment: site.segment.to_owned(),
            element: site.element.to_owned(),
            formal_charge: site.formal_charge,
            occupancy: site.occupancy,
            b_factor: site.b_factor,
            hetero: site.hetero,
            label_asym_id: site.label_asym_id.to_owned(),
            label_seq_id: site.label_seq_id,
            entity_id: site.entity_id.to_owned(),
        });
    }

    /// The structure, with `info` (its warnings extended by the builder's).
    pub fn finish(mut self, name: String, mut info: ModelInfo) -> Structure {
        // Merge the chain parts by chain id, in order of first appearance.
        let mut order = Vec::with_capacity(self.atoms.len());
        let mut parts_of: HashMap<&str, Vec<usize>> = HashMap::new();
        let mut chain_order: Vec<&str> = Vec::new();
        for (i, part) in self.parts.iter().enumerate() {
            let parts = parts_of.entry(&part.name).or_default();
            if parts.is_empty() {
                chain_order.push(&part.name);
            }
            parts.push(i);
        }
        for chain in chain_order {
            for &p in &parts_of[chain] {
                order.extend(self.parts[p].residues.iter().flatten().copied());
            }
        }
        let permute = |v: &[[f32; 3]]| order.iter().map(|&i| v[i]).collect::<Vec<_>>();
        let mut frames = vec![permute(&self.first_positions)];
        for (k, frame) in self.frames.iter().enumerate() {
            let number = self.model_numbers.get(k + 1).copied().unwrap_or(k as i32 + 2);
            match frame {
                Ok(f) if f.len() == self.atoms.len() => frames.push(permute(f)),
                Ok(f) => self
                    .warnings
                    .add("a model with other atoms than model 1 was skipped", || {
                        format!("model {number} has {} atoms, model 1 has {}", f.len(), self.atoms.len())
                    }),
                Err(why) => self
                    .warnings
                    .add("a model with other atoms than model 1 was skipped", || {
                        format!("model {number}: {why}")
                    }),
            }
        }
        let mut slots: Vec<Option<Atom>> = self.atoms.into_iter().map(Some).collect();
        let atoms = order.iter().filter_map(|&i| slots[i].take()).collect();
        info.warnings.extend(self.warnings.into_lines());
        Structure {
            name,
            atoms,
            frames,
            info,
        }
    }
}
