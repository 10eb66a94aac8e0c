//! A tiny driver for trying the library by hand (the real CLI is `switchboard models …`):
//!
//! ```text
//! cargo run -p models-bundle --release --example models -- install small DIR CACHE [--offline]
//! cargo run -p models-bundle --release --example models -- verify small DIR fast|full
//! cargo run -p models-bundle --release --example models -- list DIR
//! cargo run -p models-bundle --release --example models -- bundle small DIR OUT.tar
//! cargo run -p models-bundle --release --example models -- import OUT.tar DIR
//! ```

use std::path::Path;
use std::process::ExitCode;
use std::time::Instant;

use models_bundle::{
    bundle, import, install_with, list, verify, InstallOptions, LineProgress, Manifest, Mode,
    Profile,
};

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let m = Manifest::builtin();
    let mut progress = LineProgress(std::io::stderr());
    let started = Instant::now();
    let profile = |s: &str| s.parse::<Profile>().map_err(|e| e.to_string());
    let result: Result<(), String> = match args.iter().map(String::as_str).collect::<Vec<_>>().as_slice() {
        ["install", p, dir, cache, rest @ ..] => profile(p).and_then(|p| {
            let opts = InstallOptions { offline: rest.contains(&"--offline"), ..InstallOptions::default() };
            install_with(&m, p, Path::new(dir), Path::new(cache), &opts, &mut progress)
                .map(|r| println!("installed {} ({} bytes), skipped {}", r.installed.len(), r.bytes_written, r.skipped.len()))
                .map_err(|e| e.to_string())
        }),
        ["verify", p, dir, mode] => profile(p).and_then(|p| {
            let mode = if *mode == "full" { Mode::Full } else { Mode::Fast };
            let r = verify(&m, p, Path::new(dir), mode, &mut models_bundle::NoProgress);
            for f in &r.files {
                println!("{:<8} {}", f.status, f.path);
            }
            if r.is_ok() { Ok(()) } else { Err(format!("{} problem(s)", r.problems().count())) }
        }),
        ["list", dir] => {
            let inv = list(&m, Path::new(dir));
            for f in &inv.files {
                let profiles: Vec<&str> = f.profiles.iter().map(|p| p.as_str()).collect();
                println!("{:<10} {:>12} {:<45} [{}]", f.status.to_string(), f.size, f.path, profiles.join(","));
            }
            println!("complete profiles: {:?}", inv.complete);
            Ok(())
        }
        ["bundle", p, dir, out] => profile(p).and_then(|p| {
            bundle(&m, p, Path::new(dir), Path::new(out), &mut progress)
                .map(|r| println!("bundle {out}: {} members, {} bytes, sha256 {}", r.members, r.bytes, r.sha256))
                .map_err(|e| e.to_string())
        }),
        ["import", file, dir] => import(&m, Path::new(file), Path::new(dir), &mut progress)
            .map(|r| println!("imported {} entries ({} bytes), profile {:?}", r.installed.len(), r.bytes, r.profile))
            .map_err(|e| e.to_string()),
        _ => Err("usage: install PROFILE DIR CACHE [--offline] | verify PROFILE DIR fast|full | list DIR | bundle PROFILE DIR OUT | import BUNDLE DIR".into()),
    };
    eprintln!("took {:.2} s", started.elapsed().as_secs_f64());
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}
