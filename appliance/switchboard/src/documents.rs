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

/// Why an upload was refused before the daemon parsed it, or the parser could not run.
#[derive(Debug, thiserror::Error)]
pub enum DocumentError {
    #[error("cannot start the document parser {}: {source}", program.display())]
    Start {
        program: PathBuf,
        source: std::io::Error,
    },
    #[error("lost the document parser: {0}")]
    Lost(std::io::Error),
    #[error("parsing took longer than {} s and was stopped", .0.as_secs())]
    TooSlow(Duration),
    #[error(
        "parsing broke its limits ({} MB of memory, {} s of CPU) or crashed (signal {signal})",
        limits.memory_mb, limits.cpu_seconds
    )]
    Limits { limits: ParseLimits, signal: i32 },
    #[error("the parser failed ({status}){}", last.as_ref().map_or(String::new(), |l| format!(": {l}")))]
    Failed {
        status: std::process::ExitStatus,
        /// The last line the parser wrote.
        last: Option<String>,
    },
    // The child's own errors.
    #[error("{0} needs a number")]
    Argument(&'static str),
    #[error("no document given")]
    NoDocument,
    #[error("cannot set the {resource} limit: {source}")]
    Rlimit {
        resource: &'static str,
        source: rustix::io::Errno,
    },
    #[error("cannot read the document: {0}")]
    Read(std::io::Error),
}

/// Runs `program`'s [`COMMAND`] on `file` under `limits`. `Ok` when the daemon may parse the
/// file itself: the child parsed it, or refused it the way the daemon will (not UTF-8, no text:
/// the daemon's own parse then names the error). `Err` says which limit the parse broke.
pub fn vet(program: &Path, file: &Path, limits: ParseLimits) -> Result<(), DocumentError> {
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
        .map_err(|source| DocumentError::Start {
            program: program.to_owned(),
            source,
        })?;
    let started = Instant::now();
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break status,
            Ok(None) if started.elapsed() >= limits.wall => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(DocumentError::TooSlow(limits.wall));
            }
            Ok(None) => std::thread::sleep(Duration::from_millis(20)),
            Err(e) => return Err(DocumentError::Lost(e)),
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
        Some(signal) => DocumentError::Limits { limits, signal },
        None => DocumentError::Failed {
            status,
            last: last_line(&err),
        },
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

fn child(args: &[String]) -> Result<Result<usize, kb::Error>, DocumentError> {
    let mut memory_mb = ParseLimits::default().memory_mb;
    let mut cpu_seconds = ParseLimits::default().cpu_seconds;
    let mut file: Option<PathBuf> = None;
    let mut args = args.iter();
    while let Some(arg) = args.next() {
        let mut number = |what: &'static str| {
            args.next()
                .and_then(|v| v.parse::<u64>().ok())
                .ok_or(DocumentError::Argument(what))
        };
        match arg.as_str() {
            "--memory-mb" => memory_mb = number("--memory-mb")?,
            "--cpu-seconds" => cpu_seconds = number("--cpu-seconds")?,
            path => file = Some(PathBuf::from(path)),
        }
    }
    let file = file.ok_or(DocumentError::NoDocument)?;
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
    let bytes = std::fs::read(&file).map_err(DocumentError::Read)?;
    Ok(kb::ingest::parse(&file, format, &bytes).map(|blocks| blocks.len()))
}

fn limit(resource: rustix::process::Resource, value: u64) -> Result<(), DocumentError> {
    let limit = rustix::process::Rlimit {
        current: Some(value),
        maximum: Some(value),
    };
    rustix::process::setrlimit(resource, limit).map_err(|source| DocumentError::Rlimit {
        resource: match resource {
            rustix::process::Resource::As => "address space",
            rustix::process::Resource::Cpu => "CPU time",
            rustix::process::Resource::Fsize => "file size",
            _ => "resource",
        },
        source,
    })
}
