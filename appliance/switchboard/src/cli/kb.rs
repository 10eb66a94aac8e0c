//! `switchboard kb …`: an agent's knowledge collection under the data dir.

use std::io::Write;
use std::path::PathBuf;
use std::sync::Arc;

use crate::config::Config;
use crate::engines::MiniLm;
use anyhow::Context;
use clap::Subcommand;
use kb::Collection;

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
    let agent = match &cmd {
        KbCommand::Ingest { agent, .. }
        | KbCommand::List { agent }
        | KbCommand::Remove { agent, .. }
        | KbCommand::Search { agent, .. } => agent.clone(),
    };
    let embed_dir = config.models.dir.join("all-MiniLM-L6-v2");
    let embedder = MiniLm::load(&embed_dir)
        .with_context(|| format!("cannot load the embedder from {}", embed_dir.display()))?;
    let mut collection = Collection::open(&config.data_dir, &agent, Arc::new(embedder))
        .with_context(|| format!("cannot open the knowledge of agent {agent:?}"))?;
    match cmd {
        KbCommand::Ingest { paths, .. } => {
            let mut err = std::io::stderr();
            let report = collection.ingest(&paths, &mut |p| {
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
                collection.chunk_count()
            );
            anyhow::ensure!(
                report.failed.is_empty(),
                "{} file(s) could not be ingested",
                report.failed.len()
            );
        }
        KbCommand::List { .. } => {
            for d in collection.documents() {
                println!(
                    "{:<40} {:<9} {:>8} bytes {:>4} chunks  sha256 {}",
                    d.name,
                    format!("{:?}", d.format).to_lowercase(),
                    d.bytes,
                    d.chunk_ids.len(),
                    &d.sha256[..12.min(d.sha256.len())]
                );
            }
        }
        KbCommand::Remove { document, .. } => {
            anyhow::ensure!(
                collection.documents().any(|d| d.name == document),
                "agent {agent:?} has no document {document:?} (see `switchboard kb list --agent {agent}`)"
            );
            let chunks = collection.remove(&document)?;
            println!("removed {document} ({chunks} chunks)");
        }
        KbCommand::Search {
            question, k, json, ..
        } => {
            let hits = collection.search_with(&question, &kb::SearchOptions { k, source: None })?;
            for h in hits {
                if json {
                    let line = serde_json::json!({
                        "score": h.score,
                        "similarity": h.similarity,
                        "source": h.chunk.source,
                        "heading": h.chunk.heading_path,
                        "bm25_rank": h.bm25_rank,
                        "vector_rank": h.vector_rank,
                        "text": h.chunk.text,
                    });
                    println!("{line}");
                } else {
                    let text: String = h
                        .chunk
                        .text
                        .split_whitespace()
                        .collect::<Vec<_>>()
                        .join(" ");
                    let short: String = text.chars().take(100).collect();
                    println!(
                        "{:.4}  {}{}{}  {short}",
                        h.score,
                        h.chunk.source,
                        if h.chunk.heading_path.is_empty() {
                            ""
                        } else {
                            " > "
                        },
                        h.chunk.heading_path
                    );
                }
            }
        }
    }
    Ok(())
}
