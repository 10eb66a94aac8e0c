//! The box's secret keys: the recording key (recordings, `runtime::recording`) and the data key
//! (personal data in the database, [`switchboard_store::DataKey`]). Each is 32 random bytes in a
//! file only the service may read, passed by systemd as a credential
//! (`$CREDENTIALS_DIRECTORY/NAME`, e.g. `LoadCredentialEncrypted=`) or kept in the data
//! directory, where it is made on first use.
//!
//! A key file that others may read is refused rather than used. A data key made anew where the
//! database holds data sealed with another is refused when the store opens
//! ([`switchboard_store::StoreError::WrongKey`]), so a lost key is never silently replaced.
//! Boxes sharing one PostgreSQL database share one data key: copy `data.key` to each.

use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use switchboard_store::DataKey;

/// The recording key's file name.
pub const RECORDING: &str = "recording.key";
/// During a recording key rotation, the next recording key.
pub const RECORDING_NEXT: &str = "recording.key.next";
/// The data key's file name.
pub const DATA: &str = "data.key";
/// During a data key rotation, the next key: written before the database is resealed under it,
/// renamed over [`DATA`] after.
pub const DATA_NEXT: &str = "data.key.next";

/// Why a key could not be had.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error(
        "key {path}: others may read it (mode {mode:o}): `chmod 600` it, and replace the key if \
         someone else could have copied it"
    )]
    Exposed { path: PathBuf, mode: u32 },
    #[error(
        "key {path} is missing, and the database holds data sealed with it: restore it from \
         the backup (a new key cannot read that data)"
    )]
    Missing { path: PathBuf },
    #[error("key {path}: expected 32 bytes, found {found}")]
    Length { path: PathBuf, found: usize },
    #[error("key {path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("key {path}: no randomness: {source}")]
    Random {
        path: PathBuf,
        source: getrandom::Error,
    },
}

/// The key that seals personal data in the database.
pub fn data_key(data_dir: &Path) -> Result<DataKey, KeyError> {
    Ok(DataKey::new(&load(data_dir, DATA)?))
}

/// The key file `name`: among the service's credentials when systemd passes it, else in
/// `data_dir`, made there (mode 0600) when it does not exist yet.
pub fn load(data_dir: &Path, name: &str) -> Result<[u8; 32], KeyError> {
    match load_existing(data_dir, name) {
        Err(KeyError::Missing { path }) => create(&path),
        loaded => loaded,
    }
}

/// The key file `name`, as [`load`] finds it, but never made: [`KeyError::Missing`] when absent.
/// For whatever only looks at what is there (a new key could not read it).
pub fn load_existing(data_dir: &Path, name: &str) -> Result<[u8; 32], KeyError> {
    let path = credential(name).unwrap_or_else(|| data_dir.join(name));
    match load_file(&path) {
        Err(KeyError::Io { source, .. }) if source.kind() == std::io::ErrorKind::NotFound => {
            Err(KeyError::Missing { path })
        }
        loaded => loaded,
    }
}

/// The key `name` among the service's systemd credentials, if systemd passes it.
pub fn credential(name: &str) -> Option<PathBuf> {
    std::env::var_os("CREDENTIALS_DIRECTORY")
        .map(|d| PathBuf::from(d).join(name))
        .filter(|p| p.is_file())
}

/// The key file at `path`, refused when others may read it.
pub fn load_file(path: &Path) -> Result<[u8; 32], KeyError> {
    let meta = std::fs::metadata(path).map_err(|source| KeyError::Io {
        path: path.to_owned(),
        source,
    })?;
    let mode = meta.permissions().mode() & 0o777;
    if mode & 0o077 != 0 {
        return Err(KeyError::Exposed {
            path: path.to_owned(),
            mode,
        });
    }
    read(path)
}

/// Puts the key file `from` in the place of `to` in one step (a rename), and syncs the
/// directory so that the swap survives a power cut.
pub fn install(from: &Path, to: &Path) -> Result<(), KeyError> {
    let io = |source| KeyError::Io {
        path: to.to_owned(),
        source,
    };
    std::fs::rename(from, to).map_err(io)?;
    let dir = to.parent().unwrap_or(Path::new("."));
    std::fs::File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(io)
}

/// A new key at `path`, readable by its owner only. The key is written whole to a file of its
/// own and then linked into place, which fails if `path` exists: two processes starting at once
/// (the daemon and a command) end up with one key, and neither ever reads a half-written file.
pub fn create(path: &Path) -> Result<[u8; 32], KeyError> {
    let random = |source| KeyError::Random {
        path: path.to_owned(),
        source,
    };
    let io = |source| KeyError::Io {
        path: path.to_owned(),
        source,
    };
    let mut key = [0u8; 32];
    getrandom::fill(&mut key).map_err(random)?;
    let dir = path.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir).map_err(io)?;
    let mut name = [0u8; 8];
    getrandom::fill(&mut name).map_err(random)?;
    let draft = dir.join(format!(".key-{}", hex::encode(name)));
    let written = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&draft)
        .and_then(|mut file| file.write_all(&key).and_then(|()| file.sync_all()));
    let linked = written.and_then(|()| std::fs::hard_link(&draft, path));
    let _ = std::fs::remove_file(&draft);
    match linked {
        Ok(()) => {
            tracing::info!(path = %path.display(), "created a key; back it up: what it seals is lost without it");
            Ok(key)
        }
        // Another process made it first: that one is the key.
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => read(path),
        Err(source) => Err(io(source)),
    }
}

/// The 32 bytes of the key file at `path`.
fn read(path: &Path) -> Result<[u8; 32], KeyError> {
    std::fs::read(path)
        .map_err(|source| KeyError::Io {
            path: path.to_owned(),
            source,
        })?
        .try_into()
        .map_err(|b: Vec<u8>| KeyError::Length {
            path: path.to_owned(),
            found: b.len(),
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn processes_starting_at_once_share_one_whole_key() {
        for _ in 0..20 {
            let dir = tempfile::tempdir().unwrap();
            let keys: Vec<[u8; 32]> = std::thread::scope(|s| {
                let racers: Vec<_> = (0..4)
                    .map(|_| s.spawn(|| load(dir.path(), DATA).unwrap()))
                    .collect();
                racers.into_iter().map(|r| r.join().unwrap()).collect()
            });
            assert!(keys.windows(2).all(|w| w[0] == w[1]), "one key for all");
            let names: Vec<_> = std::fs::read_dir(dir.path()).unwrap().collect();
            assert_eq!(names.len(), 1, "no draft left behind");
        }
    }

    #[test]
    fn a_key_is_made_once_kept_private_and_refused_when_others_may_read_it() {
        let dir = tempfile::tempdir().unwrap();
        let first = load(dir.path(), DATA).unwrap();
        assert_eq!(
            load(dir.path(), DATA).unwrap(),
            first,
            "made once, then read"
        );
        let path = dir.path().join(DATA);
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        let e = load(dir.path(), DATA).unwrap_err();
        assert!(matches!(e, KeyError::Exposed { mode: 0o644, .. }), "{e}");
        assert!(e.to_string().contains("others may read it"), "{e}");
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
        std::fs::write(&path, b"short").unwrap();
        let e = load(dir.path(), DATA).unwrap_err();
        assert!(matches!(e, KeyError::Length { found: 5, .. }), "{e}");
    }
}
