//! `switchboard contacts …` and `switchboard campaign …`: contact lists from CSV, and outbound
//! campaigns from creation to their progress. The running daemon dials a campaign once it is
//! started, and follows a pause or stop within a second, on every box sharing the database.
//! Status changes are audited as done by `cli:$USER`.

use crate::campaigns;
use crate::config::Config;
use crate::dialer::Rules;
use anyhow::{bail, Context};
use clap::{Args, Subcommand};
use std::path::PathBuf;
use switchboard_dialer::import::{Columns, Defaults};
use switchboard_store::{Campaign, CampaignId, CampaignStatus, Store};

#[derive(Subcommand)]
pub enum ContactsCommand {
    /// Import a CSV file into a contact list (created if new). Numbers are normalised to E.164;
    /// rows that cannot be used are listed with their line and reason, the rest import; a
    /// number already on the list is kept once. Columns other than the mapped ones become the
    /// contact's fields.
    Import(ImportArgs),
}

#[derive(Args)]
pub struct ImportArgs {
    /// The contact list's name.
    pub list: String,
    pub file: PathBuf,
    /// The header of the column that holds the number.
    #[arg(long, default_value = "number")]
    pub number_column: String,
    /// The header of the column that holds the contact's name.
    #[arg(long)]
    pub name_column: Option<String>,
    /// The header of a column of IANA time zones (calling windows are in the contact's zone).
    #[arg(long)]
    pub time_zone_column: Option<String>,
    /// The zone of contacts whose row names none.
    #[arg(long, default_value = "UTC")]
    pub time_zone: String,
    /// Two-letter country of numbers written without `+` and a country code.
    #[arg(long)]
    pub country: Option<String>,
}

#[derive(Subcommand)]
pub enum CampaignCommand {
    /// Create a campaign (as a draft: `campaign start` begins dialling).
    Create(Box<CreateArgs>),
    /// Every campaign with its progress (one JSON object per line).
    List,
    /// One campaign's progress and every attempt (JSON).
    Status { name: String },
    /// Start dialling (or go on after a pause).
    Start { name: String },
    /// Stop starting new calls; calls up carry on.
    Pause { name: String },
    /// Finish the campaign for good: nothing more is dialled.
    Stop { name: String },
}

#[derive(Args)]
pub struct CreateArgs {
    pub name: String,
    /// The agent that speaks on the calls.
    #[arg(long)]
    pub agent: String,
    /// The contact list to call.
    #[arg(long)]
    pub list: String,
    /// The `[[trunks]]` entry the calls go out through.
    #[arg(long)]
    pub trunk: String,
    /// The number shown to the people called (the trunk's `from_user` when absent).
    #[arg(long)]
    pub caller_id: Option<String>,
    /// Calling hours in each contact's own zone.
    #[arg(long, default_value = "09:00-18:00")]
    pub window: String,
    /// Days calls may be placed.
    #[arg(long, default_value = "mon-fri")]
    pub days: String,
    /// Dates nobody is called, `YYYY-MM-DD,…`.
    #[arg(long, default_value = "")]
    pub holidays: String,
    /// Per outcome: attempts in all and the wait before the next (`busy=3/10m,no_answer=3/1h`).
    #[arg(long, default_value_t = switchboard_dialer::RetryPolicy::default().to_string())]
    pub retry: String,
    /// Attempts per contact, all outcomes together.
    #[arg(long, default_value_t = 5)]
    pub max_attempts: i64,
    /// The least time between two attempts on one contact, in seconds.
    #[arg(long, default_value_t = 600)]
    pub min_retry_gap_s: i64,
    /// Calls up at once, on every box together.
    #[arg(long, default_value_t = 1)]
    pub max_concurrent: i64,
    /// Calls started per minute at most (0: no spacing).
    #[arg(long, default_value_t = 6)]
    pub calls_per_minute: i64,
    /// Seconds a phone rings before the call is given up as not answered.
    #[arg(long, default_value_t = 30)]
    pub ring_timeout_s: i64,
}

pub async fn contacts(store: &Store, cmd: ContactsCommand) -> anyhow::Result<()> {
    let ContactsCommand::Import(args) = cmd;
    let csv = std::fs::read(&args.file)
        .with_context(|| format!("cannot read {}", args.file.display()))?;
    let columns = Columns {
        number: args.number_column,
        name: args.name_column,
        time_zone: args.time_zone_column,
    };
    let defaults = Defaults {
        country: args.country,
        time_zone: args.time_zone,
    };
    let imported = campaigns::import(store, &args.list, &csv, &columns, &defaults).await?;
    let file = args.file.display();
    for row in &imported.report.rejected {
        eprintln!("{file}:{}: {}", row.line, row.reason);
    }
    for (line, first) in &imported.report.merged {
        eprintln!("{file}:{line}: the number of line {first}; merged into it");
    }
    println!(
        "{}: {} contact(s) added, {} already on the list, {} row(s) merged, {} rejected",
        args.list,
        imported.added,
        imported.report.contacts.len() as u64 - imported.added,
        imported.report.merged.len(),
        imported.report.rejected.len()
    );
    Ok(())
}

pub async fn campaign(config: &Config, store: &Store, cmd: CampaignCommand) -> anyhow::Result<()> {
    let set = |name: String, status: CampaignStatus| async move {
        campaigns::set_status(store, &name, status, &super::actor()).await?;
        println!("campaign {name}: {}", status.as_str());
        anyhow::Ok(())
    };
    match cmd {
        CampaignCommand::Create(args) => create(config, store, *args).await,
        CampaignCommand::List => {
            for c in store.campaigns(None).await? {
                super::emit(&campaigns::summary(store, &c).await?.to_string())?;
            }
            Ok(())
        }
        CampaignCommand::Status { name } => {
            let c = campaigns::named(store, &name).await?;
            let json = campaigns::detail(store, &c).await?;
            super::emit(&serde_json::to_string_pretty(&json)?)
        }
        CampaignCommand::Start { name } => set(name, CampaignStatus::Running).await,
        CampaignCommand::Pause { name } => set(name, CampaignStatus::Paused).await,
        CampaignCommand::Stop { name } => set(name, CampaignStatus::Finished).await,
    }
}

async fn create(config: &Config, store: &Store, a: CreateArgs) -> anyhow::Result<()> {
    let agent = store
        .agent_by_name(&a.agent)
        .await?
        .with_context(|| format!("no agent named {:?}", a.agent))?;
    let list = store
        .contact_list_by_name(&a.list)
        .await?
        .with_context(|| {
            format!(
                "no contact list named {:?} (`switchboard contacts import`)",
                a.list
            )
        })?;
    if !config.trunks.iter().any(|t| t.name == a.trunk) {
        bail!(
            "no [[trunks]] entry named {:?} in the configuration",
            a.trunk
        );
    }
    let (start, end) = a
        .window
        .split_once('-')
        .with_context(|| format!("calling window {:?}: write it as HH:MM-HH:MM", a.window))?;
    let campaign = Campaign {
        id: CampaignId::new(),
        name: a.name.clone(),
        agent_id: agent.id,
        list_id: list,
        trunk: a.trunk,
        status: CampaignStatus::Draft,
        window_start: start.trim().to_string(),
        window_end: end.trim().to_string(),
        days: a.days,
        holidays: a.holidays,
        max_attempts: a.max_attempts,
        retry_delay_s: a.min_retry_gap_s,
        retry_policy: a.retry,
        max_concurrent: a.max_concurrent,
        calls_per_minute: a.calls_per_minute,
        caller_id: a.caller_id,
        ring_timeout_s: a.ring_timeout_s,
    };
    // Stored as written back by the parsers, so what runs is what was checked.
    let rules = Rules::of(&campaign)?;
    let campaign = Campaign {
        days: rules.window.days.to_string(),
        retry_policy: rules.retry.to_string(),
        ..campaign
    };
    if campaign.max_attempts < 1 || campaign.max_concurrent < 1 || campaign.ring_timeout_s < 5 {
        bail!(
            "--max-attempts and --max-concurrent must be at least 1, --ring-timeout-s at least 5"
        );
    }
    store.create_campaign(&campaign).await?;
    println!(
        "campaign {} created (draft); `switchboard campaign start {}` begins dialling",
        a.name, a.name
    );
    Ok(())
}
