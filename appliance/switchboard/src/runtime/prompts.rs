//! The fixed prompts, rendered once per agent at start so they play without waiting for TTS —
//! and still play when TTS is the thing that failed.

use super::playback::Chunk;
use super::RuntimeError;
use media_audio::resample::{resample, SampleRate};
use models_api::{Tts, TtsOptions};
use std::collections::HashMap;
use switchboard_call::Prompt;

/// The agent's wording of each prompt (the greeting is the agent's own).
pub fn text(prompt: Prompt, greeting: &str) -> &str {
    match prompt {
        Prompt::Greeting => greeting,
        Prompt::ConsentQuestion => {
            "This call may be recorded for quality purposes. Is that okay with you? \
             Please say yes or no."
        }
        Prompt::ConsentReask => {
            "Sorry, I didn't catch that. May we record this call? Please say yes or no, \
             or press 1 for yes and 2 for no."
        }
        Prompt::ConsentAcknowledged => "Thank you. How can I help you today?",
        Prompt::Reprompt => "Are you still there?",
        Prompt::Goodbye => "I'll let you go now. Thank you for calling, goodbye.",
        Prompt::AbuseGoodbye => "I'm going to end this call now. Goodbye.",
        Prompt::Handoff => "Of course. Let me put you through to a colleague, one moment please.",
        Prompt::TransferFailed => {
            "I'm sorry, I couldn't reach a colleague right now. We can call you back, \
             or I can try to help you myself."
        }
        Prompt::NoHuman => {
            "I'm sorry, there is no one available to take your call right now. \
             I can take a message for a callback, or try to help you myself."
        }
        Prompt::Fallback => {
            "I'm sorry, I'm having technical trouble right now. Please bear with me."
        }
        Prompt::DoNotCallGoodbye => {
            "Understood. We won't call this number again. Thank you, goodbye."
        }
    }
}

const ALL: [Prompt; 12] = [
    Prompt::Greeting,
    Prompt::ConsentQuestion,
    Prompt::ConsentReask,
    Prompt::ConsentAcknowledged,
    Prompt::Reprompt,
    Prompt::Goodbye,
    Prompt::AbuseGoodbye,
    Prompt::Handoff,
    Prompt::TransferFailed,
    Prompt::NoHuman,
    Prompt::Fallback,
    Prompt::DoNotCallGoodbye,
];

/// Every prompt of one agent, as 8 kHz audio.
#[derive(Debug)]
pub struct Prompts(HashMap<Prompt, Chunk>);

impl Prompts {
    pub fn render<T: Tts>(voice: &T, greeting: &str) -> Result<Self, RuntimeError> {
        let mut all = HashMap::new();
        for prompt in ALL {
            let text = text(prompt, greeting);
            let audio = voice
                .say(text, &TtsOptions::default())
                .map_err(|e| RuntimeError::model(format!("rendering the {prompt:?} prompt"), e))?;
            let samples = to_8k(&audio, voice.sample_rate())?;
            all.insert(
                prompt,
                Chunk {
                    text: text.to_owned(),
                    samples,
                },
            );
        }
        Ok(Prompts(all))
    }

    pub fn get(&self, prompt: Prompt) -> Chunk {
        self.0.get(&prompt).cloned().unwrap_or_else(|| Chunk {
            text: String::new(),
            samples: Vec::new(),
        })
    }
}

/// Resamples TTS output to the line's 8 kHz.
pub fn to_8k(samples: &[i16], rate: u32) -> Result<Vec<i16>, RuntimeError> {
    let from = SampleRate::from_hz(rate).ok_or(RuntimeError::SampleRate(rate))?;
    Ok(resample(samples, from, SampleRate::Hz8000)?)
}
