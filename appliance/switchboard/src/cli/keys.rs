//! `switchboard keys rotate`: replaces the data key. Every sealed value in the database is sealed
//! again under a new key in one transaction, then the new key takes the old one's place. Run with
//! the service stopped (on every box sharing the database); afterwards copy `data.key` to the
//! other boxes. Audited as `data_key.rotate` by `cli:$USER`.
//!
//! The new key is written to `data.key.next` before the database changes, so a rotation cut off
//! at any point can be finished: run the command again. Backups taken before a rotation still
//! need the old key, which this command does not keep.

use anyhow::{bail, Context};
use clap::Subcommand;
use switchboard_store::{DataKey, Store, StoreError};

use crate::config::Config;
use crate::keys;

#[derive(Subcommand)]
pub enum KeysCommand {
    /// Seal everything in the database again under a new data key, then replace `data.key`.
    /// Stop the service first (on every box sharing the database). Prints the result as JSON.
    Rotate,
}

pub async fn run(config: &Config, cmd: KeysCommand) -> anyhow::Result<()> {
    match cmd {
        KeysCommand::Rotate => rotate(config).await,
    }
}

async fn rotate(config: &Config) -> anyhow::Result<()> {
    if keys::credential(keys::DATA).is_some() {
        bail!(
            "the data key is a systemd credential ({}): rotate it where the credential is made",
            keys::DATA
        );
    }
    let _alone = crate::lock_data_dir(&config.data_dir)?;
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
