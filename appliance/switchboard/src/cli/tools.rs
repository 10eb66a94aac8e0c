//! `switchboard transcribe` and `switchboard say`: the speech engines on files, for operators
//! checking a box and for tests feeding SIP peers.

use super::audio;
use crate::config::Config;
use crate::engines;
use anyhow::Context;
use media_audio::resample::SampleRate;
use media_audio::wav::read::Channel;
use models_api::{i16_to_f32, CancelToken, Stt, SttOptions, Tts, TtsOptions};
use models_bundle::Role;
use serde::Serialize;
use std::path::PathBuf;
use std::time::{Duration, Instant};

/// The voice `say` uses unless told otherwise (the agents' default too).
pub const DEFAULT_VOICE: &str = "en_US-joe-medium";

#[derive(Debug, clap::Args)]
pub struct TranscribeArgs {
    /// A WAV file: PCM (8–32 bit), float or G.711 µ-law/A-law, at 8, 16, 22.05, 44.1 or 48 kHz.
    pub file: PathBuf,
    /// Print JSON: text, segments with timestamps, confidence and timings.
    #[arg(long)]
    pub json: bool,
    /// Transcribe one channel (0-based; a call recording has the caller on 0, the agent on 1)
    /// instead of the mix of all channels.
    #[arg(long, value_name = "N")]
    pub channel: Option<u16>,
    /// Spoken language (ISO 639-1); English-only models ignore it.
    #[arg(long, default_value = "en")]
    pub language: String,
    /// Words that bias recognition (business and product names).
    #[arg(long, value_name = "TEXT")]
    pub prompt: Option<String>,
}

#[derive(Debug, clap::Args)]
pub struct SayArgs {
    /// What to say.
    pub text: String,
    /// The WAV file to write (mono, 16-bit PCM).
    #[arg(short, long, value_name = "FILE.wav")]
    pub output: PathBuf,
    /// Output sample rate: 8000 for telephony peers (baresip, sipp), 16000, 22050 (the voice's own),
    /// 44100 or 48000.
    #[arg(long, default_value_t = 22050, value_parser = parse_rate)]
    pub rate: u32,
    /// Piper voice in the model directory's `piper/` folder.
    #[arg(long, default_value = DEFAULT_VOICE)]
    pub voice: String,
    /// Speaking pace: 1.0 is the voice's own, above is slower.
    #[arg(long, default_value_t = 1.0, value_parser = parse_positive)]
    pub length_scale: f32,
    /// Output gain (1.0 = as rendered; samples clip at full scale).
    #[arg(long, default_value_t = 1.0, value_parser = parse_gain)]
    pub volume: f32,
}

/// The JSON `transcribe --json` prints.
#[derive(Debug, Serialize)]
pub struct TranscribeReport {
    pub file: String,
    pub text: String,
    /// Mean token probability, 0..=1.
    pub confidence: f32,
    pub segments: Vec<SegmentReport>,
    pub input: InputReport,
    pub timing: TimingReport,
}

#[derive(Debug, Serialize)]
pub struct SegmentReport {
    pub start_ms: u64,
    pub end_ms: u64,
    pub text: String,
    pub confidence: f32,
}

#[derive(Debug, Serialize)]
pub struct InputReport {
    pub sample_rate: u32,
    pub channels: u16,
    pub encoding: String,
    pub duration_ms: u64,
}

#[derive(Debug, Serialize)]
pub struct TimingReport {
    pub model_load_ms: u64,
    /// Reading, decoding and resampling the file.
    pub decode_ms: u64,
    pub transcribe_ms: u64,
    /// transcribe_ms over the audio's length.
    pub real_time_factor: f64,
    /// Whisper encoder positions used (50 per second of audio).
    pub audio_ctx: u32,
}

/// `switchboard transcribe`.
pub fn transcribe(config: &Config, args: TranscribeArgs) -> anyhow::Result<()> {
    // The file first: a wrong file is reported before seconds of model loading.
    let started = Instant::now();
    let channel = args.channel.map_or(Channel::Mix, Channel::Only);
    let input = audio::read_wav(&args.file, channel)?;
    let pcm = audio::resample(&input.samples, input.rate, SampleRate::Hz16000)
        .with_context(|| format!("{}: resampling to 16 kHz", args.file.display()))?;
    let decode = started.elapsed();

    let started = Instant::now();
    let stt = load_stt(config)?;
    let load = started.elapsed();
    let options = SttOptions {
        language: Some(args.language),
        initial_prompt: args.prompt,
        ..SttOptions::default()
    };
    let t = stt
        .transcribe(&i16_to_f32(&pcm), &options, &CancelToken::new())
        .context("speech-to-text failed")?
        .context("speech-to-text was cancelled")?;
    if !args.json {
        return super::emit(&t.text);
    }
    let report = TranscribeReport {
        file: args.file.display().to_string(),
        text: t.text,
        confidence: t.confidence,
        segments: t
            .segments
            .into_iter()
            .map(|s| SegmentReport {
                start_ms: ms(s.start),
                end_ms: ms(s.end),
                text: s.text,
                confidence: s.confidence,
            })
            .collect(),
        input: InputReport {
            sample_rate: input.rate.hz(),
            channels: input.channels,
            encoding: input.encoding.to_string(),
            duration_ms: ms(t.audio),
        },
        timing: TimingReport {
            model_load_ms: ms(load),
            decode_ms: ms(decode),
            transcribe_ms: ms(t.elapsed),
            real_time_factor: t.elapsed.as_secs_f64() / t.audio.as_secs_f64().max(1e-9),
            audio_ctx: t.audio_ctx,
        },
    };
    super::emit(&serde_json::to_string_pretty(&report)?)
}

/// `switchboard say`.
pub fn say(config: &Config, args: SayArgs) -> anyhow::Result<()> {
    let rate = SampleRate::from_hz(args.rate).context("checked by the argument parser")?;
    let voice = load_voice(config, &args.voice)?;
    let options = TtsOptions {
        length_scale: args.length_scale,
        volume: args.volume,
        ..TtsOptions::default()
    };
    let started = Instant::now();
    let speech = voice
        .say(&args.text, &options)
        .context("text-to-speech failed")?;
    let elapsed = started.elapsed();
    let own = SampleRate::from_hz(voice.sample_rate()).with_context(|| {
        format!(
            "voice {} renders at {} Hz, which cannot be resampled",
            args.voice,
            voice.sample_rate()
        )
    })?;
    let out = audio::resample(&speech, own, rate)?;
    audio::write_wav(&args.output, &out, rate.hz())?;
    eprintln!(
        "{}: {:.2} s at {} Hz (synthesised in {} ms)",
        args.output.display(),
        out.len() as f64 / f64::from(rate.hz()),
        rate.hz(),
        ms(elapsed)
    );
    Ok(())
}

/// The installed profile's speech-to-text model, alone (no LLM or embedder load).
pub fn load_stt(config: &Config) -> anyhow::Result<models_whisper::Whisper> {
    load_stt_with(config, |_| {})
}

/// [`load_stt`] with the engine configuration adjusted first (e.g. its threads).
pub fn load_stt_with(
    config: &Config,
    adjust: impl FnOnce(&mut models_whisper::WhisperConfig),
) -> anyhow::Result<models_whisper::Whisper> {
    let path = engines::file_for(
        &config.models.dir,
        config.models.profile.into(),
        Role::Stt,
        "speech-to-text",
    )?;
    let mut c = models_whisper::WhisperConfig::new(&path);
    adjust(&mut c);
    models_whisper::Whisper::load(&c).with_context(|| not_installed(config))
}

/// A Piper voice from the model directory.
pub fn load_voice(config: &Config, name: &str) -> anyhow::Result<models_piper::Piper> {
    load_voice_with(config, name, |_| {})
}

/// [`load_voice`] with the engine configuration adjusted first.
pub fn load_voice_with(
    config: &Config,
    name: &str,
    adjust: impl FnOnce(&mut models_piper::PiperConfig),
) -> anyhow::Result<models_piper::Piper> {
    let mut c = models_piper::PiperConfig::in_model_dir(&config.models.dir, name);
    adjust(&mut c);
    models_piper::Piper::load(&c)
        .with_context(|| format!("voice {name}: {}", not_installed(config)))
}

/// The hint that follows a model that would not load.
pub fn not_installed(config: &Config) -> String {
    format!(
        "cannot load the model from {} (models.dir; install with `switchboard models install \
         --profile {}`)",
        config.models.dir.display(),
        models_bundle::Profile::from(config.models.profile).as_str()
    )
}

fn ms(d: Duration) -> u64 {
    d.as_millis().try_into().unwrap_or(u64::MAX)
}

/// A command-line value out of its range.
#[derive(Debug, thiserror::Error)]
pub enum BadValue {
    #[error("{0:?} is not {1}")]
    Number(String, &'static str),
    #[error("{0} Hz is not one of 8000, 16000, 22050, 44100, 48000")]
    Rate(u32),
}

fn parse_rate(s: &str) -> Result<u32, BadValue> {
    let hz: u32 = s
        .parse()
        .map_err(|_| BadValue::Number(s.to_owned(), "a number"))?;
    SampleRate::from_hz(hz)
        .map(SampleRate::hz)
        .ok_or(BadValue::Rate(hz))
}

fn parse_positive(s: &str) -> Result<f32, BadValue> {
    match s.parse::<f32>() {
        Ok(x) if x.is_finite() && x > 0.0 && x <= 10.0 => Ok(x),
        _ => Err(BadValue::Number(s.to_owned(), "a number in (0, 10]")),
    }
}

fn parse_gain(s: &str) -> Result<f32, BadValue> {
    match s.parse::<f32>() {
        Ok(x) if x.is_finite() && (0.0..=10.0).contains(&x) => Ok(x),
        _ => Err(BadValue::Number(s.to_owned(), "a number in [0, 10]")),
    }
}
