//! Install, verify, bundle and import against a synthetic manifest of tiny files: wheels are
//! built here with the zip crate, a .deb with dpkg-deb, and pip/apt-get are stand-in scripts.

#![allow(clippy::unwrap_used)] // reason: test helpers outside #[test] fns; a panic is the failure report

use std::fs;
use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use models_bundle::{
    bundle, import, install_with, list, partial_path, verify, Error, InstallOptions, Manifest,
    Mode, NoProgress, Profile, Sha256Digest, Status,
};

const A: &[u8] = b"alpha model weights\n";
const B1: &[u8] = b"first part of b|";
const B2: &[u8] = b"second part of b\n";

fn sha(b: &[u8]) -> String {
    Sha256Digest::of(b).to_string()
}

/// A wheel holding `members`, saved under pip's file name in `cache`.
fn wheel(cache: &Path, file: &str, members: &[(&str, &[u8])]) {
    fs::create_dir_all(cache).unwrap();
    let mut z = zip::ZipWriter::new(fs::File::create(cache.join(file)).unwrap());
    let opts = zip::write::SimpleFileOptions::default()
        .compression_method(zip::CompressionMethod::Deflated);
    for (name, data) in members {
        z.start_file(*name, opts).unwrap();
        z.write_all(data).unwrap();
    }
    z.finish().unwrap();
}

/// Data files of the synthetic directory entry, sorted by path.
const TREE: &[(&str, &[u8])] = &[
    ("phondata", b"phoneme data"),
    ("voices/en", b"name english\n"),
];

fn tree_lines() -> String {
    TREE.iter()
        .map(|(p, d)| format!("    \"{} {} {}\",\n", sha(d), d.len(), p))
        .collect()
}

fn tree_digest() -> String {
    let listing: String = TREE
        .iter()
        .map(|(p, d)| format!("{} {} {}\n", sha(d), d.len(), p))
        .collect();
    sha(listing.as_bytes())
}

/// A manifest with a single-member file, a two-part concatenation and a .deb directory.
fn manifest_text(a: &[u8], deb_sha: &str, deb_size: u64) -> String {
    let b: Vec<u8> = [B1, B2].concat();
    let tree_size: usize = TREE.iter().map(|(_, d)| d.len()).sum();
    format!(
        r#"schema = 1
[[file]]
name = "a"
role = "vad"
path = "a.bin"
size = {a_len}
sha256 = "{a_sha}"
license = "MIT"
profiles = ["small", "test"]
[file.source]
assemble = "single"
from = {{ package = "pkg-a", version = "1.0", member = "pkg_a/a.bin" }}

[[file]]
name = "b"
role = "llm"
path = "sub/b.bin"
size = {b_len}
sha256 = "{b_sha}"
license = "Apache-2.0"
profiles = ["small"]
[file.source]
assemble = "concat"
parts = [
    {{ package = "pkg-b-part1", version = "2.0", member = "pkg_b_part1/data/part01.bin" }},
    {{ package = "pkg-b-part2", version = "2.0", member = "pkg_b_part2/data/part02.bin" }},
]

[[file]]
name = "data"
role = "phoneme-data"
path = "data"
size = {tree_size}
sha256 = "{tree_sha}"
license = "GPL-3.0-or-later"
profiles = ["small", "standard"]
tree = [
{tree}]
[file.source]
assemble = "deb-dir"
deb = {{ package = "synthetic-data", version = "1.0-1", arch = "all", sha256 = "{deb_sha}", size = {deb_size} }}
member = "usr/share/synthetic"
"#,
        a_len = a.len(),
        a_sha = sha(a),
        b_len = b.len(),
        b_sha = sha(&b),
        tree_sha = tree_digest(),
        tree = tree_lines(),
    )
}

struct Fixture {
    _tmp: tempfile::TempDir,
    root: PathBuf,
    cache: PathBuf,
    manifest: Manifest,
}

/// Cache with the wheels and a .deb built by dpkg-deb.
fn fixture() -> Fixture {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().to_path_buf();
    let cache = root.join("cache");
    wheel(
        &cache,
        "pkg_a-1.0-py3-none-any.whl",
        &[("pkg_a/__init__.py", b""), ("pkg_a/a.bin", A)],
    );
    wheel(
        &cache,
        "pkg_b_part1-2.0-py3-none-any.whl",
        &[("pkg_b_part1/data/part01.bin", B1)],
    );
    wheel(
        &cache,
        "pkg_b_part2-2.0-py3-none-any.whl",
        &[("pkg_b_part2/data/part02.bin", B2)],
    );
    let pkg = root.join("debroot");
    fs::create_dir_all(pkg.join("DEBIAN")).unwrap();
    fs::write(
        pkg.join("DEBIAN/control"),
        "Package: synthetic-data\nVersion: 1.0-1\nArchitecture: all\nMaintainer: t <t@example.com>\nDescription: test\n",
    )
    .unwrap();
    for (p, d) in TREE {
        let f = pkg.join("usr/share/synthetic").join(p);
        fs::create_dir_all(f.parent().unwrap()).unwrap();
        fs::write(f, d).unwrap();
    }
    fs::write(pkg.join("usr/share/README"), "outside the member dir").unwrap();
    let deb = cache.join("synthetic-data_1.0-1_all.deb");
    let st = std::process::Command::new("dpkg-deb")
        .args(["--root-owner-group", "--build"])
        .arg(&pkg)
        .arg(&deb)
        .output()
        .expect("dpkg-deb available");
    assert!(
        st.status.success(),
        "{}",
        String::from_utf8_lossy(&st.stderr)
    );
    let deb_bytes = fs::read(&deb).unwrap();
    let manifest = Manifest::parse(
        &manifest_text(A, &sha(&deb_bytes), deb_bytes.len() as u64),
        "synthetic",
    )
    .unwrap();
    Fixture {
        _tmp: tmp,
        root,
        cache,
        manifest,
    }
}

fn offline() -> InstallOptions {
    InstallOptions {
        offline: true,
        ..InstallOptions::default()
    }
}

fn installed(fx: &Fixture) -> PathBuf {
    let dir = fx.root.join("models");
    install_with(
        &fx.manifest,
        Profile::Small,
        &dir,
        &fx.cache,
        &offline(),
        &mut NoProgress,
    )
    .unwrap();
    dir
}

fn status_of(r: &models_bundle::Report, path: &str) -> Status {
    r.files
        .iter()
        .find(|f| f.path.as_str() == path)
        .map(|f| f.status.clone())
        .unwrap_or(Status::Ok)
}

#[test]
fn install_assembles_verifies_and_is_idempotent() {
    let fx = fixture();
    let dir = fx.root.join("models");
    let r = install_with(
        &fx.manifest,
        Profile::Small,
        &dir,
        &fx.cache,
        &offline(),
        &mut NoProgress,
    )
    .unwrap();
    assert_eq!(r.installed.len(), 3);
    assert_eq!(fs::read(dir.join("a.bin")).unwrap(), A);
    assert_eq!(fs::read(dir.join("sub/b.bin")).unwrap(), [B1, B2].concat());
    assert_eq!(
        fs::read(dir.join("data/voices/en")).unwrap(),
        b"name english\n"
    );
    assert!(!dir.join("data/README").exists() && !dir.join("README").exists());
    assert!(verify(
        &fx.manifest,
        Profile::Small,
        &dir,
        Mode::Full,
        &mut NoProgress
    )
    .is_ok());
    let again = install_with(
        &fx.manifest,
        Profile::Small,
        &dir,
        &fx.cache,
        &offline(),
        &mut NoProgress,
    )
    .unwrap();
    assert_eq!((again.installed.len(), again.skipped.len()), (0, 3));
    let inv = list(&fx.manifest, &dir);
    assert_eq!(
        inv.complete,
        vec![Profile::Small, Profile::Standard, Profile::Test]
    );
}

#[test]
fn verify_reports_missing_wrong_size_and_flipped_byte() {
    let fx = fixture();
    let dir = installed(&fx);
    fs::remove_file(dir.join("a.bin")).unwrap();
    let mut b = fs::read(dir.join("sub/b.bin")).unwrap();
    b.push(b'!');
    fs::write(dir.join("sub/b.bin"), &b).unwrap();
    let mut ph = fs::read(dir.join("data/phondata")).unwrap();
    ph[3] ^= 0x01;
    fs::write(dir.join("data/phondata"), &ph).unwrap();

    let fast = verify(
        &fx.manifest,
        Profile::Small,
        &dir,
        Mode::Fast,
        &mut NoProgress,
    );
    assert_eq!(status_of(&fast, "a.bin"), Status::Missing);
    assert_eq!(
        status_of(&fast, "sub/b.bin"),
        Status::WrongSize {
            expected: 33,
            actual: 34
        }
    );
    // Fast mode only looks at sizes: a flipped byte passes.
    assert_eq!(status_of(&fast, "data"), Status::Ok);

    let full = verify(
        &fx.manifest,
        Profile::Small,
        &dir,
        Mode::Full,
        &mut NoProgress,
    );
    assert!(!full.is_ok());
    match status_of(&full, "data/phondata") {
        Status::WrongSha256 { expected, actual } => {
            assert_eq!(expected, Sha256Digest::of(b"phoneme data"));
            assert_eq!(actual, Sha256Digest::of(&ph));
        }
        other => panic!("expected WrongSha256 for data/phondata, got {other:?}"),
    }
    assert_eq!(full.problems().count(), 3);
    // Only `standard` (just the directory, whose sizes are right) still counts as complete.
    assert_eq!(list(&fx.manifest, &dir).complete, vec![Profile::Standard]);
}

#[test]
fn interrupted_install_recovers() {
    let fx = fixture();
    let dir = fx.root.join("models");
    fs::create_dir_all(dir.join("sub")).unwrap();
    // A stale temp file from a killed run, a half file under a final name (e.g. copied by
    // hand), and a stale temp directory.
    fs::write(partial_path(&dir.join("a.bin")), b"garbage").unwrap();
    fs::write(dir.join("sub/b.bin"), B1).unwrap();
    fs::create_dir_all(partial_path(&dir.join("data")).join("voices")).unwrap();
    fs::write(partial_path(&dir.join("data")).join("phondata"), b"half").unwrap();
    let r = install_with(
        &fx.manifest,
        Profile::Small,
        &dir,
        &fx.cache,
        &offline(),
        &mut NoProgress,
    )
    .unwrap();
    assert_eq!(r.installed.len(), 3);
    assert!(verify(
        &fx.manifest,
        Profile::Small,
        &dir,
        Mode::Full,
        &mut NoProgress
    )
    .is_ok());
    for leftover in [
        partial_path(&dir.join("a.bin")),
        partial_path(&dir.join("sub/b.bin")),
        partial_path(&dir.join("data")),
    ] {
        assert!(!leftover.exists(), "{} left behind", leftover.display());
    }
}

#[test]
fn a_wrong_digest_never_reaches_the_final_name() {
    let fx = fixture();
    let dir = fx.root.join("models");
    // The manifest expects other bytes than the wheel holds.
    let deb = fs::read(fx.cache.join("synthetic-data_1.0-1_all.deb")).unwrap();
    let lying = Manifest::parse(
        &manifest_text(b"something else entirely", &sha(&deb), deb.len() as u64),
        "t",
    )
    .unwrap();
    let err = install_with(
        &lying,
        Profile::Test,
        &dir,
        &fx.cache,
        &offline(),
        &mut NoProgress,
    )
    .unwrap_err();
    assert!(
        matches!(err, Error::SizeMismatch { ref path, .. } if path.as_str() == "a.bin"),
        "{err}"
    );
    assert!(!dir.join("a.bin").exists());
    assert!(!partial_path(&dir.join("a.bin")).exists());
}

#[test]
fn offline_install_names_the_missing_wheel() {
    let fx = fixture();
    fs::remove_file(fx.cache.join("pkg_b_part2-2.0-py3-none-any.whl")).unwrap();
    let err = install_with(
        &fx.manifest,
        Profile::Small,
        &fx.root.join("m"),
        &fx.cache,
        &offline(),
        &mut NoProgress,
    )
    .unwrap_err();
    assert!(
        matches!(err, Error::NotInCache { ref what, .. } if what == "pkg_b_part2-2.0-py3-none-any.whl"),
        "{err}"
    );
}

fn script(dir: &Path, name: &str, body: &str) -> PathBuf {
    let p = dir.join(name);
    fs::write(&p, format!("#!/bin/sh\n{body}\n")).unwrap();
    fs::set_permissions(&p, fs::Permissions::from_mode(0o755)).unwrap();
    p
}

#[test]
fn pip_failure_carries_the_requirement_and_stderr_tail() {
    let fx = fixture();
    fs::remove_file(fx.cache.join("pkg_a-1.0-py3-none-any.whl")).unwrap();
    let pip = script(
        &fx.root,
        "pip",
        "echo 'ERROR: No matching distribution found for pkg-a==1.0' >&2; exit 1",
    );
    let opts = InstallOptions {
        pip,
        ..InstallOptions::default()
    };
    let err = install_with(
        &fx.manifest,
        Profile::Small,
        &fx.root.join("m"),
        &fx.cache,
        &opts,
        &mut NoProgress,
    )
    .unwrap_err();
    match &err {
        Error::PipFailed {
            packages,
            stderr_tail,
            ..
        } => {
            assert_eq!(packages, &vec!["pkg-a==1.0".to_owned()]);
            assert!(stderr_tail.contains("No matching distribution"));
        }
        other => panic!("{other}"),
    }
}

#[test]
fn a_corrupt_cached_wheel_is_fetched_again_once() {
    let fx = fixture();
    let good = fx.root.join("good.whl");
    fs::copy(fx.cache.join("pkg_a-1.0-py3-none-any.whl"), &good).unwrap();
    // Truncated download left in the cache by an interrupted pip.
    let whl = fx.cache.join("pkg_a-1.0-py3-none-any.whl");
    let bytes = fs::read(&whl).unwrap();
    fs::write(&whl, &bytes[..bytes.len() / 2]).unwrap();
    // A stand-in pip that "downloads" the good wheel into -d DIR and logs its arguments.
    let pip = script(
        &fx.root,
        "pip",
        &format!("echo \"$@\" >> {log}; while [ \"$1\" != -d ]; do shift; done; cp {good} \"$2\"/pkg_a-1.0-py3-none-any.whl", log = fx.root.join("pip.log").display(), good = good.display()),
    );
    let opts = InstallOptions {
        pip,
        ..InstallOptions::default()
    };
    let dir = fx.root.join("m");
    install_with(
        &fx.manifest,
        Profile::Small,
        &dir,
        &fx.cache,
        &opts,
        &mut NoProgress,
    )
    .unwrap();
    assert_eq!(fs::read(dir.join("a.bin")).unwrap(), A);
    let log = fs::read_to_string(fx.root.join("pip.log")).unwrap();
    assert_eq!(log.lines().count(), 1);
    assert!(
        log.contains("download --no-deps --only-binary=:all:") && log.contains("pkg-a==1.0"),
        "{log}"
    );
}

#[test]
fn apt_failure_without_lists_says_to_run_apt_get_update() {
    let fx = fixture();
    fs::remove_file(fx.cache.join("synthetic-data_1.0-1_all.deb")).unwrap();
    let apt = script(
        &fx.root,
        "apt-get",
        "echo 'E: Unable to locate package synthetic-data' >&2; exit 100",
    );
    let opts = InstallOptions {
        apt_get: apt,
        ..InstallOptions::default()
    };
    let err = install_with(
        &fx.manifest,
        Profile::Small,
        &fx.root.join("m"),
        &fx.cache,
        &opts,
        &mut NoProgress,
    )
    .unwrap_err();
    assert!(
        matches!(
            err,
            Error::AptFailed {
                lists_missing: true,
                ..
            }
        ),
        "{err}"
    );
    assert!(err.to_string().contains("apt-get update"), "{err}");
}

#[test]
fn bundle_import_round_trip() {
    let fx = fixture();
    let dir = installed(&fx);
    let out = fx.root.join("small.tar");
    let rep = bundle(&fx.manifest, Profile::Small, &dir, &out, &mut NoProgress).unwrap();
    assert_eq!((rep.entries, rep.members), (3, 4));
    assert_eq!(rep.sha256, Sha256Digest::of(&fs::read(&out).unwrap()));
    // The manifest is the first member.
    let mut ar = tar::Archive::new(fs::File::open(&out).unwrap());
    let first = ar.entries().unwrap().next().unwrap().unwrap();
    assert_eq!(first.path().unwrap().to_str(), Some("manifest.toml"));

    let target = fx.root.join("imported");
    let imp = import(&fx.manifest, &out, &target, &mut NoProgress).unwrap();
    assert_eq!(imp.profile, Some(Profile::Small));
    assert!(verify(
        &fx.manifest,
        Profile::Small,
        &target,
        Mode::Full,
        &mut NoProgress
    )
    .is_ok());
    // Bundles are deterministic.
    let again = fx.root.join("again.tar");
    bundle(&fx.manifest, Profile::Small, &dir, &again, &mut NoProgress).unwrap();
    assert_eq!(fs::read(&out).unwrap(), fs::read(&again).unwrap());
}

/// Nothing under `dir` but (possibly) empty directories.
fn assert_nothing_installed(dir: &Path) {
    if !dir.exists() {
        return;
    }
    let left = walk(dir);
    assert!(left.is_empty(), "left behind: {left:?}");
}

fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for e in fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            out.extend(walk(&p));
        } else {
            out.push(p);
        }
    }
    out
}

#[test]
fn import_rejects_a_flipped_byte_naming_the_member() {
    let fx = fixture();
    let dir = installed(&fx);
    let out = fx.root.join("small.tar");
    bundle(&fx.manifest, Profile::Small, &dir, &out, &mut NoProgress).unwrap();
    let mut bytes = fs::read(&out).unwrap();
    let at = bytes.windows(B2.len()).position(|w| w == B2).unwrap();
    bytes[at + 3] ^= 0x20;
    fs::write(&out, &bytes).unwrap();
    let target = fx.root.join("imported");
    let err = import(&fx.manifest, &out, &target, &mut NoProgress).unwrap_err();
    assert!(
        matches!(err, Error::BundleDigestMismatch { ref member, .. } if member == "sub/b.bin"),
        "{err}"
    );
    assert!(err.to_string().contains("sub/b.bin"));
    assert_nothing_installed(&target);
}

#[test]
fn import_rejects_a_truncated_bundle() {
    let fx = fixture();
    let dir = installed(&fx);
    let out = fx.root.join("small.tar");
    bundle(&fx.manifest, Profile::Small, &dir, &out, &mut NoProgress).unwrap();
    let bytes = fs::read(&out).unwrap();
    // Cut inside the data of sub/b.bin, and at the end of the last member's header block.
    let in_b = bytes.windows(B2.len()).position(|w| w == B2).unwrap() + 5;
    for cut in [in_b, bytes.len() / 2 + 1, 700] {
        fs::write(&out, &bytes[..cut]).unwrap();
        let target = fx.root.join(format!("imported-{cut}"));
        let err = import(&fx.manifest, &out, &target, &mut NoProgress).unwrap_err();
        assert!(
            matches!(
                err,
                Error::BundleTruncated { .. } | Error::BundleRead { .. }
            ),
            "cut at {cut}: {err}"
        );
        assert_nothing_installed(&target);
    }
    fs::write(&out, &bytes[..in_b]).unwrap();
    let err = import(&fx.manifest, &out, &fx.root.join("x"), &mut NoProgress).unwrap_err();
    assert!(
        matches!(err, Error::BundleTruncated { ref member, .. } if member == "sub/b.bin"),
        "{err}"
    );
}

#[test]
fn import_rejects_a_manifest_edited_together_with_a_file() {
    let fx = fixture();
    // The attacker's manifest describes their own a.bin, and the bundle matches it.
    let deb = fs::read(fx.cache.join("synthetic-data_1.0-1_all.deb")).unwrap();
    let evil_a: &[u8] = b"evil weights, same length!\n";
    let evil =
        Manifest::parse(&manifest_text(evil_a, &sha(&deb), deb.len() as u64), "evil").unwrap();
    let dir = installed(&fx);
    fs::write(dir.join("a.bin"), evil_a).unwrap();
    let out = fx.root.join("evil.tar");
    bundle(&evil, Profile::Small, &dir, &out, &mut NoProgress).unwrap();
    // Self-consistent, so it imports against its own manifest …
    import(&evil, &out, &fx.root.join("self"), &mut NoProgress).unwrap();
    // … but never against the trusted one.
    let target = fx.root.join("imported");
    let err = import(&fx.manifest, &out, &target, &mut NoProgress).unwrap_err();
    assert!(
        matches!(err, Error::BundleManifestMismatch { ref path, .. } if path.as_str() == "a.bin"),
        "{err}"
    );
    assert_nothing_installed(&target);
}

#[test]
fn bundle_refuses_a_damaged_install() {
    let fx = fixture();
    let dir = installed(&fx);
    let mut a = fs::read(dir.join("a.bin")).unwrap();
    a[0] ^= 1;
    fs::write(dir.join("a.bin"), &a).unwrap();
    let out = fx.root.join("small.tar");
    let err = bundle(&fx.manifest, Profile::Small, &dir, &out, &mut NoProgress).unwrap_err();
    assert!(
        matches!(err, Error::DigestMismatch { ref path, .. } if path.as_str() == "a.bin"),
        "{err}"
    );
    assert!(!out.exists() && !partial_path(&out).exists());
}
