//! The installed service's sandbox as systemd itself rates it (`systemd-analyze security`, read
//! from the unit file, no running systemd needed): a directive dropped from
//! `systemd/switchboard.service` raises the exposure past the bound and fails here.
#![allow(clippy::unwrap_used)] // reason: test code, where a panic is the failure report

use std::path::Path;
use std::process::Command;

#[test]
fn the_service_sandbox_keeps_its_exposure_at_most_1_5() {
    if !switchboard_e2e::installed("systemd-analyze") {
        return;
    }
    let unit = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../systemd/switchboard.service");
    // The threshold is on systemd's 0–100 scale: 15 is the 1.5 it prints.
    let out = Command::new("systemd-analyze")
        .args(["security", "--offline=yes", "--threshold=15"])
        .arg(&unit)
        .output()
        .unwrap();
    let report = String::from_utf8_lossy(&out.stdout);
    let overall = report
        .lines()
        .find(|l| l.contains("Overall exposure level"))
        .unwrap_or("no overall exposure in the report");
    assert!(out.status.success(), "{overall}\n{report}");
    // The daemon needs no capability: its ports are above 1024.
    let unit_text = std::fs::read_to_string(&unit).unwrap();
    assert!(
        unit_text.contains("\nCapabilityBoundingSet=\n"),
        "the service keeps a capability"
    );
    // The document parser's child lowers its own limits first; without these two system calls
    // (`~@resources` denies them) every upload would be refused.
    assert!(
        unit_text.contains("\nSystemCallFilter=setrlimit prlimit64\n"),
        "the unit denies the parser's setrlimit"
    );
}
