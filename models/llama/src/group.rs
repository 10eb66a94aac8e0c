//! Sessions that share one llama.cpp context, each in a sequence of its own, decoded together.
//!
//! Decoding a small model reads all its weights for every step, however many tokens the step
//! carries: one step with the next token of four replies costs far less than four steps (on 2
//! cores, four replies decode at 70 tokens/s together, one alone at 33). So sessions do not own
//! a context. A [`Group`] holds one, with a sequence (its own KV cache) per session, and
//! every decode step carries the work of every session that has some:
//! - a session hands its tokens to [`Group::decode`] and blocks until they are decoded;
//! - whoever asks while no step runs leads the next one. It waits briefly for the sessions that
//!   were given logits by the last step (their next token is one sampling away), takes every
//!   waiting request's tokens, generation tokens first and then prompt tokens up to the batch
//!   size (a long prompt joins in chunks of at most the batch size, continuing where the last
//!   step stopped), decodes them in one batch, copies out the logits each finished request asked
//!   for, and wakes everyone;
//! - each session samples from its own copy of the logits, so sessions differ in sampler,
//!   grammar and stop rules at no cost to each other.
//!
//! A session alone never waits for anybody: it leads every step with its own tokens.

use std::collections::{HashMap, HashSet};
use std::panic::AssertUnwindSafe;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use llama_cpp_2::context::LlamaContext;
use llama_cpp_2::llama_batch::LlamaBatch;
use llama_cpp_2::model::LlamaModel;
use llama_cpp_2::token::LlamaToken;

use crate::Error;

/// How long a step's leader waits for the sessions it expects. Between two steps a generating
/// session samples and streams one token (well under a millisecond); one that is not back by
/// then is doing something else (waiting for its first audio to play) and joins a later step.
const GATHER: Duration = Duration::from_millis(3);

/// One context, `sequences` sessions.
pub(crate) struct Group {
    // Field order matters: the context borrows the model, and fields drop in declaration order.
    engine: Mutex<Engine>,
    queue: Mutex<Queue>,
    /// Signalled when a step ends, a request arrives or a session stops generating.
    changed: Condvar,
    n_batch: usize,
    /// On the CPU, each step waits for its turn ([`models_api::compute`]).
    cpu: bool,
    counters: Arc<Counters>,
    model: Arc<LlamaModel>,
}

/// Steps and tokens decoded by every context of a model.
#[derive(Debug, Default)]
pub(crate) struct Counters {
    pub(crate) steps: AtomicU64,
    pub(crate) tokens: AtomicU64,
    /// Tokens of steps that carried more than one sequence.
    pub(crate) shared_tokens: AtomicU64,
}

struct Engine {
    context: LlamaContext<'static>,
    batch: LlamaBatch<'static>,
}

// SAFETY: a llama.cpp context has no thread affinity; the mutex around it keeps it to one
// thread at a time. The batch is plain memory.
#[allow(unsafe_code)]
unsafe impl Send for Engine {}

#[derive(Default)]
struct Queue {
    next_id: u64,
    /// Requests with tokens not yet decoded, in arrival order.
    waiting: Vec<Request>,
    /// Finished requests' outcomes, collected by their owners.
    done: HashMap<u64, Result<Option<Vec<f32>>, String>>,
    /// A step is being gathered or decoded.
    stepping: bool,
    /// Sequences that the last step gave logits: they are expected back with their next token.
    expected: HashSet<i32>,
    free: Vec<i32>,
}

struct Request {
    id: u64,
    seq: i32,
    /// Position of `tokens[0]` in the sequence.
    pos: usize,
    tokens: Vec<LlamaToken>,
    /// Tokens already decoded by earlier steps.
    taken: usize,
    /// Where the last token's logits go, if the owner wants them.
    logits: Option<Vec<f32>>,
    /// Asked from a background thread ([`models_api::compute::background`]).
    background: bool,
}

impl Request {
    fn left(&self) -> usize {
        self.tokens.len() - self.taken
    }
}

impl Queue {
    /// Hands each finished request its logits and each failed one the error; expects back the
    /// sequences that were given logits.
    fn finish(&mut self, step: Step, outcome: Result<(), String>) {
        self.expected.clear();
        if let Err(reason) = outcome {
            self.fail(&step.carried, &reason);
            return;
        }
        self.waiting.retain(|r| !step.finished.contains(&r.id));
        let mut logits = HashMap::new();
        for (id, seq, _, buffer) in step.logits {
            self.expected.insert(seq);
            logits.insert(id, buffer);
        }
        for id in step.finished {
            let buffer = logits.remove(&id);
            self.done.insert(id, Ok(buffer));
        }
    }

    /// Fails the requests `ids`, which leave the self.
    fn fail(&mut self, ids: &[u64], reason: &str) {
        self.waiting.retain(|r| !ids.contains(&r.id));
        for &id in ids {
            self.done.insert(id, Err(reason.to_owned()));
        }
    }
}

/// A step: its tokens, and where the finishing requests' logits go.
#[derive(Default)]
struct Step {
    /// (token, position, sequence, logits wanted).
    tokens: Vec<(LlamaToken, i32, i32, bool)>,
    /// Requests this step carries tokens of: a failure reaches them all.
    carried: Vec<u64>,
    /// Requests this step finishes.
    finished: Vec<u64>,
    /// (request, its sequence, its last token's index in the batch, the buffer for its logits).
    logits: Vec<(u64, i32, i32, Vec<f32>)>,
    /// Every token is background work: the step waits for every urgent one.
    background: bool,
}

impl Group {
    pub(crate) fn new(
        context: LlamaContext<'static>,
        model: Arc<LlamaModel>,
        sequences: u32,
        n_batch: u32,
        cpu: bool,
        counters: Arc<Counters>,
    ) -> Group {
        let n_batch = n_batch.max(1) as usize;
        let free = (0..i32::try_from(sequences).unwrap_or(i32::MAX))
            .rev()
            .collect();
        Group {
            engine: Mutex::new(Engine {
                context,
                batch: LlamaBatch::new(n_batch, 1),
            }),
            queue: Mutex::new(Queue {
                free,
                ..Queue::default()
            }),
            changed: Condvar::new(),
            n_batch,
            cpu,
            counters,
            model,
        }
    }

    pub(crate) fn model(&self) -> &Arc<LlamaModel> {
        &self.model
    }

    /// A free sequence, if any.
    pub(crate) fn join(&self) -> Option<i32> {
        self.lock_queue().free.pop()
    }

    /// Gives `seq` back, its KV cache emptied. A sequence whose cache could not be emptied is
    /// never handed out again: its next owner would attend to this session's tokens.
    pub(crate) fn leave(&self, seq: i32) {
        let emptied = self
            .with_context(|c| c.clear_kv_cache_seq(Some(seq as u32), None, None))
            .unwrap_or(false);
        let mut queue = self.lock_queue();
        queue.expected.remove(&seq);
        if emptied {
            queue.free.push(seq);
        }
        drop(queue);
        self.changed.notify_all();
    }

    /// `seq` stops generating for now: the next step's leader need not wait for it.
    pub(crate) fn rest(&self, seq: i32) {
        if self.lock_queue().expected.remove(&seq) {
            self.changed.notify_all();
        }
    }

    /// Runs `f` on the context between steps.
    pub(crate) fn with_context<T>(&self, f: impl FnOnce(&mut LlamaContext<'static>) -> T) -> T {
        let mut engine = self.engine.lock().unwrap_or_else(PoisonError::into_inner);
        f(&mut engine.context)
    }

    /// Decodes `tokens` into `seq` from position `pos`, alongside whatever other sessions have
    /// to decode. With `logits`, returns it filled with the last token's logits.
    pub(crate) fn decode(
        &self,
        seq: i32,
        pos: usize,
        tokens: &[LlamaToken],
        logits: Option<Vec<f32>>,
    ) -> Result<Option<Vec<f32>>, Error> {
        if tokens.is_empty() {
            return Ok(None);
        }
        let mut queue = self.lock_queue();
        let id = queue.next_id;
        queue.next_id += 1;
        queue.waiting.push(Request {
            id,
            seq,
            pos,
            tokens: tokens.to_vec(),
            taken: 0,
            logits,
            background: models_api::compute::in_background(),
        });
        self.changed.notify_all();
        loop {
            if let Some(outcome) = queue.done.remove(&id) {
                return outcome.map_err(Error::Decode);
            }
            if queue.stepping {
                queue = self
                    .changed
                    .wait(queue)
                    .unwrap_or_else(PoisonError::into_inner);
                continue;
            }
            queue.stepping = true;
            queue = self.gather(queue);
            let mut step = take(&mut queue, self.n_batch);
            drop(queue);
            // A panic in llama.cpp's wrapper fails this step's requests, not every session.
            let outcome = std::panic::catch_unwind(AssertUnwindSafe(|| self.step(&mut step)))
                .unwrap_or_else(|_| Err("a decode step panicked".to_owned()));
            queue = self.lock_queue();
            queue.finish(step, outcome);
            queue.stepping = false;
            self.changed.notify_all();
        }
    }

    /// Waits until every expected sequence has a request waiting, or [`GATHER`] has passed.
    fn gather<'a>(&self, mut queue: MutexGuard<'a, Queue>) -> MutexGuard<'a, Queue> {
        let deadline = Instant::now() + GATHER;
        loop {
            let missing = queue
                .expected
                .iter()
                .any(|seq| !queue.waiting.iter().any(|r| r.seq == *seq));
            let left = deadline.saturating_duration_since(Instant::now());
            if !missing || left.is_zero() {
                return queue;
            }
            queue = self
                .changed
                .wait_timeout(queue, left)
                .unwrap_or_else(PoisonError::into_inner)
                .0;
        }
    }

    /// Decodes one step and copies out the logits its finishing requests asked for.
    fn step(&self, step: &mut Step) -> Result<(), String> {
        let Some(&(_, _, first, _)) = step.tokens.first() else {
            return Ok(());
        };
        let mut engine = self.engine.lock().unwrap_or_else(PoisonError::into_inner);
        let Engine { context, batch } = &mut *engine;
        batch.clear();
        for &(token, pos, seq, logits) in &step.tokens {
            batch
                .add(token, pos, &[seq], logits)
                .map_err(|e| e.to_string())?;
        }
        {
            let _mode = models_api::compute::working_in(step.background);
            let _turn = self.cpu.then(models_api::compute::cpu_turn);
            context.decode(batch).map_err(|e| e.to_string())?;
        }
        for (_, _, index, buffer) in &mut step.logits {
            buffer.clear();
            buffer.extend_from_slice(context.get_logits_ith(*index));
        }
        let tokens = step.tokens.len() as u64;
        self.counters.steps.fetch_add(1, Ordering::Relaxed);
        self.counters.tokens.fetch_add(tokens, Ordering::Relaxed);
        if step.tokens.iter().any(|t| t.2 != first) {
            self.counters
                .shared_tokens
                .fetch_add(tokens, Ordering::Relaxed);
        }
        Ok(())
    }

    fn lock_queue(&self) -> MutexGuard<'_, Queue> {
        self.queue.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// The next step's tokens, up to the batch size: urgent replies' next tokens, urgent
/// prompts in arrival order, then background replies' next tokens (they cost next to
/// nothing beside the others), and background prompts only in a step with nothing urgent,
/// so background work never slows a caller's reply ([`models_api::compute`]).
fn take(queue: &mut Queue, n_batch: usize) -> Step {
    let mut order: Vec<usize> = (0..queue.waiting.len()).collect();
    order.sort_by_key(|&i| (queue.waiting[i].background, queue.waiting[i].left() > 1));
    let mut step = Step {
        background: true,
        ..Step::default()
    };
    for i in order {
        let room = n_batch - step.tokens.len();
        let request = &mut queue.waiting[i];
        if room == 0 || (request.background && request.left() > 1 && !step.background) {
            break;
        }
        step.background &= request.background;
        let end = request.taken + request.left().min(room);
        let finishes = end == request.tokens.len();
        let wants = finishes && request.logits.is_some();
        for k in request.taken..end {
            let pos = i32::try_from(request.pos + k).unwrap_or(i32::MAX);
            let last = wants && k + 1 == end;
            step.tokens
                .push((request.tokens[k], pos, request.seq, last));
        }
        request.taken = end;
        step.carried.push(request.id);
        if finishes {
            step.finished.push(request.id);
        }
        if let Some(buffer) = request.logits.take_if(|_| wants) {
            let index = i32::try_from(step.tokens.len() - 1).unwrap_or(i32::MAX);
            step.logits.push((request.id, request.seq, index, buffer));
        }
    }
    step
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(id: u64, seq: i32, tokens: usize, background: bool) -> Request {
        Request {
            id,
            seq,
            pos: 100,
            tokens: vec![LlamaToken(7); tokens],
            taken: 0,
            logits: Some(Vec::new()),
            background,
        }
    }

    fn queue(requests: Vec<Request>) -> Queue {
        Queue {
            waiting: requests,
            ..Queue::default()
        }
    }

    /// (sequence, tokens) of a step, in batch order.
    fn carried(step: &Step) -> Vec<(i32, usize)> {
        let mut out: Vec<(i32, usize)> = Vec::new();
        for &(_, _, seq, _) in &step.tokens {
            match out.last_mut() {
                Some((s, n)) if *s == seq => *n += 1,
                _ => out.push((seq, 1)),
            }
        }
        out
    }

    #[test]
    fn replies_go_first_and_a_long_prompt_joins_in_chunks() {
        let mut q = queue(vec![
            request(1, 0, 300, false),
            request(2, 1, 1, false),
            request(3, 2, 1, false),
        ]);
        let step = take(&mut q, 128);
        assert_eq!(carried(&step), [(1, 1), (2, 1), (0, 126)]);
        assert_eq!(step.finished, [2, 3], "the prompt is not finished yet");
        assert_eq!(step.logits.len(), 2, "only finished requests get logits");
        assert!(!step.background);
        let positions: Vec<i32> = step.tokens[2..].iter().map(|t| t.1).collect();
        assert_eq!(positions, (100..226).collect::<Vec<_>>());

        // The next step goes on where the prompt stopped; its last token alone asks for logits.
        q.waiting.retain(|r| r.id == 1);
        let step = take(&mut q, 128);
        assert_eq!(carried(&step), [(0, 128)]);
        let step = take(&mut q, 128);
        assert_eq!(carried(&step), [(0, 46)]);
        assert_eq!(step.tokens[45].1, 399);
        let wants: Vec<bool> = step.tokens.iter().map(|t| t.3).collect();
        assert_eq!(wants.iter().filter(|w| **w).count(), 1);
        assert!(wants[45]);
        assert_eq!(step.finished, [1]);
    }

    #[test]
    fn background_prompts_wait_for_a_step_with_nothing_urgent() {
        let mut q = queue(vec![
            request(1, 0, 200, true),
            request(2, 1, 1, true),
            request(3, 2, 1, false),
        ]);
        let step = take(&mut q, 512);
        assert_eq!(
            carried(&step),
            [(2, 1), (1, 1)],
            "the urgent reply, and the background reply's token beside it"
        );
        assert!(!step.background, "the step runs as urgent work");

        q.waiting.retain(|r| r.id == 1);
        let step = take(&mut q, 512);
        assert_eq!(carried(&step), [(0, 200)]);
        assert!(step.background);
    }

    #[test]
    fn a_failed_step_fails_what_it_carried_and_nothing_else() {
        let mut q = queue(vec![
            request(1, 0, 300, false),
            request(2, 1, 1, false),
            request(3, 2, 1, true),
        ]);
        let step = take(&mut q, 64);
        assert_eq!(
            step.carried,
            [2, 1],
            "the reply's token and the prompt's first 63; no room for the background reply"
        );
        q.waiting.push(request(4, 3, 1, false));
        q.finish(step, Err("no KV slot".into()));
        for id in [1, 2] {
            assert_eq!(q.done.get(&id), Some(&Err("no KV slot".to_owned())));
        }
        let waiting: Vec<u64> = q.waiting.iter().map(|r| r.id).collect();
        assert_eq!(waiting, [3, 4], "what the step did not carry still waits");
        assert!(!q.done.contains_key(&3) && q.expected.is_empty());
    }

    #[test]
    fn a_finished_step_hands_out_logits_and_expects_those_sessions_back() {
        let mut q = queue(vec![request(1, 0, 10, false), request(2, 1, 1, false)]);
        q.waiting[0].logits = None;
        let mut step = take(&mut q, 64);
        for (_, _, _, buffer) in &mut step.logits {
            buffer.extend([0.5, 1.5]);
        }
        q.finish(step, Ok(()));
        assert_eq!(
            q.done.remove(&1),
            Some(Ok(None)),
            "a prefill without logits"
        );
        assert_eq!(q.done.remove(&2), Some(Ok(Some(vec![0.5, 1.5]))));
        assert!(q.waiting.is_empty());
        assert_eq!(q.expected, HashSet::from([1]));
    }
}
