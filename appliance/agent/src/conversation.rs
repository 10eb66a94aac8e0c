//! One call's dialog: retrieval, the streamed reply in speakable chunks, barge-in, speculative
//! prefill and the end-of-call outcome.

use std::sync::Arc;
use std::time::{Duration, Instant};

use models_api::{
    CancelToken, ChatMessage, Constraint, Embedder, Flow, GenerateOptions, Llm, LlmSession, Role,
    Sampling, StopReason,
};

use crate::dialog::{KnowledgeMode, Shared};
use crate::error::{llm, Error};
use crate::grounding::{self, Evidence};
use crate::outcome::{self, Outcome};
use crate::prompt;
use crate::speech::SpeechChunker;

/// One reply and what it cost.
#[derive(Debug, Clone, PartialEq)]
pub struct Reply {
    /// The reply as produced (cut short if cancelled); what history holds until [`Conversation::heard`].
    pub text: String,
    /// Time to retrieve snippets (with cached knowledge: the relevance check, if on).
    pub retrieval: Duration,
    /// From the call to the first streamed chunk's first text (retrieval included).
    pub first_token: Duration,
    /// Wall time of the call.
    pub total: Duration,
    /// Prompt tokens decoded for this turn (not found in the KV cache).
    pub prompt_tokens: u32,
    /// Prompt tokens reused from the KV cache.
    pub cached_tokens: u32,
    /// Snippets inserted for this turn (0 with cached knowledge: they are in the prefix).
    pub snippets: usize,
    /// Retrieval found nothing relevant, so the model was told it has no facts for this turn.
    pub no_relevant_facts: bool,
    /// The model's reply stated this claim, which the facts for the question do not: it was
    /// stopped there and the don't-know line said instead ([`crate::grounding`]).
    pub ungrounded: Option<grounding::Claim>,
    /// The cancel token fired or the chunk callback returned [`Flow::Stop`].
    pub cancelled: bool,
    /// Why generation ended.
    pub stop: StopReason,
}

/// What retrieval gave one turn.
#[derive(Default, Clone)]
struct TurnFacts {
    note: Option<String>,
    /// The best snippet's line, to compare a final transcript's retrieval with a partial's.
    top: Option<String>,
    snippets: usize,
    elapsed: Duration,
    none_relevant: bool,
    /// The caller asks about an earlier call: the memory answers it.
    recall: bool,
    /// The facts that passed the relevance gate (heading and text): what the reply may state.
    grounding: Vec<String>,
}

/// A call's conversation (`Send`, driven by one thread at a time).
pub struct Conversation<L: Llm, E: Embedder> {
    shared: Arc<Shared<L, E>>,
    session: L::Session,
    /// Messages that are never dropped: the system prompt, the memory note, the greeting.
    base: usize,
    /// Messages pushed by [`Conversation::prefill_partial`] and not yet replaced by a turn.
    speculative: usize,
    /// The speculative partial and what retrieval gave it.
    speculative_facts: Option<(String, TurnFacts)>,
    /// What earlier calls from this number left behind (also in the memory note).
    memory: Option<String>,
}

impl<L: Llm, E: Embedder> std::fmt::Debug for Conversation<L, E> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Conversation")
            .field("agent", &self.shared.spec.name)
            .field("messages", &self.session.history().len())
            .finish_non_exhaustive()
    }
}

impl<L: Llm, E: Embedder> Conversation<L, E> {
    pub(crate) fn new(
        shared: Arc<Shared<L, E>>,
        session: L::Session,
        base: usize,
        memory: Option<String>,
    ) -> Self {
        Conversation {
            memory,
            shared,
            session,
            base,
            speculative: 0,
            speculative_facts: None,
        }
    }

    /// Answers the caller's turn, streaming speakable chunks to `on_chunk`: the first chunk cut
    /// early at a clause boundary so TTS can start, later chunks whole sentences, never mid-word.
    /// Unless cancelled, the chunks concatenate to [`Reply::text`]. Cancellation (the token or
    /// [`Flow::Stop`]) is a normal outcome: `cancelled` is set, nothing more is streamed, and
    /// the text produced so far stays in history until [`Conversation::heard`] corrects it.
    pub fn reply(
        &mut self,
        caller_text: &str,
        cancel: &CancelToken,
        on_chunk: &mut dyn FnMut(&str) -> Flow,
    ) -> Result<Reply, Error> {
        let started = Instant::now();
        let partial = self.speculative_facts.take();
        self.drop_speculative();
        // The transcript at the pause is most often the final one: its retrieval is done.
        let (mut facts, partial) = match partial {
            Some((text, facts)) if text == caller_text.trim() => (
                TurnFacts {
                    elapsed: Duration::ZERO,
                    ..facts
                },
                None,
            ),
            other => (self.retrieve(caller_text)?, other.map(|(_, facts)| facts)),
        };
        if let Some(partial) = partial {
            // The partial's note is already in the KV cache. Keep it when it holds the final
            // transcript's best snippet too (or both have the same note, or none): a different note would
            // re-prefill every token after it.
            let covers = match (&facts.top, &partial.note) {
                (Some(top), Some(note)) => note.contains(top.as_str()),
                (None, _) => facts.note == partial.note && facts.recall == partial.recall,
                _ => false,
            };
            if covers {
                // The partial's note stays (it is in the KV cache); what the reply may state is
                // what the final words retrieved, not what their first half did.
                facts = TurnFacts {
                    elapsed: facts.elapsed,
                    grounding: facts.grounding,
                    ..partial
                };
            }
        }
        self.compact();
        if facts.none_relevant {
            let line = prompt::dont_know_line(&self.shared.spec);
            return Ok(self.answer_from_code(caller_text, line, facts, started, cancel, on_chunk));
        }
        if let Some(memory) = self.memory.as_deref().filter(|_| facts.recall) {
            let line = prompt::recall_line(memory);
            return Ok(self.answer_from_code(caller_text, line, facts, started, cancel, on_chunk));
        }
        self.push_turn(caller_text, &facts);

        let options = GenerateOptions {
            max_tokens: self.shared.options.max_reply_tokens,
            sampling: self.shared.options.sampling,
            constraint: Constraint::None,
            // A spoken reply is one paragraph; a blank line starts a list or an essay.
            stop: vec!["\n\n".into()],
        };
        let evidence = self.evidence(caller_text, &facts);
        let mut chunker = SpeechChunker::new();
        let mut first: Option<Duration> = None;
        let mut stopped = false;
        // What has been handed to TTS, and the claim that stopped the reply, if any.
        let mut said = String::new();
        let mut ungrounded = None;
        let mut speak = |chunk: &str, said: &mut String| -> Flow {
            if let Some(evidence) = &evidence {
                if let Some(claim) = grounding::check(&format!("{said}{chunk}"), evidence) {
                    ungrounded = Some(claim);
                    return Flow::Stop;
                }
            }
            said.push_str(chunk);
            on_chunk(chunk)
        };
        let generation = self
            .session
            .generate(&options, cancel, &mut |text| {
                if first.is_none() && !text.is_empty() {
                    first = Some(started.elapsed());
                }
                for chunk in chunker.push(text) {
                    if speak(&chunk, &mut said) == Flow::Stop {
                        stopped = true;
                        return Flow::Stop;
                    }
                }
                Flow::Continue
            })
            .map_err(llm)?;
        if !stopped && generation.stop != StopReason::Cancelled {
            if let Some(rest) = chunker.finish() {
                stopped = speak(&rest, &mut said) == Flow::Stop;
            }
        }
        let mut cancelled = stopped || generation.stop == StopReason::Cancelled;
        if !cancelled && evidence.is_some() && grounding::adds_nothing(caller_text, &said) {
            ungrounded = Some(grounding::Claim::Nothing);
        }
        let mut text = generation.text;
        if ungrounded.is_some() {
            let line = if said.trim().is_empty() {
                prompt::dont_know_line(&self.shared.spec)
            } else {
                prompt::unsure_line(&self.shared.spec)
            };
            cancelled = cancel.is_cancelled() || on_chunk(&line) == Flow::Stop;
            text = format!("{} {line}", said.trim_end())
                .trim_start()
                .to_owned();
            // History holds what the caller hears, not the model's stopped draft.
            if self
                .session
                .history()
                .last()
                .is_some_and(|m| m.role == Role::Assistant)
            {
                self.session.pop();
            }
            self.session.push(ChatMessage::assistant(text.clone()));
            if !cancelled {
                let _ = self.session.prefill(cancel);
            }
        }
        Ok(Reply {
            text,
            retrieval: facts.elapsed,
            first_token: first.unwrap_or_else(|| started.elapsed()),
            total: started.elapsed(),
            prompt_tokens: generation.prefilled_tokens,
            cached_tokens: generation.cached_tokens,
            snippets: facts.snippets,
            no_relevant_facts: facts.none_relevant,
            ungrounded,
            cancelled,
            stop: generation.stop,
        })
    }

    /// What this turn's reply may state, or `None` when the check is off: the facts that passed
    /// the gate, the agent's own words (its name) and the caller's.
    fn evidence(&self, caller_text: &str, facts: &TurnFacts) -> Option<Evidence> {
        let shared = &self.shared;
        if !shared.options.grounding {
            return None;
        }
        let known = format!("{}\n{}", shared.spec.prompt, shared.spec.greeting);
        // The caller's own words may be repeated ("a five by ten unit is …"): what they said is
        // not the agent's invention.
        Some(
            Evidence::new(facts.grounding.iter().map(String::as_str), &known)
                .with_caller_words(caller_text, asks_for_information(caller_text)),
        )
    }

    /// A question the knowledge does not cover gets the fixed "I don't know" line, decided in
    /// code: a small model given that instruction sometimes reads the instruction out instead.
    fn answer_from_code(
        &mut self,
        caller_text: &str,
        line: String,
        facts: TurnFacts,
        started: Instant,
        cancel: &CancelToken,
        on_chunk: &mut dyn FnMut(&str) -> Flow,
    ) -> Reply {
        self.session.push(ChatMessage::user(caller_text.trim()));
        self.session.push(ChatMessage::assistant(line.clone()));
        let cancelled = cancel.is_cancelled() || on_chunk(&line) == Flow::Stop;
        let first_token = started.elapsed();
        if !cancelled {
            // Now, while the line plays, rather than on the next turn's critical path. A failure
            // here only leaves the work to that turn.
            let _ = self.session.prefill(cancel);
        }
        Reply {
            text: line,
            retrieval: facts.elapsed,
            first_token,
            total: started.elapsed(),
            prompt_tokens: 0,
            cached_tokens: 0,
            snippets: 0,
            no_relevant_facts: facts.none_relevant,
            ungrounded: None,
            cancelled,
            stop: StopReason::EndOfTurn,
        }
    }

    /// Barge-in: the last reply in history becomes only what the caller heard (nothing heard
    /// removes it), so the next turn answers from what was actually said.
    pub fn heard(&mut self, played_text: &str) {
        let last_is_reply = self
            .session
            .history()
            .last()
            .is_some_and(|m| m.role == Role::Assistant)
            && self.session.history().len() > self.base;
        if !last_is_reply {
            return;
        }
        if played_text.trim().is_empty() {
            self.session.pop();
        } else {
            self.session.truncate_reply(played_text.trim_end());
        }
    }

    /// Speculative prefill on a stable partial transcript: retrieves for it and prefills the
    /// prompt, so that when the final transcript extends the partial, [`Conversation::reply`]
    /// decodes only the difference. Cancellation stops it quietly. Returns the retrieval's time.
    pub fn prefill_partial(
        &mut self,
        partial: &str,
        cancel: &CancelToken,
    ) -> Result<Duration, Error> {
        self.drop_speculative();
        if partial.trim().is_empty() {
            return Ok(Duration::ZERO);
        }
        let facts = self.retrieve(partial)?;
        let retrieval = facts.elapsed;
        if facts.none_relevant || facts.recall {
            // The reply will be a line from code: nothing for the model to prefill.
            self.speculative_facts = Some((partial.trim().to_owned(), facts));
            return Ok(retrieval);
        }
        self.compact();
        if let Some(note) = &facts.note {
            self.session.push(ChatMessage::system(note.clone()));
            self.speculative += 1;
        }
        self.speculative_facts = Some((partial.trim().to_owned(), facts));
        self.session.push(ChatMessage::user(partial.trim()));
        self.speculative += 1;
        self.session.prefill(cancel).map_err(llm)?;
        Ok(retrieval)
    }

    /// Prefills what the conversation starts with (memory note, greeting) while the greeting
    /// plays, so the first turn decodes only the caller's words.
    pub fn prepare(&mut self, cancel: &CancelToken) -> Result<(), Error> {
        if self.session.history().len() > 1 {
            self.session.prefill(cancel).map_err(llm)?;
        }
        Ok(())
    }

    /// End of call: the outcome extracted under a JSON grammar, greedy, from a transcript of
    /// the call's first exchange and its last ones (`OUTCOME_MESSAGES`, each cut to
    /// `OUTCOME_MESSAGE_CHARS`) in a fresh session from the agent's prefix. The work is bounded
    /// however long the call was: extracting from a long call's whole history (with every
    /// turn's facts note) ran past the runtime's time limit and lost the summary. The
    /// conversation's history is left as it was.
    pub fn outcome(&mut self, cancel: &CancelToken) -> Result<Outcome, Error> {
        self.drop_speculative();
        let request = format!(
            "Transcript of the call:\n{}\n\n{}",
            self.transcript_for_outcome(),
            prompt::OUTCOME_REQUEST
        );
        let mut session = self
            .shared
            .llm
            .session(Some(&self.shared.prefix))
            .map_err(llm)?;
        session.push(ChatMessage::user(request));
        let options = GenerateOptions {
            max_tokens: 220,
            sampling: Sampling::Greedy,
            constraint: outcome::constraint(),
            stop: Vec::new(),
        };
        let generated = session
            .generate(&options, cancel, &mut |_| Flow::Continue)
            .map_err(llm)?;
        let mut outcome = outcome::parse(&generated.text)?;
        // A small model fills a required name slot with an invented one ("John Doe"): keep a
        // name only if the caller said it.
        let said = |name: &str| {
            let name = name.to_lowercase();
            self.session
                .history()
                .iter()
                .any(|m| m.role == Role::User && m.content.to_lowercase().contains(&name))
        };
        if outcome.caller_name.as_deref().is_some_and(|n| !said(n)) {
            outcome.caller_name = None;
        }
        Ok(outcome)
    }

    /// "Caller: …" / "Agent: …" lines of the call's first exchange and its last messages.
    fn transcript_for_outcome(&self) -> String {
        let turns: Vec<&ChatMessage> = self.session.history()[self.base..]
            .iter()
            .filter(|m| m.role != Role::System)
            .collect();
        let line = |m: &&ChatMessage| {
            let who = if m.role == Role::User {
                "Caller"
            } else {
                "Agent"
            };
            let text: String = m.content.chars().take(OUTCOME_MESSAGE_CHARS).collect();
            format!("{who}: {text}")
        };
        let tail = turns.len().saturating_sub(OUTCOME_MESSAGES - 2).max(2);
        let mut lines: Vec<String> = turns.iter().take(2.min(tail)).map(line).collect();
        if tail > 2 {
            lines.push("(…)".into());
        }
        lines.extend(turns[tail.min(turns.len())..].iter().map(line));
        lines.join("\n")
    }

    /// The conversation so far (system prompt, notes, turns).
    pub fn history(&self) -> &[ChatMessage] {
        self.session.history()
    }

    /// Pushes the caller's words with the turn's note; returns the messages pushed. Facts go
    /// before the words; "no facts" goes after them, right before the reply, where a small model
    /// heeds it (placed before the question it was ignored).
    fn push_turn(&mut self, text: &str, facts: &TurnFacts) -> usize {
        let note = facts.note.clone().map(ChatMessage::system);
        let words = ChatMessage::user(text.trim());
        let messages = match note {
            Some(note) if facts.none_relevant => vec![words, note],
            Some(note) => vec![note, words],
            None => vec![words],
        };
        let pushed = messages.len();
        for m in messages {
            self.session.push(m);
        }
        pushed
    }

    fn drop_speculative(&mut self) {
        self.speculative_facts = None;
        for _ in 0..std::mem::take(&mut self.speculative) {
            self.session.pop();
        }
    }

    /// The note for this turn: retrieved facts, a "no facts" note, or nothing when the knowledge
    /// is cached in the prefix (or absent); or no note but `recall` when the caller asks about
    /// an earlier call and there is a memory of one.
    fn retrieve(&self, question: &str) -> Result<TurnFacts, Error> {
        // "I called yesterday, how much is whitening?" is a question for the knowledge; only
        // one the knowledge does not answer is about the earlier call.
        let about_earlier_call = self.memory.is_some()
            && asks_for_information(question)
            && refers_to_earlier_call(question);
        let recall = TurnFacts {
            recall: true,
            ..TurnFacts::default()
        };
        let Some(collection) = &self.shared.collection else {
            return Ok(if about_earlier_call {
                recall
            } else {
                TurnFacts::default()
            });
        };
        let cached = matches!(self.shared.mode, KnowledgeMode::Cached { .. });
        let started = Instant::now();
        let o = &self.shared.options;
        let (k, budget) = if cached {
            // The facts' text is in the prefix already; these are for the gate and the grounding
            // check, so no budget applies.
            (o.grounding_facts, usize::MAX / 2)
        } else {
            (o.snippets, o.snippet_budget_tokens)
        };
        let knowledge = |source| Error::Knowledge {
            agent: self.shared.spec.name.clone(),
            source: Box::new(source),
        };
        let snippets = collection.search(question, k, budget).map_err(knowledge)?;
        let mut relevant = Vec::with_capacity(snippets.len());
        for s in snippets {
            let similarity = s.similarity.unwrap_or(0.0);
            let close = similarity >= o.min_similarity
                || (s.keyword_match
                    && (similarity >= o.keyword_similarity
                        || collection
                            .best_line_similarity(question, &s.text)
                            .map_err(knowledge)?
                            >= o.keyword_line_similarity));
            if close {
                relevant.push(s);
            }
        }
        let elapsed = started.elapsed();
        let mut grounding: Vec<String> = relevant.iter().map(prompt::fact_line).collect();
        // A yes/no question about something no relevant fact names: the facts cannot answer it.
        if o.grounding {
            let lines: Vec<&str> = grounding.iter().map(String::as_str).collect();
            if grounding::uncovered(question, &lines).is_some() {
                relevant.clear();
                grounding.clear();
            }
        }
        if relevant.is_empty() && about_earlier_call {
            return Ok(TurnFacts { elapsed, ..recall });
        }
        if relevant.is_empty() && asks_for_information(question) {
            return Ok(TurnFacts {
                note: Some(prompt::no_facts_note(&self.shared.spec)),
                elapsed,
                none_relevant: true,
                ..TurnFacts::default()
            });
        }
        if cached || relevant.is_empty() {
            return Ok(TurnFacts {
                elapsed,
                grounding,
                ..TurnFacts::default()
            });
        }
        Ok(TurnFacts {
            note: Some(prompt::facts_note(&relevant)),
            top: grounding.first().cloned(),
            snippets: relevant.len(),
            elapsed,
            grounding,
            ..TurnFacts::default()
        })
    }

    /// Keeps the history under its budget: first drops facts notes of earlier turns, then the
    /// oldest turns. Each drop re-prefills what follows it, so it happens rarely (long calls).
    fn compact(&mut self) {
        let budget = self.shared.options.history_budget_tokens;
        let size = |h: &[ChatMessage]| -> usize {
            h.iter().map(|m| kb::estimate_tokens(&m.content) + 4).sum()
        };
        if size(self.session.history()) <= budget {
            return;
        }
        let mut tail: Vec<ChatMessage> = Vec::new();
        while self.session.history().len() > self.base {
            if let Some(m) = self.session.pop() {
                tail.push(m);
            }
        }
        tail.reverse();
        tail.retain(|m| m.role != Role::System);
        let fixed = size(self.session.history());
        while !tail.is_empty() && fixed + size(&tail) > budget {
            // Drop a whole exchange: the caller's turn and the replies after it.
            let next_user = tail
                .iter()
                .skip(1)
                .position(|m| m.role == Role::User)
                .map_or(tail.len(), |p| p + 1);
            tail.drain(..next_user);
        }
        for m in tail {
            self.session.push(m);
        }
    }
}

/// Messages of a call the outcome is extracted from: the first exchange and the last ones.
const OUTCOME_MESSAGES: usize = 16;
/// Characters of one message in that transcript.
const OUTCOME_MESSAGE_CHARS: usize = 240;

/// Whether the caller's words ask for information (the only turns the "no facts" note is for:
/// "please call me back tomorrow" must get a normal reply). Transcripts carry `?` for questions;
/// the leading word catches those that lost it.
fn asks_for_information(text: &str) -> bool {
    const QUESTION_WORDS: &[&str] = &[
        "what", "when", "where", "which", "who", "whom", "whose", "why", "how", "do", "does",
        "did", "is", "are", "can", "could", "would", "will", "should", "may", "tell",
    ];
    let text = text.trim();
    text.contains('?')
        || text
            .split(|c: char| !c.is_alphanumeric() && c != '\'')
            .find(|w| !w.is_empty())
            .is_some_and(|w| QUESTION_WORDS.contains(&w.to_lowercase().as_str()))
}

/// Whether the caller asks about an earlier call, which the memory note (not the business's
/// documents) answers.
fn refers_to_earlier_call(text: &str) -> bool {
    const PHRASES: &[&str] = &[
        "last time",
        "last call",
        "previous call",
        "earlier call",
        "called before",
        "called earlier",
        "i called",
        "my call",
        "we spoke",
        "we talked",
        "last week",
    ];
    let text = text.to_lowercase();
    PHRASES.iter().any(|p| text.contains(p))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn questions_and_references_to_earlier_calls() {
        assert!(asks_for_information("What's the weather on Mars?"));
        assert!(asks_for_information("how late are you open"));
        assert!(!asks_for_information(
            "Please call me back tomorrow morning."
        ));
        assert!(!asks_for_information("Thanks, bye."));
        assert!(refers_to_earlier_call("What did I call about last time?"));
        assert!(!refers_to_earlier_call("What does a crown cost?"));
    }
}
