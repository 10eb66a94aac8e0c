//! Call recordings, encrypted at rest (AES-256-GCM).
//!
//! Only started after a recorded *yes* (the session guarantees the order). The two legs are
//! mixed into a stereo WAV in memory (left: caller, right: agent) and sealed when the call ends:
//! nothing of the audio ever touches the disk in the clear. File layout: `SBREC1\0\0`, a 12-byte
//! random nonce, then the ciphertext of the WAV with the call id as associated data, so a file
//! renamed to another call's id does not decrypt.

use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::{Aes256Gcm, Nonce};
use media_audio::wav::{Leg, StereoRecorder};
use std::io::{Cursor, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

const MAGIC: &[u8; 8] = b"SBREC1\0\0";
const KEY_FILE: &str = "recording.key";

#[derive(Debug, thiserror::Error)]
pub enum RecordingError {
    #[error("recording key {path}: {reason}")]
    Key { path: PathBuf, reason: String },
    #[error("recording {path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("recording {path}: not a Switchboard recording, or the key or call id does not match")]
    Undecryptable { path: PathBuf },
    #[error("recording audio: {0}")]
    Audio(String),
}

/// Where recordings go and the key that seals them.
#[derive(Clone)]
pub struct Vault {
    dir: PathBuf,
    cipher: Aes256Gcm,
}

impl std::fmt::Debug for Vault {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Vault").field("dir", &self.dir).finish()
    }
}

impl Vault {
    /// Recordings under `data_dir/recordings`. The key comes from systemd credentials
    /// (`$CREDENTIALS_DIRECTORY/recording.key`) or `data_dir/recording.key`, created (0600,
    /// 32 random bytes) on first use.
    pub fn open(data_dir: &Path) -> Result<Self, RecordingError> {
        let key_path = std::env::var_os("CREDENTIALS_DIRECTORY")
            .map(|d| PathBuf::from(d).join(KEY_FILE))
            .filter(|p| p.is_file())
            .unwrap_or_else(|| data_dir.join(KEY_FILE));
        let key = load_or_create_key(&key_path)?;
        let dir = data_dir.join("recordings");
        std::fs::create_dir_all(&dir).map_err(|source| RecordingError::Io {
            path: dir.clone(),
            source,
        })?;
        Ok(Vault {
            dir,
            cipher: Aes256Gcm::new(&key.into()),
        })
    }

    pub fn path_for(&self, call_id: &str) -> PathBuf {
        self.dir.join(format!("{call_id}.wav.sbrec"))
    }

    /// Encrypts `wav` to the call's file (written to a temporary name, synced, renamed).
    pub fn seal(&self, call_id: &str, wav: &[u8]) -> Result<PathBuf, RecordingError> {
        let path = self.path_for(call_id);
        let mut nonce = [0u8; 12];
        getrandom::fill(&mut nonce).map_err(|e| RecordingError::Key {
            path: path.clone(),
            reason: format!("no randomness for the nonce: {e}"),
        })?;
        let sealed = self
            .cipher
            .encrypt(
                Nonce::from_slice(&nonce),
                Payload {
                    msg: wav,
                    aad: call_id.as_bytes(),
                },
            )
            .map_err(|_| RecordingError::Undecryptable { path: path.clone() })?;
        let io = |source| RecordingError::Io {
            path: path.clone(),
            source,
        };
        let tmp = path.with_extension("partial");
        let mut file = std::fs::File::create(&tmp).map_err(io)?;
        file.write_all(MAGIC).map_err(io)?;
        file.write_all(&nonce).map_err(io)?;
        file.write_all(&sealed).map_err(io)?;
        file.sync_all().map_err(io)?;
        std::fs::rename(&tmp, &path).map_err(io)?;
        Ok(path)
    }

    /// The WAV bytes of a sealed recording.
    pub fn open_recording(&self, call_id: &str) -> Result<Vec<u8>, RecordingError> {
        let path = self.path_for(call_id);
        let data = std::fs::read(&path).map_err(|source| RecordingError::Io {
            path: path.clone(),
            source,
        })?;
        let bad = || RecordingError::Undecryptable { path: path.clone() };
        if data.len() < MAGIC.len() + 12 || &data[..MAGIC.len()] != MAGIC {
            return Err(bad());
        }
        let (nonce, sealed) = data[MAGIC.len()..].split_at(12);
        self.cipher
            .decrypt(
                Nonce::from_slice(nonce),
                Payload {
                    msg: sealed,
                    aad: call_id.as_bytes(),
                },
            )
            .map_err(|_| bad())
    }
}

fn load_or_create_key(path: &Path) -> Result<[u8; 32], RecordingError> {
    let fail = |reason: String| RecordingError::Key {
        path: path.to_owned(),
        reason,
    };
    match std::fs::read(path) {
        Ok(bytes) => bytes
            .try_into()
            .map_err(|b: Vec<u8>| fail(format!("expected 32 bytes, found {}", b.len()))),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let mut key = [0u8; 32];
            getrandom::fill(&mut key).map_err(|e| fail(format!("no randomness: {e}")))?;
            if let Some(dir) = path.parent() {
                std::fs::create_dir_all(dir).map_err(|e| fail(e.to_string()))?;
            }
            use std::os::unix::fs::OpenOptionsExt;
            let mut file = std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o600)
                .open(path)
                .map_err(|e| fail(e.to_string()))?;
            file.write_all(&key)
                .and_then(|()| file.sync_all())
                .map_err(|e| fail(e.to_string()))?;
            tracing::info!(path = %path.display(), "created the recording key");
            Ok(key)
        }
        Err(e) => Err(fail(e.to_string())),
    }
}

/// A call's stereo recording in progress, in memory until sealed.
pub struct Recorder {
    wav: StereoRecorder<SharedBuffer>,
    buffer: SharedBuffer,
    /// Sample index of the caller's next audio (8 kHz since recording started).
    caller_at: u64,
}

impl Recorder {
    pub fn start() -> Result<Self, RecordingError> {
        let buffer = SharedBuffer::default();
        let wav = StereoRecorder::new(buffer.clone(), 8000)
            .map_err(|e| RecordingError::Audio(e.to_string()))?;
        Ok(Recorder {
            wav,
            buffer,
            caller_at: 0,
        })
    }

    /// One inbound frame; inbound frames arrive every 20 ms and are the recording's clock.
    pub fn caller(&mut self, frame: &[i16]) {
        self.wav.push(Leg::Caller, self.caller_at, frame);
        self.caller_at += frame.len() as u64;
        // Keep at most a second unmixed; writes to memory do not fail.
        let _ = self.wav.flush_until(self.caller_at.saturating_sub(8000));
    }

    /// The agent's frame that was on the wire when the caller's latest frame arrived.
    pub fn agent(&mut self, frame: &[i16]) {
        let at = self.caller_at.saturating_sub(frame.len() as u64);
        self.wav.push(Leg::Agent, at, frame);
    }

    /// The finished WAV file's bytes.
    pub fn finish(self) -> Result<Vec<u8>, RecordingError> {
        self.wav
            .finish()
            .map_err(|e| RecordingError::Audio(e.to_string()))?;
        let cursor = std::mem::take(&mut *self.buffer.0.lock().unwrap_or_else(|p| p.into_inner()));
        Ok(cursor.into_inner())
    }
}

/// An in-memory file the WAV writer and the recorder share (the writer keeps its sink until
/// it is finalised).
#[derive(Clone, Default)]
struct SharedBuffer(Arc<Mutex<Cursor<Vec<u8>>>>);

impl SharedBuffer {
    fn with<T>(&self, f: impl FnOnce(&mut Cursor<Vec<u8>>) -> T) -> T {
        f(&mut self.0.lock().unwrap_or_else(|p| p.into_inner()))
    }
}

impl Write for SharedBuffer {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.with(|c| c.write(buf))
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Seek for SharedBuffer {
    fn seek(&mut self, pos: SeekFrom) -> std::io::Result<u64> {
        self.with(|c| c.seek(pos))
    }
}
