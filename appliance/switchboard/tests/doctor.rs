#![allow(clippy::unwrap_used)] // reason: test code, where a panic is the failure report
//! `switchboard doctor` through the built binary: what an installer gets wrong is named with its
//! fix, `--ready` (the unit's start condition) passes only with the model set and an admin, and
//! the checks create nothing. And `switchboard manual`, the packages' manual pages.

use models_api::testing::{model_file, models_dir};
use std::net::TcpListener;
use std::path::Path;
use std::process::{Command, Output, Stdio};

/// The binary on a configuration of the test's own: `data_dir` and `models.dir` in `dir`'s
/// reach, and none of the environment's overrides.
fn switchboard(dir: &Path, config: &str) -> Command {
    let file = dir.join("switchboard.toml");
    std::fs::write(&file, config).unwrap();
    let mut c = Command::new(env!("CARGO_BIN_EXE_switchboard"));
    for (k, _) in std::env::vars().filter(|(k, _)| k.starts_with("SWITCHBOARD_")) {
        c.env_remove(k);
    }
    c.arg("--config").arg(file);
    c
}

fn config(data: &Path, models: &Path, extra: &str) -> String {
    format!(
        "data_dir = {:?}\n{extra}\n[models]\ndir = {:?}\nprofile = \"small\"\n",
        data.display().to_string(),
        models.display().to_string()
    )
}

/// The binary with `args`, run to its end.
fn run(dir: &Path, config: &str, args: &[&str]) -> Output {
    switchboard(dir, config).args(args).output().unwrap()
}

/// `switchboard user add NAME --role ROLE`, as an administrator runs it.
fn add_user(dir: &Path, config: &str, name: &str, role: &str) {
    let mut add = switchboard(dir, config)
        .args(["user", "add", name, "--role", role])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    use std::io::Write;
    writeln!(add.stdin.take().unwrap(), "a long enough password").unwrap();
    assert!(add.wait().unwrap().success());
}

fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn a_fresh_box_is_not_ready_and_doctor_says_what_to_do_without_creating_anything() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    std::fs::create_dir(&data).unwrap();
    let out = run(
        dir.path(),
        &config(&data, &dir.path().join("no-models"), ""),
        &["doctor", "--ready"],
    );
    let report = stdout(&out);
    assert_eq!(out.status.code(), Some(1), "{report}");
    assert!(
        report.contains("PROBLEM  models: the small model set in"),
        "{report}"
    );
    assert!(report.contains("switchboard-models-small"), "{report}");
    assert!(
        report.contains("PROBLEM  admin user: no admin user yet"),
        "{report}"
    );
    assert!(report.contains("--role admin"), "{report}");
    assert!(report.contains("systemctl start switchboard"), "{report}");
    // Run as the unit's start condition, doctor must not make the database (or a key) as
    // whoever runs it.
    assert_eq!(std::fs::read_dir(&data).unwrap().count(), 0);
}

#[test]
fn with_the_models_and_an_admin_the_box_is_ready() {
    if model_file("ggml-tiny.en.bin").is_none() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let config = config(&data, &models_dir(), "");
    let not_yet = run(dir.path(), &config, &["doctor", "--ready"]);
    assert!(
        stdout(&not_yet).contains("ok       models"),
        "{}",
        stdout(&not_yet)
    );
    assert_eq!(not_yet.status.code(), Some(1));

    // An operator is not enough: someone must be able to run the box.
    for (name, role) in [("olive", "operator"), ("ada", "admin")] {
        add_user(dir.path(), &config, name, role);
        let ready = run(dir.path(), &config, &["doctor", "--ready"]);
        let report = stdout(&ready);
        match role {
            "operator" => {
                assert!(
                    report.contains("PROBLEM  admin user: no enabled admin user"),
                    "{report}"
                );
                assert_eq!(ready.status.code(), Some(1));
            }
            _ => {
                assert!(report.contains("ok       admin user"), "{report}");
                assert!(ready.status.success(), "{report}");
            }
        }
    }
}

#[test]
fn a_lost_data_key_is_reported_not_replaced() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let config = config(&data, &dir.path().join("no-models"), "");
    add_user(dir.path(), &config, "ada", "admin");
    std::fs::remove_file(data.join("data.key")).unwrap();
    let out = run(dir.path(), &config, &["doctor", "--ready"]);
    let report = stdout(&out);
    assert_eq!(out.status.code(), Some(1), "{report}");
    assert!(
        report.contains("PROBLEM  admin user: cannot open the database: key")
            && report.contains("is missing"),
        "{report}"
    );
    // A new key would not read the sealed data, and would hide that the old one is lost.
    assert!(
        !data.join("data.key").exists(),
        "doctor made a new data key"
    );
}

#[test]
fn a_taken_port_and_an_unwritable_data_directory_are_named() {
    let dir = tempfile::tempdir().unwrap();
    let taken = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap();
    let missing = dir.path().join("not-there");
    let sip = format!("[sip]\nlisten = \"{port}\"\n[http]\nlisten = \"127.0.0.1:0\"\n");
    let out = run(
        dir.path(),
        &config(&missing, &models_dir(), &sip),
        &["doctor"],
    );
    let report = stdout(&out);
    assert_eq!(out.status.code(), Some(1), "{report}");
    assert!(
        report.contains(&format!("PROBLEM  SIP (TCP): cannot listen on {port}")),
        "{report}"
    );
    assert!(report.contains("PROBLEM  data directory"), "{report}");
    assert!(report.contains("ok       admin HTTP"), "{report}");
    assert!(report.contains("ok       clock"), "{report}");
}

#[test]
fn keys_others_may_read_and_keys_lost_with_their_data_are_named() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let config = config(&data, &dir.path().join("no-models"), "");
    let doctor = || stdout(&run(dir.path(), &config, &["doctor"]));
    // A new box: no key yet, and nothing sealed that needs one.
    let fresh = doctor();
    assert!(fresh.contains("ok       key data.key"), "{fresh}");
    assert!(fresh.contains("ok       key recording.key"), "{fresh}");

    add_user(dir.path(), &config, "ada", "admin");
    use std::os::unix::fs::PermissionsExt;
    let key = data.join("data.key");
    std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o644)).unwrap();
    let exposed = doctor();
    assert!(
        exposed.contains("PROBLEM  key data.key: key") && exposed.contains("others may read it"),
        "{exposed}"
    );
    // Recordings on disk whose key is gone.
    std::fs::create_dir(data.join("recordings")).unwrap();
    let lost = doctor();
    assert!(
        lost.contains("PROBLEM  key recording.key: key") && lost.contains("is missing"),
        "{lost}"
    );
    assert!(!data.join("recording.key").exists(), "doctor made a key");
}

/// Trunks are asked with one OPTIONS each: one that answers (sipp), one whose port is closed,
/// and one whose name no nameserver knows; each is named with what it did.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_trunk_is_asked_and_named_with_its_answer() {
    let dir = tempfile::tempdir().unwrap();
    let Some((trunk, port)) = switchboard_e2e::sipp_server("uas_options.xml", 1, &[], dir.path())
    else {
        return;
    };
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    let closed = TcpListener::bind("127.0.0.1:0").unwrap();
    let closed_port = closed.local_addr().unwrap().port();
    drop(closed);
    // A nameserver that is not there: the name cannot be located.
    let dns = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    let dns_addr = dns.local_addr().unwrap();
    drop(dns);
    let trunks = format!(
        "[sip]\ndns_servers = [\"{dns_addr}\"]\n\
         [[trunks]]\nname = \"answers\"\nproxy = \"sip:127.0.0.1:{port}\"\n\
         [[trunks]]\nname = \"closed\"\nproxy = \"sip:127.0.0.1:{closed_port};transport=tcp\"\n\
         [[trunks]]\nname = \"unknown\"\nproxy = \"sip:sbc.carrier.invalid\"\n"
    );
    let config = config(&dir.path().join("data"), &models_dir(), &trunks);
    let mut doctor = switchboard(dir.path(), &config);
    doctor.arg("doctor");
    let out = tokio::task::spawn_blocking(move || doctor.output().unwrap())
        .await
        .unwrap();
    let report = stdout(&out);
    assert_eq!(out.status.code(), Some(1), "{report}");
    assert!(report.contains("ok       trunk answers"), "{report}");
    assert!(
        report.contains("PROBLEM  trunk closed: cannot reach it"),
        "{report}"
    );
    assert!(
        report.contains("PROBLEM  trunk unknown: cannot locate sip:sbc.carrier.invalid"),
        "{report}"
    );
    let (status, output) = trunk.wait().await;
    assert_eq!(status, 0, "the trunk was not asked: {output}");
}

/// What the packages' preinst reads to refuse a downgrade across a migration.
#[test]
fn version_says_which_schema_the_build_knows_and_the_database_holds() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let config = config(&data, &dir.path().join("no-models"), "");
    let schema = || {
        let out = run(dir.path(), &config, &["version", "--schema"]);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        stdout(&out)
    };
    let before = schema();
    assert!(before.contains("\nschema_database none\n"), "{before}");
    assert!(!data.exists(), "a look made the data directory");
    let known = before
        .lines()
        .find_map(|l| l.strip_prefix("schema_known "))
        .unwrap()
        .to_owned();
    assert!(known.parse::<i64>().unwrap() > 0, "{before}");
    add_user(dir.path(), &config, "ada", "admin");
    let after = schema();
    assert!(
        after.contains(&format!("\nschema_database {known}\n")),
        "{after}"
    );
}

#[test]
fn the_manual_has_a_page_for_every_command() {
    let dir = tempfile::tempdir().unwrap();
    let man = dir.path().join("man");
    let out = switchboard(dir.path(), "")
        .arg("manual")
        .arg(&man)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let top = std::fs::read_to_string(man.join("switchboard.1")).unwrap();
    assert!(top.contains(".TH switchboard 1"), "{top}");
    assert!(
        top.contains("doctor"),
        "the top page lists the commands: {top}"
    );
    let install = std::fs::read_to_string(man.join("switchboard-models-install.1")).unwrap();
    assert!(install.contains("standard"), "{install}");
    // The internal command does not document itself.
    assert!(!man.join("switchboard-manual.1").exists());
}
