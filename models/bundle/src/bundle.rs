//! Offline bundles: one uncompressed tar (model weights do not compress) holding
//! `manifest.toml` first, then every file of a profile under its install path (a directory
//! entry as its individual files). [`import`] trusts nothing in it: the bundle's manifest must
//! agree with the manifest compiled into the binary, and every member must hash to it.

use std::collections::HashMap;
use std::fs::File;
use std::io::{BufReader, Read, Write};
use std::path::Path;

use crate::digest::{HashingWriter, Sha256Digest};
use crate::error::{Error, Result};
use crate::manifest::{Manifest, ModelFile, Profile, RelPath};
use crate::progress::{Event, Progress};
use crate::stage::{ReadyDir, ReadyFile, StagedDir, StagedFile};

/// Name of the first member.
pub const MANIFEST_MEMBER: &str = "manifest.toml";

/// Largest manifest an import reads (the real one is ~80 kB).
const MANIFEST_LIMIT: u64 = 16 << 20;

/// What [`bundle`] wrote.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BundleReport {
    /// Manifest entries included.
    pub entries: usize,
    /// Tar members written (files, with directory entries expanded), manifest excluded.
    pub members: usize,
    /// Size of the bundle file.
    pub bytes: u64,
    /// SHA-256 of the bundle file (to publish next to it).
    pub sha256: Sha256Digest,
}

/// What [`import`] installed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImportReport {
    /// Install paths of the entries installed.
    pub installed: Vec<RelPath>,
    /// The profile whose file set the bundle matches exactly, if any.
    pub profile: Option<Profile>,
    /// Bytes installed.
    pub bytes: u64,
}

/// Write `profile`'s files from `dir` into the bundle `out_file` (via `.NAME.partial` and a
/// rename). Every file is hashed while it is copied; a file that does not match the manifest
/// aborts the bundle (run `install` or `verify` first).
pub fn bundle(
    manifest: &Manifest,
    profile: Profile,
    dir: &Path,
    out_file: &Path,
    progress: &mut dyn Progress,
) -> Result<BundleReport> {
    let sub = manifest.restricted_to(profile);
    let mut staged = StagedFile::create(out_file.to_path_buf())?;
    let tmp = staged.tmp_path().to_path_buf();
    let mut members = 0;
    {
        let mut tar = tar::Builder::new(staged.writer());
        let text = sub.to_toml();
        append(
            &mut tar,
            MANIFEST_MEMBER,
            text.len() as u64,
            text.as_bytes(),
            &tmp,
        )?;
        for (k, f) in sub.files.iter().enumerate() {
            progress.event(Event::Begin {
                name: &f.name,
                path: &f.path,
                index: k + 1,
                count: sub.files.len(),
                size: f.size,
            });
            for (rel, size, sha256) in members_of(f) {
                let src = rel.under(dir);
                let file = File::open(&src).map_err(Error::io("open", &src))?;
                let len = file.metadata().map_err(Error::io("stat", &src))?.len();
                if len != size {
                    return Err(Error::SizeMismatch {
                        path: rel,
                        expected: size,
                        actual: len,
                    });
                }
                let mut reader = HashingReader::new(BufReader::with_capacity(1 << 20, file));
                append(&mut tar, rel.as_str(), size, &mut reader, &tmp)?;
                let actual = reader.digest();
                if actual != sha256 {
                    return Err(Error::DigestMismatch {
                        path: rel,
                        expected: sha256,
                        actual,
                    });
                }
                members += 1;
            }
            progress.event(Event::Installed {
                name: &f.name,
                bytes: f.size,
            });
        }
        tar.finish().map_err(Error::io("write", &tmp))?;
    }
    let (ready, sha256, bytes) = staged.finish_unchecked()?;
    ready.commit()?;
    Ok(BundleReport {
        entries: sub.files.len(),
        members,
        bytes,
        sha256,
    })
}

fn append<W: Write>(
    tar: &mut tar::Builder<W>,
    path: &str,
    size: u64,
    data: impl Read,
    out: &Path,
) -> Result<()> {
    // Deterministic headers: same inputs, same bundle bytes.
    let mut h = tar::Header::new_gnu();
    h.set_size(size);
    h.set_mode(0o644);
    h.set_mtime(0);
    h.set_uid(0);
    h.set_gid(0);
    h.set_entry_type(tar::EntryType::Regular);
    tar.append_data(&mut h, path, data)
        .map_err(Error::io("write", out))
}

/// The tar members of one entry: `(path, size, sha256)`.
fn members_of(f: &ModelFile) -> Vec<(RelPath, u64, Sha256Digest)> {
    match &f.tree {
        None => vec![(f.path.clone(), f.size, f.sha256)],
        Some(tree) => tree
            .iter()
            .map(|e| (f.path.join(&e.path), e.size, e.sha256))
            .collect(),
    }
}

/// Install the files of `bundle_file` into `dir` without any network.
///
/// The bundle's own manifest must list only entries that are identical (path, size, sha256,
/// tree, source) to entries of `trusted` — pass [`Manifest::builtin`] — so a bundle whose
/// manifest was edited together with a file is refused. Every member is written to a temp
/// file and hashed; only when *all* of them match are they renamed into place, so a truncated
/// or tampered bundle installs nothing.
pub fn import(
    trusted: &Manifest,
    bundle_file: &Path,
    dir: &Path,
    progress: &mut dyn Progress,
) -> Result<ImportReport> {
    let bundle_err = |source| Error::BundleRead {
        bundle: bundle_file.to_path_buf(),
        source,
    };
    let file = File::open(bundle_file).map_err(Error::io("open", bundle_file))?;
    let mut archive = tar::Archive::new(BufReader::with_capacity(1 << 20, file));
    let mut entries = archive.entries().map_err(bundle_err)?;

    // 1. The manifest, cross-checked against the trusted one.
    let first = entries.next().transpose().map_err(bundle_err)?;
    let Some(mut first) = first else {
        return Err(Error::BundleNoManifest {
            bundle: bundle_file.to_path_buf(),
            first: String::new(),
        });
    };
    let first_path = first
        .path()
        .map_err(bundle_err)?
        .to_string_lossy()
        .into_owned();
    if first_path != MANIFEST_MEMBER || first.size() > MANIFEST_LIMIT {
        return Err(Error::BundleNoManifest {
            bundle: bundle_file.to_path_buf(),
            first: first_path,
        });
    }
    let mut raw = Vec::new();
    first.read_to_end(&mut raw).map_err(bundle_err)?;
    if raw.len() as u64 != first.size() {
        return Err(Error::BundleTruncated {
            bundle: bundle_file.to_path_buf(),
            member: MANIFEST_MEMBER.to_owned(),
            got: raw.len() as u64,
            expected: first.size(),
        });
    }
    let text = String::from_utf8(raw)
        .map_err(|e| bundle_err(std::io::Error::new(std::io::ErrorKind::InvalidData, e)))?;
    let inner = Manifest::parse(&text, &format!("in bundle {}", bundle_file.display()))?;
    for f in &inner.files {
        let mismatch = |what: &str| Error::BundleManifestMismatch {
            bundle: bundle_file.to_path_buf(),
            path: f.path.clone(),
            what: what.to_owned(),
        };
        let Some(t) = trusted.file_at(&f.path) else {
            return Err(mismatch("unknown to this binary"));
        };
        let differs = if t.sha256 != f.sha256 {
            Some("sha256")
        } else if t.size != f.size {
            Some("size")
        } else if t.tree != f.tree {
            Some("tree")
        } else if t.name != f.name || t.source != f.source || t.role != f.role {
            Some("name, role or source")
        } else {
            None
        };
        if let Some(what) = differs {
            return Err(mismatch(what));
        }
    }

    // 2. Every member into staging, hashed on the way.
    enum Stage {
        File(Option<StagedFile>),
        Dir(StagedDir),
    }
    let mut stages: Vec<Stage> = Vec::new();
    // member path -> (stage index, path inside a directory entry, size, sha256)
    let mut expected: HashMap<String, (usize, Option<RelPath>, u64, Sha256Digest)> = HashMap::new();
    let mut order: Vec<String> = Vec::new();
    let mut readies: Vec<Option<ReadyFile>> = Vec::new();
    for (k, f) in inner.files.iter().enumerate() {
        match &f.tree {
            None => {
                stages.push(Stage::File(None));
                expected.insert(f.path.to_string(), (k, None, f.size, f.sha256));
                order.push(f.path.to_string());
            }
            Some(tree) => {
                stages.push(Stage::Dir(StagedDir::create(
                    f.path.under(dir),
                    f.path.clone(),
                    tree,
                )?));
                for e in tree {
                    let member = f.path.join(&e.path).to_string();
                    expected.insert(member.clone(), (k, Some(e.path.clone()), e.size, e.sha256));
                    order.push(member);
                }
            }
        }
        readies.push(None);
    }
    let total = inner.files.len();
    let mut begun = vec![false; total];
    let mut seen: HashMap<String, ()> = HashMap::new();
    for entry in entries {
        let mut entry = match entry {
            Ok(e) => e,
            // A damaged header after the last complete member: report the first missing one.
            Err(e) => match order.iter().find(|m| !seen.contains_key(*m)) {
                Some(m) => {
                    let expected = expected.get(m).map_or(0, |x| x.2);
                    return Err(Error::BundleTruncated {
                        bundle: bundle_file.to_path_buf(),
                        member: m.clone(),
                        got: 0,
                        expected,
                    });
                }
                None => return Err(bundle_err(e)),
            },
        };
        let member = entry
            .path()
            .map_err(bundle_err)?
            .to_string_lossy()
            .into_owned();
        let Some((k, inside, size, sha256)) = expected.get(&member).cloned() else {
            return Err(Error::BundleUnexpectedMember {
                bundle: bundle_file.to_path_buf(),
                member,
            });
        };
        if seen.insert(member.clone(), ()).is_some() {
            return Err(Error::BundleUnexpectedMember {
                bundle: bundle_file.to_path_buf(),
                member,
            });
        }
        if entry.size() != size {
            return Err(Error::BundleSizeMismatch {
                bundle: bundle_file.to_path_buf(),
                member,
                expected: size,
                actual: entry.size(),
            });
        }
        let f = &inner.files[k];
        if !begun[k] {
            begun[k] = true;
            progress.event(Event::Begin {
                name: &f.name,
                path: &f.path,
                index: k + 1,
                count: total,
                size: f.size,
            });
        }
        let mut out = match (&mut stages[k], &inside) {
            (Stage::Dir(d), Some(rel)) => d.member(rel)?,
            (Stage::File(_), None) => StagedFile::create(f.path.under(dir))?,
            _ => {
                return Err(Error::BundleUnexpectedMember {
                    bundle: bundle_file.to_path_buf(),
                    member,
                })
            }
        };
        let got =
            copy_counted(&mut entry, &mut out, &f.name, size, progress).map_err(|e| match e {
                CopyError::Read(e) => bundle_err(e),
                CopyError::Write(e) => e,
            })?;
        if got != size {
            return Err(Error::BundleTruncated {
                bundle: bundle_file.to_path_buf(),
                member,
                got,
                expected: size,
            });
        }
        let (actual, _) = out.close()?;
        if actual != sha256 {
            return Err(Error::BundleDigestMismatch {
                bundle: bundle_file.to_path_buf(),
                member,
                expected: sha256,
                actual,
            });
        }
        match (&mut stages[k], inside) {
            (Stage::Dir(d), Some(rel)) => d.add_closed(&rel, out)?,
            (Stage::File(slot), None) => {
                *slot = None;
                readies[k] = Some(out.into_ready());
            }
            _ => {}
        }
    }
    if let Some(m) = order.iter().find(|m| !seen.contains_key(*m)) {
        let expected = expected.get(m).map_or(0, |x| x.2);
        return Err(Error::BundleTruncated {
            bundle: bundle_file.to_path_buf(),
            member: m.clone(),
            got: 0,
            expected,
        });
    }

    // 3. All verified: rename everything into place.
    let mut dirs: Vec<ReadyDir> = Vec::new();
    for s in stages {
        if let Stage::Dir(d) = s {
            dirs.push(d.finish()?);
        }
    }
    for r in readies.into_iter().flatten() {
        r.commit()?;
    }
    for d in dirs {
        d.commit()?;
    }
    for f in &inner.files {
        progress.event(Event::Installed {
            name: &f.name,
            bytes: f.size,
        });
    }
    let mut paths: Vec<&RelPath> = inner.files.iter().map(|f| &f.path).collect();
    paths.sort();
    let profile = Profile::ALL.into_iter().find(|p| {
        let mut want: Vec<&RelPath> = trusted.files_for(*p).into_iter().map(|f| &f.path).collect();
        want.sort();
        want == paths
    });
    Ok(ImportReport {
        installed: inner.files.iter().map(|f| f.path.clone()).collect(),
        profile,
        bytes: inner.files.iter().map(|f| f.size).sum(),
    })
}

enum CopyError {
    Read(std::io::Error),
    Write(Error),
}

/// Copy at most `limit` bytes; a short count means the archive ended early.
fn copy_counted(
    r: &mut impl Read,
    out: &mut StagedFile,
    name: &str,
    limit: u64,
    progress: &mut dyn Progress,
) -> Result<u64, CopyError> {
    let mut buf = vec![0u8; 1 << 20];
    let mut got = 0u64;
    let mut reported = 0u64;
    while got < limit {
        let n = match r.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => break,
            Err(e) => return Err(CopyError::Read(e)),
        };
        out.write_all(&buf[..n]).map_err(CopyError::Write)?;
        got += n as u64;
        if got - reported >= 8 << 20 {
            reported = got;
            progress.event(Event::Bytes {
                name,
                done: got,
                total: limit,
            });
        }
    }
    Ok(got)
}

/// A reader that hashes what passes through it.
struct HashingReader<R> {
    inner: R,
    sink: HashingWriter<std::io::Sink>,
}

impl<R: Read> HashingReader<R> {
    fn new(inner: R) -> Self {
        HashingReader {
            inner,
            sink: HashingWriter::new(std::io::sink()),
        }
    }
    fn digest(self) -> Sha256Digest {
        self.sink.finish().1
    }
}

impl<R: Read> Read for HashingReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.sink.write_all(&buf[..n])?;
        Ok(n)
    }
}
