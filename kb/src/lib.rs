//! Knowledge for Switchboard agents: the business's own documents, made retrievable.
//!
//! # What it does
//! - **Ingest** plain text, Markdown, HTML, PDF (text layer) and CSV FAQs ([`Format`]) into a
//!   per-agent [`Collection`] under `<data_dir>/kb/<agent>/`. A file that cannot be read yields an
//!   [`Error`] naming it in [`IngestReport::failed`] and the rest still ingest.
//! - **Chunk** into facts: list items, table rows, FAQ pairs, a few sentences (see [`chunking`]);
//!   every [`Chunk`] keeps its source, heading path (`"Prices > Cleaning"`) and position. FAQ rows
//!   are one chunk each.
//! - **Index** each chunk twice: BM25 with English stemming (tantivy) and a vector of the injected
//!   [`models_api::Embedder`] (exact cosine, [`vectors`]). Queries fuse both by reciprocal rank
//!   ([`rank`]), optionally filtered to one source.
//! - **Budget** for the dialog: [`Collection::fits_in_prompt`] gives the whole knowledge as one
//!   block when it fits (cache it in the agent's prompt prefix), else [`Collection::search`] gives
//!   the best snippets within a token budget.
//!
//! # What it does not do
//! No OCR, no DOCX, no network, no model code: the embedder is a generic `E: Embedder` the
//! appliance injects (`models-embed` in production). Token counts are estimates (≈ 4 chars per token).
//!
//! # Invariants
//! - Re-ingesting identical content (SHA-256 per document) changes nothing; changed content
//!   replaces exactly that document's chunks; [`Collection::remove`] removes them from both
//!   indexes and deletes the stored copy.
//! - Originals are stored under `documents/`, so [`Collection::rebuild`] can recreate both
//!   indexes (e.g. for a new embedding model via [`Collection::open_rebuilding`]).
//! - The manifest is written last; an open that finds the indexes disagreeing with it (a crash
//!   mid-write) rebuilds them. Chunk ids are never reused.
//! - One writer per collection at a time (`&mut self`); searches take `&self`. Wrap in an
//!   `RwLock` to share. Every call blocks (embedding, disk): call from a blocking thread.
//!
//! # Example
//! ```ignore
//! let mut kb = Collection::open(data_dir, "reception", embedder)?;
//! let report = kb.ingest(&[docs_dir], &mut |p| eprintln!("{}/{} files, {} chunks", p.files_done, p.files_total, p.chunks))?;
//! for (path, error) in &report.failed { eprintln!("skipped: {error}"); }
//! let context = match kb.fits_in_prompt(2_000) {
//!     Some(all) => all,                                   // small knowledge: prefill once
//!     None => kb.search(question, 5, 600)?.into_iter().map(|s| s.text).collect::<Vec<_>>().join("\n\n"),
//! };
//! ```

#![warn(missing_docs)]

mod bm25;
pub mod chunking;
mod collection;
mod error;
pub mod ingest;
pub mod rank;
pub mod vectors;

pub use collection::{
    agents, collection_dir, estimate_tokens, Chunk, ChunkId, Collection, DocumentInfo, Hit,
    IngestReport, Progress, SearchOptions, Snippet,
};
pub use error::{Error, Result};
pub use ingest::Format;
