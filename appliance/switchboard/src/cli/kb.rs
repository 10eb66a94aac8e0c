//! `switchboard kb …`: an agent's knowledge collection under the data dir.

use std::io::Write;
use std::path::PathBuf;

use crate::config::Config;
use crate::knowledge::Knowledge;
use clap::Subcommand;

#[derive(Subcommand)]
pub enum KbCommand {
    /// Add files or folders (txt, md, html, pdf, csv FAQ) to an agent's knowledge. Unchanged
    /// documents are skipped; a file that fails is reported and the rest still go in.
    Ingest {
        #[arg(long)]
        agent: String,
        #[arg(required = true)]
        paths: Vec<PathBuf>,
    },
    /// List an agent's documents.
    List {
        #[arg(long)]
        agent: String,
    },
    /// Remove a document (by the name `kb list` shows) from both indexes.
    Remove {
        #[arg(long)]
        agent: String,
        document: String,
    },
    /// Search an agent's knowledge as a call would (hybrid BM25 + vectors).
    Search {
        #[arg(long)]
        agent: String,
        question: String,
        /// Results to show.
        #[arg(long, default_value_t = 5)]
        k: usize,
        /// One JSON object per line instead of a table.
        #[arg(long)]
        json: bool,
    },
}

pub fn run(config: &Config, cmd: KbCommand) -> anyhow::Result<()> {
    let knowledge = Knowledge::load(&config.data_dir, &config.models.dir)?;
    match cmd {
        KbCommand::Ingest { agent, paths } => {
            let mut err = std::io::stderr();
            let report = knowledge.ingest(&agent, &paths, &mut |p| {
                let _ = write!(
                    err,
                    "\r{}/{} files, {} chunks",
                    p.files_done, p.files_total, p.chunks
                );
            })?;
            eprintln!();
            for (path, error) in &report.failed {
                eprintln!("failed: {}: {error}", path.display());
            }
            println!(
                "{} added, {} updated, {} unchanged, {} failed; {} chunks added, {} removed; {} chunks in total",
                report.added.len(),
                report.updated.len(),
                report.unchanged.len(),
                report.failed.len(),
                report.chunks_added,
                report.chunks_removed,
                knowledge.chunk_count(&agent)?
            );
            anyhow::ensure!(
                report.failed.is_empty(),
                "{} file(s) could not be ingested",
                report.failed.len()
            );
        }
        KbCommand::List { agent } => {
            for d in knowledge.documents(&agent)? {
                println!(
                    "{:<40} {:<9} {:>8} bytes {:>4} chunks  sha256 {}",
                    d.name,
                    format!("{:?}", d.format).to_lowercase(),
                    d.bytes,
                    d.chunks,
                    &d.sha256[..12.min(d.sha256.len())]
                );
            }
        }
        KbCommand::Remove { agent, document } => {
            let chunks = knowledge.remove(&agent, &document).map_err(|e| match e {
                kb::Error::UnknownDocument { .. } => anyhow::anyhow!(
                    "agent {agent:?} has no document {document:?} (see `switchboard kb list --agent {agent}`)"
                ),
                e => e.into(),
            })?;
            println!("removed {document} ({chunks} chunks)");
        }
        KbCommand::Search {
            agent,
            question,
            k,
            json,
        } => {
            for h in knowledge.search(&agent, &question, k)? {
                if json {
                    println!("{}", serde_json::to_string(&h)?);
                } else {
                    let text: String = h.text.split_whitespace().collect::<Vec<_>>().join(" ");
                    let short: String = text.chars().take(100).collect();
                    println!(
                        "{:.4}  {}{}{}  {short}",
                        h.score,
                        h.source,
                        if h.heading.is_empty() { "" } else { " > " },
                        h.heading
                    );
                }
            }
        }
    }
    Ok(())
}
