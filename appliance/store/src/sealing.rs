//! Personal data sealed at rest: phone numbers, what callers and agents said, summaries, consent
//! answers, caller memory and contacts are stored encrypted (AES-256-GCM), so a copied database
//! file or dump shows none of them.
//!
//! Two ways to seal, one stored form: `sb1.KEYID.BASE64(nonce ‖ ciphertext)`.
//! - **Text** gets a random nonce: the same words sealed twice look different.
//! - **Numbers** get a synthetic nonce, an HMAC of the number under a second key, so one
//!   number always seals to the same value: the sealed column is itself the index that
//!   `WHERE number = $1`, primary keys and `UNIQUE` compare, and no separate lookup hash is
//!   needed. It shows which rows share a number, as any lookup hash would, and nothing more;
//!   distinct numbers never share a nonce short of a 96-bit HMAC collision.
//!
//! The associated data is the kind (`number` or `text`), so a number's value cannot be passed
//! off as text. `KEYID` (8 hex digits of a hash of the key) names the key that sealed a value:
//! [`crate::Store::open`] refuses a key that did not seal what the database holds.

use aes_gcm::aead::{Aead, Payload};
use aes_gcm::{Aes256Gcm, KeyInit, Nonce};
use base64::Engine as _;
use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};

use sqlx::Row;

use crate::{q, Result, Store, StoreError};

/// The prefix of every sealed value.
pub(crate) const SEALED: &str = "sb1.";

/// The key sealing personal data in the database.
#[derive(Clone)]
pub struct DataKey {
    id: String,
    cipher: Aes256Gcm,
    /// Derives numbers' nonces.
    synthetic: [u8; 32],
}

impl std::fmt::Debug for DataKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DataKey").field("id", &self.id).finish()
    }
}

#[derive(Clone, Copy)]
enum Kind {
    Number,
    Text,
}

impl Kind {
    fn label(self) -> &'static [u8] {
        match self {
            Kind::Number => b"number",
            Kind::Text => b"text",
        }
    }
}

impl DataKey {
    /// The key from its 32 secret bytes: the cipher key and the nonce key are derived from them
    /// (HMAC-SHA256 with distinct labels), the id is a hash of them.
    pub fn new(secret: &[u8; 32]) -> DataKey {
        let derive = |label: &[u8]| -> [u8; 32] {
            let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(secret).expect("any key length");
            mac.update(label);
            mac.finalize().into_bytes().into()
        };
        let id =
            hex::encode(&Sha256::digest([&secret[..], b"switchboard data key id"].concat())[..4]);
        DataKey {
            id,
            cipher: Aes256Gcm::new(&derive(b"switchboard data key: cipher").into()),
            synthetic: derive(b"switchboard data key: number nonces"),
        }
    }

    /// A fresh random key, for tests.
    pub fn random() -> DataKey {
        let mut secret = [0u8; 32];
        getrandom::fill(&mut secret).expect("the system's random source");
        DataKey::new(&secret)
    }

    /// The 8 hex digits naming this key in every value it sealed.
    pub fn id(&self) -> &str {
        &self.id
    }

    /// Seals free text (a random nonce).
    pub fn seal_text(&self, plain: &str) -> String {
        let mut nonce = [0u8; 12];
        getrandom::fill(&mut nonce).expect("the system's random source");
        self.seal(Kind::Text, nonce, plain)
    }

    /// Seals a number (a nonce derived from it: the same number, the same value).
    pub fn seal_number(&self, plain: &str) -> String {
        let mut mac =
            <Hmac<Sha256> as Mac>::new_from_slice(&self.synthetic).expect("any key length");
        mac.update(plain.as_bytes());
        let mut nonce = [0u8; 12];
        nonce.copy_from_slice(&mac.finalize().into_bytes()[..12]);
        self.seal(Kind::Number, nonce, plain)
    }

    fn seal(&self, kind: Kind, nonce: [u8; 12], plain: &str) -> String {
        let sealed = self
            .cipher
            .encrypt(
                Nonce::from_slice(&nonce),
                Payload {
                    msg: plain.as_bytes(),
                    aad: kind.label(),
                },
            )
            .expect("AES-GCM seals any message under 64 GiB");
        let mut bytes = nonce.to_vec();
        bytes.extend(sealed);
        format!(
            "{SEALED}{}.{}",
            self.id,
            base64::engine::general_purpose::STANDARD_NO_PAD.encode(bytes)
        )
    }

    /// Opens a sealed number.
    pub fn open_number(&self, stored: &str) -> Result<String> {
        self.open(Kind::Number, stored)
    }

    /// Opens sealed text.
    pub fn open_text(&self, stored: &str) -> Result<String> {
        self.open(Kind::Text, stored)
    }

    fn open(&self, kind: Kind, stored: &str) -> Result<String> {
        let corrupt = || StoreError::Corrupt {
            what: "sealed value",
            value: stored.chars().take(24).collect(),
        };
        let rest = stored.strip_prefix(SEALED).ok_or_else(corrupt)?;
        let (id, data) = rest.split_once('.').ok_or_else(corrupt)?;
        if id != self.id {
            return Err(StoreError::WrongKey {
                sealed_with: id.to_owned(),
                have: self.id.clone(),
            });
        }
        let bytes = base64::engine::general_purpose::STANDARD_NO_PAD
            .decode(data)
            .map_err(|_| corrupt())?;
        if bytes.len() < 12 {
            return Err(corrupt());
        }
        let (nonce, sealed) = bytes.split_at(12);
        let plain = self
            .cipher
            .decrypt(
                Nonce::from_slice(nonce),
                Payload {
                    msg: sealed,
                    aad: kind.label(),
                },
            )
            .map_err(|_| corrupt())?;
        String::from_utf8(plain).map_err(|_| corrupt())
    }

    /// Seals `value` as `kind` unless it is sealed already: the one-time pass over rows
    /// written before sealing existed.
    pub(crate) fn seal_plain(&self, number: bool, value: &str) -> Option<String> {
        if value.starts_with(SEALED) {
            return None;
        }
        Some(if number {
            self.seal_number(value)
        } else {
            self.seal_text(value)
        })
    }
}

/// The id of the key that sealed `stored`, when it is a sealed value.
fn key_id(stored: &str) -> Option<&str> {
    stored
        .strip_prefix(SEALED)?
        .split_once('.')
        .map(|(id, _)| id)
}

/// The flag that every row written before sealing existed has been sealed.
const ALL_SEALED: &str = "personal_data_sealed";

/// Every sealed column: its table, the columns that find its row, and whether it holds a number.
const SEALED_COLUMNS: &[(&str, &[&str], &str, bool)] = &[
    ("calls", &["id"], "from_number", true),
    ("calls", &["id"], "to_number", true),
    ("calls", &["id"], "summary", false),
    ("calls", &["id"], "outcome", false),
    ("call_turns", &["call_id", "seq"], "caller_text", false),
    ("call_turns", &["call_id", "seq"], "agent_text", false),
    ("transcript_lines", &["call_id", "seq"], "text", false),
    ("consent_log", &["id"], "caller_number", true),
    ("consent_log", &["id"], "answer_text", false),
    (
        "caller_memory",
        &["agent_id", "caller_number"],
        "caller_number",
        true,
    ),
    (
        "caller_memory",
        &["agent_id", "caller_number"],
        "summary",
        false,
    ),
    ("blacklist", &["number"], "number", true),
    ("dnd", &["number"], "number", true),
    ("contacts", &["id"], "number", true),
    ("contacts", &["id"], "name", false),
    ("contacts", &["id"], "fields", false),
];

impl Store {
    pub(crate) fn seal_number(&self, number: &str) -> String {
        self.key.seal_number(number)
    }

    pub(crate) fn seal_text(&self, text: &str) -> String {
        self.key.seal_text(text)
    }

    pub(crate) fn open_number(&self, stored: &str) -> Result<String> {
        self.key.open_number(stored)
    }

    pub(crate) fn open_text(&self, stored: &str) -> Result<String> {
        self.key.open_text(stored)
    }

    /// Opens optional sealed text (a column that may be NULL).
    pub(crate) fn open_optional(&self, stored: Option<String>) -> Result<Option<String>> {
        stored.map(|s| self.open_text(&s)).transpose()
    }

    /// Refuses a key other than the one that sealed what the database holds: opening with a new
    /// key (a lost key file replaced) would leave every earlier row unreadable and mix keys. One
    /// sealed value per column is enough to tell, as one key seals them all.
    pub(crate) async fn check_key(&self) -> Result<()> {
        for (table, _, column, _) in SEALED_COLUMNS {
            let sample: Option<String> = sqlx::query_scalar(&format!(
                "SELECT {column} FROM {table} WHERE {column} LIKE 'sb1.%' LIMIT 1"
            ))
            .fetch_optional(&self.pool)
            .await
            .map_err(q("check the data key"))?;
            if let Some(id) = sample
                .as_deref()
                .and_then(key_id)
                .filter(|id| *id != self.key.id())
            {
                return Err(StoreError::WrongKey {
                    sealed_with: id.to_owned(),
                    have: self.key.id().to_owned(),
                });
            }
        }
        Ok(())
    }

    /// Seals what rows written before sealing existed hold in the clear, column by column, each
    /// in one transaction. Returns how many values were sealed.
    pub(crate) async fn seal_plain_rows(&self) -> Result<u64> {
        // Done once per database: every row written since is sealed as it is written.
        let done: Option<String> =
            sqlx::query_scalar("SELECT name FROM store_flags WHERE name = $1")
                .bind(ALL_SEALED)
                .fetch_optional(&self.pool)
                .await
                .map_err(q("read store flags"))?;
        if done.is_some() {
            return Ok(0);
        }
        let mut sealed = 0;
        for (table, keys, column, number) in SEALED_COLUMNS {
            let mut tx = self.write_tx().await?;
            sealed += rewrite_column(
                &mut tx,
                (table, keys, column),
                &format!("{column} NOT LIKE 'sb1.%'"),
                |plain| Ok(self.key.seal_plain(*number, plain)),
            )
            .await?;
            tx.commit().await.map_err(q("commit sealing"))?;
        }
        if sealed > 0 {
            tracing::info!(
                values = sealed,
                "sealed personal data written before sealing"
            );
        }
        sqlx::query(
            "INSERT INTO store_flags (name, set_at) VALUES ($1, $2) ON CONFLICT (name) DO NOTHING",
        )
        .bind(ALL_SEALED)
        .bind(crate::UnixMillis::now().0)
        .execute(&self.pool)
        .await
        .map_err(q("write store flags"))?;
        Ok(sealed)
    }
}

impl Store {
    /// Seals every sealed value again under `next`, all in one transaction (a data key
    /// rotation): the database is wholly under one key or the other, never a mix. Numbers seal
    /// to new values, so lookups by number work under `next` alone. Every box using the database
    /// must be stopped first and given `next` after. Returns how many values were sealed.
    pub async fn reseal(&self, next: &DataKey) -> Result<u64> {
        let mut tx = self.write_tx().await?;
        let mut resealed = 0;
        for (table, keys, column, number) in SEALED_COLUMNS {
            resealed += rewrite_column(&mut tx, (table, keys, column), "TRUE", |stored| {
                Ok(Some(if *number {
                    next.seal_number(&self.key.open_number(stored)?)
                } else {
                    next.seal_text(&self.key.open_text(stored)?)
                }))
            })
            .await?;
        }
        tx.commit().await.map_err(q("commit the key rotation"))?;
        Ok(resealed)
    }
}

/// Rewrites, in `tx`, the values of one sealed column on the rows `filter` selects, each as
/// `rewrite` says (`None`: left as it is); rows are found again by their key columns. Returns how
/// many values were rewritten.
async fn rewrite_column(
    tx: &mut sqlx::Transaction<'static, sqlx::Any>,
    (table, keys, column): (&str, &[&str], &str),
    filter: &str,
    mut rewrite: impl FnMut(&str) -> Result<Option<String>>,
) -> Result<u64> {
    let key_list = keys
        .iter()
        .map(|k| format!("CAST({k} AS TEXT)"))
        .collect::<Vec<_>>()
        .join(", ");
    let rows = sqlx::query(&format!(
        "SELECT {key_list}, {column} FROM {table} WHERE {column} IS NOT NULL AND {filter}"
    ))
    .fetch_all(&mut **tx)
    .await
    .map_err(q("read sealed values"))?;
    let matches = keys
        .iter()
        .enumerate()
        .map(|(i, k)| format!("CAST({k} AS TEXT) = ${}", i + 2))
        .collect::<Vec<_>>()
        .join(" AND ");
    let update = format!("UPDATE {table} SET {column} = $1 WHERE {matches}");
    let mut rewritten = 0;
    for row in &rows {
        let stored: String = row.try_get(keys.len()).map_err(q("read a sealed value"))?;
        let Some(value) = rewrite(&stored)? else {
            continue;
        };
        let mut query = sqlx::query(&update).bind(value);
        for i in 0..keys.len() {
            let key: String = row.try_get(i).map_err(q("read a sealed row's key"))?;
            query = query.bind(key);
        }
        query
            .execute(&mut **tx)
            .await
            .map_err(q("rewrite a sealed value"))?;
        rewritten += 1;
    }
    Ok(rewritten)
}

/// How an audit entry names a number: its last two digits, as the logs do (the audit log is
/// append-only, so it must hold no number an erasure would have to remove).
pub(crate) fn redacted(number: &str) -> String {
    let digits: Vec<char> = number.chars().filter(char::is_ascii_digit).collect();
    match digits.len() {
        0..=5 => "…".to_owned(),
        n => format!("…{}{}", digits[n - 2], digits[n - 1]),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sealed_values_open_only_with_their_key_and_kind() {
        let key = DataKey::random();
        let text = key.seal_text("My date of birth is the fourth of May.");
        assert!(text.starts_with(&format!("sb1.{}.", key.id())));
        assert!(!text.contains("May"));
        assert_eq!(
            key.open_text(&text).unwrap(),
            "My date of birth is the fourth of May."
        );
        assert_ne!(
            text,
            key.seal_text("My date of birth is the fourth of May.")
        );
        // Numbers seal to one value: the column is its own index.
        let number = key.seal_number("+15550001234");
        assert_eq!(number, key.seal_number("+15550001234"));
        assert_ne!(number, key.seal_number("+15550001235"));
        assert_eq!(key.open_number(&number).unwrap(), "+15550001234");
        assert!(matches!(
            key.open_text(&number),
            Err(StoreError::Corrupt { .. })
        ));
        let other = DataKey::random();
        assert!(matches!(
            other.open_text(&text),
            Err(StoreError::WrongKey { .. })
        ));
        let mut flipped = text.clone();
        flipped.pop();
        flipped.push(if text.ends_with('A') { 'B' } else { 'A' });
        assert!(
            key.open_text(&flipped).is_err(),
            "a changed value does not open"
        );
        assert!(key.open_text("plain words").is_err());
        assert_eq!(key_id(&text), Some(key.id()));
        assert_eq!(DataKey::new(&[7; 32]).id(), DataKey::new(&[7; 32]).id());
    }
}
