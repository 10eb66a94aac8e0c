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
//!
//! Here: the task's select loop and the dispatch of the session's actions. `listening.rs` takes
//! the caller's frames through the VAD and transcribes them, `replying.rs` prefills, replies
//! and plays, `records.rs` keeps what the call leaves behind.

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

mod listening;
mod records;
mod replying;

pub use listening::to_16k;
use listening::{CallerTurn, Peek, PeekText, SttResult};
use records::{finish_record, record_end};
use replying::{Engine, Playing, Prepare, TurnInProgress};

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
        playing: Playing::Nothing,
        replies: 0,
        turns: 0,
        lines: 0,
        caller_turn: CallerTurn::Open,
        peek: None,
        prepare: Prepare::Idle,
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
                // Reports about our INVITE; the call is up by the time it runs here.
                Some(SipSignal::Progress(_) | SipSignal::Answered(_) | SipSignal::Failed(_)) => {}
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
) -> Result<Dialogue<M>, RuntimeError> {
    let agent = Arc::clone(agent);
    let conversation =
        tokio::task::spawn_blocking(move || agent.dialog().conversation(memory.as_deref()))
            .await
            .map_err(|_| RuntimeError::Crashed("conversation"))??;
    Ok(Dialogue {
        conversation: Arc::new(Mutex::new(conversation)),
        heard: None,
    })
}

/// The call's conversation with the LLM, used by one blocking job at a time (prefill, reply,
/// summary), and what the caller heard of an interrupted reply: the history learns that at the
/// next job, as the conversation may still be held by the reply being cancelled.
struct Dialogue<M: Models> {
    conversation: Arc<Mutex<Conversation<M>>>,
    heard: Option<String>,
}

impl<M: Models> Dialogue<M> {
    /// The conversation for the next job.
    fn lease(&mut self) -> Lease<M> {
        Lease {
            conversation: Arc::clone(&self.conversation),
            heard: self.heard.take(),
        }
    }
}

/// The conversation as a job on a blocking thread gets it.
struct Lease<M: Models> {
    conversation: Arc<Mutex<Conversation<M>>>,
    heard: Option<String>,
}

impl<M: Models> Lease<M> {
    /// Waits for the previous job to let go, and brings the history up to date.
    fn lock(&mut self) -> std::sync::MutexGuard<'_, Conversation<M>> {
        let mut conversation = self.conversation.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(heard) = self.heard.take() {
            conversation.heard(&heard);
        }
        conversation
    }
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
    /// `None` when it could not start: the session then ends the call with the fallback line.
    conversation: Option<Dialogue<M>>,
    playing: Playing,
    replies: u64,
    turns: i64,
    lines: i64,
    caller_turn: CallerTurn,
    /// The last pause's early transcription; reused when the turn ends at that pause.
    peek: Option<Peek>,
    /// The speculative prefill on the caller's partial transcript.
    prepare: Prepare,
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

    async fn reoffer(&mut self, caps: &mut LocalCapabilities, peer: std::net::IpAddr, sdp: &[u8]) {
        caps.session_version += 1;
        match media_net::answer_offer(sdp, caps, rand_seed()) {
            Ok((_, config))
                if config
                    .remote_rtp
                    .is_some_and(|r| !media_net::media_destination_allowed(r.ip(), peer)) =>
            {
                tracing::warn!("a re-offer aims media where a caller may not; refused (488)");
                self.refuse_reoffer().await;
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
            Err(e) => {
                tracing::warn!("unusable re-offer refused (488), the session stays: {e}");
                self.refuse_reoffer().await;
            }
        }
    }

    async fn refuse_reoffer(&mut self) {
        if let Err(e) = self.shared.sip.refuse_reoffer(self.call).await {
            tracing::warn!("cannot refuse the re-offer: {e}");
        }
    }

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
                // The session stops a reply before it plays a prompt; should one still be
                // playing, it must not go on under the prompt.
                if let Playing::Reply(turn) = std::mem::replace(&mut self.playing, Playing::Prompt)
                {
                    turn.cancel.cancel();
                }
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
            Action::DoNotCall => self.do_not_call().await,
            Action::Transfer => self.transfer(now).await,
            Action::Hangup { reason } => {
                self.end_reason.get_or_insert(record_end(reason));
                if let Err(e) = self.shared.sip.hangup(self.call).await {
                    tracing::warn!("BYE failed: {e}");
                }
            }
        }
    }
}

/// Per-call randomness for SSRCs and sequence numbers.
pub fn rand_seed() -> u64 {
    let mut seed = [0u8; 8];
    let _ = getrandom::fill(&mut seed);
    u64::from_le_bytes(seed)
}
