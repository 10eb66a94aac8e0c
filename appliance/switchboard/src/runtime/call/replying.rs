//! Replying: speculative prefill on partial transcripts, the reply's chunks through the TTS
//! thread to the line, and when a reply is over, interrupted or overdue.

use super::*;

/// How long the LLM holds off after a reply's first chunk while Piper renders it: on a small
/// box both want every core, and the caller is waiting for that first audio, not for the rest.
const FIRST_AUDIO_WAIT: Duration = Duration::from_millis(400);

/// What the engine threads report back.
pub(super) enum Engine {
    /// The transcript of the segment that ended at `end`.
    Transcript {
        end: Instant,
        text: SttResult,
        elapsed: Duration,
    },
    Chunk {
        reply: u64,
        text: String,
    },
    ReplyDone {
        reply: u64,
        result: Result<switchboard_agent::Reply, RuntimeError>,
    },
    /// A speculative prefill on a partial transcript finished (or failed: it was only a guess).
    Prepared {
        /// The whole prefill's time, and the retrieval's within it.
        result: Result<(Duration, Duration), RuntimeError>,
    },
}

/// The turn being answered, for its record.
pub(super) struct TurnInProgress {
    pub(super) reply: u64,
    pub(super) started_at: UnixMillis,
    pub(super) caller_text: String,
    pub(super) end_of_speech: Instant,
    pub(super) endpoint_ms: i64,
    pub(super) stt_ms: i64,
    pub(super) asked_llm: Instant,
    pub(super) first_chunk: Option<Instant>,
    pub(super) first_audio: Option<Instant>,
    pub(super) generating: bool,
    /// Chunks sent to the TTS thread and not yet rendered.
    pub(super) rendering: usize,
    pub(super) cancel: CancelToken,
    /// Releases the LLM once the first audio is out (dropped with the turn, it releases too).
    pub(super) first_audio_gate: Option<std::sync::mpsc::Sender<()>>,
}

/// The speculative prefill on the caller's partial transcript: one at a time; of the partials
/// that arrive meanwhile, only the newest waits its turn.
#[derive(Debug, PartialEq)]
pub(super) enum Prepare {
    Idle,
    Running { next: Option<String> },
}

impl Prepare {
    /// A newer partial: returned when its prefill may start now, else it waits (in place of any
    /// partial already waiting).
    pub(super) fn offer(&mut self, partial: String) -> Option<String> {
        match self {
            Prepare::Running { next } => {
                *next = Some(partial);
                None
            }
            Prepare::Idle => {
                *self = Prepare::Running { next: None };
                Some(partial)
            }
        }
    }

    /// The running prefill is done: the waiting partial, if any, is the next to start.
    pub(super) fn finished(&mut self) -> Option<String> {
        match std::mem::replace(self, Prepare::Idle) {
            Prepare::Running {
                next: Some(partial),
            } => self.offer(partial),
            _ => None,
        }
    }

    /// The turn is over: a partial still waiting would only prefill after the reply.
    pub(super) fn drop_waiting(&mut self) {
        if let Prepare::Running { next } = self {
            *next = None;
        }
    }
}

/// What the caller is hearing: nothing, a fixed prompt, or the reply of a turn (which exists
/// from the moment the LLM is asked until the reply has played or was interrupted).
pub(super) enum Playing {
    Nothing,
    Prompt,
    Reply(TurnInProgress),
}

impl<M: Models> Call<M> {
    pub(super) fn engine(&mut self, event: Engine) {
        let now = now();
        match event {
            Engine::Transcript { end, text, elapsed } => {
                if let Some(peek) = self.peek.as_mut().filter(|p| p.end == end) {
                    tracing::debug!(stt_ms = elapsed.as_millis() as u64, "peek transcribed");
                    peek.text = PeekText::Done(text.clone());
                    if let Ok(Some(partial)) = &text {
                        self.input(
                            now,
                            Input::Partial {
                                text: partial.clone(),
                                end,
                            },
                        );
                    }
                }
                if self.caller_turn.awaits(end) {
                    self.transcribed(now, text, elapsed);
                }
            }
            Engine::Prepared { result } => {
                if let Some(partial) = self.prepare.finished() {
                    self.start_prepare(partial);
                }
                match result {
                    Ok((took, retrieval)) => tracing::debug!(
                        prefill_ms = took.as_millis() as u64,
                        retrieval_ms = retrieval.as_millis() as u64,
                        "reply prepared on the partial"
                    ),
                    Err(e) => {
                        tracing::warn!("speculative prefill failed (the reply will do it): {e}")
                    }
                }
            }
            Engine::Chunk { reply, text } => {
                let Some(turn) = self.turn(reply) else {
                    return;
                };
                turn.first_chunk.get_or_insert(now);
                turn.rendering += 1;
                let cancel = turn.cancel.clone();
                self.tts.say(reply, text, cancel);
            }
            Engine::ReplyDone { reply, result } => {
                let Some(turn) = self.turn(reply) else {
                    return;
                };
                turn.generating = false;
                // The don't-know line was said, by the gate or by the grounding check.
                if result
                    .as_ref()
                    .is_ok_and(|r| r.no_relevant_facts || r.ungrounded.is_some())
                {
                    self.input(now, Input::CouldNotHelp);
                }
                match result {
                    Ok(r) => tracing::info!(
                        retrieval_ms = r.retrieval.as_millis() as u64,
                        first_token_ms = r.first_token.as_millis() as u64,
                        total_ms = r.total.as_millis() as u64,
                        prompt_tokens = r.prompt_tokens,
                        snippets = r.snippets,
                        cancelled = r.cancelled,
                        // The kind only: a figure may be a number the caller gave.
                        ungrounded = r.ungrounded.as_ref().map(|c| c.kind()),
                        "reply generated"
                    ),
                    Err(e) => {
                        tracing::error!("the LLM failed: {e}");
                        self.input(now, Input::EngineFailed);
                    }
                }
            }
        }
    }

    pub(super) fn said(&mut self, said: Said) {
        let now = now();
        match said {
            Said::Audio {
                reply,
                text,
                samples,
            } => {
                let Some(turn) = self.turn(reply).filter(|t| !t.cancel.is_cancelled()) else {
                    return;
                };
                if turn.first_audio.is_none() {
                    turn.first_audio = Some(now);
                    turn.first_audio_gate = None;
                    let v2v = now - turn.end_of_speech;
                    metrics::histogram!("switchboard_voice_to_voice_seconds")
                        .record(v2v.as_secs_f64());
                    self.shared.capacity.turn_answered(v2v);
                }
                self.out.push(now, Chunk { text, samples });
            }
            Said::Done { reply } => {
                if let Some(turn) = self.turn(reply) {
                    turn.rendering = turn.rendering.saturating_sub(1);
                }
            }
            Said::Failed { reply, error } => {
                if let Some(turn) = self.turn(reply) {
                    turn.rendering = turn.rendering.saturating_sub(1);
                    turn.first_audio_gate = None;
                    tracing::error!("text-to-speech failed: {error}");
                    self.input(now, Input::EngineFailed);
                }
            }
        }
    }

    /// Retrieval and LLM prefill on what the caller has said so far, while they may still be
    /// talking; the reply then prefills only what the final transcript adds. One at a time:
    /// a newer partial waits for the running one (and replaces any that was waiting).
    pub(super) fn prepare(&mut self, partial: String) {
        if self.conversation.is_none() {
            return;
        }
        if let Some(partial) = self.prepare.offer(partial) {
            self.start_prepare(partial);
        }
    }

    fn start_prepare(&mut self, partial: String) {
        let Some(mut lease) = self.conversation.as_mut().map(Dialogue::lease) else {
            return;
        };
        let tx = self.engine_tx.clone();
        tokio::task::spawn_blocking(move || {
            let started = Instant::now();
            let result = lease
                .lock()
                .prefill_partial(&partial, &CancelToken::new())
                .map(|retrieval| (started.elapsed(), retrieval))
                .map_err(RuntimeError::from);
            let _ = tx.send(Engine::Prepared { result });
        });
    }

    pub(super) async fn reply(&mut self, caller_text: String) {
        self.prepare.drop_waiting();
        self.line(Speaker::Caller, &caller_text).await;
        // The LLM is asked now, after the line is stored: its timings and deadline start here.
        let now = now();
        let Some(mut lease) = self.conversation.as_mut().map(Dialogue::lease) else {
            return self.inputs.push_back((now, Input::EngineFailed));
        };
        self.replies += 1;
        let reply = self.replies;
        let cancel = CancelToken::new();
        let utterance = self.caller_turn.take();
        let (gate, first_audio) = std::sync::mpsc::channel::<()>();
        self.playing = Playing::Reply(TurnInProgress {
            reply,
            started_at: UnixMillis::now(),
            caller_text: caller_text.clone(),
            end_of_speech: utterance.as_ref().map_or(now, |u| u.end_of_speech),
            endpoint_ms: utterance.as_ref().map_or(0, |u| u.endpoint_ms),
            stt_ms: utterance.as_ref().map_or(0, |u| u.stt_ms),
            asked_llm: now,
            first_chunk: None,
            first_audio: None,
            generating: true,
            rendering: 0,
            cancel: cancel.clone(),
            first_audio_gate: Some(gate),
        });
        let tx = self.engine_tx.clone();
        tokio::task::spawn_blocking(move || {
            let mut first_audio = Some(first_audio);
            let result = lease
                .lock()
                .reply(&caller_text, &cancel, &mut |chunk| {
                    let _ = tx.send(Engine::Chunk {
                        reply,
                        text: chunk.to_owned(),
                    });
                    if let Some(first_audio) = first_audio.take() {
                        // Returns when the gate is dropped: first audio, barge-in or call end.
                        let _ = first_audio.recv_timeout(FIRST_AUDIO_WAIT);
                    }
                    Flow::Continue
                })
                .map_err(RuntimeError::from);
            let _ = tx.send(Engine::ReplyDone { reply, result });
        });
    }

    pub(super) async fn stop_playback(&mut self) {
        let heard = self.out.stop().await;
        if let Playing::Reply(turn) = std::mem::replace(&mut self.playing, Playing::Nothing) {
            turn.cancel.cancel();
            tracing::info!(heard = %Pii(&heard), "reply interrupted");
            self.record_turn(turn, &heard, true).await;
            if let Some(dialogue) = self.conversation.as_mut() {
                dialogue.heard = Some(heard);
            }
        }
    }

    /// Reports the end of playback once everything queued is on the wire and no more is coming.
    pub(super) async fn check_playback(&mut self) {
        let now = now();
        let done = match &self.playing {
            Playing::Nothing => false,
            Playing::Prompt => self.out.is_idle(now),
            Playing::Reply(t) => !t.generating && t.rendering == 0 && self.out.is_idle(now),
        };
        if !done {
            return;
        }
        let heard = self.out.stop().await;
        if let Playing::Reply(turn) = std::mem::replace(&mut self.playing, Playing::Nothing) {
            self.record_turn(turn, &heard, false).await;
        }
        self.inputs.push_back((now, Input::PlaybackFinished));
    }

    pub(super) fn playback_deadline(&self) -> Option<Instant> {
        match self.playing {
            Playing::Nothing => None,
            _ => self.out.idle_at(),
        }
    }

    /// When a model that should have answered by now has failed by its silence.
    pub(super) fn reply_deadline(&self) -> Option<Instant> {
        let stt = self.caller_turn.deadline();
        let llm = match &self.playing {
            Playing::Reply(t) if t.generating && t.first_chunk.is_none() => {
                Some(t.asked_llm + self.shared.engine_timeout)
            }
            _ => None,
        };
        stt.into_iter().chain(llm).min()
    }

    pub(super) fn check_reply_timeout(&mut self, now: Instant) {
        if self.reply_deadline().is_some_and(|d| now >= d) {
            tracing::error!(
                timeout_ms = self.shared.engine_timeout.as_millis() as u64,
                "a model did not answer in time"
            );
            // The turn is abandoned: a transcript that comes after all is no longer awaited.
            self.caller_turn = CallerTurn::Open;
            if let Playing::Reply(turn) = &mut self.playing {
                turn.cancel.cancel();
                turn.generating = false;
            }
            self.input(now, Input::EngineFailed);
        }
    }

    /// The turn of reply number `reply`, while it is the one playing.
    fn turn(&mut self, reply: u64) -> Option<&mut TurnInProgress> {
        match &mut self.playing {
            Playing::Reply(t) if t.reply == reply => Some(t),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::Prepare;

    #[test]
    fn one_prefill_at_a_time_and_only_the_newest_partial_waits() {
        let mut p = Prepare::Idle;
        assert_eq!(p.offer("could you".into()), Some("could you".into()));
        assert_eq!(p.offer("could you tell".into()), None);
        assert_eq!(p.offer("could you tell me".into()), None);
        // The running one is done: the newest waiting starts, the one it replaced never does.
        assert_eq!(p.finished(), Some("could you tell me".into()));
        assert_eq!(p, Prepare::Running { next: None });
        assert_eq!(p.finished(), None);
        assert_eq!(p, Prepare::Idle);
    }

    #[test]
    fn a_partial_waiting_when_the_turn_ends_is_dropped() {
        let mut p = Prepare::Idle;
        p.offer("could you".into());
        p.offer("could you tell me".into());
        p.drop_waiting();
        assert_eq!(p.finished(), None);
        assert_eq!(p.offer("next turn".into()), Some("next turn".into()));
    }
}
