//! Sequence threading: every traced fragment is slid along every chain of the sequence and
//! scored by the log-odds of the residue types the network predicts at its Cα against the
//! sequence's residue there (both directions when the trace has none). Fragments are placed from
//! the most confident (the largest margin between the best placement and the best one elsewhere)
//! onto free positions of a chain copy; chains of identical sequence (copies) share the scores.
//! A fragment whose margin is below the threshold keeps its trace but not a sequence position:
//! its residues are named by the network's most likely type and flagged.

use super::network::AA_CLASSES;
use super::sequence::ChainSequence;

/// How fragments are threaded.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct ThreadOptions {
    /// A placement must beat the best placement elsewhere by this many nats (natural-log units
    /// of likelihood ratio) to be trusted.
    pub min_margin: f64,
    /// Fragments shorter than this are never threaded (too little evidence).
    pub min_length: usize,
}

impl Default for ThreadOptions {
    fn default() -> Self {
        Self {
            min_margin: 3.0,
            min_length: 5,
        }
    }
}

/// Where a fragment went.
#[derive(Clone, Debug, PartialEq)]
pub struct Placement {
    /// Candidate indices in sequence order (N → C).
    pub residues: Vec<usize>,
    /// (record, copy, first residue's index in the record's sequence), when threaded.
    pub slot: Option<(usize, usize, usize)>,
    /// Threading score and its margin over the best other placement (nats); 0 when unthreaded.
    pub score: f64,
    pub margin: f64,
}

/// Threads `fragments` (candidate indices; N → C when `directed`) onto `sequences`.
/// `log_probabilities[c]` are the candidate's residue-type log-probabilities (None: no
/// evidence, nothing is threaded).
pub fn thread(
    fragments: &[Vec<usize>],
    log_probabilities: Option<&[[f32; AA_CLASSES]]>,
    directed: bool,
    sequences: &[ChainSequence],
    options: &ThreadOptions,
) -> Vec<Placement> {
    let background = -(AA_CLASSES as f64).ln();
    // Every placement of every fragment: (fragment, reversed, record, offset, score).
    let mut options_of: Vec<Vec<(bool, usize, usize, f64)>> = Vec::with_capacity(fragments.len());
    for fragment in fragments {
        let mut list = Vec::new();
        if let Some(logp) = log_probabilities
            && fragment.len() >= options.min_length
        {
            for reversed in [false, true] {
                if reversed && directed {
                    continue;
                }
                let order: Vec<usize> = if reversed {
                    fragment.iter().rev().copied().collect()
                } else {
                    fragment.clone()
                };
                for (record, sequence) in sequences.iter().enumerate() {
                    let n = sequence.residues.len();
                    if order.len() > n {
                        continue;
                    }
                    for offset in 0..=n - order.len() {
                        let score: f64 = order
                            .iter()
                            .enumerate()
                            .map(|(k, &c)| f64::from(logp[c][sequence.residues[offset + k] as usize]) - background)
                            .sum();
                        list.push((reversed, record, offset, score));
                    }
                }
            }
        }
        list.sort_by(|a, b| b.3.total_cmp(&a.3));
        options_of.push(list);
    }
    // Confidence of a fragment: its best score over the best one that places it elsewhere
    // (a different record, direction, or an offset more than half its length away).
    let margin_of = |f: usize, list: &[(bool, usize, usize, f64)]| -> f64 {
        let Some(best) = list.first() else { return 0.0 };
        let far = (fragments[f].len() / 2).max(1);
        let second = list
            .iter()
            .skip(1)
            .find(|o| o.0 != best.0 || o.1 != best.1 || o.2.abs_diff(best.2) > far)
            .map_or(best.3 - 1e3, |o| o.3);
        best.3 - second
    };
    let mut order: Vec<usize> = (0..fragments.len()).collect();
    let margins: Vec<f64> = (0..fragments.len()).map(|f| margin_of(f, &options_of[f])).collect();
    order.sort_by(|&a, &b| margins[b].total_cmp(&margins[a]).then(a.cmp(&b)));
    // Occupied positions per (record, copy).
    let mut occupied: Vec<Vec<Vec<bool>>> = sequences
        .iter()
        .map(|s| vec![vec![false; s.residues.len()]; s.copies.max(1)])
        .collect();
    let mut placements: Vec<Option<Placement>> = vec![None; fragments.len()];
    for f in order {
        let fragment = &fragments[f];
        let mut placed = None;
        if margins[f] >= options.min_margin {
            'search: for &(reversed, record, offset, score) in &options_of[f] {
                if score < options_of[f][0].3 - options.min_margin {
                    break;
                }
                for (copy, taken) in occupied[record].iter_mut().enumerate() {
                    let range = offset..offset + fragment.len();
                    if taken[range.clone()].iter().any(|t| *t) {
                        continue;
                    }
                    taken[range].iter_mut().for_each(|t| *t = true);
                    let residues = if reversed {
                        fragment.iter().rev().copied().collect()
                    } else {
                        fragment.clone()
                    };
                    placed = Some(Placement {
                        residues,
                        slot: Some((record, copy, offset)),
                        score,
                        margin: margins[f],
                    });
                    break 'search;
                }
            }
        }
        placements[f] = Some(placed.unwrap_or_else(|| Placement {
            residues: fragment.clone(),
            slot: None,
            score: 0.0,
            margin: margins[f].max(0.0),
        }));
    }
    placements.into_iter().flatten().collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::build::sequence::parse_fasta;

    #[test]
    fn fragments_find_their_place_and_a_weak_one_stays_unthreaded() {
        let sequences = parse_fasta(">a\nMKVLAAGIVGLLLAQWERTYHHPCDNS\n").expect("fasta");
        let s = &sequences[0].residues;
        // Candidates 0..8 are residues 3..11, predicted with 60 % on the right type; 8..13 is a
        // fragment with no information (uniform).
        let mut logp = Vec::new();
        for &r in &s[3..11] {
            let mut p = [(0.4f32 / 19.0).ln(); AA_CLASSES];
            p[r as usize] = 0.6f32.ln();
            logp.push(p);
        }
        for _ in 0..5 {
            logp.push([(1.0f32 / 20.0).ln(); AA_CLASSES]);
        }
        // The first fragment traced backwards (C → N), undirected.
        let fragments = vec![(0..8).rev().collect::<Vec<_>>(), (8..13).collect()];
        let placed = thread(&fragments, Some(&logp), false, &sequences, &ThreadOptions::default());
        let first = placed.iter().find(|p| p.residues.contains(&0)).expect("first");
        assert_eq!(first.slot, Some((0, 0, 3)), "{first:?}");
        assert_eq!(first.residues, (0..8).collect::<Vec<_>>(), "reversed to N → C");
        let second = placed.iter().find(|p| p.residues.contains(&8)).expect("second");
        assert_eq!(second.slot, None);
        // No evidence at all: nothing threads.
        let none = thread(&fragments, None, false, &sequences, &ThreadOptions::default());
        assert!(none.iter().all(|p| p.slot.is_none()));
    }
}
