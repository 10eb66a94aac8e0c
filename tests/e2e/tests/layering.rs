//! The layering rule of DESIGN.md: the protocol and engine layers (`sip/`, `media/`, `models/`)
//! know nothing of the product above them, so they never depend on a crate under `appliance/` or
//! on `kb`. Read from every crate's manifest, dev- and build-dependencies included.

use std::path::{Path, PathBuf};

const LOWER_LAYERS: [&str; 3] = ["sip", "media", "models"];
const UPPER_LAYERS: [&str; 2] = ["appliance", "kb"];

#[test]
fn lower_layers_depend_on_nothing_above_them() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let upper: Vec<PathBuf> = UPPER_LAYERS
        .iter()
        .map(|d| root.join(d).canonicalize().expect("layer folder"))
        .collect();
    let mut checked = 0;
    let mut violations = Vec::new();
    for layer in LOWER_LAYERS {
        for manifest in manifests(&root.join(layer)) {
            checked += 1;
            let text = std::fs::read_to_string(&manifest).expect("read manifest");
            let doc: toml::Table = text.parse().expect("manifest is TOML");
            let crate_dir = manifest.parent().expect("crate folder");
            for (section, name, path) in path_dependencies(&doc) {
                let target = crate_dir
                    .join(&path)
                    .canonicalize()
                    .unwrap_or_else(|e| panic!("{}: {name} = {path}: {e}", manifest.display()));
                if upper.iter().any(|u| target.starts_with(u)) {
                    violations.push(format!("{} [{section}] {name}", manifest.display()));
                }
            }
        }
    }
    assert!(checked >= 10, "only {checked} lower-layer crates found");
    assert!(violations.is_empty(), "layering broken: {violations:#?}");
}

/// `Cargo.toml` files under `dir`, one folder level per crate, skipping build outputs.
fn manifests(dir: &Path) -> Vec<PathBuf> {
    let mut found = Vec::new();
    let Ok(entries) = std::fs::read_dir(dir) else {
        return found;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.file_name() == Some("Cargo.toml".as_ref()) {
            found.push(path);
        } else if path.is_dir() && path.file_name() != Some("target".as_ref()) {
            found.extend(manifests(&path));
        }
    }
    found
}

/// `(section, name, path)` of every dependency given by path, in any dependency table
/// (target-specific tables included).
fn path_dependencies(doc: &toml::Table) -> Vec<(String, String, String)> {
    let mut out = Vec::new();
    let mut tables: Vec<(String, &toml::Table)> = vec![(String::new(), doc)];
    if let Some(targets) = doc.get("target").and_then(toml::Value::as_table) {
        for (cfg, table) in targets {
            if let Some(t) = table.as_table() {
                tables.push((format!("target.{cfg}."), t));
            }
        }
    }
    for (prefix, table) in tables {
        for section in ["dependencies", "dev-dependencies", "build-dependencies"] {
            let Some(deps) = table.get(section).and_then(toml::Value::as_table) else {
                continue;
            };
            for (name, spec) in deps {
                if let Some(path) = spec.get("path").and_then(toml::Value::as_str) {
                    out.push((format!("{prefix}{section}"), name.clone(), path.to_owned()));
                }
            }
        }
    }
    out
}
