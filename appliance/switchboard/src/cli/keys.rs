//! `switchboard keys rotate`: replaces the data key. Every sealed value in the database is sealed
//! again under a new key in one transaction, then the new key takes the old one's place. Run with
//! the service stopped (on every box sharing the database); afterwards copy `data.key` to the
//! other boxes. Audited as `data_key.rotate` by `cli:$USER`.
//!
//! `switchboard keys rotate --recordings` does the same for the recording key and this box's
//! recording files, one file at a time (each replaced whole), audited as `recording_key.rotate`.
//!
//! The new key is written to `*.key.next` before anything is sealed under it, so a rotation cut
//! off at any point can be finished: run the command again. Backups taken before a rotation still
//! need the old key, which this command does not keep.

use anyhow::{bail, Context};
use clap::Subcommand;
use switchboard_store::{DataKey, Store, StoreError};

use crate::config::Config;
use crate::keys;
use crate::runtime::recording::{RecordingError, Vault};

#[derive(Subcommand)]
pub enum KeysCommand {
    /// Seal everything in the database again under a new data key, then replace `data.key`.
    /// Stop the service first (on every box sharing the database). Prints the result as JSON.
    Rotate {
        /// Rotate the recording key instead: this box's recordings are sealed again under a new
        /// key, then it replaces `recording.key`.
        #[arg(long)]
        recordings: bool,
    },
}

pub async fn run(config: &Config, cmd: KeysCommand) -> anyhow::Result<()> {
    match cmd {
        KeysCommand::Rotate { recordings: false } => rotate(config).await,
        KeysCommand::Rotate { recordings: true } => rotate_recordings(config).await,
    }
}

/// Refuses a key systemd passes (it is made elsewhere), and a data directory a daemon is using.
fn alone(config: &Config, name: &str) -> anyhow::Result<std::fs::File> {
    if keys::credential(name).is_some() {
        bail!("the key {name} is a systemd credential: rotate it where the credential is made");
    }
    Ok(crate::lock_data_dir(&config.data_dir)?)
}

async fn rotate(config: &Config) -> anyhow::Result<()> {
    let _alone = alone(config, keys::DATA)?;
    let current = config.data_dir.join(keys::DATA);
    let next_path = config.data_dir.join(keys::DATA_NEXT);
    let url = config.database_url();
    if next_path.exists() {
        let next = DataKey::new(&keys::load_file(&next_path)?);
        match Store::open(&url, next.clone()).await {
            // Cut off after the database took the next key: only the swap of files was left.
            Ok(store) => {
                keys::install(&next_path, &current)?;
                return finish(&store, None, &next, None).await;
            }
            // Cut off before: start again with a new next key.
            Err(StoreError::WrongKey { .. }) => std::fs::remove_file(&next_path)
                .with_context(|| format!("cannot remove {}", next_path.display()))?,
            Err(e) => return Err(e.into()),
        }
    }
    let old = keys::data_key(&config.data_dir)?;
    let store = Store::open(&url, old.clone()).await?;
    let next = DataKey::new(&keys::create(&next_path)?);
    let resealed = store.reseal(&next).await?;
    store.close().await;
    keys::install(&next_path, &current)?;
    let store = Store::open(&url, next.clone()).await?;
    finish(&store, Some(&old), &next, Some(resealed)).await
}

async fn rotate_recordings(config: &Config) -> anyhow::Result<()> {
    let _alone = alone(config, keys::RECORDING)?;
    let current = config.data_dir.join(keys::RECORDING);
    let next_path = config.data_dir.join(keys::RECORDING_NEXT);
    let old = Vault::open(&config.data_dir)?;
    // A rotation cut off part way resumes with the key it had begun with.
    let next_secret = if next_path.exists() {
        keys::load_file(&next_path)?
    } else {
        keys::create(&next_path)?
    };
    let next = old.with_key(&next_secret);
    let (mut resealed, mut already, mut unreadable) = (0, 0, Vec::new());
    for id in old.call_ids()? {
        match old.reseal(&id, &next) {
            Ok(true) => resealed += 1,
            Ok(false) => already += 1,
            // Damaged, or under a key older than this one: it cannot be opened now either.
            Err(e @ (RecordingError::Undecryptable { .. } | RecordingError::OtherKey { .. })) => {
                eprintln!("left as it is: {e}");
                unreadable.push(id);
            }
            Err(e) => return Err(e.into()),
        }
    }
    keys::install(&next_path, &current)?;
    let store = crate::open_store(config).await?;
    let detail = serde_json::json!({ "old_key": old.key_id(), "new_key": next.key_id() });
    store
        .audit(
            &super::actor(),
            "recording_key.rotate",
            &next.key_id(),
            &detail.to_string(),
        )
        .await?;
    let report = serde_json::json!({
        "old_key": old.key_id(),
        "new_key": next.key_id(),
        "resealed": resealed,
        "already_resealed": already,
        "unreadable": unreadable,
    });
    super::emit(&format!("{report:#}"))
}

async fn finish(
    store: &Store,
    old: Option<&DataKey>,
    next: &DataKey,
    resealed: Option<u64>,
) -> anyhow::Result<()> {
    let old_id = old.map(DataKey::id);
    let detail = serde_json::json!({ "old_key": old_id, "new_key": next.id() });
    store
        .audit(
            &super::actor(),
            "data_key.rotate",
            next.id(),
            &detail.to_string(),
        )
        .await?;
    let report = serde_json::json!({
        "old_key": old_id,
        "new_key": next.id(),
        "resealed": resealed,
        "finished_interrupted_rotation": resealed.is_none(),
    });
    super::emit(&format!("{report:#}"))
}
