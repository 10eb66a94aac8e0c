//! Identifiers from a seeded RNG (STYLE §2): tags, branches, Call-IDs,
//! cnonces. The same seed and inputs give the same bytes on the wire.

use rand_chacha::ChaCha8Rng;
use rand_core::{RngCore, SeedableRng};
use sip_message::via::MAGIC_COOKIE;
use sip_message::{Branch, CallId, Tag};

#[derive(Debug)]
pub(crate) struct IdRng(ChaCha8Rng);

impl IdRng {
    pub(crate) fn new(seed: u64) -> IdRng {
        IdRng(ChaCha8Rng::seed_from_u64(seed))
    }

    pub(crate) fn hex(&mut self, bytes: usize) -> String {
        let mut buf = vec![0u8; bytes];
        self.0.fill_bytes(&mut buf);
        buf.iter().map(|b| format!("{b:02x}")).collect()
    }

    /// Uniform in [0, 1).
    pub(crate) fn unit(&mut self) -> f64 {
        (self.0.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }

    /// RFC 3261 §19.3: at least 32 bits of randomness.
    pub(crate) fn tag(&mut self) -> Tag {
        // invariant: lower-case hex is a non-empty token.
        Tag::new(self.hex(8)).expect("hex is a token")
    }

    /// RFC 3261 §8.1.1.7: unique, starting with the magic cookie.
    pub(crate) fn branch(&mut self) -> Branch {
        // invariant: the string is non-empty.
        Branch::new(format!("{MAGIC_COOKIE}{}", self.hex(10))).expect("non-empty branch")
    }

    /// RFC 3261 §8.1.1.4: globally unique over space and time.
    pub(crate) fn call_id(&mut self) -> CallId {
        // invariant: lower-case hex is a `word`.
        CallId::parse(&self.hex(16)).expect("hex is a word")
    }
}
