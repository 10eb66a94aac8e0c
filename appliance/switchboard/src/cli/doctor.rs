//! `switchboard doctor`: what an installation gets wrong, each finding with how to fix it:
//! the model set, an admin, the keys, the data directory, the ports, each trunk (asked with one
//! OPTIONS) and the clock.
//!
//! `--ready` asks only what the service needs before it may start (the model set and an admin);
//! the unit runs it as `ExecCondition=`, so a box installed but not yet set up skips the start
//! and says why in the journal instead of failing in a restart loop.

use crate::config::Config;
use models_bundle::{Manifest, Mode, NoProgress};
use std::net::{SocketAddr, TcpListener, UdpSocket};
use std::path::Path;

/// One check's outcome.
pub struct Finding {
    pub check: String,
    pub problem: Option<String>,
    /// What to do about the problem.
    pub fix: String,
}

impl Finding {
    fn ok(check: &str) -> Self {
        Finding {
            check: check.into(),
            problem: None,
            fix: String::new(),
        }
    }
}

/// Runs the checks (`ready`: only those that gate the service's start) and prints a line for
/// each; an error when any found a problem.
pub async fn run(config: &Config, ready: bool) -> anyhow::Result<()> {
    let mut findings = vec![models(config), admin(config).await];
    if !ready {
        findings.extend(keys(config));
        findings.push(data_dir(&config.data_dir));
        findings.push(port("SIP (UDP)", config.sip.listen, Proto::Udp));
        findings.push(port("SIP (TCP)", config.sip.listen, Proto::Tcp));
        findings.push(port("admin HTTP", config.http.listen, Proto::Tcp));
        findings.extend(trunks(config).await);
        findings.push(clock());
    }
    for f in &findings {
        match &f.problem {
            None => println!("ok       {}", f.check),
            Some(problem) => println!("PROBLEM  {}: {problem}\n         fix: {}", f.check, f.fix),
        }
    }
    let problems = findings.iter().filter(|f| f.problem.is_some()).count();
    if problems > 0 && ready {
        println!(
            "switchboard is not started until these are done; then: systemctl start switchboard"
        );
    }
    anyhow::ensure!(problems == 0, "{problems} problem(s) found");
    Ok(())
}

fn models(config: &Config) -> Finding {
    let (profile, dir) = (
        models_bundle::Profile::from(config.models.profile),
        &config.models.dir,
    );
    let report = models_bundle::verify(
        &Manifest::builtin(),
        profile,
        dir,
        Mode::Fast,
        &mut NoProgress,
    );
    if report.is_ok() {
        return Finding::ok("models");
    }
    Finding {
        check: "models".into(),
        problem: Some(format!(
            "the {profile} model set in {} is incomplete ({} problem(s))",
            dir.display(),
            report.problems().count()
        )),
        fix: format!(
            "install the package switchboard-models-{profile}, or run `switchboard models install` \
             (online) or `switchboard models import BUNDLE` (air-gapped); \
             `switchboard models verify` lists what is missing"
        ),
    }
}

async fn admin(config: &Config) -> Finding {
    let fix = "create one as the service's user: \
               `runuser -u switchboard -- switchboard user add NAME --role admin` \
               (it reads the password from standard input)"
        .to_owned();
    // Opened only if it exists, and with the key that is there: a look creates nothing.
    let problem = match crate::open_existing_store(config).await {
        Ok(None) => Some("no admin user yet (the database is not created)".into()),
        Ok(Some(store)) => match store.has_admin().await {
            Ok(true) => None,
            Ok(false) => Some("no enabled admin user".into()),
            Err(e) => Some(format!("cannot read the users: {e}")),
        },
        Err(e) => Some(format!("cannot open the database: {e}")),
    };
    Finding {
        check: "admin user".into(),
        problem,
        fix,
    }
}

fn data_dir(dir: &Path) -> Finding {
    let probe = dir.join(".doctor-probe");
    let problem = std::fs::write(&probe, b"")
        .and_then(|()| std::fs::remove_file(&probe))
        .err()
        .map(|e| format!("{} is not writable by this user: {e}", dir.display()));
    Finding {
        check: "data directory".into(),
        problem,
        fix: format!(
            "run doctor as the service's user (runuser -u switchboard -- switchboard doctor); \
             the package makes {} theirs, mode 0750",
            dir.display()
        ),
    }
}

/// Both keys: readable by the service only, 32 bytes, and there while what they seal is (the
/// first start makes them on a new box; for PostgreSQL, the admin check's opening tells).
fn keys(config: &Config) -> Vec<Finding> {
    let recordings = config.data_dir.join(crate::runtime::recording::DIR);
    [
        (crate::keys::DATA, config.embedded_database()),
        (crate::keys::RECORDING, Some(recordings)),
    ]
    .into_iter()
    .map(|(name, sealed)| {
        let problem = match crate::keys::load_existing(&config.data_dir, name) {
            Ok(_) => None,
            Err(crate::keys::KeyError::Missing { .. })
                if !sealed.is_some_and(|path| path.exists()) =>
            {
                None
            }
            Err(e) => Some(e.to_string()),
        };
        Finding {
            check: format!("key {name}"),
            problem,
            fix: "restore the key from the backup taken when the box was set up (what it sealed \
                  cannot be read without it), as the service's file, mode 0600"
                .into(),
        }
    })
    .collect()
}

/// Each trunk, located as the daemon does and asked with one OPTIONS from a port of its own.
async fn trunks(config: &Config) -> Vec<Finding> {
    if config.trunks.is_empty() {
        return Vec::new();
    }
    let from = SocketAddr::new(config.sip.listen.ip(), 0);
    let sip = match sip_net::SipNet::bind(sip_net::SipConfig::new(from)).await {
        Ok(sip) => sip,
        Err(e) => {
            return vec![Finding {
                check: "trunks".into(),
                problem: Some(format!("cannot send SIP from {from}: {e}")),
                fix: "check the address in sip.listen".into(),
            }]
        }
    };
    let locating = crate::trunks::Locating::new(config);
    let wait = std::time::Duration::from_secs(8);
    crate::trunks::probe(config, sip, locating, wait)
        .await
        .into_iter()
        .map(|probe| Finding {
            check: format!("trunk {}", probe.trunk),
            problem: probe.outcome.err(),
            fix: "check the trunk's proxy (and sip.dns_servers for a name), that the carrier or \
                  PBX lets this box's address in, its firewall, and for TLS its ca_file"
                .into(),
        })
        .collect()
}

enum Proto {
    Udp,
    Tcp,
}

fn port(check: &'static str, addr: SocketAddr, proto: Proto) -> Finding {
    let bound = match proto {
        Proto::Udp => UdpSocket::bind(addr).map(drop),
        Proto::Tcp => TcpListener::bind(addr).map(drop),
    };
    Finding {
        check: check.into(),
        problem: bound.err().map(|e| format!("cannot listen on {addr}: {e}")),
        fix: "if switchboard is running, this is expected; otherwise stop what holds the port \
              (`ss -lntup`) or change the listen address in the configuration"
            .into(),
    }
}

/// TLS certificates, SRTP keys' lifetimes and call records all trust the clock: one set before
/// this build existed is certainly wrong.
fn clock() -> Finding {
    const BUILT_AFTER_UNIX: u64 = 1_767_225_600; // 2026-01-01
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    Finding {
        check: "clock".into(),
        problem: (now < BUILT_AFTER_UNIX)
            .then(|| format!("the system clock reads {now} s since 1970, before this release")),
        fix: "set the clock and keep it set (timedatectl set-ntp true, or a local NTP server)"
            .into(),
    }
}
