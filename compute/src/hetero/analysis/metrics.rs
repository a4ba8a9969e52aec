//! How well one labelling or ordering of particles agrees with another (docs/science.md §7): the
//! adjusted Rand index, the adjusted mutual information and Spearman's rank correlation.

/// Adjusted Rand index of two labelings.
pub fn adjusted_rand_index(a: &[usize], b: &[usize]) -> f64 {
    let (table, rows, cols, n) = contingency(a, b);
    let comb2 = |x: f64| x * (x - 1.0) / 2.0;
    let index: f64 = table.iter().map(|&v| comb2(v as f64)).sum();
    let sum_a: f64 = rows.iter().map(|&v| comb2(v as f64)).sum();
    let sum_b: f64 = cols.iter().map(|&v| comb2(v as f64)).sum();
    let expected = sum_a * sum_b / comb2(n as f64);
    let max = (sum_a + sum_b) / 2.0;
    if (max - expected).abs() < 1e-12 {
        1.0
    } else {
        (index - expected) / (max - expected)
    }
}

fn contingency(a: &[usize], b: &[usize]) -> (Vec<usize>, Vec<usize>, Vec<usize>, usize) {
    let ka = a.iter().copied().max().map_or(0, |m| m + 1);
    let kb = b.iter().copied().max().map_or(0, |m| m + 1);
    let mut table = vec![0usize; ka * kb];
    for (&x, &y) in a.iter().zip(b) {
        table[x * kb + y] += 1;
    }
    let rows: Vec<usize> = (0..ka).map(|i| table[i * kb..(i + 1) * kb].iter().sum()).collect();
    let cols: Vec<usize> = (0..kb).map(|j| (0..ka).map(|i| table[i * kb + j]).sum()).collect();
    (table, rows, cols, a.len().min(b.len()))
}

/// ln Γ(x) for x > 0 (Lanczos, g = 7).
pub fn ln_gamma(x: f64) -> f64 {
    const G: [f64; 9] = [
        0.999_999_999_999_809_9,
        676.520_368_121_885_1,
        -1_259.139_216_722_402_8,
        771.323_428_777_653_1,
        -176.615_029_162_140_6,
        12.507_343_278_686_905,
        -0.138_571_095_265_720_12,
        9.984_369_578_019_572e-6,
        1.505_632_735_149_311_6e-7,
    ];
    if x < 0.5 {
        return (std::f64::consts::PI / (std::f64::consts::PI * x).sin()).ln() - ln_gamma(1.0 - x);
    }
    let x = x - 1.0;
    let t = x + 7.5;
    let series = G[1..]
        .iter()
        .enumerate()
        .fold(G[0], |s, (i, g)| s + g / (x + i as f64 + 1.0));
    0.5 * (std::f64::consts::TAU).ln() + (x + 0.5) * t.ln() - t + series.ln()
}

/// Adjusted mutual information (arithmetic-mean normalisation, as scikit-learn's default).
pub fn adjusted_mutual_information(a: &[usize], b: &[usize]) -> f64 {
    let (table, rows, cols, n) = contingency(a, b);
    let kb = cols.len();
    let nf = n as f64;
    let entropy = |counts: &[usize]| {
        -counts
            .iter()
            .filter(|&&c| c > 0)
            .map(|&c| {
                let p = c as f64 / nf;
                p * p.ln()
            })
            .sum::<f64>()
    };
    let (ha, hb) = (entropy(&rows), entropy(&cols));
    let mut mi = 0.0;
    for (i, &ai) in rows.iter().enumerate() {
        for (j, &bj) in cols.iter().enumerate() {
            let nij = table[i * kb + j];
            if nij > 0 {
                mi += nij as f64 / nf * (nf * nij as f64 / (ai as f64 * bj as f64)).ln();
            }
        }
    }
    // Expected mutual information under the hypergeometric model.
    let lg = |x: usize| ln_gamma(x as f64 + 1.0);
    let mut emi = 0.0;
    for &ai in &rows {
        for &bj in &cols {
            if ai == 0 || bj == 0 {
                continue;
            }
            let start = (ai + bj).saturating_sub(n).max(1);
            let end = ai.min(bj);
            let fixed = lg(ai) + lg(bj) + lg(n - ai) + lg(n - bj) - lg(n);
            for nij in start..=end {
                let term = nij as f64 / nf * (nf * nij as f64 / (ai as f64 * bj as f64)).ln();
                let log_p = fixed - lg(nij) - lg(ai - nij) - lg(bj - nij) - lg(n + nij - ai - bj);
                emi += term * log_p.exp();
            }
        }
    }
    let denominator = (ha + hb) / 2.0 - emi;
    if denominator.abs() < 1e-12 {
        1.0
    } else {
        (mi - emi) / denominator
    }
}

/// Ranks (1-based, ties averaged).
fn ranks(values: &[f64]) -> Vec<f64> {
    let mut order: Vec<usize> = (0..values.len()).collect();
    order.sort_by(|&i, &j| values[i].total_cmp(&values[j]));
    let mut out = vec![0.0; values.len()];
    let mut start = 0;
    while start < order.len() {
        let mut end = start + 1;
        while end < order.len() && values[order[end]] == values[order[start]] {
            end += 1;
        }
        let rank = (start + end + 1) as f64 / 2.0;
        for &i in &order[start..end] {
            out[i] = rank;
        }
        start = end;
    }
    out
}

pub fn pearson(a: &[f64], b: &[f64]) -> f64 {
    let n = a.len().min(b.len()) as f64;
    let (ma, mb) = (a.iter().sum::<f64>() / n, b.iter().sum::<f64>() / n);
    let cov: f64 = a.iter().zip(b).map(|(x, y)| (x - ma) * (y - mb)).sum();
    let va: f64 = a.iter().map(|x| (x - ma).powi(2)).sum();
    let vb: f64 = b.iter().map(|y| (y - mb).powi(2)).sum();
    cov / (va * vb).sqrt().max(1e-300)
}

/// Spearman's rank correlation.
pub fn spearman(a: &[f64], b: &[f64]) -> f64 {
    pearson(&ranks(a), &ranks(b))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::numeric::rng::Rng;

    #[test]
    fn clustering_measures_match_known_values() {
        // Identical partitions up to renaming.
        let a = [0, 0, 1, 1, 2, 2];
        let b = [2, 2, 0, 0, 1, 1];
        assert!((adjusted_rand_index(&a, &b) - 1.0).abs() < 1e-12);
        assert!((adjusted_mutual_information(&a, &b) - 1.0).abs() < 1e-9);
        // scikit-learn 1.x gives 0.5714285714285714 for both scores of these.
        let x = [0, 0, 1, 1];
        let y = [0, 0, 1, 2];
        assert!((adjusted_rand_index(&x, &y) - 0.571_428_571_428_571_4).abs() < 1e-12);
        assert!((adjusted_mutual_information(&x, &y) - 0.571_428_571_428_571_5).abs() < 1e-9);
        // A larger case: scikit-learn's adjusted_rand_score = 0.4323996971990916 and
        // adjusted_mutual_info_score = 0.4303231785268328.
        let a: Vec<usize> = (0..300).map(|i| (i * 7 + 3) % 5).collect();
        let b: Vec<usize> = (0..300).map(|i| if i % 3 == 0 { (i * 11) % 4 } else { a[i] }).collect();
        assert!((adjusted_rand_index(&a, &b) - 0.432_399_697_199_091_6).abs() < 1e-10);
        assert!(
            (adjusted_mutual_information(&a, &b) - 0.430_323_178_526_832_8).abs() < 1e-8,
            "{}",
            adjusted_mutual_information(&a, &b)
        );
        // Independent labelings score near zero.
        let mut rng = Rng::new(3);
        let r1: Vec<usize> = (0..2000).map(|_| rng.below(4)).collect();
        let r2: Vec<usize> = (0..2000).map(|_| rng.below(4)).collect();
        assert!(adjusted_rand_index(&r1, &r2).abs() < 0.02);
        assert!(adjusted_mutual_information(&r1, &r2).abs() < 0.02);
    }

    #[test]
    fn gamma_and_spearman() {
        assert!((ln_gamma(5.0) - 24f64.ln()).abs() < 1e-12);
        assert!((ln_gamma(0.5) - std::f64::consts::PI.sqrt().ln()).abs() < 1e-12);
        let a = [1.0, 2.0, 3.0, 4.0, 5.0];
        let b = [1.0, 4.0, 9.0, 16.0, 100.0];
        assert!((spearman(&a, &b) - 1.0).abs() < 1e-12);
        let c = [5.0, 4.0, 3.0, 2.0, 1.0];
        assert!((spearman(&a, &c) + 1.0).abs() < 1e-12);
        // Ties: scipy.stats.spearmanr([1,2,2,3],[1,2,3,4]) = 0.9486832980505138.
        assert!((spearman(&[1.0, 2.0, 2.0, 3.0], &[1.0, 2.0, 3.0, 4.0]) - 0.948_683_298_050_513_8).abs() < 1e-12);
    }
}
