//! `verify` and `list`: is what the manifest describes actually on disk?

use std::fs;
use std::path::Path;

use crate::digest::{hash_file, Sha256Digest};
use crate::manifest::{Manifest, ModelFile, Profile, RelPath};
use crate::progress::{Event, Progress};

/// How thoroughly to check.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Presence and size only: milliseconds, for the daemon's start-up check.
    Fast,
    /// Presence, size and sha256 of every byte (a few seconds per GB).
    Full,
}

/// The state of one file (or of one file inside a directory entry).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Status {
    /// Present and matching (in [`Mode::Fast`]: the size matches).
    Ok,
    /// Nothing at that path.
    Missing,
    /// Something other than a regular file (or, for a directory entry, a directory) is there.
    WrongKind,
    /// Present with another size.
    WrongSize {
        /// Size in the manifest.
        expected: u64,
        /// Size on disk.
        actual: u64,
    },
    /// Present with the right size but other content.
    WrongSha256 {
        /// Digest in the manifest.
        expected: Sha256Digest,
        /// Digest of the file on disk.
        actual: Sha256Digest,
    },
    /// Could not be read.
    Unreadable(String),
}

impl Status {
    /// Whether the file is fine.
    pub fn is_ok(&self) -> bool {
        matches!(self, Status::Ok)
    }
}

impl std::fmt::Display for Status {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Status::Ok => f.write_str("ok"),
            Status::Missing => f.write_str("missing"),
            Status::WrongKind => f.write_str("wrong kind (not a regular file / directory)"),
            Status::WrongSize { expected, actual } => {
                write!(f, "wrong size: expected {expected} bytes, found {actual}")
            }
            Status::WrongSha256 { expected, actual } => {
                write!(f, "wrong sha256: expected {expected}, found {actual}")
            }
            Status::Unreadable(e) => write!(f, "unreadable: {e}"),
        }
    }
}

/// One line of a verification report.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileReport {
    /// Manifest name of the entry.
    pub name: String,
    /// The path checked: the entry's path, or for a directory entry with a problem, the
    /// path of the offending file inside it.
    pub path: RelPath,
    /// What was found.
    pub status: Status,
}

/// The result of [`verify`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Report {
    /// The profile checked.
    pub profile: Profile,
    /// How.
    pub mode: Mode,
    /// One line per file, or per problem inside a directory entry.
    pub files: Vec<FileReport>,
}

impl Report {
    /// Whether every file is fine.
    pub fn is_ok(&self) -> bool {
        self.files.iter().all(|f| f.status.is_ok())
    }
    /// The lines that are not ok.
    pub fn problems(&self) -> impl Iterator<Item = &FileReport> {
        self.files.iter().filter(|f| !f.status.is_ok())
    }
}

/// Check every file of `profile` under `dir`. Never fails: I/O problems are reported per file.
pub fn verify(
    manifest: &Manifest,
    profile: Profile,
    dir: &Path,
    mode: Mode,
    progress: &mut dyn Progress,
) -> Report {
    let files = manifest
        .files_for(profile)
        .into_iter()
        .flat_map(|f| {
            if mode == Mode::Full {
                progress.event(Event::Verify { name: &f.name });
            }
            check_entry(dir, f, mode, &mut *progress)
        })
        .collect();
    Report {
        profile,
        mode,
        files,
    }
}

/// One manifest entry as found on disk.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Installed {
    /// Manifest name.
    pub name: String,
    /// Install path.
    pub path: RelPath,
    /// Size in the manifest.
    pub size: u64,
    /// Profiles it belongs to.
    pub profiles: Vec<Profile>,
    /// Fast-mode status (a directory entry is ok only if every file in it is).
    pub status: Status,
}

/// The result of [`list`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Inventory {
    /// Every manifest entry, in manifest order.
    pub files: Vec<Installed>,
    /// Profiles whose files are all present with the right sizes.
    pub complete: Vec<Profile>,
}

/// What of the manifest is installed under `dir` (fast checks: presence and size).
pub fn list(manifest: &Manifest, dir: &Path) -> Inventory {
    let mut quiet = crate::progress::NoProgress;
    let files: Vec<Installed> = manifest
        .files
        .iter()
        .map(|f| {
            let reports = check_entry(dir, f, Mode::Fast, &mut quiet);
            let status = reports
                .into_iter()
                .map(|r| r.status)
                .find(|s| !s.is_ok())
                .unwrap_or(Status::Ok);
            Installed {
                name: f.name.clone(),
                path: f.path.clone(),
                size: f.size,
                profiles: f.profiles.clone(),
                status,
            }
        })
        .collect();
    let complete = Profile::ALL
        .into_iter()
        .filter(|p| {
            files
                .iter()
                .filter(|f| f.profiles.contains(p))
                .all(|f| f.status.is_ok())
        })
        .collect();
    Inventory { files, complete }
}

/// Check one manifest entry: a single `Ok` line, or one line per problem.
pub(crate) fn check_entry(
    dir: &Path,
    f: &ModelFile,
    mode: Mode,
    progress: &mut dyn Progress,
) -> Vec<FileReport> {
    let line = |path: &RelPath, status| FileReport {
        name: f.name.clone(),
        path: path.clone(),
        status,
    };
    let root = f.path.under(dir);
    let Some(tree) = &f.tree else {
        let status = check_file(&root, f.size, f.sha256, mode, |done| {
            progress.event(Event::Bytes {
                name: &f.name,
                done,
                total: f.size,
            })
        });
        return vec![line(&f.path, status)];
    };
    match fs::metadata(&root) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return vec![line(&f.path, Status::Missing)]
        }
        Err(e) => return vec![line(&f.path, Status::Unreadable(e.to_string()))],
        Ok(m) if !m.is_dir() => return vec![line(&f.path, Status::WrongKind)],
        Ok(_) => {}
    }
    let mut done = 0;
    let problems: Vec<FileReport> = tree
        .iter()
        .filter_map(|e| {
            let status = check_file(&e.path.under(&root), e.size, e.sha256, mode, |_| {});
            done += e.size;
            (!status.is_ok()).then(|| line(&f.path.join(&e.path), status))
        })
        .collect();
    if mode == Mode::Full {
        progress.event(Event::Bytes {
            name: &f.name,
            done,
            total: f.size,
        });
    }
    if problems.is_empty() {
        vec![line(&f.path, Status::Ok)]
    } else {
        problems
    }
}

fn check_file(
    path: &Path,
    size: u64,
    sha256: Sha256Digest,
    mode: Mode,
    on_bytes: impl FnMut(u64),
) -> Status {
    let meta = match fs::metadata(path) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Status::Missing,
        Err(e) => return Status::Unreadable(e.to_string()),
        Ok(m) => m,
    };
    if !meta.is_file() {
        return Status::WrongKind;
    }
    if meta.len() != size {
        return Status::WrongSize {
            expected: size,
            actual: meta.len(),
        };
    }
    if mode == Mode::Fast {
        return Status::Ok;
    }
    match hash_file(path, on_bytes) {
        Ok((actual, _)) if actual == sha256 => Status::Ok,
        Ok((actual, _)) => Status::WrongSha256 {
            expected: sha256,
            actual,
        },
        Err(e) => Status::Unreadable(e.to_string()),
    }
}
