//! Atomic installation: every file is written under a temporary name next to its final path,
//! checked, and only then renamed. An interrupted run leaves at most a `.NAME.partial` file or
//! directory, which the next run deletes; the final name never holds a half-written file.

use std::collections::HashMap;
use std::fs::{self, File};
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

use crate::digest::{HashingWriter, Sha256Digest};
use crate::error::{Error, Result};
use crate::manifest::{RelPath, TreeEntry};

/// The temporary name used while `final_path` is being produced: `.NAME.partial` beside it.
pub fn partial_path(final_path: &Path) -> PathBuf {
    let name = final_path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    final_path.with_file_name(format!(".{name}.partial"))
}

/// A file being written under its temporary name.
pub(crate) struct StagedFile {
    tmp: PathBuf,
    final_path: PathBuf,
    writer: Option<HashingWriter<BufWriter<File>>>,
}

impl StagedFile {
    /// Start writing `final_path` (parents are created; a stale temp file is replaced).
    pub(crate) fn create(final_path: PathBuf) -> Result<Self> {
        let tmp = partial_path(&final_path);
        Self::create_at(tmp, final_path)
    }

    fn create_at(tmp: PathBuf, final_path: PathBuf) -> Result<Self> {
        if let Some(parent) = tmp.parent() {
            fs::create_dir_all(parent).map_err(Error::io("create directory", parent))?;
        }
        let f = File::create(&tmp).map_err(Error::io("create", &tmp))?;
        Ok(StagedFile {
            tmp,
            final_path,
            writer: Some(HashingWriter::new(BufWriter::with_capacity(1 << 20, f))),
        })
    }

    /// The temporary path (for error messages).
    pub(crate) fn tmp_path(&self) -> &Path {
        &self.tmp
    }

    /// Bytes written so far.
    pub(crate) fn written(&self) -> u64 {
        self.writer.as_ref().map_or(0, HashingWriter::written)
    }

    /// Append bytes.
    pub(crate) fn write_all(&mut self, bytes: &[u8]) -> Result<()> {
        self.writer()
            .write_all(bytes)
            .map_err(Error::io("write", &self.tmp))
    }

    /// The hashing writer (for converters that take `impl Write`).
    pub(crate) fn writer(&mut self) -> &mut HashingWriter<BufWriter<File>> {
        // Invariant: `writer` is only taken by `finish`, which consumes self.
        #[allow(clippy::expect_used)]
        self.writer.as_mut().expect("writer present until finish")
    }

    /// Flush, fsync and check size and digest; on mismatch the temp file is deleted.
    pub(crate) fn finish(
        mut self,
        path: &RelPath,
        size: u64,
        sha256: Sha256Digest,
    ) -> Result<ReadyFile> {
        let (actual, n) = self.close()?;
        if n != size {
            return Err(Error::SizeMismatch {
                path: path.clone(),
                expected: size,
                actual: n,
            });
        }
        if actual != sha256 {
            return Err(Error::DigestMismatch {
                path: path.clone(),
                expected: sha256,
                actual,
            });
        }
        Ok(ReadyFile {
            tmp: std::mem::take(&mut self.tmp),
            final_path: std::mem::take(&mut self.final_path),
        })
    }

    /// Flush and fsync; returns digest and size without judging them.
    pub(crate) fn close(&mut self) -> Result<(Sha256Digest, u64)> {
        // Invariant: close is called once, from finish or finish_unchecked.
        #[allow(clippy::expect_used)]
        let w = self.writer.take().expect("writer present until finish");
        let (buf, digest, n) = w.finish();
        let f = buf.into_inner().map_err(|e| Error::Io {
            op: "write",
            path: self.tmp.clone(),
            source: e.into_error(),
        })?;
        f.sync_all().map_err(Error::io("fsync", &self.tmp))?;
        Ok((digest, n))
    }

    /// After [`StagedFile::close`] and the caller's own check: hand over for the rename.
    pub(crate) fn into_ready(mut self) -> ReadyFile {
        ReadyFile {
            tmp: std::mem::take(&mut self.tmp),
            final_path: std::mem::take(&mut self.final_path),
        }
    }

    /// Flush, fsync and hand over without a check (for outputs whose digest is not known in
    /// advance, such as a bundle).
    pub(crate) fn finish_unchecked(mut self) -> Result<(ReadyFile, Sha256Digest, u64)> {
        let (d, n) = self.close()?;
        Ok((
            ReadyFile {
                tmp: std::mem::take(&mut self.tmp),
                final_path: std::mem::take(&mut self.final_path),
            },
            d,
            n,
        ))
    }
}

impl Drop for StagedFile {
    fn drop(&mut self) {
        if !self.tmp.as_os_str().is_empty() {
            let _ = fs::remove_file(&self.tmp);
        }
    }
}

/// A checked temp file waiting for its rename.
pub(crate) struct ReadyFile {
    tmp: PathBuf,
    final_path: PathBuf,
}

impl ReadyFile {
    /// Rename into place (replacing what was there) and fsync the directory.
    pub(crate) fn commit(mut self) -> Result<()> {
        let tmp = std::mem::take(&mut self.tmp);
        if tmp != self.final_path {
            fs::rename(&tmp, &self.final_path)
                .map_err(Error::io("rename into place", &self.final_path))?;
        }
        sync_parent(&self.final_path);
        Ok(())
    }
}

impl Drop for ReadyFile {
    fn drop(&mut self) {
        if !self.tmp.as_os_str().is_empty() && self.tmp != self.final_path {
            let _ = fs::remove_file(&self.tmp);
        }
    }
}

/// A directory being filled under its temporary name, checked file by file against its tree.
pub(crate) struct StagedDir {
    tmp: PathBuf,
    final_path: PathBuf,
    path: RelPath,
    expected: HashMap<RelPath, (u64, Sha256Digest)>,
    done: Vec<RelPath>,
}

impl StagedDir {
    /// Start filling `final_path`; a stale temp directory is removed.
    pub(crate) fn create(final_path: PathBuf, path: RelPath, tree: &[TreeEntry]) -> Result<Self> {
        let tmp = partial_path(&final_path);
        if tmp.exists() {
            fs::remove_dir_all(&tmp).map_err(Error::io("remove stale", &tmp))?;
        }
        fs::create_dir_all(&tmp).map_err(Error::io("create directory", &tmp))?;
        let expected = tree
            .iter()
            .map(|e| (e.path.clone(), (e.size, e.sha256)))
            .collect();
        Ok(StagedDir {
            tmp,
            final_path,
            path,
            expected,
            done: Vec::new(),
        })
    }

    /// Expected size of a member, or a `TreeMismatch` if the tree does not list it.
    pub(crate) fn expected_size(&self, rel: &RelPath) -> Result<u64> {
        self.expected
            .get(rel)
            .map(|(s, _)| *s)
            .ok_or_else(|| Error::TreeMismatch {
                path: self.path.clone(),
                problem: format!("{rel} is not in the manifest's tree"),
            })
    }

    /// A staged file for one member; pass it back to [`StagedDir::add`] when written.
    pub(crate) fn member(&self, rel: &RelPath) -> Result<StagedFile> {
        self.expected_size(rel)?;
        let p = rel.under(&self.tmp);
        StagedFile::create_at(p.clone(), p)
    }

    /// Check a written member against the tree.
    pub(crate) fn add(&mut self, rel: &RelPath, file: StagedFile) -> Result<()> {
        let (size, sha) = *self.expected.get(rel).ok_or_else(|| Error::TreeMismatch {
            path: self.path.clone(),
            problem: format!("{rel} is not in the manifest's tree"),
        })?;
        let full = self.path.join(rel);
        let ready = file.finish(&full, size, sha)?;
        ready.commit()?;
        self.done.push(rel.clone());
        Ok(())
    }

    /// Record a member the caller has closed and checked against the tree itself.
    pub(crate) fn add_closed(&mut self, rel: &RelPath, file: StagedFile) -> Result<()> {
        self.expected_size(rel)?;
        file.into_ready().commit()?;
        self.done.push(rel.clone());
        Ok(())
    }

    /// Every listed file must be present.
    pub(crate) fn finish(mut self) -> Result<ReadyDir> {
        let done: std::collections::HashSet<&RelPath> = self.done.iter().collect();
        let mut missing: Vec<&RelPath> =
            self.expected.keys().filter(|k| !done.contains(k)).collect();
        missing.sort();
        if let Some(first) = missing.first() {
            return Err(Error::TreeMismatch {
                path: self.path.clone(),
                problem: format!("{} listed file(s) missing, first {first}", missing.len()),
            });
        }
        Ok(ReadyDir {
            tmp: std::mem::take(&mut self.tmp),
            final_path: std::mem::take(&mut self.final_path),
        })
    }
}

impl Drop for StagedDir {
    fn drop(&mut self) {
        if !self.tmp.as_os_str().is_empty() {
            let _ = fs::remove_dir_all(&self.tmp);
        }
    }
}

/// A checked temp directory waiting for its rename.
pub(crate) struct ReadyDir {
    tmp: PathBuf,
    final_path: PathBuf,
}

impl ReadyDir {
    /// Swap into place: an old directory is moved aside first and removed after, so the final
    /// name holds either the old or the new complete tree (or, for an instant, nothing).
    pub(crate) fn commit(mut self) -> Result<()> {
        let tmp = std::mem::take(&mut self.tmp);
        if self.final_path.exists() || self.final_path.is_symlink() {
            let old = self.final_path.with_file_name(format!(
                ".{}.old",
                self.final_path
                    .file_name()
                    .map(|n| n.to_string_lossy().into_owned())
                    .unwrap_or_default()
            ));
            let _ = fs::remove_dir_all(&old);
            fs::rename(&self.final_path, &old)
                .map_err(Error::io("move aside", &self.final_path))?;
            fs::rename(&tmp, &self.final_path)
                .map_err(Error::io("rename into place", &self.final_path))?;
            let _ = fs::remove_dir_all(&old).or_else(|_| fs::remove_file(&old));
        } else {
            fs::rename(&tmp, &self.final_path)
                .map_err(Error::io("rename into place", &self.final_path))?;
        }
        sync_parent(&self.final_path);
        Ok(())
    }
}

impl Drop for ReadyDir {
    fn drop(&mut self) {
        if !self.tmp.as_os_str().is_empty() {
            let _ = fs::remove_dir_all(&self.tmp);
        }
    }
}

/// Make a rename durable. Best effort: some file systems refuse to fsync a directory.
fn sync_parent(path: &Path) {
    if let Some(parent) = path.parent() {
        if let Ok(d) = File::open(parent) {
            let _ = d.sync_all();
        }
    }
}
