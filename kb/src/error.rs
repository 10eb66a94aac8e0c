//! The crate's one error type.

use std::path::PathBuf;

/// Everything that can go wrong in `kb`. Variants name the file or collection involved so the CLI
/// and the admin UI can show the operator what to fix.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A file or directory could not be read or written.
    #[error("{path}: {source}")]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// The underlying I/O error.
        source: std::io::Error,
    },
    /// The file's extension is not one of the supported formats.
    #[error("{path}: unsupported format {extension:?} (supported: txt, md, html, pdf, csv)")]
    UnsupportedFormat {
        /// The file.
        path: PathBuf,
        /// Its extension, empty when it has none.
        extension: String,
    },
    /// The file has a supported extension but its content cannot be parsed.
    #[error("{path}: cannot read as {format}: {reason}")]
    Unreadable {
        /// The file.
        path: PathBuf,
        /// The format it was parsed as (`pdf`, `csv`, …).
        format: &'static str,
        /// What the parser said.
        reason: String,
    },
    /// The file parsed but contains no text to index (e.g. a scanned PDF without a text layer).
    #[error("{path}: no text found")]
    NoText {
        /// The file.
        path: PathBuf,
    },
    /// An agent or document name that cannot be used as a path component.
    #[error("invalid name {name:?}: {reason}")]
    InvalidName {
        /// The rejected name.
        name: String,
        /// Why.
        reason: &'static str,
    },
    /// No document of that name is in the collection.
    #[error("no document {name:?} in this collection")]
    UnknownDocument {
        /// The name asked for.
        name: String,
    },
    /// The collection was built with an embedder of another dimension; `rebuild` it.
    #[error("collection {dir} holds {stored}-dimensional vectors but the embedder makes {embedder}; rebuild the collection")]
    DimensionMismatch {
        /// The collection directory.
        dir: PathBuf,
        /// Dimension on disk.
        stored: usize,
        /// Dimension of the embedder given.
        embedder: usize,
    },
    /// A collection file is corrupt (not a crash leftover that `open` repairs by itself).
    #[error("{path}: corrupt collection file: {reason}")]
    Corrupt {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// The BM25 index failed.
    #[error("BM25 index {dir}: {source}")]
    Index {
        /// The index directory.
        dir: PathBuf,
        /// Tantivy's error.
        source: tantivy::TantivyError,
    },
    /// The embedder failed.
    #[error("embedding failed: {source}")]
    Embed {
        /// The embedder's error.
        source: Box<dyn std::error::Error + Send + Sync>,
    },
}

/// Shorthand used throughout the crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

pub(crate) fn io(path: impl Into<PathBuf>) -> impl FnOnce(std::io::Error) -> Error {
    let path = path.into();
    move |source| Error::Io { path, source }
}
