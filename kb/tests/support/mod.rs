//! Shared by the integration tests: the real embedder (all-MiniLM-L6-v2 through `models-embed`,
//! a dev-dependency only) and the Acme Dental document set.

#![allow(dead_code)] // each test binary uses a different subset

use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};

use models_embed::MiniLm;

/// The real embedder, loaded once per test binary; `None` (test skipped) when the model is not
/// installed.
pub fn embedder() -> Option<Arc<MiniLm>> {
    static MODEL: OnceLock<Option<Arc<MiniLm>>> = OnceLock::new();
    MODEL
        .get_or_init(|| {
            let dir = models_api::testing::model_file("all-MiniLM-L6-v2")?;
            Some(Arc::new(
                MiniLm::load(&dir).expect("all-MiniLM-L6-v2 loads"),
            ))
        })
        .clone()
}

/// `kb/tests/data/acme`.
pub fn acme_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/acme")
}

/// A copy of the Acme set in a fresh temporary directory, for tests that edit files.
pub fn acme_copy() -> (tempfile::TempDir, PathBuf) {
    let tmp = tempfile::tempdir().expect("tempdir");
    let docs = tmp.path().join("acme");
    std::fs::create_dir_all(&docs).expect("mkdir");
    for entry in std::fs::read_dir(acme_dir()).expect("read acme") {
        let path = entry.expect("entry").path();
        std::fs::copy(&path, docs.join(path.file_name().expect("file name"))).expect("copy");
    }
    (tmp, docs)
}

/// Paraphrased caller questions, each with the document and a phrase that only the right
/// chunk contains.
pub const QUESTIONS: &[(&str, &str, &str)] = &[
    (
        "What time do you close on Friday?",
        "about.md",
        "close at 3:00 pm",
    ),
    (
        "Are you open on Saturday mornings?",
        "about.md",
        "On Saturdays we are open",
    ),
    (
        "Where can I leave my car when I come in?",
        "about.md",
        "Harbor Street garage",
    ),
    (
        "How much is a teeth cleaning?",
        "prices.html",
        "professional cleaning",
    ),
    (
        "What does it cost to make my teeth whiter?",
        "prices.html",
        "whitening",
    ),
    (
        "What happens if I just don't show up?",
        "policies.txt",
        "missed-appointment fee",
    ),
    (
        "How far ahead do I have to call to cancel?",
        "policies.txt",
        "24 hours in advance",
    ),
    ("Do you take Delta Dental?", "policies.txt", "Delta Dental"),
    (
        "Which credit cards can I pay with?",
        "prices.html",
        "American Express",
    ),
    (
        "Can I pay for a crown in installments?",
        "prices.html",
        "payment plans",
    ),
    (
        "I'm really nervous about dentists, can you help me?",
        "faq.csv",
        "anxious",
    ),
    (
        "What do I need to bring to my first appointment?",
        "new-patients.pdf",
        "photo ID",
    ),
    (
        "Are you accepting new patients right now?",
        "new-patients.pdf",
        "welcome new patients",
    ),
    (
        "My son knocked a tooth out playing football, what should we do?",
        "about.md",
        "knocked-out",
    ),
    (
        "Can I get in with a wheelchair?",
        "about.md",
        "wheelchair accessible",
    ),
    ("Do you do braces for teenagers?", "faq.csv", "braces"),
    (
        "What's your street address?",
        "about.md",
        "second floor above the pharmacy",
    ),
    (
        "How much does a root canal cost?",
        "prices.html",
        "Root canal",
    ),
    (
        "What if I'm running late for my appointment?",
        "policies.txt",
        "15 minutes late",
    ),
    ("Do you take Medicaid?", "policies.txt", "Medicaid"),
    (
        "When should my baby first see the dentist?",
        "policies.txt",
        "first birthday",
    ),
    ("Does anybody there speak Spanish?", "faq.csv", "Spanish"),
    (
        "How often should I get my teeth checked?",
        "faq.csv",
        "every six months",
    ),
    (
        "Can you send my X-rays to my new dentist?",
        "faq.csv",
        "records-release",
    ),
];
