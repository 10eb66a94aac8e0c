//! Agents' knowledge as `switchboard kb` and the HTTP API both manage it: one [`Knowledge`] per
//! process holds each opened collection behind a lock (writes one at a time, searches together)
//! and answers in the shapes both print.
//!
//! Every method blocks (disk, embedding): call it from a blocking thread. A change reaches calls
//! when the runtime loads the agent again ([`crate::runtime::Runtime::knowledge_changed`], which
//! the API calls after each change; the CLI's changes wait for the daemon's next start).

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError, RwLock};

use kb::Collection;
use serde::Serialize;

use crate::documents::{self, ParseLimits};
use crate::engines::{EngineError, MiniLm};

/// The directory of the embedder in the model set.
const EMBEDDER_DIR: &str = "all-MiniLM-L6-v2";

pub struct Knowledge {
    data_dir: PathBuf,
    embedder: Arc<MiniLm>,
    open: Mutex<HashMap<String, Arc<RwLock<Collection<MiniLm>>>>>,
    /// The program and limits that vet uploads in a child process ([`crate::documents`]);
    /// `None` (the CLI, run by the operator on their own files): parsed here directly.
    isolation: Option<(PathBuf, ParseLimits)>,
}

impl std::fmt::Debug for Knowledge {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Knowledge")
            .field("data_dir", &self.data_dir)
            .finish_non_exhaustive()
    }
}

/// A stored document, as listed.
#[derive(Clone, Debug, Serialize)]
pub struct Document {
    pub name: String,
    pub format: kb::Format,
    pub bytes: u64,
    pub chunks: usize,
    pub sha256: String,
}

/// One search result.
#[derive(Clone, Debug, Serialize)]
pub struct Found {
    /// Reciprocal-rank-fusion score, higher is better.
    pub score: f32,
    /// Cosine similarity to the question, when the vector search found it.
    pub similarity: Option<f32>,
    /// The document.
    pub source: String,
    /// The headings above the passage (`"Prices > Cleaning"`).
    pub heading: String,
    pub bm25_rank: Option<usize>,
    pub vector_rank: Option<usize>,
    pub text: String,
}

/// What happened to an uploaded file.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Uploaded {
    Added,
    Updated,
    /// The same content was there already.
    Unchanged,
}

impl Knowledge {
    pub fn new(data_dir: &Path, embedder: Arc<MiniLm>) -> Self {
        Knowledge {
            data_dir: data_dir.to_owned(),
            embedder,
            open: Mutex::new(HashMap::new()),
            isolation: None,
        }
    }

    /// Uploads are parsed first by `program` in a child process under `limits`.
    pub fn with_isolated_parsing(mut self, program: PathBuf, limits: ParseLimits) -> Self {
        self.isolation = Some((program, limits));
        self
    }

    /// With the embedder loaded from the model set in `models_dir` (what the CLI does; the
    /// daemon shares the one its engines hold).
    pub fn load(data_dir: &Path, models_dir: &Path) -> Result<Self, EngineError> {
        let dir = models_dir.join(EMBEDDER_DIR);
        let embedder = MiniLm::load(&dir).map_err(|e| EngineError::Load {
            what: "embedder",
            path: dir,
            reason: e.to_string(),
        })?;
        Ok(Knowledge::new(data_dir, Arc::new(embedder)))
    }

    pub fn documents(&self, agent: &str) -> kb::Result<Vec<Document>> {
        let collection = self.collection(agent)?;
        let collection = collection.read().unwrap_or_else(PoisonError::into_inner);
        Ok(collection
            .documents()
            .map(|d| Document {
                name: d.name.clone(),
                format: d.format,
                bytes: d.bytes,
                chunks: d.chunk_ids.len(),
                sha256: d.sha256.clone(),
            })
            .collect())
    }

    /// Chunks indexed for `agent`.
    pub fn chunk_count(&self, agent: &str) -> kb::Result<usize> {
        let collection = self.collection(agent)?;
        let count = collection
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .chunk_count();
        Ok(count)
    }

    /// Ingests files and folders (see [`Collection::ingest`]): a file that fails is in the report.
    pub fn ingest(
        &self,
        agent: &str,
        paths: &[PathBuf],
        progress: &mut dyn FnMut(&kb::Progress),
    ) -> kb::Result<kb::IngestReport> {
        let collection = self.collection(agent)?;
        let mut collection = collection.write().unwrap_or_else(PoisonError::into_inner);
        collection.ingest(paths, progress)
    }

    /// Ingests one uploaded file under `file_name`. `Ok(Err(why))` is a file that was refused
    /// (its name, format or content; the error names the file, not where it was staged);
    /// `Err` is the collection failing.
    pub fn ingest_upload(
        &self,
        agent: &str,
        file_name: &str,
        content: &[u8],
    ) -> kb::Result<Result<Uploaded, kb::Error>> {
        if let Err(e) = check_file_name(file_name) {
            return Ok(Err(e));
        }
        let collection = self.collection(agent)?;
        // Staged inside the data dir (same filesystem, private to the service), removed on drop.
        let staging = tempfile::Builder::new()
            .prefix(".upload-")
            .tempdir_in(&self.data_dir)
            .map_err(|source| kb::Error::Io {
                path: self.data_dir.clone(),
                source,
            })?;
        let path = staging.path().join(file_name);
        std::fs::write(&path, content).map_err(|source| kb::Error::Io {
            path: path.clone(),
            source,
        })?;
        if let Some((program, limits)) = &self.isolation {
            if let Err(reason) = documents::vet(program, &path, *limits) {
                tracing::warn!(agent, "upload refused: {reason}");
                let format = kb::Format::of(&path).map_or("document", kb::Format::name);
                return Ok(Err(kb::Error::Unreadable {
                    path: PathBuf::from(file_name),
                    format,
                    reason: reason.to_string(),
                }));
            }
        }
        let mut collection = collection.write().unwrap_or_else(PoisonError::into_inner);
        let mut report = collection.ingest(&[&path], &mut |_| {})?;
        Ok(if let Some((_, why)) = report.failed.pop() {
            Err(named(why, file_name))
        } else if !report.added.is_empty() {
            Ok(Uploaded::Added)
        } else if !report.updated.is_empty() {
            Ok(Uploaded::Updated)
        } else {
            Ok(Uploaded::Unchanged)
        })
    }

    /// Removes a document from both indexes; returns its chunk count.
    pub fn remove(&self, agent: &str, document: &str) -> kb::Result<usize> {
        let collection = self.collection(agent)?;
        let mut collection = collection.write().unwrap_or_else(PoisonError::into_inner);
        collection.remove(document)
    }

    /// The best `k` passages for `question`, as a call would retrieve them.
    pub fn search(&self, agent: &str, question: &str, k: usize) -> kb::Result<Vec<Found>> {
        let collection = self.collection(agent)?;
        let collection = collection.read().unwrap_or_else(PoisonError::into_inner);
        let hits = collection.search_with(question, &kb::SearchOptions { k, source: None })?;
        Ok(hits
            .into_iter()
            .map(|h| Found {
                score: h.score,
                similarity: h.similarity,
                source: h.chunk.source,
                heading: h.chunk.heading_path,
                bm25_rank: h.bm25_rank,
                vector_rank: h.vector_rank,
                text: h.chunk.text,
            })
            .collect())
    }

    /// The agent's collection, opened on first use (which creates it, empty, if needed).
    fn collection(&self, agent: &str) -> kb::Result<Arc<RwLock<Collection<MiniLm>>>> {
        let mut open = self.open.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(c) = open.get(agent) {
            return Ok(Arc::clone(c));
        }
        let c = Collection::open(&self.data_dir, agent, Arc::clone(&self.embedder))?;
        let c = Arc::new(RwLock::new(c));
        open.insert(agent.to_owned(), Arc::clone(&c));
        Ok(c)
    }
}

/// An uploaded file's name becomes the document's name: one plain path component.
fn check_file_name(name: &str) -> kb::Result<()> {
    let ok = !name.is_empty()
        && name.len() <= 255
        && !name.starts_with('.')
        && !name
            .chars()
            .any(|c| c == '/' || c == '\\' || c.is_control());
    if ok {
        Ok(())
    } else {
        Err(kb::Error::InvalidName {
            name: name.to_owned(),
            reason: "a file name: 1-255 bytes, no '/' or '\\', not starting with '.'",
        })
    }
}

/// `e` naming the upload by its file name instead of its staging path.
fn named(e: kb::Error, file_name: &str) -> kb::Error {
    let path = PathBuf::from(file_name);
    match e {
        kb::Error::Io { source, .. } => kb::Error::Io { path, source },
        kb::Error::UnsupportedFormat { extension, .. } => {
            kb::Error::UnsupportedFormat { path, extension }
        }
        kb::Error::Unreadable { format, reason, .. } => kb::Error::Unreadable {
            path,
            format,
            reason,
        },
        kb::Error::NoText { .. } => kb::Error::NoText { path },
        other => other,
    }
}
