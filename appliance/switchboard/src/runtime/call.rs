//! One call, from answer to hang-up: the task that feeds the sans-IO [`CallSession`] with what the
//! line and the engines report and carries out what it decides.
//!
//! ```text
//! RTP frames ─► VAD ─► CallSession ─► Transcribe ─► STT ─► CallSession ─► Reply ─► LLM chunks
//!                  ▲                                                          │
//!                  └──────────── echo reference ◄── Outbound ◄── TTS thread ◄┘
//! ```
//! Engines run on their own threads; this task only moves messages, so a slow model never
//! stalls the 20 ms audio path and one call's failure stays in that call.

use super::playback::{Chunk, Outbound};
use super::prompts;
use super::recording::Recorder;
use super::tts::{Said, TtsThread};
use super::vad::{Heard, VadThread};
use super::{now, AgentRuntime, Conversation, Shared, SipSignal};
use crate::engines::Models;
use crate::pii::Pii;
use crate::runtime::RuntimeError;
use crate::telephony::CallerId;
use media_audio::resample::{resample, SampleRate};
use media_net::{LocalCapabilities, MediaEvent, RtpSession};
use models_api::{compute, AudioContext, CancelToken, Flow, Stt, SttOptions};
use sip_net::CallHandle;
use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use switchboard_call::{Action, Answer, CallSession, Input, Prompt};
use switchboard_store::EndReason;
use switchboard_store::{
    CallRecordId, ConsentDecision, ConsentRecord, EndOfCall, Speaker, TranscriptLine, Turn,
    TurnTimings, UnixMillis,
};
use tokio::sync::mpsc;
use tokio::time::sleep_until;

/// Inbound audio kept for transcription.
const KEEP_FRAMES: usize = 50 * 60;
/// Audio before the first voiced frame that still belongs to the utterance (soft onsets).
const PREROLL: Duration = Duration::from_millis(200);
/// How long the LLM holds off after a reply's first chunk while Piper renders it: on a small
/// box both want every core, and the caller is waiting for that first audio, not for the rest.
const FIRST_AUDIO_WAIT: Duration = Duration::from_millis(400);

/// Everything one call needs; built by the runtime when it answers.
pub struct CallTask<M: Models> {
    pub id: CallRecordId,
    pub caller: CallerId,
    pub call: CallHandle,
    pub agent: Arc<AgentRuntime<M>>,
    pub shared: Arc<Shared<M>>,
    pub media: RtpSession,
    pub caps: LocalCapabilities,
    /// The host the call's signalling comes from (where a re-offer may aim media).
    pub peer: std::net::IpAddr,
    pub signals: mpsc::UnboundedReceiver<SipSignal>,
}

/// What the engine threads report back.
enum Engine {
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

/// Shared: a peek's transcript is kept, and reused when the turn ends at the peeked pause.
type SttResult = Result<Option<String>, Arc<RuntimeError>>;

/// An early transcription of the utterance so far, taken at a pause ([`Action::Peek`]).
struct Peek {
    start: Instant,
    end: Instant,
    /// `None` while whisper works on it.
    text: Option<SttResult>,
    /// Stops whisper when a newer pause makes this one stale.
    cancel: CancelToken,
}

/// The turn being answered, for its record.
struct TurnInProgress {
    reply: u64,
    started_at: UnixMillis,
    caller_text: String,
    end_of_speech: Instant,
    endpoint_ms: i64,
    stt_ms: i64,
    asked_llm: Instant,
    first_chunk: Option<Instant>,
    first_audio: Option<Instant>,
    generating: bool,
    /// Chunks sent to the TTS thread and not yet rendered.
    rendering: usize,
    cancel: CancelToken,
    /// Releases the LLM once the first audio is out (dropped with the turn, it releases too).
    first_audio_gate: Option<std::sync::mpsc::Sender<()>>,
}

enum Playing {
    Nothing,
    Prompt,
    Reply,
}

pub async fn run<M: Models>(task: CallTask<M>) {
    let CallTask {
        id,
        caller,
        call,
        agent,
        shared,
        mut media,
        mut caps,
        peer,
        mut signals,
    } = task;
    let (engine_tx, mut engine_rx) = mpsc::unbounded_channel::<Engine>();
    let (said_tx, mut said_rx) = mpsc::unbounded_channel::<Said>();
    let started = match (
        VadThread::spawn(id.as_str()),
        TtsThread::spawn(id.as_str(), agent.voice.clone(), said_tx),
    ) {
        (Ok((vad, heard)), Ok(tts)) => Some((vad, heard, tts)),
        (Err(e), _) | (_, Err(e)) => {
            tracing::error!("cannot start the call's audio threads: {e}");
            None
        }
    };
    let Some((vad, mut heard_rx, tts)) = started else {
        let _ = shared.sip.hangup(call).await;
        finish_record(&shared, &id, EndReason::EngineFailure, None, None, None).await;
        return;
    };
    let memory = shared.memory_of(&agent, &caller).await;
    let conversation = match new_conversation(&agent, memory).await {
        Ok(c) => Some(c),
        Err(e) => {
            tracing::error!("cannot start the conversation: {e}");
            None
        }
    };
    let session = CallSession::new(agent.call_config.clone());
    let mut c = Call {
        id,
        caller,
        call,
        agent,
        shared,
        session,
        out: Outbound::new(media.handle.clone()),
        inbound: VecDeque::new(),
        engine_tx,
        tts,
        conversation,
        pending_heard: None,
        playing: Playing::Nothing,
        turn: None,
        replies: 0,
        turns: 0,
        lines: 0,
        utterance: None,
        peek: None,
        preparing: false,
        prepare_next: None,
        recorder: None,
        transfer_outcome: None,
        end_reason: None,
        inputs: VecDeque::new(),
        voiced: false,
    };
    let answered = now();
    if let Err(e) = c.shared.store.mark_answered(&c.id, UnixMillis::now()).await {
        tracing::error!("cannot mark the call answered: {e}");
    }
    c.input(answered, Input::Answered);
    if c.conversation.is_none() {
        c.input(answered, Input::EngineFailed);
    }
    c.act().await;

    while !c.session.is_ended() {
        let wake = [
            c.session.poll_timeout(),
            c.playback_deadline(),
            c.reply_deadline(),
        ]
        .into_iter()
        .flatten()
        .min()
        .unwrap_or_else(|| now() + Duration::from_secs(1));
        tokio::select! {
            event = media.events.recv() => match event {
                Some(MediaEvent::Audio(frame)) => c.caller_frame(&vad, frame),
                Some(MediaEvent::Digit(digit)) => {
                    tracing::info!(%digit, "DTMF");
                    c.input(now(), Input::Dtmf { digit });
                }
                Some(MediaEvent::Latched(addr)) => tracing::debug!(%addr, "media latched"),
                None => {
                    tracing::warn!("the media session stopped");
                    c.input(now(), Input::Hangup);
                    c.end_reason.get_or_insert(EndReason::MediaLost);
                }
            },
            Some(heard) = heard_rx.recv() => c.heard(heard),
            signal = signals.recv() => match signal {
                Some(SipSignal::Ended { by_peer }) => {
                    c.end_reason.get_or_insert(if by_peer {
                        EndReason::CallerHungUp
                    } else {
                        EndReason::Ended
                    });
                    c.input(now(), Input::Hangup);
                }
                Some(SipSignal::Dtmf(digit)) => c.input(now(), Input::Dtmf { digit }),
                Some(SipSignal::Reoffer(sdp)) => c.reoffer(&mut caps, peer, &sdp).await,
                Some(SipSignal::TransferSucceeded) => {
                    c.transfer_outcome = Some("succeeded".into());
                    c.input(now(), Input::TransferSucceeded);
                }
                Some(SipSignal::TransferFailed(status)) => {
                    tracing::warn!(status, "transfer failed");
                    c.transfer_outcome = Some(format!("failed ({status})"));
                    c.input(now(), Input::TransferFailed);
                }
                None => {
                    // The daemon is stopping: say goodbye on the wire, then close the record.
                    c.end_reason.get_or_insert(EndReason::Shutdown);
                    let _ = c.shared.sip.hangup(c.call).await;
                    c.input(now(), Input::Hangup);
                }
            },
            Some(event) = engine_rx.recv() => c.engine(event),
            Some(said) = said_rx.recv() => c.said(said),
            () = sleep_until(wake.into()) => {
                let now = now();
                c.session.handle_timeout(now);
                c.check_reply_timeout(now);
            }
        }
        // The session's decisions first: an engine failure mid-reply stops the reply and queues
        // the fallback line, and only then can "playback finished" be judged (else the reply's
        // end would be taken for the fallback's and the call hung up before it is heard).
        c.act().await;
        c.check_playback().await;
        c.act().await;
    }
    c.finish(media).await;
}

async fn new_conversation<M: Models>(
    agent: &Arc<AgentRuntime<M>>,
    memory: Option<String>,
) -> Result<Arc<Mutex<Conversation<M>>>, RuntimeError> {
    let agent = Arc::clone(agent);
    let conversation =
        tokio::task::spawn_blocking(move || agent.brain().conversation(memory.as_deref()))
            .await
            .map_err(|_| RuntimeError::Crashed("conversation"))??;
    Ok(Arc::new(Mutex::new(conversation)))
}

struct Call<M: Models> {
    id: CallRecordId,
    caller: CallerId,
    call: CallHandle,
    agent: Arc<AgentRuntime<M>>,
    shared: Arc<Shared<M>>,
    session: CallSession,
    out: Outbound,
    inbound: VecDeque<(Instant, Vec<i16>)>,
    engine_tx: mpsc::UnboundedSender<Engine>,
    tts: TtsThread,
    conversation: Option<Arc<Mutex<Conversation<M>>>>,
    /// What the caller heard of an interrupted reply, applied to the history before the next
    /// use of the conversation (which may still be busy cancelling).
    pending_heard: Option<String>,
    playing: Playing,
    turn: Option<TurnInProgress>,
    replies: u64,
    turns: i64,
    lines: i64,
    /// The utterance being transcribed (or last transcribed), for the turn's timings.
    utterance: Option<Utterance>,
    /// The last pause's early transcription; reused when the turn ends at that pause.
    peek: Option<Peek>,
    /// A speculative prefill is running on the conversation.
    preparing: bool,
    /// The partial to prepare once the running prefill is done (the newest only).
    prepare_next: Option<String>,
    recorder: Option<Recorder>,
    transfer_outcome: Option<String>,
    end_reason: Option<EndReason>,
    /// Inputs produced while carrying out actions, handled after them.
    inputs: VecDeque<(Instant, Input)>,
    /// The VAD's last verdict (for the trace log).
    voiced: bool,
}

impl<M: Models> Call<M> {
    fn input(&mut self, now: Instant, input: Input) {
        self.session.handle(now, input);
    }

    fn caller_frame(&mut self, vad: &VadThread, frame: Vec<i16>) {
        let now = now();
        if let Some(rec) = self.recorder.as_mut() {
            rec.caller(&frame);
            if let Some(agent) = self.out.frame_at(now) {
                rec.agent(agent);
            }
        }
        // The frame travels to the VAD thread and comes back with its verdict (`heard`).
        vad.hear(now, frame);
    }

    fn heard(&mut self, heard: Heard) {
        let Heard {
            at,
            voiced,
            energy_db,
            frame,
        } = heard;
        self.inbound.push_back((at, frame));
        if self.inbound.len() > KEEP_FRAMES {
            self.inbound.pop_front();
        }
        if voiced != self.voiced {
            self.voiced = voiced;
            tracing::trace!(voiced = voiced, energy_db = energy_db, "VAD");
        }
        let agent_db = self
            .out
            .frame_at(at)
            .map_or(-96.0, switchboard_call::turn::echo_guard::energy_db);
        self.input(
            at,
            Input::AgentAudio {
                energy_db: agent_db,
            },
        );
        self.input(at, Input::CallerAudio { voiced, energy_db });
    }

    async fn reoffer(&mut self, caps: &mut LocalCapabilities, peer: std::net::IpAddr, sdp: &[u8]) {
        caps.session_version += 1;
        match media_net::answer_offer(sdp, caps, rand_seed()) {
            Ok((_, config))
                if config
                    .remote_rtp
                    .is_some_and(|r| !media_net::media_destination_allowed(r.ip(), peer)) =>
            {
                tracing::warn!("a re-offer aims media where a caller may not; keeping the session");
            }
            Ok((answer, config)) => {
                tracing::info!(direction = ?config.direction, "re-offer (hold/resume/refresh)");
                if let Err(e) = self.out.media().update(config) {
                    tracing::warn!("cannot apply the re-offer to the media session: {e}");
                }
                if let Err(e) = self.shared.sip.answer_reoffer(self.call, answer).await {
                    tracing::warn!("cannot answer the re-offer: {e}");
                }
            }
            Err(e) => tracing::warn!("unusable re-offer, keeping the session: {e}"),
        }
    }

    fn engine(&mut self, event: Engine) {
        let now = now();
        match event {
            Engine::Transcript { end, text, elapsed } => {
                if let Some(peek) = self.peek.as_mut().filter(|p| p.end == end) {
                    tracing::debug!(stt_ms = elapsed.as_millis() as u64, "peek transcribed");
                    peek.text = Some(text.clone());
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
                let wanted = self
                    .utterance
                    .as_ref()
                    .is_some_and(|u| u.end_of_speech == end && u.deadline.is_some());
                if wanted {
                    self.transcribed(now, text, elapsed);
                }
            }
            Engine::Prepared { result } => {
                self.preparing = false;
                if let Some(partial) = self.prepare_next.take() {
                    self.prepare(partial);
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
                let Some(turn) = self.turn.as_mut().filter(|t| t.reply == reply) else {
                    return;
                };
                turn.first_chunk.get_or_insert(now);
                turn.rendering += 1;
                self.tts.say(reply, text, turn.cancel.clone());
            }
            Engine::ReplyDone { reply, result } => {
                let Some(turn) = self.turn.as_mut().filter(|t| t.reply == reply) else {
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

    /// The turn's transcript is in (fresh, or the peek's when the turn ended at that pause).
    fn transcribed(&mut self, now: Instant, text: SttResult, elapsed: Duration) {
        if let Some(u) = self.utterance.as_mut() {
            u.stt_ms = (now - u.asked).as_millis() as i64;
            u.deadline = None;
        }
        match text {
            Ok(Some(text)) => {
                tracing::info!(stt_ms = elapsed.as_millis() as u64, text = %Pii(&text), "caller said");
                self.inputs.push_back((now, Input::Transcript { text }));
            }
            // Nothing intelligible: the session goes back to listening (or re-asks consent).
            Ok(None) => self.inputs.push_back((
                now,
                Input::Transcript {
                    text: String::new(),
                },
            )),
            Err(e) => {
                tracing::error!("speech-to-text failed: {e}");
                self.inputs.push_back((now, Input::EngineFailed));
            }
        }
    }

    fn said(&mut self, said: Said) {
        let now = now();
        let current = |t: &Option<TurnInProgress>, reply: u64| {
            t.as_ref()
                .is_some_and(|t| t.reply == reply && !t.cancel.is_cancelled())
        };
        match said {
            Said::Audio {
                reply,
                text,
                samples,
            } => {
                if !current(&self.turn, reply) {
                    return;
                }
                if let Some(turn) = self.turn.as_mut() {
                    if turn.first_audio.is_none() {
                        turn.first_audio = Some(now);
                        turn.first_audio_gate = None;
                        let v2v = now - turn.end_of_speech;
                        metrics::histogram!("switchboard_voice_to_voice_seconds")
                            .record(v2v.as_secs_f64());
                        self.shared.capacity.turn_answered(v2v);
                    }
                }
                self.out.push(now, Chunk { text, samples });
            }
            Said::Done { reply } => {
                if let Some(turn) = self.turn.as_mut().filter(|t| t.reply == reply) {
                    turn.rendering = turn.rendering.saturating_sub(1);
                }
            }
            Said::Failed { reply, error } => {
                if let Some(turn) = self.turn.as_mut().filter(|t| t.reply == reply) {
                    turn.rendering = turn.rendering.saturating_sub(1);
                    turn.first_audio_gate = None;
                    tracing::error!("text-to-speech failed: {error}");
                    self.input(now, Input::EngineFailed);
                }
            }
        }
    }
}

impl<M: Models> Call<M> {
    /// Carries out the session's actions, and the inputs they produce, until it has none left.
    async fn act(&mut self) {
        loop {
            while let Some(action) = self.session.poll_action() {
                self.action(action).await;
            }
            let Some((at, input)) = self.inputs.pop_front() else {
                return;
            };
            self.input(at, input);
        }
    }

    async fn action(&mut self, action: Action) {
        let now = now();
        // The name only: a prompt's kind is safe, the caller's words are not (`Pii`).
        tracing::debug!(action = action.name());
        match action {
            Action::Play { prompt, .. } => {
                let chunk = self.agent.prompts.get(prompt);
                self.line(Speaker::Agent, &chunk.text).await;
                self.out.push(now, chunk);
                self.playing = Playing::Prompt;
            }
            // Interim transcripts take cores another call's reply may need.
            Action::Peek { interim: true, .. } if self.shared.capacity.active() > 1 => {}
            Action::Peek {
                start,
                end,
                interim,
            } => self.peek(start, end, interim),
            Action::Prepare { text } => self.prepare(text),
            Action::Transcribe { start, end } => self.transcribe(now, start, end),
            Action::Reply { caller_text } => self.reply(caller_text).await,
            Action::PausePlayback => self.out.pause().await,
            Action::ResumePlayback => self.out.resume(now),
            Action::StopPlayback => self.stop_playback().await,
            Action::LogConsent {
                answer_text,
                decision,
            } => self.log_consent(now, answer_text, decision).await,
            Action::StartRecording => match &self.shared.vault {
                Some(vault) => match Recorder::start(vault, self.id.as_str()) {
                    Ok(r) => {
                        tracing::info!(path = %r.path().display(), "recording started");
                        self.recorder = Some(r);
                    }
                    Err(e) => tracing::error!("cannot start the recording: {e}"),
                },
                None => tracing::error!("consent given but recordings are unavailable"),
            },
            Action::Blacklist { reason } => self.blacklist(reason).await,
            Action::Transfer => self.transfer(now).await,
            Action::Hangup { reason } => {
                self.end_reason.get_or_insert(record_end(reason));
                if let Err(e) = self.shared.sip.hangup(self.call).await {
                    tracing::warn!("BYE failed: {e}");
                }
            }
        }
    }

    /// A pause (or, `interim`, more speech): whisper starts on the utterance so far while the
    /// endpointer still waits. One at a time (two would only compete for the same cores): a
    /// newer peek stops the running one, whose audio the caller has since added to.
    fn peek(&mut self, start: Instant, end: Instant, interim: bool) {
        if self
            .peek
            .as_ref()
            .is_some_and(|p| p.start == start && p.end == end)
        {
            // A pause right after an interim transcript: the same audio.
            return;
        }
        if let Some(running) = self.peek.as_ref().filter(|p| p.text.is_none()) {
            running.cancel.cancel();
        }
        let cancel = CancelToken::new();
        self.spawn_stt(start, end, cancel.clone(), interim);
        self.peek = Some(Peek {
            start,
            end,
            text: None,
            cancel,
        });
    }

    /// Retrieval and LLM prefill on what the caller has said so far, while they may still be
    /// talking; the reply then prefills only what the final transcript adds. One at a time:
    /// a newer partial waits for the running one (and replaces any that was waiting).
    fn prepare(&mut self, partial: String) {
        let Some(conversation) = self.conversation.clone() else {
            return;
        };
        if self.preparing {
            self.prepare_next = Some(partial);
            return;
        }
        self.preparing = true;
        let heard = self.pending_heard.take();
        let tx = self.engine_tx.clone();
        tokio::task::spawn_blocking(move || {
            let started = Instant::now();
            let mut conversation = conversation.lock().unwrap_or_else(|p| p.into_inner());
            if let Some(heard) = heard {
                conversation.heard(&heard);
            }
            let result = conversation
                .prefill_partial(&partial, &CancelToken::new())
                .map(|retrieval| (started.elapsed(), retrieval))
                .map_err(RuntimeError::from);
            let _ = tx.send(Engine::Prepared { result });
        });
    }

    fn transcribe(&mut self, now: Instant, start: Instant, end: Instant) {
        self.utterance = Some(Utterance {
            end_of_speech: end,
            endpoint_ms: (now - end).as_millis() as i64,
            asked: now,
            stt_ms: 0,
            deadline: Some(now + self.shared.engine_timeout),
        });
        match self
            .peek
            .as_ref()
            .filter(|p| p.start == start && p.end == end)
        {
            // The same audio was transcribed at the pause: reuse it, or wait for it.
            Some(Peek {
                text: Some(text), ..
            }) => {
                tracing::debug!("the turn ended at the peeked pause");
                self.transcribed(now, text.clone(), Duration::ZERO);
            }
            Some(Peek { text: None, .. }) => {}
            None => self.spawn_stt(start, end, CancelToken::new(), false),
        }
    }

    /// Whisper on the inbound audio from `start` (less the pre-roll) to `end`, on a blocking
    /// thread; the result comes back as [`Engine::Transcript`] for `end`.
    fn spawn_stt(&self, start: Instant, end: Instant, cancel: CancelToken, background: bool) {
        let from = start.checked_sub(PREROLL).unwrap_or(start);
        let frames: Vec<i16> = self
            .inbound
            .iter()
            .filter(|(at, _)| *at >= from && *at <= end + Duration::from_millis(20))
            .flat_map(|(_, f)| f.iter().copied())
            .collect();
        let stt = self.shared.engines.stt();
        // Speech runs at about 7 tokens a second; a bound well above that stops whisper's
        // repetition loops on short phone turns, which otherwise cost seconds and garble the text.
        let seconds = frames.len() / 8000;
        let options = SttOptions {
            language: Some(self.agent.language.clone()),
            audio_context: AudioContext::Fit,
            max_tokens: 24 + 12 * seconds as u32,
            ..SttOptions::default()
        };
        let tx = self.engine_tx.clone();
        tokio::task::spawn_blocking(move || {
            let _background = background.then(compute::background);
            let started = Instant::now();
            let text = to_16k(&frames)
                .and_then(|audio| {
                    stt.transcribe(&audio, &options, &cancel)
                        .map(|t| t.map(|t| t.text))
                        .map_err(|e| RuntimeError::model("speech-to-text", e))
                })
                .map_err(Arc::new);
            let _ = tx.send(Engine::Transcript {
                end,
                text,
                elapsed: started.elapsed(),
            });
        });
    }

    async fn reply(&mut self, caller_text: String) {
        // The turn is over: a partial still waiting would prefill after the reply.
        self.prepare_next = None;
        self.line(Speaker::Caller, &caller_text).await;
        // The LLM is asked now, after the line is stored: its timings and deadline start here.
        let now = now();
        let Some(conversation) = self.conversation.clone() else {
            return self.inputs.push_back((now, Input::EngineFailed));
        };
        self.replies += 1;
        let reply = self.replies;
        let cancel = CancelToken::new();
        let utterance = self.utterance.take();
        let (gate, first_audio) = std::sync::mpsc::channel::<()>();
        self.turn = Some(TurnInProgress {
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
        self.playing = Playing::Reply;
        let heard = self.pending_heard.take();
        let tx = self.engine_tx.clone();
        tokio::task::spawn_blocking(move || {
            let mut conversation = conversation.lock().unwrap_or_else(|p| p.into_inner());
            if let Some(heard) = heard {
                conversation.heard(&heard);
            }
            let mut first_audio = Some(first_audio);
            let result = conversation
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

    async fn stop_playback(&mut self) {
        let heard = self.out.stop().await;
        if let (Playing::Reply, Some(turn)) = (&self.playing, self.turn.take()) {
            turn.cancel.cancel();
            tracing::info!(heard = %Pii(&heard), "reply interrupted");
            self.record_turn(turn, &heard, true).await;
            self.pending_heard = Some(heard);
        }
        self.playing = Playing::Nothing;
    }

    /// Reports the end of playback once everything queued is on the wire and no more is coming.
    async fn check_playback(&mut self) {
        let now = now();
        let done = match self.playing {
            Playing::Nothing => false,
            Playing::Prompt => self.out.is_idle(now),
            Playing::Reply => {
                self.turn
                    .as_ref()
                    .is_none_or(|t| !t.generating && t.rendering == 0)
                    && self.out.is_idle(now)
            }
        };
        if !done {
            return;
        }
        let heard = self.out.stop().await;
        if let (Playing::Reply, Some(turn)) = (&self.playing, self.turn.take()) {
            self.record_turn(turn, &heard, false).await;
        }
        self.playing = Playing::Nothing;
        self.inputs.push_back((now, Input::PlaybackFinished));
    }

    fn playback_deadline(&self) -> Option<Instant> {
        match self.playing {
            Playing::Nothing => None,
            _ => self.out.idle_at(),
        }
    }

    /// When a model that should have answered by now has failed by its silence.
    fn reply_deadline(&self) -> Option<Instant> {
        let stt = self.utterance.as_ref().and_then(|u| u.deadline);
        let llm = self
            .turn
            .as_ref()
            .filter(|t| t.generating && t.first_chunk.is_none())
            .map(|t| t.asked_llm + self.shared.engine_timeout);
        stt.into_iter().chain(llm).min()
    }

    fn check_reply_timeout(&mut self, now: Instant) {
        if self.reply_deadline().is_some_and(|d| now >= d) {
            tracing::error!(
                timeout_ms = self.shared.engine_timeout.as_millis() as u64,
                "a model did not answer in time"
            );
            if let Some(u) = self.utterance.as_mut() {
                u.deadline = None;
            }
            if let Some(turn) = self.turn.as_mut() {
                turn.cancel.cancel();
                turn.generating = false;
            }
            self.input(now, Input::EngineFailed);
        }
    }

    async fn log_consent(&mut self, now: Instant, answer_text: String, decision: Answer) {
        let record = ConsentRecord {
            call_id: self.id.clone(),
            caller_number: self.caller.number.clone(),
            question: prompts::text(Prompt::ConsentQuestion, "").to_owned(),
            answer_text,
            decision: match decision {
                Answer::Yes => ConsentDecision::Yes,
                Answer::No => ConsentDecision::No,
                Answer::Unclear => ConsentDecision::Unclear,
            },
            decided_at: UnixMillis::now(),
        };
        // The decision must be stored before the call moves on; a store that stays down
        // ends the conversation with the fallback line rather than going on unlogged.
        for attempt in 1..=3 {
            match self.shared.store.record_consent(&record).await {
                Ok(()) => {
                    tracing::info!(decision = ?record.decision, "consent logged");
                    return self.inputs.push_back((now, Input::ConsentLogged));
                }
                Err(e) => {
                    tracing::error!(attempt, "cannot log the consent decision: {e}");
                    tokio::time::sleep(Duration::from_millis(100 * attempt)).await;
                }
            }
        }
        self.inputs.push_back((super::now(), Input::EngineFailed));
    }

    async fn blacklist(&mut self, reason: String) {
        if !self.caller.verified {
            // A From anyone can write: blocking it could block someone else's number.
            tracing::warn!(caller = %Pii(&self.caller.number), %reason,
                "abusive caller not blacklisted: the number is not asserted by a trusted source");
            return;
        }
        let blocked = self
            .shared
            .store
            .block_for_abuse(
                &self.caller.number,
                &reason,
                &self.id,
                &format!("agent:{}", self.agent.name),
                UnixMillis::now(),
                self.shared.abuse_block,
            )
            .await;
        match blocked {
            Ok(entry) => tracing::warn!(caller = %Pii(&self.caller.number), %reason,
                offences = entry.offences, until = ?entry.expires_at, "caller blacklisted"),
            Err(e) => tracing::error!("cannot blacklist the caller: {e}"),
        }
    }

    async fn transfer(&mut self, now: Instant) {
        let Some(target) = self.agent.transfer_to.clone() else {
            return self.inputs.push_back((now, Input::TransferFailed));
        };
        tracing::info!(%target, "transferring (REFER)");
        if let Err(e) = self.shared.sip.refer(self.call, target).await {
            tracing::warn!("REFER could not be sent: {e}");
            self.transfer_outcome = Some(format!("failed ({e})"));
            self.inputs.push_back((now, Input::TransferFailed));
        }
    }

    async fn line(&mut self, speaker: Speaker, text: &str) {
        if text.trim().is_empty() {
            return;
        }
        self.lines += 1;
        let line = TranscriptLine {
            seq: self.lines,
            at_ms: UnixMillis::now().0,
            speaker,
            text: text.to_owned(),
        };
        if let Err(e) = self.shared.store.append_transcript(&self.id, &line).await {
            tracing::error!("cannot store a transcript line: {e}");
        }
    }

    async fn record_turn(&mut self, turn: TurnInProgress, heard: &str, interrupted: bool) {
        self.line(Speaker::Agent, heard).await;
        self.turns += 1;
        let ms = |a: Option<Instant>, b: Instant| {
            a.map(|a| a.saturating_duration_since(b).as_millis() as i64)
        };
        let timings = TurnTimings {
            endpoint_ms: Some(turn.endpoint_ms),
            stt_ms: Some(turn.stt_ms),
            llm_first_token_ms: ms(turn.first_chunk, turn.asked_llm),
            tts_first_audio_ms: turn.first_chunk.and_then(|c| ms(turn.first_audio, c)),
            voice_to_voice_ms: ms(turn.first_audio, turn.end_of_speech),
        };
        tracing::info!(?timings, interrupted, "turn");
        let record = Turn {
            seq: self.turns,
            started_at: turn.started_at,
            caller_text: turn.caller_text,
            agent_text: heard.to_owned(),
            interrupted,
            timings,
        };
        if let Err(e) = self.shared.store.record_turn(&self.id, &record).await {
            tracing::error!("cannot store the turn: {e}");
        }
    }

    /// After the last word: seal the recording, extract the outcome, close the record.
    async fn finish(mut self, media: RtpSession) {
        if let Some(turn) = self.turn.take() {
            turn.cancel.cancel();
        }
        drop(media);
        let recording = match self.recorder.take() {
            Some(rec) => {
                let path = rec.path().to_owned();
                match tokio::task::spawn_blocking(move || rec.finish()).await {
                    Ok(Ok(_)) => {}
                    Ok(Err(e)) => tracing::error!("the recording is incomplete: {e}"),
                    Err(e) => tracing::error!("recording task failed: {e}"),
                }
                // Even an incomplete file holds the call until the failure, so it is listed.
                path.exists().then(|| path.display().to_string())
            }
            None => None,
        };
        let reason = self.end_reason.unwrap_or(EndReason::Ended);
        tracing::info!(%reason, turns = self.turns, "call ended");
        let transfer = self.transfer_outcome.take();
        finish_record(&self.shared, &self.id, reason, transfer, recording, None).await;
        // The summary comes after the record is closed: it takes seconds of LLM time, and the
        // call's slot stays taken meanwhile because that time is this call's.
        let outcome = match (&self.conversation, self.turns) {
            (Some(conversation), 1..) => self.outcome(Arc::clone(conversation)).await,
            _ => None,
        };
        if let Some(o) = outcome {
            self.shared
                .remember(&self.agent, &self.caller, &self.id, &o)
                .await;
            finish_record(&self.shared, &self.id, reason, None, None, Some(o)).await;
        }
    }

    async fn outcome(
        &mut self,
        conversation: Arc<Mutex<Conversation<M>>>,
    ) -> Option<switchboard_agent::Outcome> {
        let heard = self.pending_heard.take();
        let cancel = CancelToken::new();
        let job = tokio::task::spawn_blocking({
            let cancel = cancel.clone();
            move || {
                // Nobody is on the line waiting for it.
                let _background = compute::background();
                let mut conversation = conversation.lock().unwrap_or_else(|p| p.into_inner());
                if let Some(heard) = heard {
                    conversation.heard(&heard);
                }
                conversation.outcome(&cancel)
            }
        });
        match tokio::time::timeout(OUTCOME_TIMEOUT, job).await {
            Ok(Ok(Ok(outcome))) => Some(outcome),
            Ok(Ok(Err(e))) => {
                tracing::warn!("no outcome extracted: {e}");
                None
            }
            Ok(Err(e)) => {
                tracing::error!("outcome extraction crashed: {e}");
                None
            }
            Err(_) => {
                cancel.cancel();
                tracing::warn!("outcome extraction timed out");
                None
            }
        }
    }
}

/// The LLM's end-of-call summary may take this long before the record is closed without it.
const OUTCOME_TIMEOUT: Duration = Duration::from_secs(60);

/// The utterance being transcribed.
struct Utterance {
    end_of_speech: Instant,
    endpoint_ms: i64,
    /// When the session asked for the transcript (the endpoint).
    asked: Instant,
    /// From the endpoint to the transcript: zero when the pause's peek had it already.
    stt_ms: i64,
    /// Until the transcript arrives.
    deadline: Option<Instant>,
}

async fn finish_record<M: Models>(
    shared: &Shared<M>,
    id: &CallRecordId,
    reason: EndReason,
    transfer_outcome: Option<String>,
    recording_path: Option<String>,
    outcome: Option<switchboard_agent::Outcome>,
) {
    let end = EndOfCall {
        end_reason: reason,
        transfer_outcome,
        recording_path,
        summary: outcome.as_ref().map(|o| o.summary.clone()),
        outcome: outcome.and_then(|o| serde_json::to_string(&o).ok()),
    };
    if let Err(e) = shared.store.finish_call(id, UnixMillis::now(), &end).await {
        tracing::error!("cannot close the call record: {e}");
    }
}

/// The record's end reason for the one the call session decided.
fn record_end(reason: switchboard_call::EndReason) -> EndReason {
    use switchboard_call::EndReason as Session;
    match reason {
        Session::CallerHungUp => EndReason::CallerHungUp,
        Session::Silence => EndReason::Silence,
        Session::MaxDuration => EndReason::MaxDuration,
        Session::Abuse => EndReason::Abuse,
        Session::Transferred => EndReason::Transferred,
        Session::EngineFailure => EndReason::EngineFailure,
    }
}

/// 8 kHz line audio to whisper's 16 kHz floats.
pub fn to_16k(samples: &[i16]) -> Result<Vec<f32>, RuntimeError> {
    let wide = resample(samples, SampleRate::Hz8000, SampleRate::Hz16000)?;
    Ok(wide.iter().map(|&s| f32::from(s) / 32768.0).collect())
}

/// Per-call randomness for SSRCs and sequence numbers.
pub fn rand_seed() -> u64 {
    let mut seed = [0u8; 8];
    let _ = getrandom::fill(&mut seed);
    u64::from_le_bytes(seed)
}
