#![cfg(unix)]
//! A command whose reader stops early (`cryoforge info … | head -1`) ends quietly, as `cat`
//! does: no panic and nothing on stderr, whether it prints text or JSON.

use std::io::{BufRead, BufReader};
use std::os::unix::process::ExitStatusExt;
use std::path::PathBuf;
use std::process::{Command, Stdio};

#[test]
fn info_into_a_reader_that_stops_early_ends_quietly() {
    let map = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../assets/fixtures/mode2.mrc");
    for json in [false, true] {
        let mut command = Command::new(env!("CARGO_BIN_EXE_cryoforge"));
        command.arg("info");
        if json {
            command.arg("--json");
        }
        // Thousands of summaries are far more than a pipe holds, so the command is still
        // writing when the reader goes away.
        let mut child = command
            .args(std::iter::repeat_n(&map, 3000))
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("run cryoforge");
        let stdout = child.stdout.take().expect("stdout");
        let mut first_line = String::new();
        BufReader::new(stdout).read_line(&mut first_line).expect("first line");
        // The reader (and with it the pipe's only read end) is dropped here, as `head` exits.
        let output = child.wait_with_output().expect("wait");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(!first_line.is_empty(), "json = {json}: nothing printed");
        assert!(stderr.is_empty(), "json = {json}: stderr was {stderr:?}");
        // Ended by SIGPIPE like `cat`, or finished before the pipe closed.
        let quiet = output.status.success() || output.status.signal() == Some(libc::SIGPIPE);
        assert!(quiet, "json = {json}: {:?}", output.status);
    }
}
