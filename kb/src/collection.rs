//! A per-agent collection: stored documents, chunks, the BM25 index and the vector index, kept
//! consistent on disk under `<data_dir>/kb/<agent>/`.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use models_api::Embedder;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::bm25::Bm25;
use crate::chunking;
use crate::error::{io, Error, Result};
use crate::ingest::{self, Format};
use crate::rank;
use crate::vectors::{write_atomically, FlatIndex};

const MANIFEST: &str = "manifest.json";
const CHUNKS: &str = "chunks.jsonl";
const VECTORS: &str = "vectors.f32";
const BM25_DIR: &str = "bm25";
const DOCUMENTS_DIR: &str = "documents";
/// 2: chunks are facts (list items, table rows, sentence groups), see [`chunking`]. A collection
/// of an older version is rebuilt from its stored documents when opened.
const FORMAT_VERSION: u32 = 2;
/// Texts per embedder call during ingestion: large enough to amortise, small enough to report progress.
const EMBED_BATCH: usize = 32;

/// Identifies a chunk within its collection. Never reused, so stale ids cannot alias new chunks.
pub type ChunkId = u64;

/// A retrievable piece of a document.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Chunk {
    /// The chunk's id.
    pub id: ChunkId,
    /// The document's name in the collection (its path relative to what was ingested).
    pub source: String,
    /// Enclosing headings, `"Prices > Cleaning"`; `"FAQ"` for FAQ rows; empty when none.
    pub heading_path: String,
    /// 0-based ordinal of the chunk within its document.
    pub position: u32,
    /// The chunk's text (without the heading path).
    pub text: String,
    /// Byte offset in `text` after the part repeated from the previous chunk (overlap).
    pub fresh_from: usize,
}

/// What the collection knows about one stored document.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DocumentInfo {
    /// Name in the collection.
    pub name: String,
    /// Parsed as.
    pub format: Format,
    /// SHA-256 of the content, hex: re-ingesting identical content is a no-op.
    pub sha256: String,
    /// Size of the stored copy.
    pub bytes: u64,
    /// Its chunks, in document order.
    pub chunk_ids: Vec<ChunkId>,
}

/// Progress of an ingest, reported after every file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Progress {
    /// Files handled so far (ingested, unchanged or failed).
    pub files_done: usize,
    /// Files found in the inputs.
    pub files_total: usize,
    /// Chunks embedded so far.
    pub chunks: usize,
}

/// The outcome of [`Collection::ingest`] or [`Collection::rebuild`].
#[derive(Debug, Default)]
pub struct IngestReport {
    /// Documents new to the collection.
    pub added: Vec<String>,
    /// Documents whose content changed: their old chunks were replaced.
    pub updated: Vec<String>,
    /// Documents already present with identical content: untouched.
    pub unchanged: Vec<String>,
    /// Files that could not be ingested, with why. A failed update keeps the previous version.
    pub failed: Vec<(PathBuf, Error)>,
    /// Chunks added to the indexes.
    pub chunks_added: usize,
    /// Chunks removed from the indexes.
    pub chunks_removed: usize,
}

/// One ranked chunk.
#[derive(Debug, Clone, PartialEq)]
pub struct Hit {
    /// The chunk.
    pub chunk: Chunk,
    /// Reciprocal-rank-fusion score (higher is better; at most 2/61).
    pub score: f32,
    /// 1-based rank in the BM25 list, if it was in it.
    pub bm25_rank: Option<usize>,
    /// 1-based rank in the vector list, if it was in it.
    pub vector_rank: Option<usize>,
    /// Cosine similarity of the chunk's embedding to the query's, if it was in the vector list.
    /// Unlike the fusion score (ranks only) it says how relevant the best hit actually is.
    pub similarity: Option<f32>,
}

/// A search result ready for a prompt.
#[derive(Debug, Clone, PartialEq)]
pub struct Snippet {
    /// The text (possibly truncated to the token budget).
    pub text: String,
    /// Document name.
    pub source: String,
    /// Heading path within the document.
    pub heading_path: String,
    /// Fusion score, higher is better.
    pub score: f32,
    /// Cosine similarity to the query ([`Hit::similarity`]); `None` if only BM25 found it.
    pub similarity: Option<f32>,
    /// Whether BM25 found it (the query shares a stemmed word with it).
    pub keyword_match: bool,
}

/// Options of [`Collection::search_with`].
#[derive(Debug, Clone, Default)]
pub struct SearchOptions {
    /// How many hits to return.
    pub k: usize,
    /// Only chunks of this document.
    pub source: Option<String>,
}

/// Approximate token count of `text` (≈ 4 characters per token for English BPE vocabularies).
/// Good to ±20 % on prose; budgets should keep that margin.
pub fn estimate_tokens(text: &str) -> usize {
    text.chars().count().div_ceil(4)
}

/// `<data_dir>/kb/<agent>/`, after checking `agent` is a safe directory name.
pub fn collection_dir(data_dir: &Path, agent: &str) -> Result<PathBuf> {
    let ok = !agent.is_empty()
        && agent.len() <= 64
        && !agent.starts_with('.')
        && agent
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
    if !ok {
        return Err(Error::InvalidName {
            name: agent.to_owned(),
            reason: "agent names are 1-64 of [A-Za-z0-9._-], not starting with '.'",
        });
    }
    Ok(data_dir.join("kb").join(agent))
}

/// The agents that have a collection under `data_dir`, sorted.
pub fn agents(data_dir: &Path) -> Result<Vec<String>> {
    let dir = data_dir.join("kb");
    let entries = match std::fs::read_dir(&dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => {
            return Err(Error::Io {
                path: dir,
                source: e,
            })
        }
    };
    let mut names = Vec::new();
    for entry in entries {
        let entry = entry.map_err(io(&dir))?;
        if entry.path().join(MANIFEST).exists() {
            names.extend(entry.file_name().to_str().map(str::to_owned));
        }
    }
    names.sort();
    Ok(names)
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct Manifest {
    format_version: u32,
    dimension: usize,
    next_chunk_id: ChunkId,
    documents: BTreeMap<String, DocumentInfo>,
}

/// A document parsed, chunked and embedded, not yet applied.
struct Staged {
    info: DocumentInfo,
    bytes: Vec<u8>,
    chunks: Vec<Chunk>,
    vectors: Vec<Vec<f32>>,
}

/// One agent's knowledge. See the crate docs for the contract.
pub struct Collection<E> {
    dir: PathBuf,
    embedder: Arc<E>,
    manifest: Manifest,
    chunks: BTreeMap<ChunkId, Chunk>,
    vectors: FlatIndex,
    bm25: Bm25,
    /// Embeddings of recent queries and of fact lines: a call's turn embeds its question for
    /// the search and again, with the lines of the best chunk, for [`Self::best_line_similarity`].
    recent: Mutex<HashMap<String, Vec<f32>>>,
}

/// Entries [`Collection::recent`] holds before it starts over (≈ 1.5 KB each).
const RECENT_EMBEDDINGS: usize = 4096;

impl<E> std::fmt::Debug for Collection<E> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Collection")
            .field("dir", &self.dir)
            .field("documents", &self.manifest.documents.len())
            .field("chunks", &self.chunks.len())
            .finish_non_exhaustive()
    }
}

impl<E: Embedder> Collection<E> {
    /// Opens (creating if needed) the collection of `agent` under `<data_dir>/kb/`.
    pub fn open(data_dir: &Path, agent: &str, embedder: Arc<E>) -> Result<Self> {
        Self::open_dir(&collection_dir(data_dir, agent)?, embedder)
    }

    /// Opens (creating if needed) the collection in `dir`. If the indexes disagree with the
    /// manifest (a crash between writes), they are rebuilt from the stored documents.
    pub fn open_dir(dir: &Path, embedder: Arc<E>) -> Result<Self> {
        let mut collection = Self::load(dir, embedder)?;
        if collection.manifest.dimension != collection.embedder.dimension() {
            return Err(Error::DimensionMismatch {
                dir: dir.to_owned(),
                stored: collection.manifest.dimension,
                embedder: collection.embedder.dimension(),
            });
        }
        if collection.manifest.format_version != FORMAT_VERSION || !collection.consistent() {
            collection.rebuild(&mut |_| {})?;
        }
        Ok(collection)
    }

    /// Opens the collection in `dir` and rebuilds both indexes from the stored documents with
    /// `embedder`: the way to switch embedding models (another dimension) or repair by hand.
    pub fn open_rebuilding(
        dir: &Path,
        embedder: Arc<E>,
        progress: &mut dyn FnMut(&Progress),
    ) -> Result<(Self, IngestReport)> {
        let mut collection = Self::load(dir, embedder)?;
        let report = collection.rebuild(progress)?;
        Ok((collection, report))
    }

    fn load(dir: &Path, embedder: Arc<E>) -> Result<Self> {
        std::fs::create_dir_all(dir.join(DOCUMENTS_DIR)).map_err(io(dir))?;
        let manifest_path = dir.join(MANIFEST);
        let fresh = !manifest_path.exists();
        let manifest = if fresh {
            // A leftover index without a manifest belongs to nothing: start clean.
            let bm25_dir = dir.join(BM25_DIR);
            if bm25_dir.exists() {
                std::fs::remove_dir_all(&bm25_dir).map_err(io(&bm25_dir))?;
            }
            Manifest {
                format_version: FORMAT_VERSION,
                dimension: embedder.dimension(),
                next_chunk_id: 0,
                documents: BTreeMap::new(),
            }
        } else {
            let bytes = std::fs::read(&manifest_path).map_err(io(&manifest_path))?;
            let manifest: Manifest =
                serde_json::from_slice(&bytes).map_err(|e| Error::Corrupt {
                    path: manifest_path.clone(),
                    reason: e.to_string(),
                })?;
            if manifest.format_version > FORMAT_VERSION {
                return Err(Error::Corrupt {
                    path: manifest_path,
                    reason: format!("format version {}", manifest.format_version),
                });
            }
            manifest
        };
        let chunks = if fresh {
            BTreeMap::new()
        } else {
            load_chunks(&dir.join(CHUNKS)).unwrap_or_default()
        };
        let vectors = match FlatIndex::load(&dir.join(VECTORS)) {
            Ok(v) if !fresh && v.dimension() == manifest.dimension => v,
            _ => FlatIndex::new(manifest.dimension),
        };
        let bm25 = Bm25::open(&dir.join(BM25_DIR))?;
        let collection = Collection {
            dir: dir.to_owned(),
            embedder,
            manifest,
            chunks,
            vectors,
            bm25,
            recent: Mutex::default(),
        };
        if fresh {
            collection.save()?;
        }
        Ok(collection)
    }

    /// Whether manifest, chunk store, vector index and BM25 index hold the same chunk ids.
    fn consistent(&self) -> bool {
        let expected: BTreeSet<ChunkId> = self
            .manifest
            .documents
            .values()
            .flat_map(|d| d.chunk_ids.iter().copied())
            .collect();
        let vector_ids: BTreeSet<ChunkId> = self.vectors.ids().iter().copied().collect();
        expected.len() == self.chunks.len()
            && expected.iter().eq(self.chunks.keys())
            && expected == vector_ids
            && self.vectors.len() == expected.len()
            && self.bm25.len() == expected.len() as u64
    }

    /// The collection directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Stored documents, by name.
    pub fn documents(&self) -> impl Iterator<Item = &DocumentInfo> {
        self.manifest.documents.values()
    }

    /// Number of chunks indexed.
    pub fn chunk_count(&self) -> usize {
        self.chunks.len()
    }

    /// A chunk by id.
    pub fn chunk(&self, id: ChunkId) -> Option<&Chunk> {
        self.chunks.get(&id)
    }

    /// Ingests files and directories (walked recursively; hidden entries skipped). A file's name
    /// in the collection is its file name, or its path relative to the directory given.
    /// Unchanged content is skipped by hash; changed content replaces the document's chunks.
    /// A file that fails is listed in the report and does not stop the others; `Err` means the
    /// collection itself failed (disk, index, embedder) and nothing of this call was applied
    /// unless the failure came while writing, which the next open repairs.
    pub fn ingest(
        &mut self,
        inputs: &[impl AsRef<Path>],
        progress: &mut dyn FnMut(&Progress),
    ) -> Result<IngestReport> {
        let mut report = IngestReport::default();
        let mut files = Vec::new();
        for input in inputs {
            let input = input.as_ref();
            if let Err(e) = collect_files(input, &mut files) {
                report.failed.push((input.to_owned(), e));
            }
        }
        let mut state = Progress {
            files_done: 0,
            files_total: files.len(),
            chunks: 0,
        };
        let mut staged = Vec::new();
        for (path, name) in files {
            match self.stage(&path, &name, &mut state) {
                Ok(Some(s)) => staged.push(s),
                Ok(None) => report.unchanged.push(name),
                Err(e @ Error::Embed { .. }) => return Err(e),
                Err(e) => report.failed.push((path, e)),
            }
            state.files_done += 1;
            progress(&state);
        }
        self.apply(staged, &mut report)?;
        Ok(report)
    }

    /// Removes a document: its chunks leave both indexes and its stored copy is deleted.
    /// Returns how many chunks were removed.
    pub fn remove(&mut self, name: &str) -> Result<usize> {
        let Some(info) = self.manifest.documents.remove(name) else {
            return Err(Error::UnknownDocument {
                name: name.to_owned(),
            });
        };
        let writer = self.bm25.writer()?;
        for id in &info.chunk_ids {
            self.bm25.delete(&writer, *id);
            self.chunks.remove(id);
        }
        let gone: BTreeSet<ChunkId> = info.chunk_ids.iter().copied().collect();
        self.vectors.retain(|id| !gone.contains(&id));
        self.bm25.commit(writer)?;
        self.save()?;
        let stored = self.dir.join(DOCUMENTS_DIR).join(name);
        match std::fs::remove_file(&stored) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                return Err(Error::Io {
                    path: stored,
                    source: e,
                })
            }
            _ => {}
        }
        Ok(info.chunk_ids.len())
    }

    /// Re-parses, re-chunks and re-embeds every stored document into fresh indexes. A stored
    /// document that no longer parses is reported in `failed` and dropped from the collection.
    pub fn rebuild(&mut self, progress: &mut dyn FnMut(&Progress)) -> Result<IngestReport> {
        let mut report = IngestReport::default();
        let names: Vec<String> = self.manifest.documents.keys().cloned().collect();
        report.chunks_removed = self.chunks.len();
        self.manifest.documents.clear();
        self.manifest.format_version = FORMAT_VERSION;
        self.manifest.dimension = self.embedder.dimension();
        self.chunks.clear();
        self.vectors = FlatIndex::new(self.manifest.dimension);
        let mut writer = self.bm25.writer()?;
        self.bm25.delete_all(&mut writer)?;
        self.bm25.commit(writer)?;
        let mut state = Progress {
            files_done: 0,
            files_total: names.len(),
            chunks: 0,
        };
        let mut staged = Vec::new();
        for name in names {
            let path = self.dir.join(DOCUMENTS_DIR).join(&name);
            match self.stage(&path, &name, &mut state) {
                Ok(Some(s)) => staged.push(s),
                Ok(None) => {}
                Err(e @ Error::Embed { .. }) => return Err(e),
                Err(e) => report.failed.push((path, e)),
            }
            state.files_done += 1;
            progress(&state);
        }
        if staged.is_empty() {
            self.save()?;
        }
        self.apply(staged, &mut report)?;
        Ok(report)
    }

    /// The hybrid search: BM25 and vector candidates fused by reciprocal rank.
    pub fn search_with(&self, query: &str, options: &SearchOptions) -> Result<Vec<Hit>> {
        if options.k == 0 || self.chunks.is_empty() {
            return Ok(Vec::new());
        }
        let candidates = (options.k * 4).max(20);
        let source = options.source.as_deref();
        let keyword = self.bm25.search(query, candidates, source)?;
        let embedded = self.embed_cached(&[query])?;
        let semantic = match embedded.first() {
            Some(q) => self.vectors.search(q, candidates, |id| {
                source.is_none_or(|s| self.chunks.get(&id).is_some_and(|c| c.source == s))
            }),
            None => Vec::new(),
        };
        let keyword: Vec<ChunkId> = keyword.into_iter().map(|(id, _)| id).collect();
        let similarity: HashMap<ChunkId, f32> = semantic.iter().copied().collect();
        let semantic: Vec<ChunkId> = semantic.into_iter().map(|(id, _)| id).collect();
        let fused = rank::reciprocal_rank_fusion(&[&keyword, &semantic]);
        Ok(fused
            .into_iter()
            .filter_map(|f| {
                self.chunks.get(&f.id).map(|chunk| Hit {
                    chunk: chunk.clone(),
                    score: f.score,
                    bm25_rank: f.ranks[0],
                    vector_rank: f.ranks[1],
                    similarity: similarity.get(&f.id).copied(),
                })
            })
            .take(options.k)
            .collect())
    }

    /// The best `k` snippets for `query`, best first, cut so their estimated tokens (text and
    /// heading) stay within `token_budget`. If even the best does not fit, it is truncated at a
    /// word boundary rather than returning nothing.
    pub fn search(&self, query: &str, k: usize, token_budget: usize) -> Result<Vec<Snippet>> {
        let hits = self.search_with(query, &SearchOptions { k, source: None })?;
        Ok(cap_to_budget(hits, token_budget))
    }

    /// The highest cosine similarity between `query` and one line or sentence of `text`. A
    /// chunk holding a list of unrelated facts (hours, parking, insurance) sits far from a
    /// question about one of them; the fact's own line does not.
    pub fn best_line_similarity(&self, query: &str, text: &str) -> Result<f32> {
        let lines: Vec<&str> = text
            .split(['\n', ';'])
            .flat_map(|l| l.split(". "))
            .map(|l| l.trim().trim_start_matches(['-', '*', '#']).trim())
            .filter(|l| l.split_whitespace().count() >= 2)
            .collect();
        if lines.is_empty() {
            return Ok(0.0);
        }
        let mut texts = Vec::with_capacity(lines.len() + 1);
        texts.push(query);
        texts.extend(lines);
        let embedded = self.embed_cached(&texts)?;
        let (q, lines) = embedded.split_first().expect("the query was embedded");
        Ok(lines
            .iter()
            .map(|l| models_api::cosine(q, l))
            .fold(0.0, f32::max))
    }

    /// The whole knowledge as one text block when its estimated size fits `token_budget`, for
    /// cache-augmented generation (prefilled once into the agent's prompt); `None` when it does
    /// not fit and the dialog must retrieve per turn. Overlaps between chunks are not repeated.
    pub fn fits_in_prompt(&self, token_budget: usize) -> Option<String> {
        let fresh_chars: usize = self
            .chunks
            .values()
            .map(|c| c.text.len() - c.fresh_from)
            .sum();
        if fresh_chars / 4 > token_budget {
            return None; // cheap early answer for large collections (bytes ≥ chars)
        }
        let mut out = String::new();
        for document in self.manifest.documents.values() {
            out.push_str(&format!("# {}\n", document.name));
            let mut heading: Option<&str> = None;
            for chunk in document
                .chunk_ids
                .iter()
                .filter_map(|id| self.chunks.get(id))
            {
                if heading != Some(chunk.heading_path.as_str()) {
                    if !chunk.heading_path.is_empty() {
                        out.push_str(&format!("\n## {}\n", chunk.heading_path));
                    }
                    heading = Some(&chunk.heading_path);
                }
                out.push_str(&chunk.text[chunk.fresh_from..]);
                out.push('\n');
            }
            out.push('\n');
        }
        (estimate_tokens(&out) <= token_budget).then_some(out)
    }

    /// [`Self::embed`] through the cache of recent texts: only the texts not in it are embedded.
    /// The lock is held while embedding (a query and a few lines, milliseconds).
    fn embed_cached(&self, texts: &[&str]) -> Result<Vec<Vec<f32>>> {
        let mut cache = self.recent.lock().unwrap_or_else(|p| p.into_inner());
        let mut missing: Vec<&str> = texts
            .iter()
            .copied()
            .filter(|t| !cache.contains_key(*t))
            .collect();
        missing.sort_unstable();
        missing.dedup();
        if !missing.is_empty() {
            let fresh = self.embed(&missing)?;
            if fresh.len() != missing.len() {
                return Err(Error::Embed {
                    source: format!("{} vectors for {} texts", fresh.len(), missing.len()).into(),
                });
            }
            if cache.len() + fresh.len() > RECENT_EMBEDDINGS {
                cache.clear();
            }
            cache.extend(missing.into_iter().map(str::to_owned).zip(fresh));
        }
        Ok(texts.iter().map(|t| cache[*t].clone()).collect())
    }

    fn embed(&self, texts: &[&str]) -> Result<Vec<Vec<f32>>> {
        let embeddings = self.embedder.embed(texts).map_err(|e| Error::Embed {
            source: Box::new(e),
        })?;
        Ok(embeddings.into_iter().map(|e| e.0).collect())
    }

    /// Reads, hashes, parses, chunks and embeds one file; `None` when its content is unchanged.
    fn stage(&self, path: &Path, name: &str, progress: &mut Progress) -> Result<Option<Staged>> {
        let format = Format::of(path)?;
        let bytes = std::fs::read(path).map_err(io(path))?;
        let sha256 = hex::encode(Sha256::digest(&bytes));
        if self
            .manifest
            .documents
            .get(name)
            .is_some_and(|d| d.sha256 == sha256)
        {
            return Ok(None);
        }
        let blocks = ingest::parse(path, format, &bytes)?;
        let pieces = chunking::chunk(&blocks);
        let chunks: Vec<Chunk> = pieces
            .into_iter()
            .enumerate()
            .map(|(position, piece)| Chunk {
                id: 0, // assigned when applied
                source: name.to_owned(),
                heading_path: piece.heading_path,
                position: u32::try_from(position).unwrap_or(u32::MAX),
                text: piece.text,
                fresh_from: piece.fresh_from,
            })
            .collect();
        let texts: Vec<String> = chunks.iter().map(indexed_text).collect();
        let mut vectors = Vec::with_capacity(chunks.len());
        for batch in texts.chunks(EMBED_BATCH) {
            let refs: Vec<&str> = batch.iter().map(String::as_str).collect();
            vectors.extend(self.embed(&refs)?);
            progress.chunks += batch.len();
        }
        let info = DocumentInfo {
            name: name.to_owned(),
            format,
            sha256,
            bytes: bytes.len() as u64,
            chunk_ids: Vec::new(),
        };
        Ok(Some(Staged {
            info,
            bytes,
            chunks,
            vectors,
        }))
    }

    /// Applies staged documents to memory and disk: stored copies, BM25 (one commit), vectors,
    /// chunk store, and the manifest last (it is what says the others are complete).
    fn apply(&mut self, staged: Vec<Staged>, report: &mut IngestReport) -> Result<()> {
        if staged.is_empty() {
            return Ok(());
        }
        let writer = self.bm25.writer()?;
        for Staged {
            mut info,
            bytes,
            chunks,
            vectors,
        } in staged
        {
            let stored = self.dir.join(DOCUMENTS_DIR).join(&info.name);
            if let Some(parent) = stored.parent() {
                std::fs::create_dir_all(parent).map_err(io(parent))?;
            }
            if !same_content(&stored, &bytes) {
                write_atomically(&stored, &bytes)?;
            }
            if let Some(old) = self.manifest.documents.remove(&info.name) {
                for id in &old.chunk_ids {
                    self.bm25.delete(&writer, *id);
                    self.chunks.remove(id);
                }
                let gone: BTreeSet<ChunkId> = old.chunk_ids.iter().copied().collect();
                self.vectors.retain(|id| !gone.contains(&id));
                report.chunks_removed += old.chunk_ids.len();
                report.updated.push(info.name.clone());
            } else {
                report.added.push(info.name.clone());
            }
            for (mut chunk, vector) in chunks.into_iter().zip(vectors) {
                chunk.id = self.manifest.next_chunk_id;
                self.manifest.next_chunk_id += 1;
                self.bm25
                    .add(&writer, chunk.id, &chunk.source, &indexed_text(&chunk))?;
                self.vectors.insert(chunk.id, &vector);
                info.chunk_ids.push(chunk.id);
                self.chunks.insert(chunk.id, chunk);
                report.chunks_added += 1;
            }
            self.manifest.documents.insert(info.name.clone(), info);
        }
        self.bm25.commit(writer)?;
        self.save()
    }

    fn save(&self) -> Result<()> {
        self.vectors.save(&self.dir.join(VECTORS))?;
        let mut lines = Vec::new();
        for chunk in self.chunks.values() {
            serde_json::to_writer(&mut lines, chunk).map_err(|e| Error::Corrupt {
                path: self.dir.join(CHUNKS),
                reason: e.to_string(),
            })?;
            lines.push(b'\n');
        }
        write_atomically(&self.dir.join(CHUNKS), &lines)?;
        let manifest = serde_json::to_vec_pretty(&self.manifest).map_err(|e| Error::Corrupt {
            path: self.dir.join(MANIFEST),
            reason: e.to_string(),
        })?;
        write_atomically(&self.dir.join(MANIFEST), &manifest)
    }
}

/// What both indexes see: the heading path gives short chunks their context.
fn indexed_text(chunk: &Chunk) -> String {
    if chunk.heading_path.is_empty() {
        chunk.text.clone()
    } else {
        format!("{}\n{}", chunk.heading_path, chunk.text)
    }
}

fn same_content(path: &Path, bytes: &[u8]) -> bool {
    std::fs::read(path).is_ok_and(|existing| existing == bytes)
}

fn load_chunks(path: &Path) -> Result<BTreeMap<ChunkId, Chunk>> {
    let text = std::fs::read_to_string(path).map_err(io(path))?;
    let mut chunks = BTreeMap::new();
    for line in text.lines().filter(|l| !l.is_empty()) {
        let chunk: Chunk = serde_json::from_str(line).map_err(|e| Error::Corrupt {
            path: path.to_owned(),
            reason: e.to_string(),
        })?;
        chunks.insert(chunk.id, chunk);
    }
    Ok(chunks)
}

/// Adds `input` (a file, or a directory walked recursively) to `files` as (path, document name).
fn collect_files(input: &Path, files: &mut Vec<(PathBuf, String)>) -> Result<()> {
    let meta = std::fs::metadata(input).map_err(io(input))?;
    if meta.is_file() {
        let name =
            input
                .file_name()
                .and_then(|n| n.to_str())
                .ok_or_else(|| Error::InvalidName {
                    name: input.display().to_string(),
                    reason: "file names must be UTF-8",
                })?;
        files.push((input.to_owned(), name.to_owned()));
        return Ok(());
    }
    let mut stack = vec![input.to_owned()];
    let mut found = Vec::new();
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).map_err(io(&dir))? {
            let path = entry.map_err(io(&dir))?.path();
            if path
                .file_name()
                .and_then(|n| n.to_str())
                .is_none_or(|n| n.starts_with('.'))
            {
                continue;
            }
            if path.is_dir() {
                stack.push(path);
            } else if let Some(name) = path.strip_prefix(input).ok().and_then(|p| p.to_str()) {
                found.push((path.clone(), name.replace(std::path::MAIN_SEPARATOR, "/")));
            }
        }
    }
    found.sort();
    files.extend(found);
    Ok(())
}

/// Keeps hits in order while their estimated tokens fit `budget`.
fn cap_to_budget(hits: Vec<Hit>, budget: usize) -> Vec<Snippet> {
    let mut used = 0;
    let mut out = Vec::new();
    for hit in hits {
        let cost = estimate_tokens(&hit.chunk.text)
            + estimate_tokens(&hit.chunk.heading_path)
            + estimate_tokens(&hit.chunk.source);
        let snippet = |text: String| Snippet {
            text,
            source: hit.chunk.source.clone(),
            heading_path: hit.chunk.heading_path.clone(),
            score: hit.score,
            similarity: hit.similarity,
            keyword_match: hit.bm25_rank.is_some(),
        };
        if used + cost <= budget {
            used += cost;
            out.push(snippet(hit.chunk.text.clone()));
        } else if out.is_empty() {
            let overhead = cost - estimate_tokens(&hit.chunk.text);
            let chars = budget.saturating_sub(overhead) * 4;
            let mut end = hit
                .chunk
                .text
                .char_indices()
                .nth(chars)
                .map_or(hit.chunk.text.len(), |(i, _)| i);
            if end < hit.chunk.text.len() {
                end = hit.chunk.text[..end]
                    .rfind(char::is_whitespace)
                    .unwrap_or(end);
            }
            let text = hit.chunk.text[..end].trim_end().to_owned();
            if !text.is_empty() {
                out.push(snippet(text));
            }
            break;
        } else {
            break;
        }
    }
    out
}
