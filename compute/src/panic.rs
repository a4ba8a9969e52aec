//! Panics caught at a thread's edge (a job, a training worker, a parser) become error messages:
//! the app reports them and lives on.
//!
//! Rust's default panic hook prints a message and a backtrace hint before the panic is caught,
//! so a caught panic would still reach the user as a stack trace above the one-line error that
//! reports it. [`catch_quietly`] marks the current thread as being inside a region whose panics
//! are caught and reported, and the hook from [`install_hook`] stays silent there; anywhere else
//! it prints one line.

use std::cell::{Cell, RefCell};
use std::io::Write as _;
use std::panic::{AssertUnwindSafe, PanicHookInfo};

thread_local! {
    /// How many [`catch_quietly`] regions the current thread is inside.
    static QUIET_DEPTH: Cell<u32> = const { Cell::new(0) };
    /// Where the last panic inside a quiet region happened, noted by the hook for the message.
    static QUIET_PANIC_AT: RefCell<Option<String>> = const { RefCell::new(None) };
}

/// The text of a caught panic's payload (panics carry a `&str` or a `String`).
pub fn panic_message(panic: &(dyn std::any::Any + Send)) -> String {
    panic
        .downcast_ref::<&str>()
        .map(|s| (*s).to_owned())
        .or_else(|| panic.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "unknown panic".to_owned())
}

/// Runs `work`, turning a panic into its message. The hook from [`install_hook`] prints nothing
/// for a panic on this thread while `work` runs (it notes the place, which the message then
/// ends with): the caller reports the message once, as an error. Callers hand over `work` as
/// unwind-safe: what it touched is dropped or reported as failed, never used half-updated.
pub fn catch_quietly<R>(work: impl FnOnce() -> R) -> Result<R, String> {
    QUIET_DEPTH.with(|depth| depth.set(depth.get() + 1));
    let outcome = std::panic::catch_unwind(AssertUnwindSafe(work));
    QUIET_DEPTH.with(|depth| depth.set(depth.get() - 1));
    outcome.map_err(|panic| {
        let message = panic_message(panic.as_ref());
        match QUIET_PANIC_AT.with(RefCell::take) {
            Some(at) => format!("{message} (at {at})"),
            None => message,
        }
    })
}

/// Whether the current thread is inside [`catch_quietly`].
pub fn is_quiet() -> bool {
    QUIET_DEPTH.with(Cell::get) > 0
}

/// Replaces the default panic hook: silent inside [`catch_quietly`], otherwise one line on
/// stderr (message and place). With `RUST_BACKTRACE` set, uncaught panics keep the default
/// report for whoever is debugging.
pub fn install_hook() {
    let default_hook = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        if is_quiet() {
            let at = info.location().map(|at| format!("{}:{}", at.file(), at.line()));
            QUIET_PANIC_AT.with(|place| *place.borrow_mut() = at);
            return;
        }
        if std::env::var_os("RUST_BACKTRACE").is_some_and(|v| v != "0") {
            default_hook(info);
            return;
        }
        // A closed stderr must not turn into a second panic inside the hook.
        let _ = writeln!(std::io::stderr(), "{}", one_line(info));
    }));
}

/// `internal error: MESSAGE (at FILE:LINE)`, the whole report of an uncaught panic.
fn one_line(info: &PanicHookInfo<'_>) -> String {
    let message = panic_message(info.payload());
    match info.location() {
        Some(at) => format!("internal error: {message} (at {}:{})", at.file(), at.line()),
        None => format!("internal error: {message}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_caught_panic_is_its_message_and_the_region_ends() {
        assert_eq!(catch_quietly(|| 3), Ok(3));
        let caught = catch_quietly(|| -> u32 { panic!("bad header word {}", 7) });
        assert_eq!(caught, Err("bad header word 7".to_owned()));
        assert!(!is_quiet());
        let nested = catch_quietly(|| {
            let inner = catch_quietly(is_quiet);
            (inner, is_quiet())
        });
        assert_eq!(nested, Ok((Ok(true), true)));
        assert!(!is_quiet());
    }
}
