//! `[models]`: the model set and where the LLM runs.

use super::*;

#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct ModelsConfig {
    /// The installed model set (see `switchboard models install`).
    pub dir: PathBuf,
    pub profile: Profile,
    /// Where the language model runs: `"local"` (the profile's GGUF on this box) or
    /// `{ openai = { url, model, api_key_file } }`, an OpenAI-compatible server (e.g. vLLM on
    /// the LAN).
    pub llm: LlmBackend,
}

/// `models.llm`.
#[derive(Clone, Debug, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum LlmBackend {
    #[default]
    Local,
    OpenAi(OpenAiBackend),
}

/// `models.llm.openai`.
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct OpenAiBackend {
    /// Base URL up to and including `/v1`, e.g. `https://llm.example.internal/v1`. `http://`
    /// only to this box itself, or with `allow_plain_http`.
    pub url: String,
    /// The served model's name.
    pub model: String,
    /// A file holding the API key, so the key stays out of this file; none for a server
    /// without authentication.
    pub api_key_file: Option<PathBuf>,
    /// The site's CA (PEM) to check an `https://` server against; default: the system's CAs.
    pub ca_file: Option<PathBuf>,
    /// Send the conversation in clear to a server on another host (`http://`).
    #[serde(default)]
    pub allow_plain_http: bool,
}

/// Which model set to run: `small` for 2–4 cores (and the tests), `standard` for 8+ cores or a GPU.
#[derive(Clone, Copy, Debug, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum Profile {
    Small,
    Standard,
}

impl From<Profile> for models_bundle::Profile {
    fn from(p: Profile) -> Self {
        match p {
            Profile::Small => models_bundle::Profile::Small,
            Profile::Standard => models_bundle::Profile::Standard,
        }
    }
}

impl Default for ModelsConfig {
    fn default() -> Self {
        ModelsConfig {
            dir: PathBuf::from("var/models"),
            profile: Profile::Small,
            llm: LlmBackend::Local,
        }
    }
}
