//! The language model a box uses (`models.llm`): the profile's GGUF on llama.cpp, or an
//! OpenAI-compatible server on the LAN. One type for both, so the dialog, `chat` and the call
//! runtime do not care which.

use crate::config::LlmBackend;
use models_api::{CancelToken, ChatMessage, Flow, GenerateOptions, Generation, Llm, LlmSession};
use models_llama::Llama;
use models_openai::OpenAi;
use std::path::Path;

pub enum LanguageModel {
    Local(Llama),
    OpenAi(OpenAi),
}

pub enum Prefix {
    Local(<Llama as Llm>::Prefix),
    OpenAi(<OpenAi as Llm>::Prefix),
}

pub enum ChatSession {
    Local(<Llama as Llm>::Session),
    OpenAi(<OpenAi as Llm>::Session),
}

#[derive(Debug, thiserror::Error)]
pub enum LlmError {
    #[error(transparent)]
    Local(#[from] models_llama::Error),
    #[error(transparent)]
    OpenAi(#[from] models_openai::Error),
    #[error("a prefix of one LLM backend used with the other")]
    Mismatch,
}

impl LanguageModel {
    /// The backend `models.llm` names; `local` loads the GGUF at `model`.
    /// `threads` generate token by token; `batch_threads` prefill prompts; `sessions` are
    /// decoded together in one context (the calls the box may carry at once).
    pub fn open(
        backend: &LlmBackend,
        model: &Path,
        threads: u32,
        batch_threads: u32,
        sessions: u32,
    ) -> Result<Self, LlmError> {
        Ok(match backend {
            LlmBackend::Local => {
                let mut config = models_llama::LlamaConfig::new(model);
                config.threads = threads;
                config.batch_threads = batch_threads;
                config.sequences = sessions.max(1);
                LanguageModel::Local(Llama::load(&config)?)
            }
            LlmBackend::OpenAi(o) => {
                let mut config = models_openai::OpenAiConfig::new(&o.url, &o.model);
                if let Some(key) = &o.api_key_file {
                    config = config.with_api_key_file(key)?;
                }
                if let Some(ca) = &o.ca_file {
                    config.roots = models_openai::Roots::CaFile(ca.clone());
                }
                LanguageModel::OpenAi(OpenAi::new(config)?)
            }
        })
    }
}

impl Llm for LanguageModel {
    type Error = LlmError;
    type Prefix = Prefix;
    type Session = ChatSession;

    fn prefix(&self, system_prompt: &str) -> Result<Prefix, LlmError> {
        Ok(match self {
            LanguageModel::Local(m) => Prefix::Local(m.prefix(system_prompt)?),
            LanguageModel::OpenAi(m) => Prefix::OpenAi(m.prefix(system_prompt)?),
        })
    }

    fn session(&self, prefix: Option<&Prefix>) -> Result<ChatSession, LlmError> {
        Ok(match (self, prefix) {
            (LanguageModel::Local(m), None) => ChatSession::Local(m.session(None)?),
            (LanguageModel::Local(m), Some(Prefix::Local(p))) => {
                ChatSession::Local(m.session(Some(p))?)
            }
            (LanguageModel::OpenAi(m), None) => ChatSession::OpenAi(m.session(None)?),
            (LanguageModel::OpenAi(m), Some(Prefix::OpenAi(p))) => {
                ChatSession::OpenAi(m.session(Some(p))?)
            }
            _ => return Err(LlmError::Mismatch),
        })
    }
}

impl LlmSession for ChatSession {
    type Error = LlmError;

    fn history(&self) -> &[ChatMessage] {
        match self {
            ChatSession::Local(s) => s.history(),
            ChatSession::OpenAi(s) => s.history(),
        }
    }

    fn push(&mut self, message: ChatMessage) {
        match self {
            ChatSession::Local(s) => s.push(message),
            ChatSession::OpenAi(s) => s.push(message),
        }
    }

    fn pop(&mut self) -> Option<ChatMessage> {
        match self {
            ChatSession::Local(s) => s.pop(),
            ChatSession::OpenAi(s) => s.pop(),
        }
    }

    fn truncate_reply(&mut self, heard: &str) -> bool {
        match self {
            ChatSession::Local(s) => s.truncate_reply(heard),
            ChatSession::OpenAi(s) => s.truncate_reply(heard),
        }
    }

    fn prefill(&mut self, cancel: &CancelToken) -> Result<u32, LlmError> {
        Ok(match self {
            ChatSession::Local(s) => s.prefill(cancel)?,
            ChatSession::OpenAi(s) => s.prefill(cancel)?,
        })
    }

    fn generate(
        &mut self,
        options: &GenerateOptions,
        cancel: &CancelToken,
        on_text: &mut dyn FnMut(&str) -> Flow,
    ) -> Result<Generation, LlmError> {
        Ok(match self {
            ChatSession::Local(s) => s.generate(options, cancel, on_text)?,
            ChatSession::OpenAi(s) => s.generate(options, cancel, on_text)?,
        })
    }
}
