//! What the caller hears: audio queued to the RTP session, with the text it carries.
//!
//! The RTP session paces queued samples out at 20 ms and reports, when its queue is cleared,
//! how many were actually sent. That is enough to know, at any instant, which chunk of which
//! reply is on the wire (the echo reference), when playback ends, and after a barge-in exactly
//! which words the caller heard — the only words that may enter the conversation's history.

use media_net::RtpSessionHandle;
use std::collections::VecDeque;
use std::time::{Duration, Instant};

const RATE: f64 = 8000.0;
/// Playback counts as finished this long after the last queued sample is due on the wire, to
/// cover the session's pacing and the peer's jitter buffer.
const TAIL: Duration = Duration::from_millis(60);

/// A piece of speech: its 8 kHz samples and the words they say.
#[derive(Clone, Debug)]
pub struct Chunk {
    pub text: String,
    pub samples: Vec<i16>,
}

pub struct Outbound {
    media: RtpSessionHandle,
    /// Chunks handed to the RTP session since its last clear, in order.
    live: VecDeque<Chunk>,
    live_samples: usize,
    /// When the last live sample is due on the wire.
    ends_at: Option<Instant>,
    /// Chunks waiting while playback is paused.
    held: VecDeque<Chunk>,
    paused: bool,
    /// What the caller heard of the current reply before chunks were cleared.
    heard: Vec<String>,
}

impl Outbound {
    pub fn new(media: RtpSessionHandle) -> Self {
        Outbound {
            media,
            live: VecDeque::new(),
            live_samples: 0,
            ends_at: None,
            held: VecDeque::new(),
            paused: false,
            heard: Vec::new(),
        }
    }

    pub fn media(&self) -> &RtpSessionHandle {
        &self.media
    }

    /// Queues `chunk` behind what is playing (or holds it while paused).
    pub fn push(&mut self, now: Instant, chunk: Chunk) {
        if chunk.samples.is_empty() {
            return;
        }
        if self.paused {
            self.held.push_back(chunk);
            return;
        }
        let start = self.ends_at.filter(|&t| t > now).unwrap_or(now);
        self.ends_at = Some(start + duration(chunk.samples.len()));
        // A closed session means the call is ending; the caller hears nothing either way.
        let _ = self.media.push_audio(chunk.samples.clone());
        self.live_samples += chunk.samples.len();
        self.live.push_back(chunk);
    }

    /// Whether everything queued has been played (nothing paused or held).
    pub fn is_idle(&self, now: Instant) -> bool {
        !self.paused && self.held.is_empty() && self.ends_at.is_none_or(|t| now >= t + TAIL)
    }

    /// When [`Outbound::is_idle`] becomes true if nothing else is queued.
    pub fn idle_at(&self) -> Option<Instant> {
        (!self.paused && self.held.is_empty())
            .then_some(self.ends_at.map(|t| t + TAIL))
            .flatten()
    }

    /// The 20 ms frame on the wire at `now`, if any: the echo reference.
    pub fn frame_at(&self, now: Instant) -> Option<&[i16]> {
        let ends_at = self.ends_at?;
        if self.paused || now >= ends_at {
            return None;
        }
        let remaining = ((ends_at - now).as_secs_f64() * RATE) as usize;
        let mut index = self.live_samples.checked_sub(remaining)?;
        for chunk in &self.live {
            if index < chunk.samples.len() {
                let end = (index + 160).min(chunk.samples.len());
                return Some(&chunk.samples[index..end]);
            }
            index -= chunk.samples.len();
        }
        None
    }

    /// Stops the wire where it is, keeping the unplayed rest to resume.
    pub async fn pause(&mut self) {
        if self.paused {
            return;
        }
        let rest = self.clear().await;
        self.held = rest;
        self.paused = true;
    }

    /// Plays what [`Outbound::pause`] held back.
    pub fn resume(&mut self, now: Instant) {
        self.paused = false;
        for chunk in std::mem::take(&mut self.held) {
            self.push(now, chunk);
        }
    }

    /// Drops everything not yet played; returns the words the caller heard since the last
    /// [`Outbound::take_heard`].
    pub async fn stop(&mut self) -> String {
        self.clear().await;
        self.held.clear();
        self.paused = false;
        self.take_heard()
    }

    /// The words heard so far (played chunks included) and forgets them.
    pub fn take_heard(&mut self) -> String {
        let mut heard = std::mem::take(&mut self.heard);
        heard.extend(self.live.iter().map(|c| c.text.clone()));
        heard.retain(|t| !t.trim().is_empty());
        heard.join(" ")
    }

    /// Clears the RTP queue and splits the live chunks into heard words and the unplayed rest.
    async fn clear(&mut self) -> VecDeque<Chunk> {
        let sent = match self.media.clear_outbound().await {
            Ok(c) => c.sent_samples as usize,
            Err(_) => self.live_samples,
        };
        let mut rest = VecDeque::new();
        let mut played = sent;
        for chunk in std::mem::take(&mut self.live) {
            let n = chunk.samples.len();
            if played >= n {
                played -= n;
                self.heard.push(chunk.text);
            } else if played > 0 {
                let (said, unsaid) = split_words(&chunk.text, played as f64 / n as f64);
                self.heard.push(said);
                rest.push_back(Chunk {
                    text: unsaid,
                    samples: chunk.samples[played..].to_vec(),
                });
                played = 0;
            } else {
                rest.push_back(chunk);
            }
        }
        self.live_samples = 0;
        self.ends_at = None;
        rest
    }
}

fn duration(samples: usize) -> Duration {
    Duration::from_secs_f64(samples as f64 / RATE)
}

/// Splits `text` after the words spoken in the first `fraction` of its audio (speech runs at a
/// roughly even pace within a sentence, so this is within a word or two).
fn split_words(text: &str, fraction: f64) -> (String, String) {
    let words: Vec<&str> = text.split_whitespace().collect();
    let said = ((words.len() as f64) * fraction).floor() as usize;
    (words[..said].join(" "), words[said..].join(" "))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn words_split_by_played_fraction() {
        assert_eq!(
            split_words("we open at nine every weekday", 0.5),
            ("we open at".into(), "nine every weekday".into())
        );
        assert_eq!(split_words("hello", 0.9), (String::new(), "hello".into()));
    }
}
