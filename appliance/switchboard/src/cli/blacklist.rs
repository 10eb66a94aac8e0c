//! `switchboard blacklist …`: the numbers blocked after abuse or by an operator, and lifting a
//! block. Removals are audited as done by `cli:$USER`.

use clap::Subcommand;
use switchboard_store::{Store, UnixMillis};

#[derive(Subcommand)]
pub enum BlacklistCommand {
    /// List every entry, newest first (one JSON object per line).
    List,
    /// Lift the block on a number.
    Remove { number: String },
}

pub async fn run(store: &Store, cmd: BlacklistCommand) -> anyhow::Result<()> {
    match cmd {
        BlacklistCommand::List => {
            let now = UnixMillis::now();
            for entry in store.blacklist().await? {
                super::emit(&crate::http::blacklist_entry_json(&entry, now).to_string())?;
            }
        }
        BlacklistCommand::Remove { number } => {
            store
                .remove_from_blacklist(&number, &super::actor())
                .await?;
            println!("{number} removed from the blacklist");
        }
    }
    Ok(())
}
