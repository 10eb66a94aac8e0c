//! Puts llama.cpp's shared libraries next to every binary cargo builds, under the names the
//! binaries ask for, and gives this crate's tests and examples an rpath to find them there.
//!
//! `llama-cpp-sys-2` (feature `dynamic-link`) builds `libllama.so.0`, `libggml.so.0`,
//! `libggml-base.so.0`, `libggml-cpu.so.0` (+ `libllama-common.so.0`) into its `OUT_DIR/lib` and
//! hard-links only the unversioned `lib*.so` *symlinks* into `target/<profile>/{,deps/,examples/}`.
//! Those symlinks dangle there (they point at `lib*.so.0`), and binaries need the SONAME files
//! (`NEEDED libllama.so.0`), so nothing would be found without LD_LIBRARY_PATH. Worse, a rebuild
//! of the sys crate into a new `OUT_DIR` panics on the dangling links (`exists()` is false,
//! `hard_link` says EEXIST). Copying the real libraries under their SONAME names fixes both: the
//! binaries find them through `$ORIGIN`, and the sys crate's links resolve again.
//!
//! The sys crate tells direct dependents its install dir through `links = "llama"` metadata
//! (`DEP_LLAMA_GGML_CMAKE_DIR` = `OUT_DIR/lib/cmake`), which is why this crate depends on
//! `llama-cpp-sys-2` directly.
//!
//! rpath: `$ORIGIN` (cargo's layout) and `$ORIGIN/../lib/switchboard` (the installed layout,
//! `/usr/bin/switchboard` + `/usr/lib/switchboard/`). `--disable-new-dtags` writes DT_RPATH,
//! which, unlike DT_RUNPATH, also applies to the libraries' own dependencies (libllama.so.0 needs
//! libggml.so.0 and carries no rpath of its own). Link arguments do not propagate to dependent
//! crates: the `switchboard` binary crate carries the same lines in its build.rs (models/README.md).

use std::path::{Path, PathBuf};

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    println!("cargo:rerun-if-env-changed=DEP_LLAMA_GGML_CMAKE_DIR");
    let rpath =
        "-Wl,--disable-new-dtags,-rpath,$ORIGIN:$ORIGIN/../lib/switchboard,--exclude-libs,ALL";
    println!("cargo:rustc-link-arg-tests={rpath}");
    println!("cargo:rustc-link-arg-examples={rpath}");

    let Some(cmake_dir) = std::env::var_os("DEP_LLAMA_GGML_CMAKE_DIR") else {
        println!(
            "cargo:warning=llama-cpp-sys-2 reported no install dir; shared libraries not copied"
        );
        return;
    };
    let lib_dir = PathBuf::from(cmake_dir)
        .parent()
        .map(Path::to_owned)
        .expect("OUT_DIR/lib/cmake has a parent");
    let out_dir = PathBuf::from(std::env::var_os("OUT_DIR").expect("cargo sets OUT_DIR"));
    // OUT_DIR = target/<profile>/build/<pkg>-<hash>/out
    let profile_dir = out_dir
        .ancestors()
        .nth(3)
        .expect("OUT_DIR is target/<profile>/build/<pkg>/out")
        .to_owned();

    let mut copied = Vec::new();
    for entry in std::fs::read_dir(&lib_dir)
        .expect("read llama-cpp-sys-2's lib dir")
        .flatten()
    {
        let name = entry.file_name().to_string_lossy().into_owned();
        if !is_soname(&name) {
            continue;
        }
        let real = std::fs::canonicalize(entry.path()).expect("resolve the SONAME link");
        println!("cargo:rerun-if-changed={}", real.display());
        for dir in [
            profile_dir.clone(),
            profile_dir.join("deps"),
            profile_dir.join("examples"),
        ] {
            std::fs::create_dir_all(&dir).expect("create target dir");
            copy_if_changed(&real, &dir.join(&name));
        }
        copied.push(name);
    }
    assert!(
        copied.iter().any(|n| n.starts_with("libllama.so.")),
        "no libllama.so.N in {}",
        lib_dir.display()
    );
    copied.sort();
    // For packaging: the files to install into /usr/lib/switchboard.
    std::fs::write(
        profile_dir.join("switchboard-shared-libs.txt"),
        copied.join("\n") + "\n",
    )
    .expect("write the shared library list");
}

/// `libfoo.so.0`: one numeric version after `.so` (the SONAME), not `libfoo.so` or `libfoo.so.0.6.0`.
fn is_soname(name: &str) -> bool {
    name.starts_with("lib")
        && name
            .split_once(".so.")
            .is_some_and(|(_, v)| !v.is_empty() && v.bytes().all(|b| b.is_ascii_digit()))
}

fn copy_if_changed(from: &Path, to: &Path) {
    let same = match (std::fs::metadata(from), std::fs::symlink_metadata(to)) {
        (Ok(a), Ok(b)) => {
            b.is_file() && a.len() == b.len() && a.modified().ok() <= b.modified().ok()
        }
        _ => false,
    };
    if same {
        return;
    }
    // Remove first: `to` may be a symlink or a hard link shared with another build's file.
    let _ = std::fs::remove_file(to);
    std::fs::copy(from, to)
        .unwrap_or_else(|e| panic!("copy {} to {}: {e}", from.display(), to.display()));
}
