//! Scripted engines for the call runtime: they answer at once, say what they did in a shared
//! [`Log`], and do what the test's [`Script`] says (a reply's pieces, a failure, a hang).

use models_api::{
    CancelToken, ChatMessage, Constraint, Embedder, Embedding, Flow, GenerateOptions, Generation,
    Llm, LlmSession, Role, Speech, StopReason, Stt, SttOptions, Transcript, Tts, TtsOptions,
};
use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use switchboard::engines::{EngineError, Models};

/// What the caller's fake speech says, word by word (see [`FakeStt`]).
pub const SENTENCE: [&str; 8] = ["could", "you", "tell", "me", "when", "you", "are", "open"];

/// What the engines did, in order.
#[derive(Default)]
pub struct Log(Mutex<Vec<String>>);

impl Log {
    fn push(&self, entry: String) {
        self.0.lock().unwrap().push(entry);
    }

    pub fn entries(&self) -> Vec<String> {
        self.0.lock().unwrap().clone()
    }

    /// The entries that start with `prefix`.
    pub fn of(&self, prefix: &str) -> Vec<String> {
        self.entries()
            .into_iter()
            .filter(|e| e.starts_with(prefix))
            .collect()
    }

    /// Where the first entry starting with `prefix` is.
    pub fn position(&self, prefix: &str) -> Option<usize> {
        self.entries().iter().position(|e| e.starts_with(prefix))
    }
}

/// One reply of the fake LLM.
#[derive(Clone, Debug)]
pub enum Reply {
    /// These pieces, streamed in order (as tokens are).
    Say(Vec<&'static str>),
    /// An engine error.
    Fail,
    /// Nothing until cancelled.
    Hang,
}

/// What the engines will do: replies in turn (then a short default one), and whether speech
/// recognition fails.
#[derive(Default)]
pub struct Script {
    pub replies: Mutex<VecDeque<Reply>>,
    pub stt_fails: AtomicBool,
    /// Told when the LLM starts a [`Reply::Hang`]: from then the paused clock stands still
    /// (a blocking task is running) and only the test moves it.
    pub hanging: tokio::sync::Notify,
}

impl Script {
    pub fn replies(replies: impl IntoIterator<Item = Reply>) -> Arc<Script> {
        Arc::new(Script {
            replies: Mutex::new(replies.into_iter().collect()),
            ..Script::default()
        })
    }
}

#[derive(Debug, thiserror::Error)]
#[error("scripted {0} failure")]
pub struct Failure(&'static str);

pub struct FakeModels {
    stt: Arc<FakeStt>,
    llm: Arc<FakeLlm>,
    voice: Arc<FakeVoice>,
}

impl FakeModels {
    pub fn new(script: Arc<Script>, log: Arc<Log>) -> FakeModels {
        FakeModels {
            stt: Arc::new(FakeStt {
                script: Arc::clone(&script),
                log: Arc::clone(&log),
            }),
            llm: Arc::new(FakeLlm {
                script,
                log: Arc::clone(&log),
            }),
            voice: Arc::new(FakeVoice { log }),
        }
    }
}

impl Models for FakeModels {
    type Stt = FakeStt;
    type Llm = FakeLlm;
    type Embedder = FakeEmbedder;
    type Voice = FakeVoice;

    fn stt(&self) -> Arc<FakeStt> {
        Arc::clone(&self.stt)
    }

    fn llm(&self) -> Arc<FakeLlm> {
        Arc::clone(&self.llm)
    }

    fn embedder(&self) -> Arc<FakeEmbedder> {
        Arc::new(FakeEmbedder)
    }

    fn voice(&self, _name: &str) -> Result<Arc<FakeVoice>, EngineError> {
        Ok(Arc::clone(&self.voice))
    }
}

/// Hears one word of [`SENTENCE`] per 300 ms of voiced audio, so a transcript taken at a pause
/// is the start of the one taken at the end.
pub struct FakeStt {
    script: Arc<Script>,
    log: Arc<Log>,
}

impl Stt for FakeStt {
    type Error = Failure;

    fn transcribe(
        &self,
        audio: &[f32],
        _options: &SttOptions,
        cancel: &CancelToken,
    ) -> Result<Option<Transcript>, Failure> {
        if self.script.stt_fails.load(Ordering::SeqCst) {
            self.log.push("stt failed".into());
            return Err(Failure("speech-to-text"));
        }
        if cancel.is_cancelled() {
            return Ok(None);
        }
        // 100 ms blocks at 16 kHz.
        let voiced = audio
            .chunks(1600)
            .filter(|b| (b.iter().map(|s| s * s).sum::<f32>() / b.len() as f32).sqrt() > 0.02)
            .count();
        let text = SENTENCE[..(voiced / 3).min(SENTENCE.len())].join(" ");
        self.log.push(format!("stt: {text}"));
        Ok(Some(Transcript {
            text,
            segments: Vec::new(),
            confidence: 0.9,
            audio: Duration::from_secs_f64(audio.len() as f64 / 16000.0),
            elapsed: Duration::ZERO,
            audio_ctx: 0,
        }))
    }
}

pub struct FakeLlm {
    script: Arc<Script>,
    log: Arc<Log>,
}

impl Llm for FakeLlm {
    type Error = Failure;
    type Prefix = ();
    type Session = FakeSession;

    fn prefix(&self, _system_prompt: &str) -> Result<(), Failure> {
        Ok(())
    }

    fn session(&self, _prefix: Option<&()>) -> Result<FakeSession, Failure> {
        Ok(FakeSession {
            history: Vec::new(),
            script: Arc::clone(&self.script),
            log: Arc::clone(&self.log),
        })
    }
}

pub struct FakeSession {
    history: Vec<ChatMessage>,
    script: Arc<Script>,
    log: Arc<Log>,
}

impl LlmSession for FakeSession {
    type Error = Failure;

    fn history(&self) -> &[ChatMessage] {
        &self.history
    }

    fn push(&mut self, message: ChatMessage) {
        self.history.push(message);
    }

    fn pop(&mut self) -> Option<ChatMessage> {
        self.history.pop()
    }

    fn truncate_reply(&mut self, heard: &str) -> bool {
        models_api::truncate_last_reply(&mut self.history, heard)
    }

    fn prefill(&mut self, _cancel: &CancelToken) -> Result<u32, Failure> {
        let last = self.history.last().map_or("", |m| m.content.as_str());
        self.log.push(format!("prefill: {last}"));
        Ok(0)
    }

    fn generate(
        &mut self,
        options: &GenerateOptions,
        cancel: &CancelToken,
        on_text: &mut dyn FnMut(&str) -> Flow,
    ) -> Result<Generation, Failure> {
        if options.constraint != Constraint::None {
            // The end-of-call outcome: not what these tests are about.
            self.log.push("llm: outcome".into());
            return Err(Failure("outcome"));
        }
        // What the model is answering after: the caller's turn, and the agent's last words as
        // the history holds them (after a barge-in, only what the caller heard).
        let said = |role| {
            self.history
                .iter()
                .rev()
                .find(|m| m.role == role)
                .map_or("", |m| m.content.as_str())
                .to_owned()
        };
        self.log.push(format!("asked: {}", said(Role::User)));
        self.log.push(format!("after: {}", said(Role::Assistant)));
        let reply = self.script.replies.lock().unwrap().pop_front();
        let mut text = String::new();
        let mut stop = StopReason::EndOfTurn;
        match reply.unwrap_or(Reply::Say(vec!["Thank", " you."])) {
            Reply::Fail => {
                self.log.push("llm failed".into());
                return Err(Failure("LLM"));
            }
            Reply::Hang => {
                self.log.push("llm hangs".into());
                self.script.hanging.notify_one();
                while !cancel.is_cancelled() {
                    std::thread::sleep(Duration::from_millis(1));
                }
                self.log.push("llm cancelled".into());
                stop = StopReason::Cancelled;
            }
            Reply::Say(pieces) => {
                for piece in pieces {
                    if cancel.is_cancelled() {
                        stop = StopReason::Cancelled;
                        break;
                    }
                    self.log.push(format!("llm: {piece}"));
                    text.push_str(piece);
                    if on_text(piece) == Flow::Stop {
                        stop = StopReason::Callback;
                        break;
                    }
                }
            }
        }
        self.history.push(ChatMessage::assistant(text.clone()));
        Ok(Generation {
            text,
            stop,
            generated_tokens: 0,
            prefilled_tokens: 0,
            cached_tokens: 0,
            prefill: Duration::ZERO,
            first_token: None,
            elapsed: Duration::ZERO,
        })
    }
}

/// Unused by a knowledge-free agent, but the dialog holds one.
pub struct FakeEmbedder;

impl Embedder for FakeEmbedder {
    type Error = Failure;

    fn dimension(&self) -> usize {
        4
    }

    fn embed(&self, texts: &[&str]) -> Result<Vec<Embedding>, Failure> {
        Ok(texts
            .iter()
            .map(|_| Embedding::normalized(vec![1.0, 0.0, 0.0, 0.0]))
            .collect())
    }
}

/// Says each sentence as a vowel, 80 ms a word.
pub struct FakeVoice {
    log: Arc<Log>,
}

impl Tts for FakeVoice {
    type Error = Failure;

    fn sample_rate(&self) -> u32 {
        16000
    }

    fn synthesize(
        &self,
        text: &str,
        _options: &TtsOptions,
        cancel: &CancelToken,
        on_audio: &mut dyn FnMut(Speech) -> Flow,
    ) -> Result<usize, Failure> {
        let mut said = 0;
        for sentence in text.split_inclusive(['.', '?', '!']) {
            let sentence = sentence.trim();
            if sentence.is_empty() || cancel.is_cancelled() {
                continue;
            }
            self.log.push(format!("tts: {sentence}"));
            let words = sentence.split_whitespace().count();
            let samples = vowel(Duration::from_millis(80 * words as u64), 16000, 150.0);
            said += 1;
            let speech = Speech {
                text: sentence.to_owned(),
                samples,
                sample_rate: 16000,
                elapsed: Duration::ZERO,
            };
            if on_audio(speech) == Flow::Stop {
                break;
            }
        }
        Ok(said)
    }
}

/// A voiced sound the WebRTC VAD takes for speech: harmonics of `f0` shaped by two formants,
/// with a syllable-rate swell.
pub fn vowel(length: Duration, rate: u32, f0: f64) -> Vec<i16> {
    use std::f64::consts::PI;
    let n = (length.as_secs_f64() * f64::from(rate)) as usize;
    (0..n)
        .map(|i| {
            let t = i as f64 / f64::from(rate);
            let mut x = 0.0;
            let mut k = 1.0;
            while k * f0 < 3500.0 {
                let h = k * f0;
                let weight = (-((h - 500.0) / 300.0).powi(2)).exp()
                    + 0.5 * (-((h - 1500.0) / 400.0).powi(2)).exp()
                    + 0.05;
                x += weight * (2.0 * PI * h * t).sin();
                k += 1.0;
            }
            let swell = 0.6 + 0.4 * (2.0 * PI * 4.0 * t).sin();
            (x * swell * 4000.0) as i16
        })
        .collect()
}
