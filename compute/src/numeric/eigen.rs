//! The symmetric eigensolver (nalgebra's QR algorithm, eigenpairs sorted ascending): normal
//! modes of the elastic network and the PCA of latent spaces both go through it.

/// All eigenvalues (ascending) and eigenvectors of a symmetric `n × n` matrix (row-major), by
/// nalgebra's symmetric QR algorithm.
pub fn symmetric_eigen(a: Vec<f64>, n: usize) -> (Vec<f64>, Vec<Vec<f64>>) {
    let matrix = nalgebra::DMatrix::from_row_slice(n, n, &a);
    let eigen = nalgebra::SymmetricEigen::new(matrix);
    let mut order: Vec<usize> = (0..n).collect();
    order.sort_by(|&i, &j| eigen.eigenvalues[i].total_cmp(&eigen.eigenvalues[j]));
    let values = order.iter().map(|&i| eigen.eigenvalues[i]).collect();
    let vectors = order
        .iter()
        .map(|&k| eigen.eigenvectors.column(k).iter().copied().collect())
        .collect();
    (values, vectors)
}
