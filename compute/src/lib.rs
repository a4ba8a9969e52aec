//! cryoforge's compute layer: every file format the field uses, the science (density, scores,
//! fitting, map tools) and, as the app grows, the jobs that run on the compute thread. Nothing
//! here knows about the UI.

pub mod build;
pub mod flex;
pub mod formats;
pub mod geometry;
pub mod gpu;
pub mod guided;
pub mod hetero;
pub mod io;
pub mod jobs;
pub mod maps;
pub mod models;
pub mod numeric;
pub mod panic;
pub mod particles;
pub mod refine;
pub mod rigid_fit;
pub mod training;

pub use formats::error::{FormatError, FormatResult};

/// Keeps freed memory in the process for reuse (glibc): the training loops allocate and free
/// activations of a few MB every step, and glibc's defaults return each to the kernel (mmap and
/// trim), so every step paid page faults. Measured on the heterogeneity training: 80 → 113
/// particles/s, system time 3.2 s → 0.2 s per epoch. Safe to call more than once.
#[allow(unsafe_code)] // One FFI call into glibc; nothing else in cryoforge is unsafe.
pub fn tune_allocator() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        static ONCE: std::sync::Once = std::sync::Once::new();
        ONCE.call_once(|| {
            // SAFETY: mallopt only changes allocator parameters; the values are within glibc's
            // documented ranges (the mmap threshold's maximum is 32 MiB on 64-bit).
            unsafe {
                libc::mallopt(libc::M_MMAP_THRESHOLD, 32 << 20);
                libc::mallopt(libc::M_TRIM_THRESHOLD, 1 << 30);
                libc::mallopt(libc::M_TOP_PAD, 64 << 20);
            }
        });
    }
}

#[cfg(test)]
mod test_shapes;
