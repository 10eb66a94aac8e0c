//! Voice activity on the caller's audio. The WebRTC VAD handle is not `Send`, so it lives on a
//! small thread of its own per call; frames go in with their arrival instant and verdicts come
//! back carrying the same instant, so the session's clock is the audio's, not the thread's.

use media_audio::vad::{Aggressiveness, Vad};
use std::time::Instant;
use switchboard_call::turn::echo_guard::energy_db;
use tokio::sync::mpsc;

/// One frame's verdict, with the frame itself handed back.
#[derive(Clone, Debug)]
pub struct Heard {
    pub at: Instant,
    pub voiced: bool,
    pub energy_db: f32,
    pub frame: Vec<i16>,
}

pub struct VadThread {
    frames: std::sync::mpsc::Sender<(Instant, Vec<i16>)>,
}

impl VadThread {
    /// Starts the thread; verdicts arrive on the returned receiver until the `VadThread` is dropped.
    pub fn spawn(call: &str) -> std::io::Result<(VadThread, mpsc::UnboundedReceiver<Heard>)> {
        let (frames, rx) = std::sync::mpsc::channel::<(Instant, Vec<i16>)>();
        let (tx, verdicts) = mpsc::unbounded_channel();
        std::thread::Builder::new()
            .name(format!("vad-{call}"))
            .spawn(move || {
                // Mode 2: phone lines carry hiss and comfort noise that mode 0 calls speech.
                let mut vad = match Vad::new(8000, Aggressiveness::Aggressive) {
                    Ok(v) => Some(v),
                    Err(e) => {
                        tracing::error!("VAD unavailable, using energy only: {e}");
                        None
                    }
                };
                for (at, frame) in rx {
                    let energy_db = energy_db(&frame);
                    let voiced = match vad.as_mut() {
                        Some(v) => v.is_speech(&frame).unwrap_or(false),
                        None => energy_db > -35.0,
                    };
                    let heard = Heard {
                        at,
                        voiced,
                        energy_db,
                        frame,
                    };
                    if tx.send(heard).is_err() {
                        return;
                    }
                }
            })?;
        Ok((VadThread { frames }, verdicts))
    }

    pub fn hear(&self, at: Instant, frame: Vec<i16>) {
        let _ = self.frames.send((at, frame));
    }
}
