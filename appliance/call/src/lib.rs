//! The per-call state machine, sans-IO: what a voice agent does and when, given what it hears.
//!
//! A [`CallSession`] owns no socket, thread, clock or model. The runtime feeds it inputs with the
//! current time — inbound VAD frames, outbound frame energies, transcripts, playback progress,
//! DTMF, durable-write confirmations — and carries out the [`Action`]s it emits: play a prompt,
//! transcribe a segment, generate a reply, pause/resume/stop playback, log consent, start
//! recording, blacklist, transfer, hang up.
//!
//! ```text
//! session.handle(now, input);              // anything that happened
//! session.handle_timeout(now);             // when poll_timeout said so
//! while let Some(a) = session.poll_action() { … }
//! let wake = session.poll_timeout();
//! ```
//! After any input, drain `poll_action` before the next input.
//!
//! Invariants the tests hold it to:
//! - with consent required, [`Action::StartRecording`] is only ever emitted after the runtime
//!   confirmed ([`Input::ConsentLogged`]) that a *yes* was durably logged;
//! - the consent question is never interrupted; caller audio during it is ignored;
//! - abuse ends the call with one polite line, a blacklist entry and a hang-up, whatever the LLM;
//! - a request for a human or DTMF `0` transfers (when a transfer target exists), never via the LLM;
//! - an engine failure is answered with a spoken fallback, never with silence.

pub mod policy;
pub mod turn;

use policy::consent;
pub use policy::consent::Answer;
use policy::profanity::ProfanityFilter;
use std::collections::VecDeque;
use std::time::{Duration, Instant};
use turn::barge_in::{is_backchannel, BargeInConfig, BargeInDetector};
use turn::echo_guard::{EchoConfig, EchoGuard};
use turn::endpointing::{EndpointConfig, EndpointEvent, Endpointer};

/// The fixed prompts; the runtime renders them once per agent and caches the audio.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Prompt {
    Greeting,
    ConsentQuestion,
    ConsentReask,
    /// "Are you still there?"
    Reprompt,
    /// Silence or maximum length: a polite goodbye.
    Goodbye,
    /// Abuse: one short, polite closing line.
    AbuseGoodbye,
    /// "Let me put you through to a colleague."
    Handoff,
    /// The transfer failed: say so and offer a callback.
    TransferFailed,
    /// DTMF 0 or a request for a person, but no one to transfer to.
    NoHuman,
    /// A model failed or timed out.
    Fallback,
    /// After the consent answer: "Thank you. How can I help?"
    ConsentAcknowledged,
    /// Asked not to be called again: confirm, and goodbye.
    DoNotCallGoodbye,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ConsentMode {
    Required,
    Off,
}

#[derive(Clone, Debug)]
pub struct CallConfig {
    pub consent: ConsentMode,
    /// Whether a human transfer target exists.
    pub can_transfer: bool,
    /// Topics (words or phrases) a caller is put through to a human for, whatever they ask.
    pub transfer_topics: Vec<String>,
    /// Unintelligible turns in a row after which the caller is put through to a human.
    pub max_not_understood: u8,
    pub profanity: ProfanityFilter,
    /// Silence in a listening turn before a re-prompt.
    pub silence_timeout: Duration,
    /// Re-prompts before a polite goodbye.
    pub max_reprompts: u8,
    pub max_call: Duration,
    pub endpoint: EndpointConfig,
    pub barge_in: BargeInConfig,
    pub echo: EchoConfig,
}

impl Default for CallConfig {
    fn default() -> Self {
        CallConfig {
            consent: ConsentMode::Off,
            can_transfer: false,
            transfer_topics: Vec::new(),
            max_not_understood: 2,
            profanity: ProfanityFilter::default(),
            silence_timeout: Duration::from_secs(8),
            max_reprompts: 2,
            max_call: Duration::from_secs(30 * 60),
            endpoint: EndpointConfig::default(),
            barge_in: BargeInConfig::default(),
            echo: EchoConfig::default(),
        }
    }
}

/// Everything the runtime reports.
#[derive(Clone, Debug, PartialEq)]
pub enum Input {
    /// The call is up (200/ACK done, media flowing).
    Answered,
    /// One 20 ms inbound frame ended now: the VAD's verdict and its energy.
    CallerAudio {
        voiced: bool,
        energy_db: f32,
    },
    /// One 20 ms outbound frame was sent now (the echo reference).
    AgentAudio {
        energy_db: f32,
    },
    /// A partial transcript of the utterance in progress, up to `end` (the peek's).
    Partial {
        text: String,
        end: Instant,
    },
    /// The transcript of the segment asked for by [`Action::Transcribe`].
    Transcript {
        text: String,
    },
    /// All queued audio (prompt or reply) has been played out.
    PlaybackFinished,
    /// The decision of [`Action::LogConsent`] is durably stored.
    ConsentLogged,
    Dtmf {
        digit: char,
    },
    TransferSucceeded,
    TransferFailed,
    /// The reply said the agent does not know, and offered a colleague.
    CouldNotHelp,
    /// STT, LLM or TTS failed or timed out.
    EngineFailed,
    /// The caller hung up.
    Hangup,
}

#[derive(Clone, Debug, PartialEq)]
pub enum Action {
    /// Play a fixed prompt (interruptible or not).
    Play {
        prompt: Prompt,
        interruptible: bool,
    },
    /// The caller paused (or, `interim`, talks on): transcribe the utterance so far and report it
    /// as [`Input::Partial`]. If the turn then ends at this point, [`Action::Transcribe`] asks for
    /// the same segment.
    Peek {
        start: Instant,
        end: Instant,
        /// The caller is still talking: the transcript only prepares the reply, so it is worth
        /// doing only with cores to spare.
        interim: bool,
    },
    /// The caller is mid-turn and has said this so far: retrieval and LLM prefill may start on
    /// it, so that the reply decodes only what the final transcript adds.
    Prepare {
        text: String,
    },
    /// Transcribe the inbound audio between these instants.
    Transcribe {
        start: Instant,
        end: Instant,
    },
    /// Generate a reply to `caller_text` and speak it as it streams (interruptible).
    Reply {
        caller_text: String,
    },
    /// Barge-in suspected: pause playback where it is.
    PausePlayback,
    /// It was a backchannel or a cough: continue from where playback paused.
    ResumePlayback,
    /// It was an interruption: drop the rest of the reply (history keeps what was played).
    StopPlayback,
    /// Store the consent decision durably, then report [`Input::ConsentLogged`].
    LogConsent {
        answer_text: String,
        decision: Answer,
    },
    StartRecording,
    Blacklist {
        reason: String,
    },
    /// The person asked not to be called again: put the number on the DND list.
    DoNotCall,
    Transfer,
    Hangup {
        reason: EndReason,
    },
}

impl Action {
    /// The action's name, for logs: unlike its `Debug`, it carries none of the caller's words.
    pub fn name(&self) -> &'static str {
        match self {
            Action::Play { .. } => "play",
            Action::Peek { .. } => "peek",
            Action::Prepare { .. } => "prepare",
            Action::Transcribe { .. } => "transcribe",
            Action::Reply { .. } => "reply",
            Action::PausePlayback => "pause_playback",
            Action::ResumePlayback => "resume_playback",
            Action::StopPlayback => "stop_playback",
            Action::LogConsent { .. } => "log_consent",
            Action::StartRecording => "start_recording",
            Action::Blacklist { .. } => "blacklist",
            Action::DoNotCall => "do_not_call",
            Action::Transfer => "transfer",
            Action::Hangup { .. } => "hangup",
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EndReason {
    CallerHungUp,
    Silence,
    MaxDuration,
    Abuse,
    Transferred,
    EngineFailure,
    /// Asked not to be called again; goodbye after the confirmation.
    DoNotCall,
}

/// What the session is doing: each state carries only what it needs.
#[derive(Debug, Clone, Copy)]
enum State {
    NotAnswered,
    /// A fixed prompt is playing; `then` says what follows it. `paused` after caller speech.
    Prompting {
        interruptible: bool,
        then: Then,
        paused: bool,
    },
    /// Waiting for the caller to speak.
    Listening {
        purpose: Purpose,
        since: Instant,
        reprompts: u8,
    },
    /// A finished utterance is being transcribed.
    Transcribing {
        purpose: Purpose,
    },
    /// A reply is being generated and spoken.
    Replying {
        barge: Barge,
    },
    /// Waiting for the consent decision to be stored; recording starts only after it is.
    LoggingConsent {
        yes: bool,
    },
    Transferring,
    Ended,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Barge {
    None,
    /// Caller speech paused playback; the utterance is still going.
    Paused,
    /// The utterance ended and is being transcribed: backchannel or interruption?
    Deciding,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Purpose {
    /// The answer to the consent question, on this attempt (0, then 1 after the re-ask).
    Consent {
        attempt: u8,
    },
    Turn,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Then {
    AskConsent,
    Listen { purpose: Purpose, reprompts: u8 },
    Transfer,
    Hangup(EndReason),
}

const LISTEN: Then = Then::Listen {
    purpose: Purpose::Turn,
    reprompts: 0,
};

pub struct CallSession {
    config: CallConfig,
    state: State,
    endpointer: Endpointer,
    barge_in: BargeInDetector,
    echo: EchoGuard,
    actions: VecDeque<Action>,
    /// When the call must end regardless.
    deadline: Option<Instant>,
    /// Text of an utterance the caller went on with after the endpointer closed it.
    carried: String,
    /// The end of the segment last peeked at (one peek per pause).
    peeked: Option<Instant>,
    /// The end of the segment last transcribed while the caller talked on.
    interim: Option<Instant>,
    /// Unintelligible turns in a row.
    not_understood: u8,
    /// The last reply offered a colleague: a short yes now means transfer.
    offered_human: bool,
}

impl CallSession {
    pub fn new(config: CallConfig) -> Self {
        CallSession {
            endpointer: Endpointer::new(config.endpoint.clone()),
            barge_in: BargeInDetector::new(config.barge_in.clone()),
            echo: EchoGuard::new(config.echo.clone()),
            config,
            state: State::NotAnswered,
            actions: VecDeque::new(),
            deadline: None,
            carried: String::new(),
            peeked: None,
            interim: None,
            not_understood: 0,
            offered_human: false,
        }
    }

    pub fn poll_action(&mut self) -> Option<Action> {
        self.actions.pop_front()
    }

    /// The next instant [`CallSession::handle_timeout`] must be called at.
    pub fn poll_timeout(&self) -> Option<Instant> {
        let silence = match self.state {
            State::Listening { since, .. } if !self.endpointer.in_speech() => {
                Some(since + self.config.silence_timeout)
            }
            _ => None,
        };
        [silence, self.deadline].into_iter().flatten().min()
    }

    pub fn is_ended(&self) -> bool {
        matches!(self.state, State::Ended)
    }

    pub fn handle_timeout(&mut self, now: Instant) {
        if self.is_ended() {
            return;
        }
        if self.deadline.is_some_and(|d| now >= d) {
            self.deadline = None;
            self.stop_playback();
            return self.prompt(Prompt::Goodbye, false, Then::Hangup(EndReason::MaxDuration));
        }
        if let State::Listening {
            purpose,
            since,
            reprompts,
        } = self.state
        {
            if !self.endpointer.in_speech() && now >= since + self.config.silence_timeout {
                if reprompts >= self.config.max_reprompts {
                    return self.prompt(Prompt::Goodbye, false, Then::Hangup(EndReason::Silence));
                }
                let prompt = match purpose {
                    Purpose::Consent { .. } => Prompt::ConsentReask,
                    Purpose::Turn => Prompt::Reprompt,
                };
                self.prompt(
                    prompt,
                    false,
                    Then::Listen {
                        purpose,
                        reprompts: reprompts + 1,
                    },
                );
            }
        }
    }

    pub fn handle(&mut self, now: Instant, input: Input) {
        if self.is_ended() {
            return;
        }
        match input {
            Input::Answered => self.answered(now),
            Input::AgentAudio { energy_db } => self.echo.sent(now, energy_db),
            Input::CallerAudio { voiced, energy_db } => self.caller_audio(now, voiced, energy_db),
            // A partial of an utterance already closed says nothing about the next one.
            Input::Partial { text, end } if self.endpointer.in_speech() => {
                // A pause the caller has talked on from says nothing about whether they are done.
                let up_to_now = self.endpointer.utterance().is_some_and(|(_, l)| l == end);
                if up_to_now {
                    self.endpointer.set_partial(&text);
                }
                if matches!(
                    self.state,
                    State::Listening {
                        purpose: Purpose::Turn,
                        ..
                    }
                ) && !text.trim().is_empty()
                {
                    self.push(Action::Prepare { text });
                }
            }
            Input::Partial { .. } => {}
            Input::Transcript { text } => self.transcript(now, text),
            Input::PlaybackFinished => self.playback_finished(now),
            Input::ConsentLogged => {
                if let State::LoggingConsent { yes } = self.state {
                    if yes {
                        self.push(Action::StartRecording);
                    }
                    self.prompt(Prompt::ConsentAcknowledged, true, LISTEN);
                }
            }
            Input::Dtmf { digit } => self.dtmf(digit),
            Input::TransferSucceeded => {
                if matches!(self.state, State::Transferring) {
                    self.end(EndReason::Transferred);
                }
            }
            Input::TransferFailed => {
                if matches!(self.state, State::Transferring) {
                    self.prompt(Prompt::TransferFailed, true, LISTEN);
                }
            }
            Input::CouldNotHelp => self.offered_human = self.config.can_transfer,
            Input::EngineFailed => {
                self.stop_playback();
                let then = if self.config.can_transfer {
                    Then::Transfer
                } else {
                    Then::Hangup(EndReason::EngineFailure)
                };
                self.prompt(Prompt::Fallback, false, then);
            }
            Input::Hangup => self.state = State::Ended,
        }
    }

    fn answered(&mut self, now: Instant) {
        if !matches!(self.state, State::NotAnswered) {
            return;
        }
        self.deadline = Some(now + self.config.max_call);
        match self.config.consent {
            // Not interruptible: the consent question must follow it, heard in full.
            ConsentMode::Required => self.prompt(Prompt::Greeting, false, Then::AskConsent),
            ConsentMode::Off => self.prompt(Prompt::Greeting, true, LISTEN),
        }
    }

    fn caller_audio(&mut self, now: Instant, voiced: bool, energy_db: f32) {
        let speech = voiced && !self.echo.is_echo(now, energy_db);
        match self.state {
            State::NotAnswered
            | State::Prompting {
                interruptible: false,
                ..
            }
            | State::LoggingConsent { .. }
            | State::Transferring
            | State::Ended => {
                // Not listening now: words spoken here would be cut or mis-attributed.
                self.endpointer.reset();
                self.barge_in.reset();
                return;
            }
            State::Prompting {
                interruptible: true,
                then,
                paused: false,
            } => {
                if self.barge_in.frame(now, speech) {
                    self.push(Action::PausePlayback);
                    self.state = State::Prompting {
                        interruptible: true,
                        then,
                        paused: true,
                    };
                }
            }
            State::Replying { barge: Barge::None } => {
                if self.barge_in.frame(now, speech) {
                    self.push(Action::PausePlayback);
                    self.state = State::Replying {
                        barge: Barge::Paused,
                    };
                }
            }
            State::Prompting { .. }
            | State::Listening { .. }
            | State::Transcribing { .. }
            | State::Replying { .. } => {}
        }
        match self.endpointer.frame(now, speech) {
            Some(EndpointEvent::TurnEnded { start, end, .. }) => match self.state {
                State::Listening { purpose, .. } | State::Transcribing { purpose } => {
                    self.push(Action::Transcribe { start, end });
                    self.state = State::Transcribing { purpose };
                }
                State::Prompting { paused: true, .. } => {
                    // A prompt talked over is dropped; what the caller said is the turn.
                    self.push(Action::StopPlayback);
                    self.push(Action::Transcribe { start, end });
                    self.state = State::Transcribing {
                        purpose: Purpose::Turn,
                    };
                }
                State::Replying {
                    barge: Barge::Paused,
                } => {
                    self.push(Action::Transcribe { start, end });
                    self.state = State::Replying {
                        barge: Barge::Deciding,
                    };
                }
                // Speech that never paused anything (under 160 ms of it while we talked).
                _ => {}
            },
            Some(EndpointEvent::Noise) => match self.state {
                State::Prompting {
                    interruptible,
                    then,
                    paused: true,
                } => {
                    self.push(Action::ResumePlayback);
                    self.state = State::Prompting {
                        interruptible,
                        then,
                        paused: false,
                    };
                }
                State::Replying {
                    barge: Barge::Paused,
                } => {
                    self.push(Action::ResumePlayback);
                    self.state = State::Replying { barge: Barge::None };
                }
                _ => {}
            },
            Some(EndpointEvent::SpeechStarted { .. }) | None => self.peek(now),
        }
    }

    /// While listening, a pause in the caller's speech gets the utterance so far transcribed.
    fn peek(&mut self, now: Instant) {
        if !matches!(self.state, State::Listening { .. }) {
            return;
        }
        if let Some((start, end)) = self.endpointer.pause(now) {
            if self.peeked != Some(end) {
                self.peeked = Some(end);
                self.push(Action::Peek {
                    start,
                    end,
                    interim: false,
                });
            }
            return;
        }
        // Long speech gets interim transcripts too, so retrieval and prefill keep up with it.
        let (Some(every), Some((start, end))) =
            (self.config.endpoint.interim, self.endpointer.utterance())
        else {
            return;
        };
        let since = self.interim.filter(|p| *p >= start).unwrap_or(start);
        if end.duration_since(since) >= every {
            self.interim = Some(end);
            self.push(Action::Peek {
                start,
                end,
                interim: true,
            });
        }
    }

    fn transcript(&mut self, now: Instant, text: String) {
        match self.state {
            State::Transcribing { purpose } => {
                if self.endpointer.in_speech() {
                    // The caller went on talking: keep these words for the rest of the utterance.
                    self.carried = join(&self.carried, &text);
                    self.state = State::Listening {
                        purpose,
                        since: now,
                        reprompts: 0,
                    };
                    return;
                }
                let text = join(&std::mem::take(&mut self.carried), &text);
                self.understood(now, purpose, text);
            }
            State::Replying {
                barge: Barge::Deciding,
            } => {
                if is_backchannel(&text) {
                    self.push(Action::ResumePlayback);
                    self.state = State::Replying { barge: Barge::None };
                } else {
                    self.push(Action::StopPlayback);
                    self.understood(now, Purpose::Turn, text);
                }
            }
            // A late transcript for a turn that no longer matters.
            _ => {}
        }
    }

    /// Acts on what the caller said: policy first, then the conversation.
    fn understood(&mut self, now: Instant, purpose: Purpose, text: String) {
        if let Some(word) = self.config.profanity.find(&text) {
            let reason = format!("abusive language ({word})");
            self.push(Action::Blacklist { reason });
            return self.prompt(Prompt::AbuseGoodbye, false, Then::Hangup(EndReason::Abuse));
        }
        if policy::do_not_call::asks(&text) {
            self.push(Action::DoNotCall);
            let then = Then::Hangup(EndReason::DoNotCall);
            return self.prompt(Prompt::DoNotCallGoodbye, false, then);
        }
        match purpose {
            Purpose::Consent { attempt } => match consent::classify(&text) {
                Answer::Unclear if attempt == 0 => {
                    let then = Then::Listen {
                        purpose: Purpose::Consent { attempt: 1 },
                        reprompts: 0,
                    };
                    self.prompt(Prompt::ConsentReask, false, then);
                }
                decision => self.decide_consent(text, decision),
            },
            Purpose::Turn => self.turn(now, text),
        }
    }

    /// A conversational turn: the transfer rules first (asked for a person, a transfer topic, a
    /// yes to the offer of a colleague, or not understood again), then the LLM.
    fn turn(&mut self, now: Instant, text: String) {
        use policy::transfer;
        let offered = std::mem::take(&mut self.offered_human);
        if text.trim().is_empty() {
            self.not_understood += 1;
            if self.not_understood >= self.config.max_not_understood && self.config.can_transfer {
                return self.transfer_to_human();
            }
            self.state = State::Listening {
                purpose: Purpose::Turn,
                since: now,
                reprompts: 0,
            };
            return;
        }
        self.not_understood = 0;
        if transfer::wants_human(&text)
            || transfer::mentions(&text, &self.config.transfer_topics)
            || (offered && transfer::accepts(&text))
        {
            return self.transfer_to_human();
        }
        self.push(Action::Reply { caller_text: text });
        self.state = State::Replying { barge: Barge::None };
    }

    fn decide_consent(&mut self, answer_text: String, decision: Answer) {
        self.push(Action::LogConsent {
            answer_text,
            decision,
        });
        self.state = State::LoggingConsent {
            yes: decision == Answer::Yes,
        };
    }

    fn transfer_to_human(&mut self) {
        self.stop_playback();
        if self.config.can_transfer {
            self.prompt(Prompt::Handoff, false, Then::Transfer);
        } else {
            self.prompt(Prompt::NoHuman, true, LISTEN);
        }
    }

    fn dtmf(&mut self, digit: char) {
        match (self.state, digit) {
            (
                State::Listening {
                    purpose: Purpose::Consent { .. },
                    ..
                },
                '1',
            ) => self.decide_consent("DTMF 1".into(), Answer::Yes),
            (
                State::Listening {
                    purpose: Purpose::Consent { .. },
                    ..
                },
                '2',
            ) => self.decide_consent("DTMF 2".into(), Answer::No),
            (State::LoggingConsent { .. } | State::Transferring | State::NotAnswered, _) => {}
            (_, '0') => self.transfer_to_human(),
            // Other digits carry no meaning for the agent (the runtime logs them).
            _ => {}
        }
    }

    fn playback_finished(&mut self, now: Instant) {
        match self.state {
            State::Prompting { then, .. } => match then {
                Then::AskConsent => {
                    let then = Then::Listen {
                        purpose: Purpose::Consent { attempt: 0 },
                        reprompts: 0,
                    };
                    self.prompt(Prompt::ConsentQuestion, false, then);
                }
                Then::Listen { purpose, reprompts } => {
                    self.state = State::Listening {
                        purpose,
                        since: now,
                        reprompts,
                    };
                }
                Then::Transfer => {
                    self.push(Action::Transfer);
                    self.state = State::Transferring;
                }
                Then::Hangup(reason) => self.end(reason),
            },
            State::Replying { barge: Barge::None } => {
                self.state = State::Listening {
                    purpose: Purpose::Turn,
                    since: now,
                    reprompts: 0,
                };
            }
            _ => {}
        }
    }

    fn prompt(&mut self, prompt: Prompt, interruptible: bool, then: Then) {
        self.endpointer.reset();
        self.barge_in.reset();
        self.push(Action::Play {
            prompt,
            interruptible,
        });
        self.state = State::Prompting {
            interruptible,
            then,
            paused: false,
        };
    }

    fn stop_playback(&mut self) {
        if matches!(self.state, State::Prompting { .. } | State::Replying { .. }) {
            self.push(Action::StopPlayback);
        }
    }

    fn end(&mut self, reason: EndReason) {
        self.push(Action::Hangup { reason });
        self.state = State::Ended;
    }

    fn push(&mut self, action: Action) {
        self.actions.push_back(action);
    }
}

fn join(a: &str, b: &str) -> String {
    match (a.trim(), b.trim()) {
        ("", b) => b.to_string(),
        (a, "") => a.to_string(),
        (a, b) => format!("{a} {b}"),
    }
}
