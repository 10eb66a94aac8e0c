//! `[[agents]]`: who answers which number, with what prompt, knowledge, voice and policy.

use super::*;

/// One agent, as declared in `[[agents]]`.
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct AgentConfig {
    pub name: String,
    /// Called user parts or DIDs routed to this agent (`sip:demo@host` → `demo`).
    pub numbers: Vec<String>,
    /// The first thing a caller hears.
    pub greeting: String,
    /// The system prompt, inline…
    pub prompt: Option<String>,
    /// …or from a file (relative to the working directory).
    pub prompt_file: Option<PathBuf>,
    /// Files or folders ingested into this agent's knowledge collection.
    #[serde(default)]
    pub knowledge: Vec<PathBuf>,
    #[serde(default = "consent_off")]
    pub consent: ConsentSetting,
    /// Where a human takes over (`sip:…` or `sips:…`); no transfer when absent.
    pub transfer_to: Option<String>,
    #[serde(default = "english")]
    pub language: String,
    #[serde(default = "joe")]
    pub voice: String,
    /// Words that end a call, in addition to the built-in list.
    #[serde(default)]
    pub profanity_extra: Vec<String>,
    /// Topics (words or phrases, matched as whole words) that go straight to `transfer_to`,
    /// e.g. `["billing dispute", "complaint"]`.
    #[serde(default)]
    pub transfer_topics: Vec<String>,
    /// How the agent decides what it can answer (`[agents.answers]`).
    #[serde(default)]
    pub answers: AnswersConfig,
    /// How long this agent's calls are kept, where it differs from `[retention]`.
    #[serde(default)]
    pub retention: RetentionConfig,
}

/// The answer-quality knobs of one agent. Every field is optional; the defaults were calibrated
/// on the evaluation businesses in `tests/eval/` (their tuning halves) and suit the small and
/// standard profiles. `docs/answers.md` says when to move each.
#[derive(Clone, Debug, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct AnswersConfig {
    /// Knowledge up to this many tokens is cached in the prompt; larger knowledge is retrieved
    /// per question.
    pub cache_budget_tokens: Option<usize>,
    /// Facts retrieved per question (retrieval mode).
    pub facts_per_question: Option<usize>,
    /// A fact is relevant to a question when their embeddings' cosine similarity reaches this…
    pub min_similarity: Option<f32>,
    /// …or, when they share a word, this lower bar.
    pub keyword_similarity: Option<f32>,
    /// Check every reply's figures, days and names against the facts before it is spoken
    /// (default true; turn off only to measure what the model says unchecked).
    pub grounding: Option<bool>,
}

#[derive(Clone, Copy, Debug, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum ConsentSetting {
    /// Ask before recording; record only after a logged yes.
    Required,
    /// Never record, never ask.
    Off,
}

fn consent_off() -> ConsentSetting {
    ConsentSetting::Off
}

fn english() -> String {
    "en".into()
}

fn joe() -> String {
    "en_US-joe-medium".into()
}

impl AgentConfig {
    /// The dialog's options: the defaults, with this agent's `[agents.answers]` on top.
    pub fn dialog_options(&self) -> switchboard_agent::DialogOptions {
        let mut o = switchboard_agent::DialogOptions::default();
        let a = &self.answers;
        o.cache_budget_tokens = a.cache_budget_tokens.unwrap_or(o.cache_budget_tokens);
        o.snippets = a.facts_per_question.unwrap_or(o.snippets);
        o.min_similarity = a.min_similarity.unwrap_or(o.min_similarity);
        o.keyword_similarity = a.keyword_similarity.unwrap_or(o.keyword_similarity);
        o.grounding = a.grounding.unwrap_or(o.grounding);
        o
    }

    /// The system prompt, read from `prompt_file` when that is how it is given.
    pub fn prompt_text(&self) -> std::io::Result<String> {
        match (&self.prompt, &self.prompt_file) {
            (Some(p), _) => Ok(p.clone()),
            (None, Some(f)) => std::fs::read_to_string(f),
            (None, None) => Ok(String::new()),
        }
    }
}

pub(super) fn validate_agents(agents: &[AgentConfig]) -> Result<(), (String, String)> {
    let mut numbers = std::collections::HashMap::new();
    for (i, a) in agents.iter().enumerate() {
        let at = |field: &str| format!("agents[{i}].{field}");
        if a.name.trim().is_empty() || a.name.contains(char::is_whitespace) {
            return Err((
                at("name"),
                format!("{:?} is not an agent name (one word)", a.name),
            ));
        }
        if agents[..i].iter().any(|b| b.name == a.name) {
            return Err((at("name"), format!("agent {:?} is declared twice", a.name)));
        }
        match (&a.prompt, &a.prompt_file) {
            (Some(_), Some(_)) => {
                return Err((
                    at("prompt_file"),
                    "give prompt or prompt_file, not both".into(),
                ))
            }
            (None, None) => {
                return Err((at("prompt"), "an agent needs prompt or prompt_file".into()))
            }
            (None, Some(f)) if !f.is_file() => {
                return Err((
                    at("prompt_file"),
                    format!("{} is not a readable file", f.display()),
                ))
            }
            _ => {}
        }
        for (field, value) in [
            ("min_similarity", a.answers.min_similarity),
            ("keyword_similarity", a.answers.keyword_similarity),
        ] {
            if value.is_some_and(|v| !(0.0..=1.0).contains(&v)) {
                return Err((
                    at(&format!("answers.{field}")),
                    "a cosine similarity between 0 and 1".into(),
                ));
            }
        }
        if a.answers.facts_per_question == Some(0) {
            return Err((
                at("answers.facts_per_question"),
                "at least 1 (a question needs a fact to be answered)".into(),
            ));
        }
        for n in &a.numbers {
            if n.is_empty() || n.contains(|ch: char| ch.is_whitespace() || ch == '@' || ch == ':') {
                return Err((at("numbers"), format!("{n:?} is not a user part or number")));
            }
            if let Some(other) = numbers.insert(n.clone(), a.name.clone()) {
                return Err((
                    at("numbers"),
                    format!("{n:?} already routes to agent {other:?}"),
                ));
            }
        }
        if let Some(t) = &a.transfer_to {
            if !(t.starts_with("sip:") || t.starts_with("sips:")) || t.contains(char::is_whitespace)
            {
                return Err((
                    at("transfer_to"),
                    format!("{t:?} is not a sip: or sips: URI"),
                ));
            }
        }
        if a.language.len() != 2 || !a.language.chars().all(|ch| ch.is_ascii_lowercase()) {
            return Err((
                at("language"),
                format!("{:?} is not a two-letter language code", a.language),
            ));
        }
    }
    Ok(())
}
