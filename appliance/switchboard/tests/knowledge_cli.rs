#![allow(clippy::unwrap_used)] // reason: test helpers, where a panic is the failure report
//! `switchboard kb …` and `switchboard chat`, run as the built binary against the Acme Dental
//! documents of `kb/tests/data/acme` and the installed small models.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use models_api::testing::{model_file, models_dir};

fn acme() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../kb/tests/data/acme")
}

/// A configuration in a fresh directory: data there, models from the test model dir, and one
/// agent whose (small) knowledge is the practice's about page.
fn setup() -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("switchboard.toml");
    std::fs::write(
        &config,
        format!(
            "data_dir = {:?}\n[models]\ndir = {:?}\n\n[[agents]]\nname = \"front\"\nnumbers = [\"1000\"]\n\
             greeting = \"Hello, Acme Dental, how can I help?\"\n\
             prompt = \"You are the receptionist of Acme Dental, a family dental practice.\"\n\
             knowledge = [{:?}]\ntransfer_to = \"sip:desk@10.0.0.5\"\n",
            dir.path().join("var"),
            models_dir(),
            acme().join("about.md"),
        ),
    )
    .unwrap();
    (dir, config)
}

fn switchboard(config: &Path, args: &[&str], stdin: &str) -> Output {
    let mut c = Command::new(env!("CARGO_BIN_EXE_switchboard"));
    for (k, _) in std::env::vars().filter(|(k, _)| k.starts_with("SWITCHBOARD_")) {
        c.env_remove(k);
    }
    let mut child = c
        .arg("--config")
        .arg(config)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(stdin.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    eprintln!(
        "$ switchboard {}\n{}{}",
        args.join(" "),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

fn ok(out: &Output) -> String {
    assert!(out.status.success(), "{out:?}");
    String::from_utf8(out.stdout.clone()).unwrap()
}

#[test]
fn kb_ingest_list_search_remove() {
    if model_file("all-MiniLM-L6-v2").is_none() {
        return;
    }
    let (_dir, config) = setup();
    let acme = acme();
    let out = switchboard(
        &config,
        &["kb", "ingest", "--agent", "acme", acme.to_str().unwrap()],
        "",
    );
    assert!(ok(&out).starts_with("5 added, 0 updated, 0 unchanged, 0 failed"));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("5/5 files"),
        "progress is shown"
    );
    // Unchanged content is skipped.
    let out = switchboard(
        &config,
        &["kb", "ingest", "--agent", "acme", acme.to_str().unwrap()],
        "",
    );
    assert!(ok(&out).starts_with("0 added, 0 updated, 5 unchanged"));

    let list = ok(&switchboard(
        &config,
        &["kb", "list", "--agent", "acme"],
        "",
    ));
    for doc in [
        "about.md",
        "faq.csv",
        "new-patients.pdf",
        "policies.txt",
        "prices.html",
    ] {
        assert!(list.contains(doc), "{list}");
    }

    let found = ok(&switchboard(
        &config,
        &[
            "kb",
            "search",
            "--agent",
            "acme",
            "Where can I park my car?",
            "--json",
            "--k",
            "3",
        ],
        "",
    ));
    let hits: Vec<serde_json::Value> = found
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(hits.len(), 3);
    assert!(
        hits.iter().any(
            |h| h["source"] == "about.md" && h["heading"].as_str().unwrap().contains("parking")
        ),
        "the parking section is in the top 3: {found}"
    );
    assert!(hits.iter().all(|h| h["similarity"].is_number()));
    assert!(hits[0]["score"].as_f64().unwrap() >= hits[1]["score"].as_f64().unwrap());

    let out = ok(&switchboard(
        &config,
        &["kb", "remove", "--agent", "acme", "about.md"],
        "",
    ));
    assert!(out.starts_with("removed about.md"), "{out}");
    let list = ok(&switchboard(
        &config,
        &["kb", "list", "--agent", "acme"],
        "",
    ));
    assert!(!list.contains("about.md"), "{list}");
    let out = switchboard(
        &config,
        &["kb", "remove", "--agent", "acme", "about.md"],
        "",
    );
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("has no document \"about.md\""));

    let out = switchboard(&config, &["kb", "list", "--agent", "../etc"], "");
    assert!(
        !out.status.success(),
        "agent names cannot escape the data dir"
    );
}

#[test]
fn chat_answers_from_the_agents_knowledge() {
    if model_file("qwen2.5-coder-0.5b-instruct-q4_0.gguf").is_none()
        || model_file("all-MiniLM-L6-v2").is_none()
    {
        return;
    }
    let (_dir, config) = setup();
    let out = switchboard(
        &config,
        &["chat", "--agent", "front", "--outcome"],
        "What time do you close on Fridays?\nWhat's the weather on Mars?\n",
    );
    let text = ok(&out);
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines[0], "agent> Hello, Acme Dental, how can I help?");
    assert!(
        lines[1].starts_with("agent> ") && lines[1].contains('3'),
        "{text}"
    );
    assert!(lines[2].contains("don't know"), "{text}");
    let outcome: serde_json::Value = serde_json::from_str(lines[3]).unwrap();
    assert!(outcome["summary"].as_str().unwrap().len() > 10, "{outcome}");
    assert!(String::from_utf8_lossy(&out.stderr).contains("knowledge cached in the prompt"));

    let out = switchboard(&config, &["chat", "--agent", "nobody"], "");
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("no agent named \"nobody\""));
}
