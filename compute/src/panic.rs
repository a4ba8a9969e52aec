//! Panics caught at a thread's edge (a job, a training worker, a parser) become error messages:
//! the app reports them and lives on.

/// The text of a caught panic's payload (panics carry a `&str` or a `String`).
pub fn panic_message(panic: &(dyn std::any::Any + Send)) -> String {
    panic
        .downcast_ref::<&str>()
        .map(|s| (*s).to_owned())
        .or_else(|| panic.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "unknown panic".to_owned())
}
