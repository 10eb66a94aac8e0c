//! Getting source packages into the download cache with the registries' ordinary clients:
//! `pip download` for wheels, `apt-get download` for Debian packages. A package already in
//! the cache is reused, so a re-run after an interruption only fetches what is missing.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use crate::digest::hash_file;
use crate::error::{tail, Error, Result};
use crate::install::InstallOptions;
use crate::manifest::{DebPackage, WheelMember};

/// Lines of a tool's stderr kept in errors.
const TAIL_LINES: usize = 15;

pub(crate) struct Fetcher<'a> {
    pub(crate) cache: &'a Path,
    pub(crate) opts: &'a InstallOptions,
}

/// Wheels ready in the cache, in the order asked, and how many were there before.
pub(crate) struct Fetched {
    pub(crate) paths: Vec<PathBuf>,
    pub(crate) cached: usize,
}

impl Fetcher<'_> {
    /// Where a wheel lives in the cache, if it is there. pip keeps the index's spelling of the
    /// file name, which may differ in case from the normalised one.
    pub(crate) fn cached_wheel(&self, w: &WheelMember) -> Option<PathBuf> {
        let want = w.wheel_file_name();
        let exact = self.cache.join(&want);
        if exact.is_file() {
            return Some(exact);
        }
        fs::read_dir(self.cache)
            .ok()?
            .filter_map(|e| e.ok())
            .find(|e| e.file_name().to_string_lossy().eq_ignore_ascii_case(&want))
            .map(|e| e.path())
    }

    /// Make sure every wheel is in the cache, downloading the missing ones (one `pip download`
    /// per platform-tag group). `on_fetch(missing)` is called before downloading.
    pub(crate) fn wheels(
        &self,
        wheels: &[&WheelMember],
        on_fetch: impl FnOnce(usize),
    ) -> Result<Fetched> {
        let missing: Vec<&WheelMember> = wheels
            .iter()
            .copied()
            .filter(|w| self.cached_wheel(w).is_none())
            .collect();
        let cached = wheels.len() - missing.len();
        if !missing.is_empty() {
            if self.opts.offline {
                return Err(Error::NotInCache {
                    what: missing[0].wheel_file_name(),
                    cache: self.cache.to_path_buf(),
                });
            }
            on_fetch(missing.len());
            let mut groups: BTreeMap<Vec<String>, Vec<String>> = BTreeMap::new();
            for w in &missing {
                groups
                    .entry(w.tags.pip_args())
                    .or_default()
                    .push(w.requirement());
            }
            for (platform, reqs) in groups {
                self.pip_download(&platform, &reqs)?;
            }
        }
        let paths = wheels
            .iter()
            .map(|w| {
                self.cached_wheel(w).ok_or_else(|| Error::WheelNotProduced {
                    wheel: w.wheel_file_name(),
                    cache: self.cache.to_path_buf(),
                })
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(Fetched { paths, cached })
    }

    fn pip_download(&self, platform: &[String], reqs: &[String]) -> Result<()> {
        let mut cmd = Command::new(&self.opts.pip);
        cmd.args([
            "download",
            "--no-deps",
            "--only-binary=:all:",
            "--disable-pip-version-check",
            "--no-input",
        ])
        // Our cache is the cache: pip's own HTTP cache would keep a second copy of every model.
        .arg("--no-cache-dir")
        .arg("-d")
        .arg(self.cache)
        .args(platform)
        .args(reqs)
        .stdin(Stdio::null());
        let out = cmd.output().map_err(|source| Error::ToolMissing {
            tool: self.opts.pip.display().to_string(),
            source,
        })?;
        if !out.status.success() {
            return Err(Error::PipFailed {
                packages: reqs.to_vec(),
                status: out.status.to_string(),
                stderr_tail: tail(&out.stderr, TAIL_LINES),
            });
        }
        Ok(())
    }

    /// Make sure the .deb is in the cache with the pinned digest; returns its path and whether
    /// it was cached already.
    pub(crate) fn deb(&self, deb: &DebPackage, on_fetch: impl FnOnce()) -> Result<(PathBuf, bool)> {
        let path = self.cache.join(deb.file_name());
        if path.is_file() {
            if check_deb(&path, deb).is_ok() {
                return Ok((path, true));
            }
            // A half-downloaded or foreign file: fetch it again.
            fs::remove_file(&path).map_err(Error::io("remove", &path))?;
        }
        if self.opts.offline {
            return Err(Error::NotInCache {
                what: deb.file_name(),
                cache: self.cache.to_path_buf(),
            });
        }
        on_fetch();
        let spec = format!("{}={}", deb.package, deb.version);
        let out = Command::new(&self.opts.apt_get)
            .args(["download", spec.as_str()])
            .current_dir(self.cache)
            .stdin(Stdio::null())
            .output()
            .map_err(|source| Error::ToolMissing {
                tool: self.opts.apt_get.display().to_string(),
                source,
            })?;
        if !out.status.success() {
            let stderr = String::from_utf8_lossy(&out.stderr);
            let lists_missing = [
                "Unable to locate package",
                "has no installation candidate",
                "was not found",
                "Can't select",
            ]
            .iter()
            .any(|s| stderr.contains(s));
            return Err(Error::AptFailed {
                package: deb.package.clone(),
                version: deb.version.clone(),
                status: out.status.to_string(),
                lists_missing,
                stderr_tail: tail(&out.stderr, TAIL_LINES),
            });
        }
        check_deb(&path, deb)?;
        Ok((path, false))
    }

    /// Delete cached source files (before a retry).
    pub(crate) fn evict(&self, paths: &[PathBuf]) {
        for p in paths {
            let _ = fs::remove_file(p);
        }
    }
}

fn check_deb(path: &Path, deb: &DebPackage) -> Result<()> {
    let (actual, actual_size) = hash_file(path, |_| {})?;
    if actual != deb.sha256 || actual_size != deb.size {
        return Err(Error::SourceMismatch {
            path: path.to_path_buf(),
            expected: deb.sha256,
            expected_size: deb.size,
            actual,
            actual_size,
        });
    }
    Ok(())
}
