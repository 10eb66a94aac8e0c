//! Call recordings, encrypted at rest (AES-256-GCM) and written while the call goes on.
//!
//! Only started after a recorded *yes* (the session guarantees the order). The two legs are mixed
//! into stereo frames (left: caller, right: agent) and each second of them is sealed and appended
//! to the call's file: no audio touches the disk in the clear, a crash loses at most the last
//! two seconds, and a long call does not grow in memory.
//!
//! File layout (`SBREC3`): a 32-byte header (magic `SBREC3\0\0`, an 8-byte random nonce prefix,
//! the sample rate as u32 LE, the channel count as u16 LE, 2 bytes reserved, the recording key's
//! 4-byte id, 4 bytes reserved), then segments, each a u32 LE length and the AES-GCM ciphertext of
//! interleaved s16le frames. The key id lets a file sealed under another key (a rotated or a
//! restored one) be named for what it is rather than reported as damaged. Files of the earlier
//! `SBREC2` layout (a 24-byte header ending at the reserved bytes, no key id) still open. Segment `i` is sealed
//! with the nonce prefix ‖ `i` (u32 BE) and, as associated data, the call id, the header, `i` and
//! whether it is the last segment (the STREAM construction of Hoang, Reyhanitabar, Rogaway and
//! Vizár). So a file renamed to another call's id does not decrypt, and segments reordered or cut
//! off are detected. A file without its last segment (a crash, a full disk) still plays up to its
//! last whole segment and is reported incomplete.

use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::{Aes256Gcm, Nonce};
use media_audio::wav::{Leg, StereoMixer};
use std::io::Write;
use std::path::{Path, PathBuf};

const MAGIC: &[u8; 8] = b"SBREC3\0\0";
const HEADER_LEN: usize = 32;
/// The layout before key ids: its header ends after the reserved bytes.
const MAGIC_V2: &[u8; 8] = b"SBREC2\0\0";
const HEADER_LEN_V2: usize = 24;
/// Where the header holds the key id.
const KEY_ID: std::ops::Range<usize> = 24..28;
/// Under the data directory.
pub const DIR: &str = "recordings";
const RATE: u32 = 8000;
/// Frames sealed per segment: one second.
const SEGMENT_FRAMES: usize = RATE as usize;

#[derive(Debug, thiserror::Error)]
pub enum RecordingError {
    #[error("recording {0}")]
    Key(#[from] crate::keys::KeyError),
    #[error("recording {path}: no randomness for its nonce: {source}")]
    Random {
        path: PathBuf,
        source: getrandom::Error,
    },
    #[error("recording {path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("recording {path}: not a Switchboard recording, or the key or call id does not match")]
    Undecryptable { path: PathBuf },
    #[error(
        "recording {path}: sealed with recording key {sealed_with}, this box has key {have} \
         (restore that key to play it)"
    )]
    OtherKey {
        path: PathBuf,
        sealed_with: String,
        have: String,
    },
    #[error("recording audio: {0}")]
    Audio(#[from] media_audio::Error),
    #[error("recording {path}: its writer thread crashed")]
    WriterCrashed { path: PathBuf },
}

/// Where recordings go and the key that seals them.
#[derive(Clone)]
pub struct Vault {
    dir: PathBuf,
    cipher: Aes256Gcm,
    key_id: [u8; 4],
}

impl std::fmt::Debug for Vault {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Vault").field("dir", &self.dir).finish()
    }
}

/// A recording read back.
#[derive(Debug)]
pub struct Recording {
    /// A stereo WAV file: caller left, agent right.
    pub wav: Vec<u8>,
    /// `false` when the file ends before its last segment: the call was cut off by a crash or
    /// the disk filled up, and `wav` holds what was written until then.
    pub complete: bool,
}

impl Vault {
    /// Recordings under `data_dir/recordings`, sealed with the recording key
    /// ([`crate::keys`]: a systemd credential, or `data_dir/recording.key` made on first use).
    pub fn open(data_dir: &Path) -> Result<Self, RecordingError> {
        let key = crate::keys::load(data_dir, crate::keys::RECORDING)?;
        let dir = data_dir.join(DIR);
        std::fs::create_dir_all(&dir).map_err(|source| RecordingError::Io {
            path: dir.clone(),
            source,
        })?;
        Ok(Vault {
            dir,
            key_id: key_id(&key),
            cipher: Aes256Gcm::new(&key.into()),
        })
    }

    pub fn path_for(&self, call_id: &str) -> PathBuf {
        self.dir.join(file_name(call_id))
    }

    /// The recording of `call_id`, decrypted.
    pub fn open_recording(&self, call_id: &str) -> Result<Recording, RecordingError> {
        let opened = self.read(call_id)?;
        let wav = media_audio::wav::wav_bytes(opened.channels, opened.rate, &opened.samples)?;
        Ok(Recording {
            wav,
            complete: opened.complete,
        })
    }

    /// The recording of `call_id` as its interleaved samples.
    fn read(&self, call_id: &str) -> Result<Opened, RecordingError> {
        let path = self.path_for(call_id);
        let data = read_file(&path)?;
        self.open_bytes(path, call_id, &data)
    }

    /// [`Vault::read`] on a file's bytes (`path` only names it in errors).
    fn open_bytes(
        &self,
        path: PathBuf,
        call_id: &str,
        data: &[u8],
    ) -> Result<Opened, RecordingError> {
        let bad = || RecordingError::Undecryptable { path: path.clone() };
        let header_len = match data.get(..MAGIC.len()) {
            Some(magic) if magic == MAGIC => HEADER_LEN,
            Some(magic) if magic == MAGIC_V2 => HEADER_LEN_V2,
            _ => return Err(bad()),
        };
        let header = data.get(..header_len).ok_or_else(bad)?;
        if header_len == HEADER_LEN && header[KEY_ID] != self.key_id {
            return Err(RecordingError::OtherKey {
                path,
                sealed_with: hex::encode(&header[KEY_ID]),
                have: hex::encode(self.key_id),
            });
        }
        let rate = u32::from_le_bytes(header[16..20].try_into().map_err(|_| bad())?);
        let channels = u16::from_le_bytes(header[20..22].try_into().map_err(|_| bad())?);
        let segments = Segments {
            cipher: &self.cipher,
            call_id,
            header,
        };
        let (mut pos, mut index, mut complete) = (header_len, 0u32, false);
        let mut samples = Vec::new();
        while let Some(len) = data.get(pos..pos + 4) {
            let len = u32::from_le_bytes(len.try_into().map_err(|_| bad())?) as usize;
            let Some(sealed) = data.get(pos + 4..pos + 4 + len) else {
                break; // torn by a crash mid-write
            };
            pos += 4 + len;
            let (plain, last) = match segments.open(index, sealed) {
                Some(opened) => opened,
                None if index == 0 => return Err(bad()),
                None => break, // tampered or out of order: keep what was whole before it
            };
            samples.extend(
                plain
                    .chunks_exact(2)
                    .map(|b| i16::from_le_bytes([b[0], b[1]])),
            );
            if last {
                complete = pos == data.len();
                break;
            }
            index += 1;
        }
        Ok(Opened {
            rate,
            channels,
            samples,
            complete,
        })
    }

    /// This vault over the same directory with another key: a rotation's next key.
    pub fn with_key(&self, key: &[u8; 32]) -> Vault {
        Vault {
            dir: self.dir.clone(),
            key_id: key_id(key),
            cipher: Aes256Gcm::new(&(*key).into()),
        }
    }

    /// The id of the vault's key, as files name it.
    pub fn key_id(&self) -> String {
        hex::encode(self.key_id)
    }

    /// The calls that have a recording here.
    pub fn call_ids(&self) -> Result<Vec<String>, RecordingError> {
        let entries = std::fs::read_dir(&self.dir).map_err(|source| RecordingError::Io {
            path: self.dir.clone(),
            source,
        })?;
        let mut ids: Vec<String> = entries
            .flatten()
            .filter_map(|e| {
                let name = e.file_name().into_string().ok()?;
                name.strip_suffix(".wav.sbrec").map(str::to_owned)
            })
            .collect();
        ids.sort();
        Ok(ids)
    }

    /// Seals the recording of `call_id` again under `next`'s key (a key rotation): written to a
    /// file of its own, synced, then renamed over the old one, so the recording is whole under
    /// one key or the other at every moment. A file already under `next`'s key is left alone
    /// (`false`); an incomplete recording stays incomplete.
    pub fn reseal(&self, call_id: &str, next: &Vault) -> Result<bool, RecordingError> {
        let path = self.path_for(call_id);
        let data = read_file(&path)?;
        if data.starts_with(MAGIC) && data.get(KEY_ID) == Some(&next.key_id[..]) {
            return Ok(false);
        }
        let opened = self.open_bytes(path.clone(), call_id, &data)?;
        let draft = path.with_extension("sbrec.next");
        let io = |source| RecordingError::Io {
            path: draft.clone(),
            source,
        };
        let header = new_header(next, &draft, opened.rate, opened.channels)?;
        let file = create_private(&draft).map_err(io)?;
        let mut writer = SegmentWriter {
            file,
            path: draft.clone(),
            cipher: next.cipher.clone(),
            call_id: call_id.to_owned(),
            header,
            next: 0,
        };
        writer.file.write_all(&header).map_err(io)?;
        let per_segment = SEGMENT_FRAMES * usize::from(opened.channels.max(1));
        let segments: Vec<&[i16]> = opened.samples.chunks(per_segment).collect();
        for (i, segment) in segments.iter().enumerate() {
            writer.append(segment, opened.complete && i + 1 == segments.len())?;
        }
        if opened.complete && segments.is_empty() {
            writer.append(&[], true)?;
        }
        writer.file.sync_all().map_err(io)?;
        std::fs::rename(&draft, &path).map_err(io)?;
        Ok(true)
    }
}

/// A recording read back as samples.
struct Opened {
    rate: u32,
    channels: u16,
    /// Interleaved frames.
    samples: Vec<i16>,
    complete: bool,
}

fn read_file(path: &Path) -> Result<Vec<u8>, RecordingError> {
    std::fs::read(path).map_err(|source| RecordingError::Io {
        path: path.to_owned(),
        source,
    })
}

/// A new file's header: a fresh nonce prefix, the format, and the vault's key id.
fn new_header(
    vault: &Vault,
    path: &Path,
    rate: u32,
    channels: u16,
) -> Result<[u8; HEADER_LEN], RecordingError> {
    let mut header = [0u8; HEADER_LEN];
    header[..8].copy_from_slice(MAGIC);
    getrandom::fill(&mut header[8..16]).map_err(|source| RecordingError::Random {
        path: path.to_owned(),
        source,
    })?;
    header[16..20].copy_from_slice(&rate.to_le_bytes());
    header[20..22].copy_from_slice(&channels.to_le_bytes());
    header[KEY_ID].copy_from_slice(&vault.key_id);
    Ok(header)
}

/// A new file only its owner may read.
fn create_private(path: &Path) -> std::io::Result<std::fs::File> {
    use std::os::unix::fs::OpenOptionsExt;
    std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
}

/// The id a recording key is named by in the files it sealed: a hash of it, which says which
/// key without giving it away.
fn key_id(key: &[u8; 32]) -> [u8; 4] {
    use sha2::Digest;
    let digest = sha2::Sha256::digest([&key[..], b"switchboard recording key id"].concat());
    [digest[0], digest[1], digest[2], digest[3]]
}

/// Where the recording of `call_id` is kept under `data_dir`.
pub fn path_in(data_dir: &Path, call_id: &str) -> PathBuf {
    data_dir.join(DIR).join(file_name(call_id))
}

fn file_name(call_id: &str) -> String {
    format!("{call_id}.wav.sbrec")
}

/// Seals and opens the segments of one file.
struct Segments<'a> {
    cipher: &'a Aes256Gcm,
    call_id: &'a str,
    header: &'a [u8],
}

impl Segments<'_> {
    fn nonce(&self, index: u32) -> [u8; 12] {
        let mut nonce = [0u8; 12];
        nonce[..8].copy_from_slice(&self.header[8..16]);
        nonce[8..].copy_from_slice(&index.to_be_bytes());
        nonce
    }

    fn aad(&self, index: u32, last: bool) -> Vec<u8> {
        let mut aad = Vec::with_capacity(self.call_id.len() + HEADER_LEN + 5);
        aad.extend_from_slice(self.call_id.as_bytes());
        aad.extend_from_slice(self.header);
        aad.extend_from_slice(&index.to_be_bytes());
        aad.push(u8::from(last));
        aad
    }

    fn seal(&self, index: u32, last: bool, plain: &[u8]) -> Option<Vec<u8>> {
        let aad = self.aad(index, last);
        let payload = Payload {
            msg: plain,
            aad: &aad,
        };
        self.cipher
            .encrypt(Nonce::from_slice(&self.nonce(index)), payload)
            .ok()
    }

    /// The plaintext and whether it is the last segment; `None` if it is not segment `index`
    /// of this file.
    fn open(&self, index: u32, sealed: &[u8]) -> Option<(Vec<u8>, bool)> {
        [false, true].into_iter().find_map(|last| {
            let aad = self.aad(index, last);
            let payload = Payload {
                msg: sealed,
                aad: &aad,
            };
            self.cipher
                .decrypt(Nonce::from_slice(&self.nonce(index)), payload)
                .ok()
                .map(|plain| (plain, last))
        })
    }
}

/// A call's stereo recording in progress. The call's audio loop mixes; each second of frames
/// goes to the recording's own writer thread, which seals and appends it, so a slow or full disk
/// never stalls the call.
pub struct Recorder {
    mixer: StereoMixer,
    /// Mixed frames (interleaved) not yet handed to the writer.
    pending: Vec<i16>,
    /// Sample index of the caller's next audio (8 kHz since recording started).
    caller_at: u64,
    path: PathBuf,
    /// Frames to seal, and whether they are the last.
    to_writer: std::sync::mpsc::Sender<(Vec<i16>, bool)>,
    writer: std::thread::JoinHandle<Result<(), RecordingError>>,
}

impl Recorder {
    /// Creates the call's file (0600) with its header and starts its writer thread.
    pub fn start(vault: &Vault, call_id: &str) -> Result<Self, RecordingError> {
        let path = vault.path_for(call_id);
        let io = |source| RecordingError::Io {
            path: path.clone(),
            source,
        };
        let header = new_header(vault, &path, RATE, 2)?;
        let mut file = create_private(&path).map_err(io)?;
        file.write_all(&header).map_err(io)?;
        let writer = SegmentWriter {
            file,
            path: path.clone(),
            cipher: vault.cipher.clone(),
            call_id: call_id.to_owned(),
            header,
            next: 0,
        };
        let (to_writer, frames) = std::sync::mpsc::channel();
        // The writer's log lines carry the call's span (its id), like the call's own.
        let span = tracing::Span::current();
        let writer = std::thread::Builder::new()
            .name("recording".into())
            .spawn(move || span.in_scope(|| writer.run(&frames)))
            .map_err(io)?;
        Ok(Recorder {
            mixer: StereoMixer::new(),
            pending: Vec::with_capacity(2 * SEGMENT_FRAMES),
            caller_at: 0,
            path,
            to_writer,
            writer,
        })
    }

    /// Where the recording is written.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// One inbound frame; inbound frames arrive every 20 ms and are the recording's clock.
    pub fn caller(&mut self, frame: &[i16]) {
        self.mixer.push(Leg::Caller, self.caller_at, frame);
        self.caller_at += frame.len() as u64;
        // The agent's audio may lag by up to a second; older frames are final.
        self.mixer.drain_until(
            self.caller_at.saturating_sub(RATE.into()),
            &mut self.pending,
        );
        if self.pending.len() >= 2 * SEGMENT_FRAMES {
            let second =
                std::mem::replace(&mut self.pending, Vec::with_capacity(2 * SEGMENT_FRAMES));
            // A writer that stopped has logged why; the call goes on.
            let _ = self.to_writer.send((second, false));
        }
    }

    /// The agent's frame that was on the wire when the caller's latest frame arrived.
    pub fn agent(&mut self, frame: &[i16]) {
        let at = self.caller_at.saturating_sub(frame.len() as u64);
        self.mixer.push(Leg::Agent, at, frame);
    }

    /// Hands over what is left as the last segment and waits for the file to be sealed and
    /// synced; blocks (call it off the async workers). After a write failure the file holds the
    /// audio until then, without its last segment, and this says why.
    pub fn finish(mut self) -> Result<PathBuf, RecordingError> {
        self.mixer.drain_all(&mut self.pending);
        let _ = self
            .to_writer
            .send((std::mem::take(&mut self.pending), true));
        drop(self.to_writer);
        let path = self.path;
        match self.writer.join() {
            Ok(written) => written.map(|()| path),
            Err(_) => Err(RecordingError::WriterCrashed { path }),
        }
    }

    /// Stops as a crash would: what was handed over is written, no last segment.
    #[cfg(test)]
    fn cut_off(self) -> PathBuf {
        drop(self.to_writer);
        let _ = self.writer.join();
        self.path
    }
}

/// The recording file as its writer thread appends to it.
struct SegmentWriter {
    file: std::fs::File,
    path: PathBuf,
    cipher: Aes256Gcm,
    call_id: String,
    header: [u8; HEADER_LEN],
    next: u32,
}

impl SegmentWriter {
    /// Seals and appends each second as it comes; after the last one, syncs. A failure stops the
    /// writing (what is on disk stays readable) and is returned when the recorder finishes. The
    /// channel closing without a last segment (the call task gone) leaves the file incomplete.
    fn run(
        mut self,
        frames: &std::sync::mpsc::Receiver<(Vec<i16>, bool)>,
    ) -> Result<(), RecordingError> {
        for (frames, last) in frames {
            if let Err(e) = self.append(&frames, last) {
                tracing::error!("recording stopped, the call goes on: {e}");
                return Err(e);
            }
            if last {
                return self.file.sync_all().map_err(|source| RecordingError::Io {
                    path: self.path.clone(),
                    source,
                });
            }
        }
        Ok(())
    }

    fn append(&mut self, frames: &[i16], last: bool) -> Result<(), RecordingError> {
        let plain: Vec<u8> = frames.iter().flat_map(|s| s.to_le_bytes()).collect();
        let segments = Segments {
            cipher: &self.cipher,
            call_id: &self.call_id,
            header: &self.header,
        };
        let sealed = segments.seal(self.next, last, &plain).ok_or_else(|| {
            RecordingError::Undecryptable {
                path: self.path.clone(),
            }
        })?;
        self.next += 1;
        let mut segment = Vec::with_capacity(4 + sealed.len());
        segment.extend_from_slice(&(sealed.len() as u32).to_le_bytes());
        segment.extend_from_slice(&sealed);
        self.file
            .write_all(&segment)
            .map_err(|source| RecordingError::Io {
                path: self.path.clone(),
                source,
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A recording of `seconds` of caller audio (a ramp) with the agent answering in between.
    fn record(vault: &Vault, call: &str, seconds: usize) -> Recorder {
        let mut rec = Recorder::start(vault, call).unwrap();
        for i in 0..seconds * 50 {
            let frame: Vec<i16> = (0..160).map(|j| (i * 160 + j) as i16).collect();
            rec.caller(&frame);
            rec.agent(&[-1; 160]);
        }
        rec
    }

    fn segment_starts(bytes: &[u8]) -> Vec<usize> {
        let mut starts = Vec::new();
        let mut pos = HEADER_LEN;
        while pos + 4 <= bytes.len() {
            starts.push(pos);
            pos += 4 + u32::from_le_bytes(bytes[pos..pos + 4].try_into().unwrap()) as usize;
        }
        starts
    }

    fn frames(wav: &[u8]) -> Vec<i16> {
        let reader = hound::WavReader::new(std::io::Cursor::new(wav)).unwrap();
        assert_eq!(reader.spec().channels, 2);
        assert_eq!(reader.spec().sample_rate, 8000);
        reader.into_samples::<i16>().map(Result::unwrap).collect()
    }

    #[test]
    fn a_recording_is_sealed_on_disk_and_reads_back_whole() {
        let dir = tempfile::tempdir().unwrap();
        let vault = Vault::open(dir.path()).unwrap();
        let path = record(&vault, "call-1", 5).finish().unwrap();
        let bytes = std::fs::read(&path).unwrap();
        let plain: Vec<u8> = [0i16, -1, 1, -1, 2, -1]
            .iter()
            .flat_map(|s| s.to_le_bytes())
            .collect();
        assert!(
            !bytes.windows(plain.len()).any(|w| w == plain),
            "plain PCM on disk"
        );
        let back = vault.open_recording("call-1").unwrap();
        assert!(back.complete);
        let samples = frames(&back.wav);
        assert_eq!(samples.len(), 2 * 5 * 8000);
        assert_eq!(&samples[..6], &[0, -1, 1, -1, 2, -1]);
        // Another call's id does not open it.
        std::fs::rename(&path, vault.path_for("call-2")).unwrap();
        assert!(matches!(
            vault.open_recording("call-2"),
            Err(RecordingError::Undecryptable { .. })
        ));
    }

    #[test]
    fn a_recording_names_the_key_it_was_sealed_with_and_old_files_still_open() {
        let dir = tempfile::tempdir().unwrap();
        let vault = Vault::open(dir.path()).unwrap();
        record(&vault, "call-1", 1).finish().unwrap();
        // The box's recording key replaced (a lost key, a restore from elsewhere).
        let other = tempfile::tempdir().unwrap();
        let mut moved = Vault::open(other.path()).unwrap();
        moved.dir = vault.dir.clone();
        let e = moved.open_recording("call-1").unwrap_err();
        assert!(
            matches!(&e, RecordingError::OtherKey { sealed_with, have, .. }
                if *sealed_with == hex::encode(vault.key_id) && *have == hex::encode(moved.key_id)),
            "{e}"
        );
        // A file of the SBREC2 layout, written before key ids.
        let mut header = [0u8; HEADER_LEN_V2];
        header[..8].copy_from_slice(MAGIC_V2);
        header[8..16].copy_from_slice(&[9; 8]);
        header[16..20].copy_from_slice(&RATE.to_le_bytes());
        header[20..22].copy_from_slice(&2u16.to_le_bytes());
        let segments = Segments {
            cipher: &vault.cipher,
            call_id: "call-old",
            header: &header,
        };
        let plain: Vec<u8> = [5i16, -5].iter().flat_map(|s| s.to_le_bytes()).collect();
        let sealed = segments.seal(0, true, &plain).unwrap();
        let mut file = header.to_vec();
        file.extend_from_slice(&(sealed.len() as u32).to_le_bytes());
        file.extend_from_slice(&sealed);
        std::fs::write(vault.path_for("call-old"), file).unwrap();
        let old = vault.open_recording("call-old").unwrap();
        assert!(old.complete);
        assert_eq!(frames(&old.wav), [5, -5]);
    }

    #[test]
    fn a_rotation_reseals_each_recording_under_the_next_key_as_it_was() {
        let dir = tempfile::tempdir().unwrap();
        let vault = Vault::open(dir.path()).unwrap();
        record(&vault, "whole", 3).finish().unwrap();
        record(&vault, "cut", 2).cut_off();
        let before: Vec<_> = ["whole", "cut"]
            .iter()
            .map(|id| vault.open_recording(id).unwrap())
            .collect();
        let next = vault.with_key(&[3; 32]);
        assert_eq!(vault.call_ids().unwrap(), ["cut", "whole"]);
        for id in ["whole", "cut"] {
            assert!(vault.reseal(id, &next).unwrap(), "{id} resealed");
            assert!(
                !vault.reseal(id, &next).unwrap(),
                "{id} already under the next key"
            );
        }
        for (id, was) in ["whole", "cut"].iter().zip(&before) {
            let now = next.open_recording(id).unwrap();
            assert_eq!(frames(&now.wav), frames(&was.wav), "{id}: the same audio");
            assert_eq!(now.complete, was.complete, "{id}: as complete as it was");
            assert!(matches!(
                vault.open_recording(id),
                Err(RecordingError::OtherKey { .. })
            ));
        }
        assert!(!before[1].complete);
        let names: Vec<_> = std::fs::read_dir(&vault.dir).unwrap().flatten().collect();
        assert_eq!(names.len(), 2, "no draft left behind");
    }

    #[test]
    fn a_recording_cut_off_mid_call_keeps_its_whole_seconds() {
        let dir = tempfile::tempdir().unwrap();
        let vault = Vault::open(dir.path()).unwrap();
        // The process dies 3 s in: no last segment, and the file may end mid-segment.
        let path = record(&vault, "crashed", 3).cut_off();
        let mut bytes = std::fs::read(&path).unwrap();
        let starts = segment_starts(&bytes);
        assert_eq!(
            starts.len(),
            2,
            "two full seconds written (up to 1 s is held back)"
        );
        bytes.extend_from_slice(&[7, 7, 0, 0, 1, 2, 3]); // a torn write
        std::fs::write(&path, &bytes).unwrap();
        let back = vault.open_recording("crashed").unwrap();
        assert!(!back.complete);
        assert_eq!(frames(&back.wav).len(), 2 * 2 * 8000);

        // A whole file with its tail cut off is incomplete too, not silently shorter.
        let whole = record(&vault, "cut", 4).finish().unwrap();
        let bytes = std::fs::read(&whole).unwrap();
        let last = *segment_starts(&bytes).last().unwrap();
        std::fs::write(&whole, &bytes[..last]).unwrap();
        assert!(!vault.open_recording("cut").unwrap().complete);
    }

    #[test]
    fn reordered_or_altered_segments_are_not_played() {
        let dir = tempfile::tempdir().unwrap();
        let vault = Vault::open(dir.path()).unwrap();
        let path = record(&vault, "swapped", 5).finish().unwrap();
        let bytes = std::fs::read(&path).unwrap();
        let s = segment_starts(&bytes);
        // Swap segments 1 and 2 (same length): playback stops after segment 0.
        let mut swapped = bytes[..s[1]].to_vec();
        swapped.extend_from_slice(&bytes[s[2]..s[3]]);
        swapped.extend_from_slice(&bytes[s[1]..s[2]]);
        swapped.extend_from_slice(&bytes[s[3]..]);
        std::fs::write(&path, &swapped).unwrap();
        let back = vault.open_recording("swapped").unwrap();
        assert!(!back.complete);
        assert_eq!(frames(&back.wav).len(), 2 * 8000);
        // A flipped bit in the first segment: nothing plays.
        let mut flipped = bytes.clone();
        flipped[s[0] + 10] ^= 1;
        std::fs::write(&path, &flipped).unwrap();
        assert!(vault.open_recording("swapped").is_err());
    }
}
