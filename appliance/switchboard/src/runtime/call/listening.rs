//! Listening: the caller's frames through the VAD into the session, and their transcription
//! (early at pauses, finally at the end of the turn).

use super::*;
use media_audio::resample::{resample, SampleRate};

/// Inbound audio kept for transcription.
const KEEP_FRAMES: usize = 50 * 60;
/// Audio before the first voiced frame that still belongs to the utterance (soft onsets).
const PREROLL: Duration = Duration::from_millis(200);

/// Shared: a peek's transcript is kept, and reused when the turn ends at the peeked pause.
pub(super) type SttResult = Result<Option<String>, Arc<RuntimeError>>;

/// An early transcription of the utterance so far, taken at a pause ([`Action::Peek`]).
pub(super) struct Peek {
    pub(super) start: Instant,
    pub(super) end: Instant,
    pub(super) text: PeekText,
}

pub(super) enum PeekText {
    /// Whisper works on it; cancelled when a newer pause makes this one stale.
    Running(CancelToken),
    Done(SttResult),
}

/// The caller's turn from its endpoint to the reply: waiting for its transcript, then holding
/// the timings the reply's record starts from.
pub(super) enum CallerTurn {
    /// No ended turn waits for a reply.
    Open,
    Transcribing {
        utterance: Utterance,
        /// A transcript later than this is a failed engine.
        deadline: Instant,
    },
    Transcribed(Utterance),
}

pub(super) struct Utterance {
    pub(super) end_of_speech: Instant,
    pub(super) endpoint_ms: i64,
    /// When the session asked for the transcript (the endpoint).
    pub(super) asked: Instant,
    /// From the endpoint to the transcript: zero when the pause's peek had it already.
    pub(super) stt_ms: i64,
}

impl CallerTurn {
    /// Whether the transcript of the segment that ended at `end` is the one awaited.
    pub(super) fn awaits(&self, end: Instant) -> bool {
        matches!(self, CallerTurn::Transcribing { utterance, .. } if utterance.end_of_speech == end)
    }

    pub(super) fn deadline(&self) -> Option<Instant> {
        match self {
            CallerTurn::Transcribing { deadline, .. } => Some(*deadline),
            _ => None,
        }
    }

    /// The transcript arrived at `now`.
    fn transcribed(&mut self, now: Instant) {
        if let CallerTurn::Transcribing { mut utterance, .. } =
            std::mem::replace(self, CallerTurn::Open)
        {
            utterance.stt_ms = (now - utterance.asked).as_millis() as i64;
            *self = CallerTurn::Transcribed(utterance);
        }
    }

    /// The turn's timings, for the reply that answers it; the next turn starts open.
    pub(super) fn take(&mut self) -> Option<Utterance> {
        match std::mem::replace(self, CallerTurn::Open) {
            CallerTurn::Transcribing { utterance, .. } | CallerTurn::Transcribed(utterance) => {
                Some(utterance)
            }
            CallerTurn::Open => None,
        }
    }
}

impl<M: Models> Call<M> {
    pub(super) fn caller_frame(&mut self, vad: &VadThread, frame: Vec<i16>) {
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

    pub(super) fn heard(&mut self, heard: Heard) {
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

    /// The turn's transcript is in (fresh, or the peek's when the turn ended at that pause).
    pub(super) fn transcribed(&mut self, now: Instant, text: SttResult, elapsed: Duration) {
        self.caller_turn.transcribed(now);
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

    /// A pause (or, `interim`, more speech): whisper starts on the utterance so far while the
    /// endpointer still waits. One at a time (two would only compete for the same cores): a
    /// newer peek stops the running one, whose audio the caller has since added to.
    pub(super) fn peek(&mut self, start: Instant, end: Instant, interim: bool) {
        if self
            .peek
            .as_ref()
            .is_some_and(|p| p.start == start && p.end == end)
        {
            // A pause right after an interim transcript: the same audio.
            return;
        }
        if let Some(PeekText::Running(cancel)) = self.peek.as_ref().map(|p| &p.text) {
            cancel.cancel();
        }
        let cancel = CancelToken::new();
        self.spawn_stt(start, end, cancel.clone(), interim);
        self.peek = Some(Peek {
            start,
            end,
            text: PeekText::Running(cancel),
        });
    }

    pub(super) fn transcribe(&mut self, now: Instant, start: Instant, end: Instant) {
        self.caller_turn = CallerTurn::Transcribing {
            utterance: Utterance {
                end_of_speech: end,
                endpoint_ms: (now - end).as_millis() as i64,
                asked: now,
                stt_ms: 0,
            },
            deadline: now + self.shared.engine_timeout,
        };
        match self
            .peek
            .as_ref()
            .filter(|p| p.start == start && p.end == end)
            .map(|p| &p.text)
        {
            // The same audio was transcribed at the pause: reuse it, or wait for it.
            Some(PeekText::Done(text)) => {
                tracing::debug!("the turn ended at the peeked pause");
                self.transcribed(now, text.clone(), Duration::ZERO);
            }
            Some(PeekText::Running(_)) => {}
            None => self.spawn_stt(start, end, CancelToken::new(), false),
        }
    }

    /// Whisper on the inbound audio from `start` (less the pre-roll) to `end`, on a blocking
    /// thread; the result comes back as [`Engine::Transcript`] for `end`.
    pub(super) fn spawn_stt(
        &self,
        start: Instant,
        end: Instant,
        cancel: CancelToken,
        background: bool,
    ) {
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
}

/// 8 kHz line audio to whisper's 16 kHz floats.
pub fn to_16k(samples: &[i16]) -> Result<Vec<f32>, RuntimeError> {
    let wide = resample(samples, SampleRate::Hz8000, SampleRate::Hz16000)?;
    Ok(wide.iter().map(|&s| f32::from(s) / 32768.0).collect())
}
