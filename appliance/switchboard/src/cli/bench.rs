//! `switchboard bench models`: the installed profile's engines measured on this machine, against
//! the latency targets of a phone turn (DESIGN.md "Latency").
//!
//! Method (as `models/*/examples/*_bench.rs`): every figure is the median of `--runs` timed runs
//! after one warm-up; the STT utterances are Piper speech, so the bench needs no audio files.
//! All engines are loaded together first, so peak RSS is the footprint of a working appliance
//! whose LLM is sized for 8 calls at once (`calls.max_concurrent` 7: a KV cache of 4,096 tokens
//! for each of 8 sessions, 384 MiB with the small model).

use super::tools::{self, DEFAULT_VOICE};
use crate::config::Config;
use crate::engines;
use anyhow::Context;
use media_audio::resample::SampleRate;
use models_api::testing::word_error_rate;
use models_api::{
    i16_to_f32, CancelToken, ChatMessage, Embedder, Flow, GenerateOptions, Llm, LlmSession, Stt,
    SttOptions, Tts, TtsOptions,
};
use models_bundle::Role;
use serde::Serialize;
use std::time::{Duration, Instant};

#[derive(Debug, clap::Subcommand)]
pub enum BenchCommand {
    /// Measure the installed profile's engines: STT latency, LLM speed and first token, TTS first
    /// audio, embeddings/s, peak memory; compared with the phone-turn targets.
    Models(BenchModelsArgs),
}

#[derive(Debug, clap::Args)]
pub struct BenchModelsArgs {
    /// Print JSON instead of a table.
    #[arg(long)]
    pub json: bool,
    /// Timed runs per figure (the median is reported).
    #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u32).range(1..=50))]
    pub runs: u32,
    /// CPU threads per engine [default: each engine's own, one per core]. On a busy box fewer
    /// threads can be faster: ggml's workers spin at barriers.
    #[arg(long, value_parser = clap::value_parser!(u32).range(1..=256))]
    pub threads: Option<u32>,
    /// Piper voice to measure.
    #[arg(long, default_value = DEFAULT_VOICE)]
    pub voice: String,
}

/// Targets on the 2-core reference machine with the small profile (issue #3, DESIGN.md).
pub const TARGET_STT_3S_MS: f64 = 150.0;
pub const TARGET_LLM_FIRST_TOKEN_MS: f64 = 250.0;
pub const TARGET_TTS_FIRST_AUDIO_MS: f64 = 100.0;

/// What `bench models --json` prints.
#[derive(Debug, Serialize)]
pub struct BenchReport {
    pub profile: &'static str,
    pub models_dir: String,
    pub cores: usize,
    /// /proc/loadavg (1, 5, 15 min) before loading and after measuring: other work on the box.
    pub load_average_before: [f64; 3],
    pub load_average_after: [f64; 3],
    pub threads: ThreadsReport,
    pub runs: u32,
    pub load_ms: LoadReport,
    pub stt: Vec<SttReport>,
    pub llm: LlmReport,
    pub tts: TtsReport,
    pub embeddings: EmbeddingsReport,
    /// VmHWM: the most resident memory the process had, all engines loaded and used.
    pub peak_rss_bytes: u64,
    pub targets: Vec<TargetReport>,
}

#[derive(Debug, Serialize)]
pub struct ThreadsReport {
    pub stt: u32,
    pub llm: u32,
    pub tts: usize,
}

#[derive(Debug, Serialize)]
pub struct LoadReport {
    pub stt: f64,
    pub llm: f64,
    pub tts: f64,
    pub embedder: f64,
}

#[derive(Debug, Serialize)]
pub struct SttReport {
    pub audio_ms: f64,
    /// Median wall time of one transcription.
    pub latency_ms: f64,
    pub latency_runs_ms: Vec<f64>,
    /// latency over audio length.
    pub real_time_factor: f64,
    pub audio_ctx: u32,
    pub spoken: String,
    pub heard: String,
    pub word_error_rate: f64,
}

#[derive(Debug, Serialize)]
pub struct LlmReport {
    /// The agent prefix (system prompt), prefilled cold.
    pub prefix_tokens: usize,
    pub prefix_prefill_ms: f64,
    pub prefill_tokens_per_s: f64,
    /// New prompt tokens of the user turn (its text plus the chat template's markers).
    pub turn_tokens: u32,
    pub cached_tokens: u32,
    /// Starting a conversation from the prefix (a KV snapshot copy); paid once per call.
    pub session_ms: f64,
    /// Median time from the turn's submission to its first streamed text.
    pub first_token_ms: f64,
    pub first_token_runs_ms: Vec<f64>,
    pub generated_tokens: u32,
    pub generation_tokens_per_s: f64,
    pub reply: String,
    /// Replies generated at the same time, decoded together: the box's headroom.
    pub throughput: Vec<ThroughputReport>,
}

/// `sessions` replies generated at once, each in its own thread.
#[derive(Debug, Serialize)]
pub struct ThroughputReport {
    pub sessions: usize,
    /// Generated tokens of all sessions over the wall time (median of the runs).
    pub tokens_per_s: f64,
    /// What each session saw: its tokens over its own generation time.
    pub per_session_tokens_per_s: f64,
    /// Tokens per decode step: how many sessions' tokens the steps carried on average.
    pub tokens_per_step: f64,
}

#[derive(Debug, Serialize)]
pub struct TtsReport {
    pub sentence: &'static str,
    /// Median time to the first sentence's audio.
    pub first_audio_ms: f64,
    pub first_audio_runs_ms: Vec<f64>,
    pub sentence_audio_ms: f64,
    /// A paragraph's synthesis time over its audio length.
    pub real_time_factor: f64,
    pub paragraph_audio_ms: f64,
    pub paragraph_ms: f64,
}

#[derive(Debug, Serialize)]
pub struct EmbeddingsReport {
    pub texts: usize,
    pub batch: usize,
    pub per_second: f64,
    /// Median latency of one query (batch of 1).
    pub query_ms: f64,
}

#[derive(Debug, Serialize)]
pub struct TargetReport {
    pub name: &'static str,
    pub measured_ms: f64,
    pub target_ms: f64,
    pub pass: bool,
}

/// About 210 tokens: a realistic agent prefix.
const SYSTEM: &str = models_api::bench::AGENT_PROMPT;

/// About 40 tokens once the chat template's markers are added.
const TURN: &str = models_api::bench::CALLER_TURN;

/// Replies generated at once for the throughput curve.
const CONCURRENT: [usize; 4] = [1, 2, 4, 8];

/// Tokens each reply generates for the throughput curve.
const THROUGHPUT_TOKENS: u32 = 48;

/// Ten words.
const TTS_SENTENCE: &str = "Thank you for calling Riverside Cycles, how can I help?";

const TTS_PARAGRAPH: &str = "We are open Tuesday to Saturday from ten to six. Our address is \
forty eight Canal Road, next to the bakery. A basic service costs fifty five dollars. Would you \
like me to book a service for you?";

/// Utterances slightly shorter than their slot, padded with silence to exactly 3 s and 10 s.
const UTTERANCES: [(u64, &str); 2] = [
    (3, "I would like to book a cleaning next Tuesday."),
    (
        10,
        "Hello, I would like to book a cleaning appointment for next Tuesday afternoon. \
         My name is John Miller and I am a new patient. Do you take Delta insurance?",
    ),
];

/// `switchboard bench models`.
pub fn models(config: &Config, args: BenchModelsArgs) -> anyhow::Result<()> {
    let report = run(config, &args)?;
    if args.json {
        super::emit(&serde_json::to_string_pretty(&report)?)
    } else {
        super::emit(&table(&report))
    }
}

/// Loads the engines and measures them.
pub fn run(config: &Config, args: &BenchModelsArgs) -> anyhow::Result<BenchReport> {
    let load_average_before = load_average();
    let dir = &config.models.dir;
    let profile: models_bundle::Profile = config.models.profile.into();
    let runs = args.runs.max(1) as usize;
    let threads = args.threads;

    let t = Instant::now();
    let mut stt_threads = 0;
    let stt = tools::load_stt_with(config, |c| {
        if let Some(n) = threads {
            c.threads = n;
        }
        stt_threads = c.threads;
    })?;
    let stt_load = t.elapsed();

    let t = Instant::now();
    let llm_path = engines::file_for(dir, profile, Role::Llm, "LLM")?;
    let mut llm_config = models_llama::LlamaConfig::new(&llm_path);
    if let Some(n) = threads {
        llm_config.threads = n;
        llm_config.batch_threads = n;
    }
    llm_config.sequences = CONCURRENT[CONCURRENT.len() - 1] as u32;
    let llm =
        models_llama::Llama::load(&llm_config).with_context(|| tools::not_installed(config))?;
    let llm_load = t.elapsed();

    let t = Instant::now();
    let mut tts_threads = 0;
    let tts = tools::load_voice_with(config, &args.voice, |c| {
        if let Some(n) = threads {
            c.threads = n as usize;
        }
        tts_threads = c.threads;
    })?;
    let tts_load = t.elapsed();

    let t = Instant::now();
    let embed_dir = dir.join("all-MiniLM-L6-v2");
    let embedder =
        models_embed::MiniLm::load(&embed_dir).with_context(|| tools::not_installed(config))?;
    let embed_load = t.elapsed();

    let stt_reports = UTTERANCES
        .iter()
        .map(|&(secs, text)| bench_stt(&stt, &tts, secs, text, runs))
        .collect::<anyhow::Result<Vec<_>>>()?;
    let llm_report = bench_llm(&llm, runs)?;
    let tts_report = bench_tts(&tts, runs)?;
    let embeddings = bench_embeddings(&embedder, runs)?;

    let targets = vec![
        target(
            "stt_3s_latency",
            stt_reports[0].latency_ms,
            TARGET_STT_3S_MS,
        ),
        target(
            "llm_first_token_cached_prefix",
            llm_report.first_token_ms,
            TARGET_LLM_FIRST_TOKEN_MS,
        ),
        target(
            "tts_first_audio",
            tts_report.first_audio_ms,
            TARGET_TTS_FIRST_AUDIO_MS,
        ),
    ];
    Ok(BenchReport {
        profile: profile.as_str(),
        models_dir: dir.display().to_string(),
        cores: std::thread::available_parallelism().map_or(1, |n| n.get()),
        load_average_before,
        load_average_after: load_average(),
        threads: ThreadsReport {
            stt: stt_threads,
            llm: llm.config().threads,
            tts: tts_threads,
        },
        runs: args.runs,
        load_ms: LoadReport {
            stt: ms(stt_load),
            llm: ms(llm_load),
            tts: ms(tts_load),
            embedder: ms(embed_load),
        },
        stt: stt_reports,
        llm: llm_report,
        tts: tts_report,
        embeddings,
        peak_rss_bytes: peak_rss_bytes().context("cannot read VmHWM from /proc/self/status")?,
        targets,
    })
}

fn bench_stt(
    stt: &models_whisper::Whisper,
    tts: &models_piper::Piper,
    secs: u64,
    text: &str,
    runs: usize,
) -> anyhow::Result<SttReport> {
    let speech = tts
        .say(text, &TtsOptions::default())
        .context("synthesising the STT utterance")?;
    let own = SampleRate::from_hz(tts.sample_rate())
        .with_context(|| format!("voice renders at {} Hz", tts.sample_rate()))?;
    let mut pcm = super::audio::resample(&speech, own, SampleRate::Hz16000)?;
    pcm.resize(secs as usize * 16_000, 0);
    let audio = i16_to_f32(&pcm);
    let (options, cancel) = (SttOptions::default(), CancelToken::new());
    let transcribe = || -> anyhow::Result<(Duration, models_api::Transcript)> {
        let t = Instant::now();
        let out = stt
            .transcribe(&audio, &options, &cancel)
            .context("speech-to-text failed")?
            .context("speech-to-text was cancelled")?;
        Ok((t.elapsed(), out))
    };
    transcribe()?;
    let mut times = Vec::with_capacity(runs);
    let mut last = None;
    for _ in 0..runs {
        let (elapsed, t) = transcribe()?;
        times.push(ms(elapsed));
        last = Some(t);
    }
    let last = last.context("no run")?;
    let latency = median(&times);
    let audio_ms = secs as f64 * 1000.0;
    Ok(SttReport {
        audio_ms,
        latency_ms: latency,
        latency_runs_ms: times,
        real_time_factor: latency / audio_ms,
        audio_ctx: last.audio_ctx,
        spoken: text.to_owned(),
        word_error_rate: word_error_rate(text, &last.text),
        heard: last.text,
    })
}

fn bench_llm(llm: &models_llama::Llama, runs: usize) -> anyhow::Result<LlmReport> {
    let t = Instant::now();
    let prefix = llm.prefix(SYSTEM).context("prefilling the agent prefix")?;
    let prefill = t.elapsed();
    let cancel = CancelToken::new();
    let turn = |max_tokens: u32| -> anyhow::Result<(Duration, models_api::Generation)> {
        let t = Instant::now();
        let mut s = llm.session(Some(&prefix)).context("new session")?;
        let session = t.elapsed();
        s.push(ChatMessage::user(TURN));
        let options = GenerateOptions {
            max_tokens,
            ..GenerateOptions::default()
        };
        let g = s
            .generate(&options, &cancel, &mut |_| Flow::Continue)
            .context("generation failed")?;
        Ok((session, g))
    };
    // Warm-up: a few tokens are enough to touch every buffer.
    turn(4)?;
    let (mut first, mut sessions, mut speeds) = (Vec::new(), Vec::new(), Vec::new());
    let mut last = None;
    for _ in 0..runs {
        let (session, g) = turn(64)?;
        let first_token = g.first_token.context("the model produced no text")?;
        // The first token's time is prefill; generation speed counts the tokens after it.
        let generating = (g.elapsed - first_token).as_secs_f64();
        speeds.push(f64::from(g.generated_tokens.saturating_sub(1)) / generating.max(1e-9));
        first.push(ms(first_token));
        sessions.push(ms(session));
        last = Some(g);
    }
    let last = last.context("no run")?;
    let throughput = CONCURRENT
        .iter()
        .map(|&n| bench_throughput(llm, &prefix, n, runs))
        .collect::<anyhow::Result<Vec<_>>>()?;
    Ok(LlmReport {
        prefix_tokens: prefix.token_count(),
        prefix_prefill_ms: ms(prefill),
        prefill_tokens_per_s: prefix.token_count() as f64 / prefill.as_secs_f64().max(1e-9),
        turn_tokens: last.prefilled_tokens,
        cached_tokens: last.cached_tokens,
        session_ms: median(&sessions),
        first_token_ms: median(&first),
        first_token_runs_ms: first,
        generated_tokens: last.generated_tokens,
        generation_tokens_per_s: median(&speeds),
        reply: last.text,
        throughput,
    })
}

/// `sessions` replies to the same turn, prefilled one by one, then generated together.
fn bench_throughput(
    llm: &models_llama::Llama,
    prefix: &models_llama::AgentPrefix,
    sessions: usize,
    runs: usize,
) -> anyhow::Result<ThroughputReport> {
    let options = GenerateOptions {
        max_tokens: THROUGHPUT_TOKENS,
        ..GenerateOptions::default()
    };
    let cancel = CancelToken::new();
    let (mut totals, mut each, mut per_step) = (Vec::new(), Vec::new(), Vec::new());
    for _ in 0..runs {
        let mut all = (0..sessions)
            .map(|_| {
                let mut s = llm.session(Some(prefix)).context("new session")?;
                s.push(ChatMessage::user(TURN));
                s.prefill(&cancel).context("prefill failed")?;
                Ok(s)
            })
            .collect::<anyhow::Result<Vec<_>>>()?;
        let before = llm.decoded();
        let t = Instant::now();
        let generations = std::thread::scope(|scope| {
            let threads: Vec<_> = all
                .iter_mut()
                .map(|s| scope.spawn(|| s.generate(&options, &cancel, &mut |_| Flow::Continue)))
                .collect();
            threads
                .into_iter()
                .map(|t| {
                    t.join()
                        .map_err(|_| anyhow::anyhow!("a generation panicked"))
                })
                .collect::<anyhow::Result<Vec<_>>>()
        })?;
        let wall = t.elapsed().as_secs_f64().max(1e-9);
        let after = llm.decoded();
        let mut tokens = 0;
        for g in generations {
            let g = g.context("generation failed")?;
            tokens += g.generated_tokens;
            each.push(f64::from(g.generated_tokens) / g.elapsed.as_secs_f64().max(1e-9));
        }
        totals.push(f64::from(tokens) / wall);
        let steps = after.steps.saturating_sub(before.steps).max(1);
        per_step.push(after.tokens.saturating_sub(before.tokens) as f64 / steps as f64);
    }
    Ok(ThroughputReport {
        sessions,
        tokens_per_s: median(&totals),
        per_session_tokens_per_s: median(&each),
        tokens_per_step: median(&per_step),
    })
}

fn bench_tts(tts: &models_piper::Piper, runs: usize) -> anyhow::Result<TtsReport> {
    let options = TtsOptions::default();
    let cancel = CancelToken::new();
    tts.say("Warm up.", &options)
        .context("text-to-speech failed")?;
    let mut first = Vec::with_capacity(runs);
    let mut sentence_audio = Duration::ZERO;
    for _ in 0..runs {
        let t = Instant::now();
        let mut at = None;
        tts.synthesize(TTS_SENTENCE, &options, &cancel, &mut |s| {
            at.get_or_insert((t.elapsed(), s.duration()));
            Flow::Continue
        })
        .context("text-to-speech failed")?;
        let (latency, audio) = at.context("no audio")?;
        first.push(ms(latency));
        sentence_audio = audio;
    }
    let t = Instant::now();
    let paragraph = tts
        .say(TTS_PARAGRAPH, &options)
        .context("text-to-speech failed")?;
    let elapsed = t.elapsed();
    let audio = paragraph.len() as f64 / f64::from(tts.sample_rate().max(1));
    Ok(TtsReport {
        sentence: TTS_SENTENCE,
        first_audio_ms: median(&first),
        first_audio_runs_ms: first,
        sentence_audio_ms: ms(sentence_audio),
        real_time_factor: elapsed.as_secs_f64() / audio.max(1e-9),
        paragraph_audio_ms: audio * 1000.0,
        paragraph_ms: ms(elapsed),
    })
}

fn bench_embeddings(
    embedder: &models_embed::MiniLm,
    runs: usize,
) -> anyhow::Result<EmbeddingsReport> {
    const TEXTS: usize = 64;
    const BATCH: usize = 32;
    let texts: Vec<String> = (0..TEXTS)
        .map(|i| {
            format!(
                "Question {i}: what are your opening hours on public holidays, and can I park \
                 behind the building?"
            )
        })
        .collect();
    let refs: Vec<&str> = texts.iter().map(String::as_str).collect();
    embedder.embed(&refs[..4]).context("embedding failed")?;
    let mut rates = Vec::with_capacity(runs);
    let mut queries = Vec::with_capacity(runs);
    for _ in 0..runs {
        let t = Instant::now();
        let mut n = 0;
        for chunk in refs.chunks(BATCH) {
            n += embedder.embed(chunk).context("embedding failed")?.len();
        }
        rates.push(n as f64 / t.elapsed().as_secs_f64().max(1e-9));
        let t = Instant::now();
        embedder
            .embed(&["Can I park behind the building?"])
            .context("embedding failed")?;
        queries.push(ms(t.elapsed()));
    }
    Ok(EmbeddingsReport {
        texts: TEXTS,
        batch: BATCH,
        per_second: median(&rates),
        query_ms: median(&queries),
    })
}

/// The report as a table, with the targets and pass/miss.
fn table(r: &BenchReport) -> String {
    use std::fmt::Write;
    let mut out = String::new();
    let [b1, ..] = r.load_average_before;
    let [a1, ..] = r.load_average_after;
    let _ = writeln!(
        out,
        "switchboard bench models: {} profile ({}), {} cores, load average {b1:.2} before, \
         {a1:.2} after; threads: stt {}, llm {}, tts {}; median of {} run(s)",
        r.profile, r.models_dir, r.cores, r.threads.stt, r.threads.llm, r.threads.tts, r.runs
    );
    let _ = writeln!(
        out,
        "load: stt {:.0} ms, llm {:.0} ms, tts {:.0} ms, embedder {:.0} ms",
        r.load_ms.stt, r.load_ms.llm, r.load_ms.tts, r.load_ms.embedder
    );
    let _ = writeln!(out);
    let _ = writeln!(
        out,
        "{:<52} {:>14} {:>10}  result",
        "measure", "measured", "target"
    );
    let mut row = |what: &str, measured: String, target: Option<f64>, value: f64| {
        let (target, result) = match target {
            Some(t) => (
                format!("≤ {t:.0} ms"),
                if value <= t { "pass" } else { "MISS" },
            ),
            None => (String::new(), ""),
        };
        // Writing to a String cannot fail.
        let _ = writeln!(out, "{what:<52} {measured:>14} {target:>10}  {result}");
    };
    for (i, s) in r.stt.iter().enumerate() {
        let secs = s.audio_ms / 1000.0;
        let target = (i == 0).then_some(TARGET_STT_3S_MS);
        row(
            &format!(
                "STT latency, {secs:.0} s utterance (audio_ctx {})",
                s.audio_ctx
            ),
            format!("{:.0} ms", s.latency_ms),
            target,
            s.latency_ms,
        );
        row(
            &format!(
                "STT real-time factor, {secs:.0} s (WER {:.2})",
                s.word_error_rate
            ),
            format!("{:.3}", s.real_time_factor),
            None,
            0.0,
        );
    }
    let l = &r.llm;
    row(
        &format!("LLM prefill ({}-token agent prefix, cold)", l.prefix_tokens),
        format!("{:.0} tok/s", l.prefill_tokens_per_s),
        None,
        0.0,
    );
    row(
        "LLM generation",
        format!("{:.1} tok/s", l.generation_tokens_per_s),
        None,
        0.0,
    );
    row(
        &format!(
            "LLM first token, {}-token turn, {}-token cached prefix",
            l.turn_tokens, l.cached_tokens
        ),
        format!("{:.0} ms", l.first_token_ms),
        Some(TARGET_LLM_FIRST_TOKEN_MS),
        l.first_token_ms,
    );
    row(
        "LLM new session from the prefix",
        format!("{:.0} ms", l.session_ms),
        None,
        0.0,
    );
    for t in &l.throughput {
        row(
            &format!(
                "LLM {} replies at once (per reply; tokens/step {:.1})",
                t.sessions, t.tokens_per_step
            ),
            format!(
                "{:.0} ({:.0}) tok/s",
                t.tokens_per_s, t.per_session_tokens_per_s
            ),
            None,
            0.0,
        );
    }
    let t = &r.tts;
    row(
        "TTS first audio, 10-word sentence",
        format!("{:.0} ms", t.first_audio_ms),
        Some(TARGET_TTS_FIRST_AUDIO_MS),
        t.first_audio_ms,
    );
    row(
        "TTS real-time factor (paragraph)",
        format!("{:.3}", t.real_time_factor),
        None,
        0.0,
    );
    let e = &r.embeddings;
    row(
        &format!("embeddings, batches of {}", e.batch),
        format!("{:.0} /s", e.per_second),
        None,
        0.0,
    );
    row(
        "embedding one query",
        format!("{:.0} ms", e.query_ms),
        None,
        0.0,
    );
    row(
        "peak RSS (VmHWM)",
        format!("{:.0} MiB", r.peak_rss_bytes as f64 / (1024.0 * 1024.0)),
        None,
        0.0,
    );
    out.trim_end().to_owned()
}

fn target(name: &'static str, measured_ms: f64, target_ms: f64) -> TargetReport {
    TargetReport {
        name,
        measured_ms,
        target_ms,
        pass: measured_ms <= target_ms,
    }
}

fn median(values: &[f64]) -> f64 {
    let mut v = values.to_vec();
    v.sort_by(f64::total_cmp);
    match v.len() {
        0 => 0.0,
        n if n % 2 == 1 => v[n / 2],
        n => (v[n / 2 - 1] + v[n / 2]) / 2.0,
    }
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

/// 1, 5 and 15 minute load averages; zeros where /proc is not there.
fn load_average() -> [f64; 3] {
    let text = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    let mut it = text.split_whitespace().map(|v| v.parse().unwrap_or(0.0));
    [(); 3].map(|()| it.next().unwrap_or(0.0))
}

/// VmHWM of this process, in bytes.
fn peak_rss_bytes() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn median_of_odd_and_even_counts() {
        assert_eq!(median(&[3.0, 1.0, 2.0]), 2.0);
        assert_eq!(median(&[4.0, 1.0, 2.0, 3.0]), 2.5);
        assert_eq!(median(&[]), 0.0);
    }

    #[test]
    fn peak_rss_is_read() {
        assert!(peak_rss_bytes().is_some_and(|b| b > 1024 * 1024));
    }
}
