//! Text to the line's audio: the call's TTS thread. Reply chunks are rendered in order, sentence
//! by sentence, each handed back as soon as it is synthesised and resampled to 8 kHz.

use super::prompts::to_8k;
use super::RuntimeError;
use models_api::{CancelToken, Flow, Tts, TtsOptions};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc;

/// What the TTS thread reports, tagged with the reply it belongs to.
#[derive(Debug)]
pub enum Said {
    Audio {
        reply: u64,
        text: String,
        samples: Vec<i16>,
    },
    /// Everything of this chunk is rendered (or was cancelled).
    Done {
        reply: u64,
    },
    Failed {
        reply: u64,
        error: RuntimeError,
    },
}

pub struct TtsThread {
    chunks: std::sync::mpsc::Sender<(u64, String, CancelToken)>,
}

impl TtsThread {
    pub fn spawn<T: Tts + 'static>(
        call: &str,
        voice: Arc<T>,
        said: mpsc::UnboundedSender<Said>,
    ) -> std::io::Result<TtsThread> {
        let (chunks, rx) = std::sync::mpsc::channel::<(u64, String, CancelToken)>();
        std::thread::Builder::new()
            .name(format!("tts-{call}"))
            .spawn(move || {
                let options = TtsOptions {
                    sentence_silence: Duration::from_millis(150),
                    ..TtsOptions::default()
                };
                for (reply, text, cancel) in rx {
                    if cancel.is_cancelled() {
                        let _ = said.send(Said::Done { reply });
                        continue;
                    }
                    let rate = voice.sample_rate();
                    let mut failed = None;
                    let result =
                        voice.synthesize(&text, &options, &cancel, &mut |speech| match to_8k(
                            &speech.samples,
                            rate,
                        ) {
                            Ok(samples) => {
                                let _ = said.send(Said::Audio {
                                    reply,
                                    text: speech.text,
                                    samples,
                                });
                                Flow::Continue
                            }
                            Err(e) => {
                                failed = Some(e);
                                Flow::Stop
                            }
                        });
                    let report = match (result, failed) {
                        (Err(e), _) => Said::Failed {
                            reply,
                            error: RuntimeError::model("text-to-speech", e),
                        },
                        (Ok(_), Some(error)) => Said::Failed { reply, error },
                        (Ok(_), None) => Said::Done { reply },
                    };
                    if said.send(report).is_err() {
                        return;
                    }
                }
            })?;
        Ok(TtsThread { chunks })
    }

    pub fn say(&self, reply: u64, text: String, cancel: CancelToken) {
        let _ = self.chunks.send((reply, text, cancel));
    }
}
