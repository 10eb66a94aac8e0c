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
    Version,
    /// Manage admin UI and API users.
    #[command(subcommand)]
    User(UserCommand),
    /// Inspect agents (declared in the configuration or created in the admin UI).
    #[command(subcommand)]
    Agent(AgentCommand),
}

#[derive(Subcommand)]
enum UserCommand {
    /// Create a user; the password is read from standard input.
    Add {
        username: String,
        /// admin, operator or agent.
        #[arg(long, default_value = "operator")]
        role: String,
    },
}

#[derive(Subcommand)]
enum AgentCommand {
    /// List agents and the numbers that route to them.
    List,
}

/// Exit code for a configuration that does not check out.
const EXIT_CONFIG: u8 = 2;

fn main() -> ExitCode {
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
            println!("configuration OK ({from})");
            Ok(())
        }
        Command::Version => {
            println!("switchboard {}", env!("CARGO_PKG_VERSION"));
            Ok(())
        }
        Command::Serve => block_on(serve(config)),
        Command::User(UserCommand::Add { username, role }) => {
            block_on(user_add(config, username, role))
        }
        Command::Agent(AgentCommand::List) => block_on(agent_list(config)),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn block_on<F: std::future::Future<Output = anyhow::Result<()>>>(f: F) -> anyhow::Result<()> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?
        .block_on(f)
}

async fn serve(config: Config) -> anyhow::Result<()> {
    switchboard::telemetry::init_logging(&config.log);
    let listeners = switchboard::Listeners::bind(&config).await?;
    switchboard::run(config, listeners, shutdown_signal()).await?;
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
    Ok(switchboard_store::Store::open(&config.database_url()).await?)
}

async fn user_add(config: Config, username: String, role: String) -> anyhow::Result<()> {
    let role = switchboard_store::Role::parse(&role)
        .with_context(|| format!("unknown role {role:?}: use admin, operator or agent"))?;
    let mut password = String::new();
    std::io::stdin()
        .read_line(&mut password)
        .context("cannot read the password from standard input")?;
    let password = password.trim_end_matches(['\r', '\n']);
    let hash = switchboard::auth::hash_password(password)?;
    let store = open_store(&config).await?;
    store.create_user(&username, &hash, role).await?;
    println!("user {username} created ({})", role.as_str());
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
