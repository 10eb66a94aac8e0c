//! IPA phonemes from a long-lived `espeak-ng` child process.
//!
//! espeak-ng is GPL-3.0; running its command-line program as a separate process keeps it out of
//! our binary's link (MODELS.md, caveat 4). One process serves every request: starting one per
//! sentence would cost ~20 ms each.
//!
//! Protocol: each clause goes on its own line (`-q --ipa` prints one line of IPA per clause it
//! sees, flushed per input line), followed by a marker line whose IPA was learnt at start-up; the
//! clause's output is every line before the marker's. A reader thread turns stdout into lines
//! on a channel so a hung child is a timeout, not a hang.

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError};
use std::time::Duration;

use crate::Error;

/// Nonsense that no reply contains and espeak renders as one clause.
const MARKER: &str = "Zyxqv zyxqv.";
const REPLY_TIMEOUT: Duration = Duration::from_secs(5);

pub(crate) struct Espeak {
    program: PathBuf,
    data_dir: PathBuf,
    voice: String,
    child: Child,
    stdin: ChildStdin,
    lines: Receiver<String>,
    marker_ipa: String,
}

impl Espeak {
    /// Starts `program` with the voice `voice` and the `espeak-ng-data` under `data_dir`.
    pub(crate) fn start(program: &Path, data_dir: &Path, voice: &str) -> Result<Self, Error> {
        let mut child = Command::new(program)
            .arg(format!("--path={}", data_dir.display()))
            .args(["-q", "--ipa", "-v", voice])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|source| Error::PhonemizerStart {
                program: program.to_owned(),
                source,
            })?;
        let broken = |what: &str| Error::Phonemizer(format!("espeak-ng child has no {what}"));
        let stdin = child.stdin.take().ok_or_else(|| broken("stdin"))?;
        let stdout = child.stdout.take().ok_or_else(|| broken("stdout"))?;
        let (tx, lines) = mpsc::channel();
        std::thread::Builder::new()
            .name("espeak-reader".into())
            .spawn(move || {
                for line in BufReader::new(stdout).lines() {
                    let Ok(line) = line else { return };
                    if tx.send(line).is_err() {
                        return;
                    }
                }
            })
            .map_err(|e| Error::Phonemizer(format!("cannot start the reader thread: {e}")))?;
        let mut espeak = Espeak {
            program: program.to_owned(),
            data_dir: data_dir.to_owned(),
            voice: voice.to_owned(),
            child,
            stdin,
            lines,
            marker_ipa: String::new(),
        };
        // Learn the marker's rendering; it also proves the voice and data dir work.
        espeak.send(MARKER)?;
        espeak.marker_ipa = espeak.recv()?;
        if espeak.marker_ipa.trim().is_empty() {
            return Err(Error::Phonemizer(format!(
                "espeak-ng produced no phonemes for voice {voice:?} with data in {}",
                data_dir.display()
            )));
        }
        Ok(espeak)
    }

    /// IPA for each clause, in order (one string per clause, espeak's own sub-clauses joined by
    /// spaces). Restarts the child once if it died.
    pub(crate) fn phonemize(&mut self, clauses: &[&str]) -> Result<Vec<String>, Error> {
        match self.phonemize_once(clauses) {
            Ok(v) => Ok(v),
            Err(_) => {
                *self = Espeak::start(
                    &self.program.clone(),
                    &self.data_dir.clone(),
                    &self.voice.clone(),
                )?;
                self.phonemize_once(clauses)
            }
        }
    }

    fn phonemize_once(&mut self, clauses: &[&str]) -> Result<Vec<String>, Error> {
        let mut request = String::new();
        for clause in clauses {
            // Newlines are the protocol's delimiter; a clause must end so espeak flushes it.
            let flat: String = clause
                .chars()
                .map(|c| if c.is_control() { ' ' } else { c })
                .collect();
            request.push_str(flat.trim());
            request.push_str(".\n");
            request.push_str(MARKER);
            request.push('\n');
        }
        self.stdin
            .write_all(request.as_bytes())
            .and_then(|()| self.stdin.flush())
            .map_err(|e| Error::Phonemizer(format!("writing to espeak-ng: {e}")))?;
        let mut out = Vec::with_capacity(clauses.len());
        for _ in clauses {
            let mut parts = Vec::new();
            loop {
                let line = self.recv()?;
                if line == self.marker_ipa {
                    break;
                }
                let line = line.trim();
                if !line.is_empty() {
                    parts.push(line.to_owned());
                }
            }
            out.push(parts.join(" "));
        }
        Ok(out)
    }

    fn send(&mut self, line: &str) -> Result<(), Error> {
        writeln!(self.stdin, "{line}")
            .and_then(|()| self.stdin.flush())
            .map_err(|e| Error::Phonemizer(format!("writing to espeak-ng: {e}")))
    }

    fn recv(&self) -> Result<String, Error> {
        match self.lines.recv_timeout(REPLY_TIMEOUT) {
            Ok(line) => Ok(line),
            Err(RecvTimeoutError::Timeout) => {
                Err(Error::Phonemizer("espeak-ng did not answer in 5 s".into()))
            }
            Err(RecvTimeoutError::Disconnected) => {
                Err(Error::Phonemizer("espeak-ng exited".into()))
            }
        }
    }
}

impl Drop for Espeak {
    fn drop(&mut self) {
        // Closing stdin ends espeak-ng; kill covers a hung one. Errors mean it is already gone.
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
