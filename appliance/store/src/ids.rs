//! Identifier newtypes (so a call record id cannot be passed where an agent id belongs) and time.

use std::fmt;
use std::time::{SystemTime, UNIX_EPOCH};

macro_rules! id_type {
    ($($(#[$doc:meta])* $name:ident),* $(,)?) => {$(
        $(#[$doc])*
        #[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub struct $name(String);

        impl $name {
            /// A fresh, time-ordered id (UUIDv7).
            pub fn new() -> Self {
                Self(uuid::Uuid::now_v7().to_string())
            }
            /// Wraps an id read back from the database or an API path.
            pub fn from_string(s: String) -> Self {
                Self(s)
            }
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl Default for $name {
            fn default() -> Self {
                Self::new()
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }
    )*};
}

id_type!(
    /// An agent (a persona with its prompt, voice and numbers).
    AgentId,
    /// Our record of one call; not the SIP Call-ID.
    CallRecordId,
    UserId,
    ApiTokenId,
    ContactListId,
    ContactId,
    CampaignId,
    AttemptId,
);

/// Wall-clock time as stored: milliseconds since the Unix epoch.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct UnixMillis(pub i64);

impl UnixMillis {
    pub fn now() -> Self {
        let ms = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_millis() as i64)
            .unwrap_or(0);
        UnixMillis(ms)
    }
}
