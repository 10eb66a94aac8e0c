//! One agent's dialog: its prompt prefix (with cached knowledge) or its retrieval collection,
//! shared by every call to that agent.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use kb::Collection;
use models_api::{ChatMessage, Embedder, Llm, LlmSession, Sampling};

use crate::conversation::Conversation;
use crate::error::{llm, Error};
use crate::prompt::{self, Facts};

/// What an agent is, as far as the dialog is concerned.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AgentSpec {
    /// The agent's name; also its knowledge collection's name.
    pub name: String,
    /// The operator's instructions (persona, business, tasks).
    pub prompt: String,
    /// The first thing a caller hears; it starts every conversation's history.
    pub greeting: String,
    /// Files and folders ingested into the agent's collection at load.
    pub knowledge: Vec<PathBuf>,
    /// Language code of the calls (`en`, `de`, …).
    pub language: String,
    /// Whether a human can take over (changes what the agent offers when it does not know).
    pub can_transfer: bool,
}

/// How the agent's knowledge reaches the model.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KnowledgeMode {
    /// The agent has no knowledge documents.
    None,
    /// Cache-augmented: the whole knowledge (≈ `tokens`) is in the prefilled prefix, so a turn
    /// pays no retrieval and no per-turn facts prefill.
    Cached {
        /// Estimated tokens of knowledge in the prefix.
        tokens: usize,
    },
    /// Too large to cache: each turn retrieves snippets from `chunks` indexed chunks.
    Retrieval {
        /// Chunks in the collection.
        chunks: usize,
    },
}

/// Tuning of a [`Dialog`]. The defaults suit the small profile (Qwen2.5 0.5B on 2 cores).
#[derive(Debug, Clone, PartialEq)]
pub struct DialogOptions {
    /// Knowledge up to this many (estimated) tokens is cached in the prefix; larger knowledge is
    /// retrieved per turn. Prefill runs at ≈ 70 tokens/s on 2 cores, paid once per agent at load.
    pub cache_budget_tokens: usize,
    /// Snippets per turn, at most.
    pub snippets: usize,
    /// Token budget of one turn's snippets: they are prefilled on the turn's critical path.
    pub snippet_budget_tokens: usize,
    /// A snippet counts as relevant if its embedding's cosine similarity to the question reaches
    /// this, or BM25 matched it and its similarity reaches [`Self::keyword_similarity`].
    pub min_similarity: f32,
    /// The lower similarity bar for chunks that share a word with the question.
    pub keyword_similarity: f32,
    /// Or, for such a chunk, the bar for its best line ([`kb::Collection::best_line_similarity`]):
    /// a list of unrelated facts is far from a question about one of them as a whole.
    pub keyword_line_similarity: f32,
    /// Upper bound on a reply's tokens (a spoken answer is one or two sentences).
    pub max_reply_tokens: u32,
    /// History (estimated tokens) above which old facts notes, then old turns, are dropped.
    pub history_budget_tokens: usize,
    /// Token selection for replies (extraction is always greedy).
    pub sampling: Sampling,
    /// With cached knowledge, still search each turn (one query embedding, no prefill) and
    /// tell the model when nothing in the knowledge is relevant. Small models otherwise answer
    /// "what's the weather on Mars" from their own imagination despite the rules.
    pub gate_cached: bool,
    /// With cached knowledge, how many facts are searched per turn for the relevance gate and
    /// the grounding check (retrieval mode uses [`Self::snippets`]).
    pub grounding_facts: usize,
    /// Check every reply's figures, days and names against the facts for the question before
    /// it is spoken ([`crate::grounding`]).
    pub grounding: bool,
}

impl Default for DialogOptions {
    fn default() -> Self {
        DialogOptions {
            cache_budget_tokens: 1500,
            snippets: 3,
            snippet_budget_tokens: 350,
            min_similarity: 0.45,
            keyword_similarity: 0.25,
            keyword_line_similarity: 0.3,
            max_reply_tokens: 80,
            history_budget_tokens: 2500,
            sampling: Sampling::Greedy,
            gate_cached: true,
            grounding_facts: 5,
            grounding: true,
        }
    }
}

/// One agent's dialog, built at daemon start and shared by its calls (`Send + Sync`).
pub struct Dialog<L: Llm, E: Embedder> {
    pub(crate) shared: Arc<Shared<L, E>>,
}

/// A handle on the same dialog (its prefix and collection are shared, not copied).
impl<L: Llm, E: Embedder> Clone for Dialog<L, E> {
    fn clone(&self) -> Self {
        Dialog {
            shared: Arc::clone(&self.shared),
        }
    }
}

/// What conversations share.
pub(crate) struct Shared<L: Llm, E: Embedder> {
    pub(crate) llm: Arc<L>,
    pub(crate) embedder: Arc<E>,
    pub(crate) data_dir: PathBuf,
    pub(crate) prefix: L::Prefix,
    /// Searched per turn: for snippets in retrieval mode, for the relevance gate only when the
    /// knowledge is cached (and [`DialogOptions::gate_cached`]).
    pub(crate) collection: Option<Collection<E>>,
    pub(crate) spec: AgentSpec,
    pub(crate) options: DialogOptions,
    pub(crate) mode: KnowledgeMode,
    pub(crate) system_prompt: String,
    pub(crate) failed: Vec<(PathBuf, String)>,
}

impl<L: Llm, E: Embedder> std::fmt::Debug for Dialog<L, E> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Dialog")
            .field("agent", &self.shared.spec.name)
            .field("mode", &self.shared.mode)
            .finish_non_exhaustive()
    }
}

impl<L: Llm, E: Embedder> Dialog<L, E> {
    /// [`Dialog::load_with`] with the default options.
    pub fn load(
        llm: Arc<L>,
        embedder: Arc<E>,
        spec: &AgentSpec,
        data_dir: &Path,
    ) -> Result<Self, Error> {
        Self::load_with(llm, embedder, spec, data_dir, DialogOptions::default())
    }

    /// Ingests `spec.knowledge` into the agent's collection under `data_dir` (unchanged documents
    /// are skipped by hash; documents added with `switchboard kb ingest` stay), chooses cached or
    /// retrieved knowledge by size, and prefills the prompt prefix once. Blocks for seconds (the
    /// prefill): call it at start, off any async worker. A knowledge file that cannot be read does
    /// not stop the agent; it is listed in [`Dialog::knowledge_failures`].
    pub fn load_with(
        llm: Arc<L>,
        embedder: Arc<E>,
        spec: &AgentSpec,
        data_dir: &Path,
        options: DialogOptions,
    ) -> Result<Self, Error> {
        Self::build(llm, embedder, spec, data_dir, options, true, Vec::new())
    }

    /// The dialog again from the agent's collection as it is stored now (documents uploaded or
    /// removed since the load), with the same spec and options: the knowledge mode is chosen
    /// afresh and the prefix prefilled again. The spec's files are not ingested again. Calls
    /// already running keep this dialog; blocks like [`Dialog::load_with`].
    pub fn reload(&self) -> Result<Self, Error> {
        let s = &self.shared;
        Self::build(
            Arc::clone(&s.llm),
            Arc::clone(&s.embedder),
            &s.spec,
            &s.data_dir,
            s.options.clone(),
            false,
            s.failed.clone(),
        )
    }

    fn build(
        llm: Arc<L>,
        embedder: Arc<E>,
        spec: &AgentSpec,
        data_dir: &Path,
        options: DialogOptions,
        ingest: bool,
        mut failed: Vec<(PathBuf, String)>,
    ) -> Result<Self, Error> {
        let knowledge_error = |source| Error::Knowledge {
            agent: spec.name.clone(),
            source: Box::new(source),
        };
        let existing = kb::collection_dir(data_dir, &spec.name)
            .map_err(knowledge_error)?
            .exists();
        let ingest = ingest && !spec.knowledge.is_empty();
        let collection = if existing || ingest {
            let mut collection = Collection::open(data_dir, &spec.name, Arc::clone(&embedder))
                .map_err(knowledge_error)?;
            if ingest {
                let report = collection
                    .ingest(&spec.knowledge, &mut |_| {})
                    .map_err(knowledge_error)?;
                failed = report
                    .failed
                    .into_iter()
                    .map(|(path, e)| (path, e.to_string()))
                    .collect();
            }
            Some(collection).filter(|c| c.chunk_count() > 0)
        } else {
            None
        };
        let (mode, system_prompt, collection) = match collection {
            None => (
                KnowledgeMode::None,
                prompt::system_prompt(spec, Facts::None),
                None,
            ),
            Some(c) => match c.fits_in_prompt(options.cache_budget_tokens) {
                Some(all) => (
                    KnowledgeMode::Cached {
                        tokens: kb::estimate_tokens(&all),
                    },
                    prompt::system_prompt(spec, Facts::Inline(&all)),
                    Some(c).filter(|_| options.gate_cached),
                ),
                None => (
                    KnowledgeMode::Retrieval {
                        chunks: c.chunk_count(),
                    },
                    prompt::system_prompt(spec, Facts::PerTurn),
                    Some(c),
                ),
            },
        };
        let prefix = llm.prefix(&system_prompt).map_err(llm_error)?;
        Ok(Dialog {
            shared: Arc::new(Shared {
                llm,
                embedder,
                data_dir: data_dir.to_owned(),
                prefix,
                collection,
                spec: spec.clone(),
                options,
                mode,
                system_prompt,
                failed,
            }),
        })
    }

    /// A new call's conversation, starting from the prefilled prefix. `memory` is the summary
    /// of earlier calls from this number; it goes in as a short note after the prefix. The
    /// greeting is the first assistant message (the caller has heard it).
    pub fn conversation(&self, memory: Option<&str>) -> Result<Conversation<L, E>, Error> {
        let mut session = self
            .shared
            .llm
            .session(Some(&self.shared.prefix))
            .map_err(llm_error)?;
        let mut base = 1;
        let memory = memory.filter(|m| !m.trim().is_empty());
        if let Some(memory) = memory {
            session.push(ChatMessage::system(prompt::memory_note(memory)));
            base += 1;
        }
        if !self.shared.spec.greeting.trim().is_empty() {
            session.push(ChatMessage::assistant(self.shared.spec.greeting.trim()));
            base += 1;
        }
        Ok(Conversation::new(
            Arc::clone(&self.shared),
            session,
            base,
            memory.map(str::to_owned),
        ))
    }

    /// How the knowledge reaches the model.
    pub fn knowledge_mode(&self) -> KnowledgeMode {
        self.shared.mode
    }

    /// The system prompt prefilled into the prefix (what `switchboard chat` can show).
    pub fn system_prompt(&self) -> &str {
        &self.shared.system_prompt
    }

    /// Knowledge files that could not be ingested at load, with why.
    pub fn knowledge_failures(&self) -> &[(PathBuf, String)] {
        &self.shared.failed
    }
}

fn llm_error<E: std::error::Error + Send + Sync + 'static>(e: E) -> Error {
    llm(e)
}
