//! Operator commands that run the engines in the foreground: `transcribe`, `say` and
//! `bench models`. They load only the engines they need, straight from the model directory.

pub mod audio;
pub mod bench;
pub mod tools;

/// Writes `text` and a newline to standard output. A closed pipe (`… | head`) ends the output
/// quietly, as for any Unix tool, instead of panicking like `println!`.
pub(crate) fn emit(text: &str) -> anyhow::Result<()> {
    use anyhow::Context;
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    match writeln!(out, "{text}").and_then(|()| out.flush()) {
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
        r => r.context("cannot write to standard output"),
    }
}
