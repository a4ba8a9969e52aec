//! Data-parallel training steps, once for every method that trains (particle refinement and
//! heterogeneity analysis): a batch is split into parts, each part's loss and gradients are
//! computed on its own worker (its own thread and, in burn, its own autodiff graph), and the
//! caller combines the parts' gradients weighted by their share of the batch.
//!
//! burn's CPU kernels use little more than one core on graphs of this size, so on a CPU the
//! workers are the machine's threads. The split, the shares and the panic policy live here so a
//! worker can later stand for a device (several GPUs, each worker's part on its own device) or a
//! machine (an all-reduce of the combined gradients) without the methods changing.

use crate::panic::catch_quietly;

/// A worker's panic, caught and turned into an error (the job reports it; the app lives on).
#[derive(Debug, thiserror::Error)]
#[error("a training worker failed: {0}")]
pub struct WorkerPanic(pub String);

/// One worker's part of a batch.
#[derive(Clone, Copy, Debug)]
pub struct Part<'a, T> {
    /// Which worker runs it (0‥workers): the index of its device when there are several.
    pub worker: usize,
    /// Where the part starts in the batch.
    pub offset: usize,
    pub items: &'a [T],
    /// The part's fraction of the batch: a batch mean is Σ share × the part's mean.
    pub share: f64,
}

/// How a batch is split across workers.
#[derive(Clone, Copy, Debug)]
pub struct DataParallel {
    workers: usize,
}

impl DataParallel {
    /// One worker per thread of rayon's pool (the machine's cores unless configured).
    pub fn per_thread() -> Self {
        Self::with_workers(rayon::current_num_threads())
    }

    pub fn with_workers(workers: usize) -> Self {
        Self {
            workers: workers.max(1),
        }
    }

    pub fn workers(&self) -> usize {
        self.workers
    }

    /// Splits `items` into at most `workers` contiguous parts of near-equal size.
    pub fn split<'a, T>(&self, items: &'a [T]) -> Vec<Part<'a, T>> {
        if items.is_empty() {
            return Vec::new();
        }
        let size = items.len().div_ceil(self.workers.min(items.len()));
        let total = items.len() as f64;
        items
            .chunks(size)
            .enumerate()
            .map(|(worker, chunk)| Part {
                worker,
                offset: worker * size,
                items: chunk,
                share: chunk.len() as f64 / total,
            })
            .collect()
    }

    /// Runs `work` on every part of `items`, each on its own thread (the calling thread when
    /// there is one part), and returns the results in batch order. A panicking worker becomes
    /// [`WorkerPanic`]; the others still finish.
    pub fn run<T, R, F>(&self, items: &[T], work: F) -> Result<Vec<R>, WorkerPanic>
    where
        T: Sync,
        R: Send,
        F: Fn(Part<'_, T>) -> R + Sync,
    {
        let parts = self.split(items);
        if parts.len() <= 1 {
            return parts
                .into_iter()
                .map(|part| catch_quietly(|| work(part)).map_err(WorkerPanic))
                .collect();
        }
        let work = &work;
        std::thread::scope(|scope| {
            let handles: Vec<_> = parts
                .into_iter()
                .map(|part| scope.spawn(move || catch_quietly(|| work(part))))
                .collect();
            handles
                .into_iter()
                .map(|h| match h.join() {
                    Ok(outcome) => outcome.map_err(WorkerPanic),
                    Err(panic) => Err(WorkerPanic(crate::panic::panic_message(panic.as_ref()))),
                })
                .collect()
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parts_cover_the_batch_in_order_with_shares_summing_to_one() {
        let items: Vec<usize> = (0..10).collect();
        let parts = DataParallel::with_workers(3).split(&items);
        assert_eq!(parts.len(), 3);
        let joined: Vec<usize> = parts.iter().flat_map(|p| p.items.iter().copied()).collect();
        assert_eq!(joined, items);
        assert!((parts.iter().map(|p| p.share).sum::<f64>() - 1.0).abs() < 1e-12);
        assert!(parts.iter().all(|p| items[p.offset] == p.items[0]));
        // More workers than items: one item each.
        assert_eq!(DataParallel::with_workers(8).split(&items[..2]).len(), 2);
    }

    #[test]
    fn a_weighted_sum_of_part_means_is_the_batch_mean_and_panics_are_errors() {
        let items: Vec<f64> = (1..=7).map(f64::from).collect();
        let parallel = DataParallel::with_workers(3);
        let parts = parallel
            .run(&items, |p| p.share * p.items.iter().sum::<f64>() / p.items.len() as f64)
            .expect("no panic");
        assert!((parts.iter().sum::<f64>() - 4.0).abs() < 1e-12);
        let failed = parallel.run(&items, |p| {
            assert!(p.worker != 1, "worker one fails");
            p.worker
        });
        let message = failed.expect_err("a panic is an error").to_string();
        assert!(message.contains("worker one fails"), "{message}");
    }
}
