//! The crate's one error type. Every variant names the file, package or bundle member it is
//! about, so the CLI can print it as is.

use std::path::PathBuf;

use crate::digest::Sha256Digest;
use crate::manifest::RelPath;

/// Everything that can go wrong in the model manager.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The manifest text is not valid TOML for the schema (unknown field, bad enum value, …).
    #[error("manifest {origin}: {source}")]
    ManifestSyntax {
        /// Where the text came from (`built-in`, a path, `bundle`).
        origin: String,
        #[source]
        source: toml::de::Error,
    },
    /// The manifest parses but is inconsistent (duplicate path, tree digest mismatch, …).
    #[error("manifest {origin}: file {name:?}: {problem}")]
    ManifestInvalid {
        /// Where the text came from.
        origin: String,
        /// The `name` of the offending `[[file]]`.
        name: String,
        /// What is wrong with it.
        problem: String,
    },
    /// A file-system operation failed.
    #[error("{op} {}: {source}", path.display())]
    Io {
        /// What we were doing (`create`, `read`, `rename`, …).
        op: &'static str,
        /// The path it was done to.
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// A helper program (pip, apt-get, dpkg-deb) could not be started.
    #[error("cannot run `{tool}`: {source}")]
    ToolMissing {
        /// The program.
        tool: String,
        #[source]
        source: std::io::Error,
    },
    /// `pip download` exited non-zero.
    #[error("pip download of {} failed ({status}); pip said:\n{stderr_tail}", packages.join(" "))]
    PipFailed {
        /// The `name==version` requirements that were asked for.
        packages: Vec<String>,
        /// Exit status as text (`exit status: 1`, `signal: 9`).
        status: String,
        /// The last lines of pip's stderr.
        stderr_tail: String,
    },
    /// `pip download` succeeded but the expected wheel file is not in the cache.
    #[error("pip reported success but {} is not in the cache {}", wheel, cache.display())]
    WheelNotProduced {
        /// The wheel file name we expected.
        wheel: String,
        /// The download cache directory.
        cache: PathBuf,
    },
    /// `apt-get download` exited non-zero.
    #[error("apt-get download {package}={version} failed ({status}){}; apt-get said:\n{stderr_tail}",
        if *lists_missing { "; the package lists look empty or stale: run `apt-get update` first" } else { "" })]
    AptFailed {
        /// Debian package name.
        package: String,
        /// Debian version.
        version: String,
        /// Exit status as text.
        status: String,
        /// Whether the failure looks like missing package lists (the fix is `apt-get update`).
        lists_missing: bool,
        /// The last lines of apt-get's stderr.
        stderr_tail: String,
    },
    /// `dpkg-deb` failed to unpack a package.
    #[error("dpkg-deb --fsys-tarfile {} failed ({status}): {stderr_tail}", deb.display())]
    DebUnpack {
        /// The .deb.
        deb: PathBuf,
        /// Exit status as text.
        status: String,
        /// The last lines of dpkg-deb's stderr.
        stderr_tail: String,
    },
    /// The offline option is set and a source package is not in the download cache.
    #[error("offline: {what} is not in the download cache {}", cache.display())]
    NotInCache {
        /// The wheel or .deb file name.
        what: String,
        /// The download cache directory.
        cache: PathBuf,
    },
    /// A downloaded source package (wheel or .deb) has the wrong digest or size.
    #[error("source package {}: expected sha256 {expected} ({expected_size} bytes), got {actual} ({actual_size} bytes)", path.display())]
    SourceMismatch {
        /// The downloaded file.
        path: PathBuf,
        /// Digest in the manifest.
        expected: Sha256Digest,
        /// Size in the manifest.
        expected_size: u64,
        /// Digest of the file.
        actual: Sha256Digest,
        /// Size of the file.
        actual_size: u64,
    },
    /// A wheel (zip) is unreadable or lacks a member.
    #[error("wheel {}: {problem}", wheel.display())]
    Wheel {
        /// The wheel file.
        wheel: PathBuf,
        /// What is wrong (missing member `x`, zip error, …).
        problem: String,
    },
    /// A .deb lacks the directory the manifest names, or holds something we do not unpack.
    #[error("deb {}: {problem}", deb.display())]
    Deb {
        /// The .deb.
        deb: PathBuf,
        /// What is wrong.
        problem: String,
    },
    /// The CTranslate2 Whisper model cannot be converted to ggml.
    #[error("CTranslate2 -> ggml conversion for {target}: {problem}")]
    Convert {
        /// The ggml file being produced.
        target: RelPath,
        /// What is wrong with the input.
        problem: crate::ct2_ggml::ConvertProblem,
    },
    /// The GGUF cannot be requantized.
    #[error("Q5_0 -> Q4_0 requantization for {target}: {problem}")]
    Requantize {
        /// The GGUF being produced.
        target: RelPath,
        /// What is wrong with the input.
        problem: crate::gguf_q4_0::Problem,
    },
    /// A produced or installed file does not match the manifest.
    #[error("{path}: expected sha256 {expected}, got {actual}")]
    DigestMismatch {
        /// Install path (relative to the model dir).
        path: RelPath,
        /// Manifest digest.
        expected: Sha256Digest,
        /// Digest of the bytes produced.
        actual: Sha256Digest,
    },
    /// A produced or installed file has the wrong size.
    #[error("{path}: expected {expected} bytes, got {actual}")]
    SizeMismatch {
        /// Install path (relative to the model dir).
        path: RelPath,
        /// Manifest size.
        expected: u64,
        /// Bytes produced.
        actual: u64,
    },
    /// A directory entry produced a file the manifest's tree does not list, or lacks one it lists.
    #[error("{path}: {problem}")]
    TreeMismatch {
        /// The directory's install path.
        path: RelPath,
        /// Which member and how.
        problem: String,
    },
    /// The bundle does not start with `manifest.toml`.
    #[error("bundle {}: first member is {first:?}, expected \"manifest.toml\"", bundle.display())]
    BundleNoManifest {
        /// The bundle file.
        bundle: PathBuf,
        /// What was found first (empty for an empty archive).
        first: String,
    },
    /// The bundle's manifest disagrees with the manifest compiled into this binary.
    #[error("bundle {}: its manifest entry for {path} differs from the built-in manifest ({what}); refusing it", bundle.display())]
    BundleManifestMismatch {
        /// The bundle file.
        bundle: PathBuf,
        /// The install path of the entry.
        path: RelPath,
        /// Which field differs, or `unknown to this binary`.
        what: String,
    },
    /// The bundle holds a member its manifest does not list (or lists twice).
    #[error("bundle {}: unexpected member {member:?}", bundle.display())]
    BundleUnexpectedMember {
        /// The bundle file.
        bundle: PathBuf,
        /// The member path.
        member: String,
    },
    /// The bundle ends before all listed files were read, or inside one.
    #[error("bundle {}: truncated at {member} ({got} of {expected} bytes)", bundle.display())]
    BundleTruncated {
        /// The bundle file.
        bundle: PathBuf,
        /// The first member that is missing or cut short.
        member: String,
        /// Bytes of it present.
        got: u64,
        /// Bytes the manifest lists.
        expected: u64,
    },
    /// A bundle member has the wrong digest (tampered or corrupted).
    #[error("bundle {}: member {member}: expected sha256 {expected}, got {actual}", bundle.display())]
    BundleDigestMismatch {
        /// The bundle file.
        bundle: PathBuf,
        /// The member path.
        member: String,
        /// Manifest digest.
        expected: Sha256Digest,
        /// Digest of the member's bytes.
        actual: Sha256Digest,
    },
    /// A bundle member's size differs from the manifest's.
    #[error("bundle {}: member {member}: {actual} bytes, the manifest says {expected}", bundle.display())]
    BundleSizeMismatch {
        /// The bundle file.
        bundle: PathBuf,
        /// The member path.
        member: String,
        /// Manifest size.
        expected: u64,
        /// Size in the tar header.
        actual: u64,
    },
    /// The bundle archive itself is unreadable.
    #[error("bundle {}: {source}", bundle.display())]
    BundleRead {
        /// The bundle file.
        bundle: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

impl Error {
    pub(crate) fn io(
        op: &'static str,
        path: impl Into<PathBuf>,
    ) -> impl FnOnce(std::io::Error) -> Error {
        let path = path.into();
        move |source| Error::Io { op, path, source }
    }
}

/// Shorthand used across the crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// The last `lines` lines of a program's output, for error messages.
pub(crate) fn tail(bytes: &[u8], lines: usize) -> String {
    let text = String::from_utf8_lossy(bytes);
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}
