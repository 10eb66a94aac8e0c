//! Outbound campaigns without I/O: what the dialer decides, with time as an input.
//!
//! - [`import`]: a contact list's CSV → contacts with E.164 numbers, every rejected row reported
//!   with its line and reason, duplicates merged.
//! - [`window`]: when a contact may be called, in the contact's own time zone (days, hours,
//!   holidays), and when the window next opens.
//! - [`retry`]: how a call attempt ended (from the SIP answer) and when, if ever, to try again.
//! - [`pacing`]: how many calls a campaign may start now (concurrency and calls per minute).
//!
//! The driver in the `switchboard` binary claims attempts from the store in transactions, asks
//! these modules, places the calls through the call runtime and records the outcomes. Nothing
//! here reads a clock, a socket or the database, so every rule is tested in virtual time.

pub mod import;
pub mod pacing;
pub mod retry;
pub mod window;

pub use import::{import_csv, Columns, ImportReport, ImportedContact, RejectedRow};
pub use pacing::Pacer;
pub use retry::{Outcome, RetryPolicy, RetryRule};
pub use window::{CallingWindow, Days};

/// Why a campaign's rules or a contact list could not be read.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum Error {
    #[error(
        "calling window {0:?}: write it as HH:MM-HH:MM, starting before it ends (e.g. 09:00-18:00)"
    )]
    Window(String),
    #[error("days {0:?}: write them as mon-fri, or a list such as mon,wed,sat")]
    Days(String),
    #[error("holiday {0:?}: write it as YYYY-MM-DD")]
    Holiday(String),
    #[error("time zone {0:?} is not an IANA name known to this system (e.g. Europe/London)")]
    TimeZone(String),
    #[error("country {0:?}: write it as a two-letter ISO code (e.g. GB, US)")]
    Country(String),
    #[error(
        "retry rule {0:?}: write it as OUTCOME=ATTEMPTS/DELAY (e.g. busy=3/10m, no_answer=2/1h)"
    )]
    Retry(String),
    #[error("the list has no column {0:?} (its header names the columns)")]
    MissingColumn(String),
    #[error("the list cannot be read: {0}")]
    Csv(String),
}
