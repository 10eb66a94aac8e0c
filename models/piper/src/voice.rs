//! A Piper voice's `.onnx.json`: sample rate, inference scales, espeak voice and the phoneme → id
//! table, and the id sequence Piper feeds its model.

use std::collections::HashMap;
use std::path::Path;

use serde::Deserialize;

use crate::Error;

/// Piper's special symbols (piper `phoneme_ids.py`).
const PAD: char = '_';
const BOS: char = '^';
const EOS: char = '$';

#[derive(Debug, Deserialize)]
struct Raw {
    audio: RawAudio,
    espeak: RawEspeak,
    inference: RawInference,
    phoneme_type: String,
    phoneme_id_map: HashMap<String, Vec<i64>>,
}

#[derive(Debug, Deserialize)]
struct RawAudio {
    sample_rate: u32,
}

#[derive(Debug, Deserialize)]
struct RawEspeak {
    voice: String,
}

#[derive(Debug, Deserialize)]
struct RawInference {
    noise_scale: f32,
    length_scale: f32,
    noise_w: f32,
}

/// The parts of a voice config synthesis needs.
#[derive(Debug, Clone)]
pub struct VoiceConfig {
    /// Output sample rate.
    pub sample_rate: u32,
    /// espeak-ng voice name (`en-us`).
    pub espeak_voice: String,
    /// VITS noise scale.
    pub noise_scale: f32,
    /// The voice's own length scale (multiplied by the caller's rate).
    pub length_scale: f32,
    /// VITS duration noise.
    pub noise_w: f32,
    ids: HashMap<char, Vec<i64>>,
}

impl VoiceConfig {
    /// Reads and checks `path` (the `.onnx.json` next to the model).
    pub fn load(path: &Path) -> Result<Self, Error> {
        let bad = |reason: String| Error::VoiceConfig {
            path: path.to_owned(),
            reason,
        };
        let text = std::fs::read_to_string(path).map_err(|source| Error::FileUnreadable {
            path: path.to_owned(),
            source,
        })?;
        let raw: Raw = serde_json::from_str(&text).map_err(|e| bad(e.to_string()))?;
        if raw.phoneme_type != "espeak" {
            return Err(bad(format!(
                "phoneme_type {:?}; only \"espeak\" voices are supported",
                raw.phoneme_type
            )));
        }
        let mut ids = HashMap::with_capacity(raw.phoneme_id_map.len());
        for (key, value) in raw.phoneme_id_map {
            let mut chars = key.chars();
            match (chars.next(), chars.next()) {
                (Some(c), None) => {
                    ids.insert(c, value);
                }
                _ => {
                    return Err(bad(format!(
                        "phoneme_id_map key {key:?} is not one character"
                    )))
                }
            }
        }
        for special in [PAD, BOS, EOS] {
            if !ids.contains_key(&special) {
                return Err(bad(format!("phoneme_id_map lacks {special:?}")));
            }
        }
        Ok(VoiceConfig {
            sample_rate: raw.audio.sample_rate,
            espeak_voice: raw.espeak.voice,
            noise_scale: raw.inference.noise_scale,
            length_scale: raw.inference.length_scale,
            noise_w: raw.inference.noise_w,
            ids,
        })
    }

    /// Piper's id sequence: BOS, PAD, then each known phoneme followed by PAD, then EOS. Phonemes
    /// missing from the map are skipped, as Piper does.
    pub fn phoneme_ids(&self, phonemes: &str) -> Vec<i64> {
        let get = |c: char| self.ids.get(&c).map(Vec::as_slice).unwrap_or(&[]);
        let mut out = Vec::with_capacity(phonemes.len() * 2 + 3);
        out.extend_from_slice(get(BOS));
        out.extend_from_slice(get(PAD));
        for c in phonemes.chars() {
            if let Some(ids) = self.ids.get(&c) {
                out.extend_from_slice(ids);
                out.extend_from_slice(get(PAD));
            }
        }
        out.extend_from_slice(get(EOS));
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn voice(json: &str) -> Result<VoiceConfig, Error> {
        let dir = std::env::temp_dir().join(format!("piper-voice-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join(format!("{}.onnx.json", json.len()));
        std::fs::write(&path, json).unwrap();
        VoiceConfig::load(&path)
    }

    const MINIMAL: &str = r#"{"audio":{"sample_rate":22050},"espeak":{"voice":"en-us"},
        "inference":{"noise_scale":0.667,"length_scale":1,"noise_w":0.8},"phoneme_type":"espeak",
        "phoneme_id_map":{"_":[0],"^":[1],"$":[2]," ":[3],"h":[20],"ə":[59]}}"#;

    #[test]
    fn ids_are_interspersed_with_padding() {
        let v = voice(MINIMAL).unwrap();
        assert_eq!(
            v.phoneme_ids("hə h"),
            vec![1, 0, 20, 0, 59, 0, 3, 0, 20, 0, 2]
        );
        assert_eq!(
            v.phoneme_ids("h?"),
            vec![1, 0, 20, 0, 2],
            "unknown symbols are skipped"
        );
    }

    #[test]
    fn rejects_non_espeak_voices_and_missing_specials() {
        let text = MINIMAL.replace("\"espeak\",", "\"text\",");
        assert!(matches!(voice(&text), Err(Error::VoiceConfig { .. })));
        let text = MINIMAL.replace("\"^\":[1],", "");
        assert!(voice(&text).unwrap_err().to_string().contains("'^'"));
    }
}
