//! Uploaded documents are parsed first in a child process with memory, CPU and time limits: a
//! PDF built to exhaust memory or loop forever costs one refused upload, never the daemon and its
//! calls. Only a document the child parsed, or refused cleanly (no text, not UTF-8), is parsed
//! again by the daemon, which then stays within the same bounds (the parsers are deterministic:
//! same bytes, same work) and names the refusal itself.
//!
//! The child is this program's hidden `parse-document` command ([`child_main`]); it sets its own
//! limits before reading the file, and has no network to reach nor files to write.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode, Stdio};
use std::time::{Duration, Instant};

/// The hidden command the daemon runs for each upload.
pub const COMMAND: &str = "parse-document";

/// What a parse may take.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ParseLimits {
    /// Address space of the child, the program's own mappings included.
    pub memory_mb: u64,
    /// CPU time of the child.
    pub cpu_seconds: u64,
    /// Wall-clock time before the child is killed (a parse blocked on something).
    pub wall: Duration,
}

impl Default for ParseLimits {
    fn default() -> Self {
        ParseLimits {
            memory_mb: 2048,
            cpu_seconds: 30,
            wall: Duration::from_secs(60),
        }
    }
}

/// Runs `program`'s [`COMMAND`] on `file` under `limits`. `Ok` when the daemon may parse the
/// file itself: the child parsed it, or refused it the way the daemon will (not UTF-8, no text:
/// the daemon's own parse then names the error). `Err` says which limit the parse broke.
pub fn vet(program: &Path, file: &Path, limits: ParseLimits) -> Result<(), String> {
    let mut child = Command::new(program)
        .arg(COMMAND)
        .arg("--memory-mb")
        .arg(limits.memory_mb.to_string())
        .arg("--cpu-seconds")
        .arg(limits.cpu_seconds.to_string())
        .arg(file)
        .env_clear()
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| {
            format!(
                "cannot start the document parser {}: {e}",
                program.display()
            )
        })?;
    let started = Instant::now();
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break status,
            Ok(None) if started.elapsed() >= limits.wall => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(format!(
                    "parsing took longer than {} s and was stopped",
                    limits.wall.as_secs()
                ));
            }
            Ok(None) => std::thread::sleep(Duration::from_millis(20)),
            Err(e) => return Err(format!("lost the document parser: {e}")),
        }
    };
    if status.success() || status.code() == Some(REFUSED) {
        return Ok(());
    }
    let mut err = String::new();
    if let Some(mut s) = child.stderr.take() {
        let _ = s.read_to_string(&mut err);
    }
    use std::os::unix::process::ExitStatusExt;
    Err(match status.signal() {
        Some(signal) => format!(
            "parsing broke its limits ({} MB of memory, {} s of CPU) or crashed (signal {signal})",
            limits.memory_mb, limits.cpu_seconds
        ),
        None => format!(
            "the parser failed ({status}){}",
            last_line(&err).map_or(String::new(), |l| format!(": {l}"))
        ),
    })
}

/// The child's exit code for a document its parser refused cleanly.
pub const REFUSED: i32 = 3;

fn last_line(text: &str) -> Option<String> {
    text.lines()
        .rev()
        .map(str::trim)
        .find(|l| !l.is_empty())
        .map(str::to_owned)
}

/// The child: `parse-document --memory-mb N --cpu-seconds N FILE`. Prints the number of text
/// blocks and exits 0; exits [`REFUSED`] with the parser's error when the document has none to
/// give, 1 when it could not run. The limits are set before the file is read: breaking the
/// memory limit fails an allocation (the process aborts), breaking the CPU limit kills it.
pub fn child_main(args: &[String]) -> ExitCode {
    match child(args) {
        Ok(Ok(blocks)) => {
            println!("{blocks}");
            ExitCode::SUCCESS
        }
        Ok(Err(refused)) => {
            eprintln!("{refused}");
            ExitCode::from(REFUSED as u8)
        }
        Err(e) => {
            eprintln!("{e}");
            ExitCode::FAILURE
        }
    }
}

fn child(args: &[String]) -> Result<Result<usize, kb::Error>, String> {
    let mut memory_mb = ParseLimits::default().memory_mb;
    let mut cpu_seconds = ParseLimits::default().cpu_seconds;
    let mut file: Option<PathBuf> = None;
    let mut args = args.iter();
    while let Some(arg) = args.next() {
        let mut number = |what: &str| {
            args.next()
                .and_then(|v| v.parse::<u64>().ok())
                .ok_or_else(|| format!("{what} needs a number"))
        };
        match arg.as_str() {
            "--memory-mb" => memory_mb = number("--memory-mb")?,
            "--cpu-seconds" => cpu_seconds = number("--cpu-seconds")?,
            path => file = Some(PathBuf::from(path)),
        }
    }
    let file = file.ok_or("no document given")?;
    limit(
        rustix::process::Resource::As,
        memory_mb.saturating_mul(1 << 20),
    )?;
    limit(rustix::process::Resource::Cpu, cpu_seconds)?;
    // Nothing to write: a parser bug cannot fill the disk.
    limit(rustix::process::Resource::Fsize, 0)?;
    let format = match kb::Format::of(&file) {
        Ok(format) => format,
        Err(refused) => return Ok(Err(refused)),
    };
    // Not naming the file: the daemon's message names the upload, not where it was staged.
    let bytes = std::fs::read(&file).map_err(|e| format!("cannot read the document: {e}"))?;
    Ok(kb::ingest::parse(&file, format, &bytes).map(|blocks| blocks.len()))
}

fn limit(resource: rustix::process::Resource, value: u64) -> Result<(), String> {
    let limit = rustix::process::Rlimit {
        current: Some(value),
        maximum: Some(value),
    };
    rustix::process::setrlimit(resource, limit)
        .map_err(|e| format!("cannot set the {resource:?} limit: {e}"))
}
