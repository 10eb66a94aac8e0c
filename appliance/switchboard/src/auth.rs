//! Credentials of admin users: passwords (argon2id with a random salt, stored as a PHC string),
//! the random tokens of sessions and API tokens (only their SHA-256 digests are stored), and the
//! backoff that slows down password guessing.

use argon2::password_hash::rand_core::OsRng;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::Argon2;
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Mutex, OnceLock, PoisonError};
use std::time::{Duration, Instant};
use switchboard_store::User;

#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    #[error("a password must have at least {min} characters")]
    PasswordTooShort { min: usize },
    #[error("cannot hash the password: {0}")]
    Hash(String),
    #[error("the system's random number generator failed: {0}")]
    Random(getrandom::Error),
}

const MIN_PASSWORD: usize = 10;

pub fn hash_password(password: &str) -> Result<String, AuthError> {
    if password.chars().count() < MIN_PASSWORD {
        return Err(AuthError::PasswordTooShort { min: MIN_PASSWORD });
    }
    let salt = SaltString::generate(&mut OsRng);
    Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| AuthError::Hash(e.to_string()))
}

/// True when `password` matches the stored PHC string; a malformed hash never matches.
pub fn verify_password(password: &str, phc: &str) -> bool {
    PasswordHash::new(phc)
        .map(|h| {
            Argon2::default()
                .verify_password(password.as_bytes(), &h)
                .is_ok()
        })
        .unwrap_or(false)
}

/// Why a login failed: for the audit log only; the client hears the same for all three.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LoginFailure {
    UnknownUser,
    WrongPassword,
    Disabled,
}

impl LoginFailure {
    pub fn as_str(self) -> &'static str {
        match self {
            LoginFailure::UnknownUser => "unknown user",
            LoginFailure::WrongPassword => "wrong password",
            LoginFailure::Disabled => "disabled user",
        }
    }
}

/// Checks a login against the stored user of that name. An unknown user costs the same argon2
/// verification as a known one, so response times do not tell which usernames exist; a disabled
/// user is refused only after the password check, for the same reason.
pub fn check_login(user: Option<User>, password: &str) -> Result<User, LoginFailure> {
    static DECOY: OnceLock<String> = OnceLock::new();
    let decoy = DECOY.get_or_init(|| {
        let salt = SaltString::generate(&mut OsRng);
        Argon2::default()
            .hash_password(b"a password no user has", &salt)
            .map(|h| h.to_string())
            .unwrap_or_default()
    });
    let phc = user
        .as_ref()
        .map_or(decoy.as_str(), |u| u.password_hash.as_str());
    let matches = verify_password(password, phc);
    match user {
        None => Err(LoginFailure::UnknownUser),
        Some(_) if !matches => Err(LoginFailure::WrongPassword),
        Some(u) if u.disabled => Err(LoginFailure::Disabled),
        Some(u) => Ok(u),
    }
}

/// A new secret for a session cookie or an API token: 32 bytes from the OS, hex, after a prefix
/// that says what it is (and lets secret scanners find a leaked one).
pub fn new_token(prefix: &str) -> Result<String, AuthError> {
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes).map_err(AuthError::Random)?;
    Ok(format!("{prefix}{}", hex::encode(bytes)))
}

/// What the store keeps of a token: its SHA-256, hex. Lookups go by digest, so comparing
/// secrets never happens byte by byte.
pub fn token_digest(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

/// Slows down password guessing: failures are counted per (address, username) and per address
/// across usernames (password spraying), each with its own allowance before an exponential
/// back-off. The table is bounded: old entries are forgotten first, then the stalest.
#[derive(Debug, Default)]
pub struct LoginThrottle {
    table: Mutex<Table>,
}

#[derive(Debug, Default)]
struct Table {
    by_user: HashMap<(IpAddr, String), Failures>,
    by_address: HashMap<IpAddr, Failures>,
}

#[derive(Debug, Clone, Copy)]
struct Failures {
    count: u32,
    last: Instant,
}

/// Failed logins for one username from one address allowed in a row before the back-off.
pub const FREE_FAILURES: u32 = 5;
/// Failed logins from one address, whatever the usernames, before the back-off.
pub const FREE_ADDRESS_FAILURES: u32 = 20;
/// The longest username a login may name; longer ones fail at once, unlooked-up and unaudited
/// (the audit log and the throttle table are not a place to store megabytes).
pub const MAX_USERNAME: usize = 64;
/// Password checks (argon2, tens of milliseconds of CPU and 19 MiB each) at once; more wait.
pub const PASSWORD_CHECKS: usize = 2;
const MAX_WAIT: Duration = Duration::from_secs(15 * 60);
/// Quiet time after which past failures are forgotten.
const FORGET_AFTER: Duration = Duration::from_secs(60 * 60);
/// Bound on remembered entries in each table.
const MAX_ENTRIES: usize = 10_000;

impl LoginThrottle {
    /// How long `ip` must still wait before trying `username` again; `None`: it may try now.
    pub fn wait(&self, ip: IpAddr, username: &str, now: Instant) -> Option<Duration> {
        let table = self.table.lock().unwrap_or_else(PoisonError::into_inner);
        let user = table
            .by_user
            .get(&(ip, username.to_owned()))
            .and_then(|f| f.wait(FREE_FAILURES, now));
        let address = table
            .by_address
            .get(&ip)
            .and_then(|f| f.wait(FREE_ADDRESS_FAILURES, now));
        user.max(address)
    }

    pub fn failed(&self, ip: IpAddr, username: &str, now: Instant) {
        let mut table = self.table.lock().unwrap_or_else(PoisonError::into_inner);
        count(&mut table.by_user, (ip, username.to_owned()), now);
        count(&mut table.by_address, ip, now);
    }

    pub fn succeeded(&self, ip: IpAddr, username: &str) {
        let mut table = self.table.lock().unwrap_or_else(PoisonError::into_inner);
        table.by_user.remove(&(ip, username.to_owned()));
    }
}

impl Failures {
    fn wait(&self, free: u32, now: Instant) -> Option<Duration> {
        let until = self.last + backoff(self.count, free);
        (until > now && now.duration_since(self.last) < FORGET_AFTER).then(|| until - now)
    }
}

/// One more failure for `key`, keeping `map` within [`MAX_ENTRIES`].
fn count<K: std::hash::Hash + Eq + Clone>(map: &mut HashMap<K, Failures>, key: K, now: Instant) {
    if map.len() >= MAX_ENTRIES && !map.contains_key(&key) {
        map.retain(|_, f| now.duration_since(f.last) < FORGET_AFTER);
        if map.len() >= MAX_ENTRIES {
            // A flood of fresh entries: forget the stalest one.
            let stalest = map
                .iter()
                .min_by_key(|(_, f)| f.last)
                .map(|(k, _)| k.clone());
            if let Some(k) = stalest {
                map.remove(&k);
            }
        }
    }
    let f = map.entry(key).or_insert(Failures {
        count: 0,
        last: now,
    });
    if now.duration_since(f.last) >= FORGET_AFTER {
        f.count = 0;
    }
    f.count += 1;
    f.last = now;
}

fn backoff(failures: u32, free: u32) -> Duration {
    match failures.checked_sub(free + 1) {
        None => Duration::ZERO,
        Some(over) => Duration::from_secs(1u64 << over.min(10)).min(MAX_WAIT),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hashes_verify_and_differ_by_salt() {
        let a = hash_password("correct horse battery").unwrap();
        let b = hash_password("correct horse battery").unwrap();
        assert!(a.starts_with("$argon2id$"));
        assert_ne!(a, b);
        assert!(verify_password("correct horse battery", &a));
        assert!(!verify_password("correct horse battery!", &a));
        assert!(!verify_password("anything", "not a hash"));
        assert!(matches!(
            hash_password("short"),
            Err(AuthError::PasswordTooShort { .. })
        ));
    }

    #[test]
    fn tokens_are_random_and_stored_as_digests() {
        let a = new_token("sbt_").unwrap();
        assert!(a.starts_with("sbt_") && a.len() == 4 + 64);
        assert_ne!(a, new_token("sbt_").unwrap());
        assert_eq!(token_digest(&a), token_digest(&a));
        assert_ne!(token_digest(&a), a);
        assert_eq!(
            token_digest("abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }

    #[test]
    fn logins_need_the_password_and_an_enabled_user() {
        let user = User {
            id: switchboard_store::UserId::new(),
            username: "olga".into(),
            password_hash: hash_password("correct horse battery").unwrap(),
            role: switchboard_store::Role::Operator,
            disabled: false,
            created_at: switchboard_store::UnixMillis(0),
        };
        assert_eq!(
            check_login(Some(user.clone()), "correct horse battery").map(|u| u.username),
            Ok("olga".to_string())
        );
        assert_eq!(
            check_login(Some(user.clone()), "wrong horse battery").map(drop),
            Err(LoginFailure::WrongPassword)
        );
        assert_eq!(
            check_login(None, "correct horse battery").map(drop),
            Err(LoginFailure::UnknownUser)
        );
        let disabled = User {
            disabled: true,
            ..user
        };
        assert_eq!(
            check_login(Some(disabled), "correct horse battery").map(drop),
            Err(LoginFailure::Disabled)
        );
    }

    #[test]
    fn guessing_backs_off_per_address_and_user() {
        let throttle = LoginThrottle::default();
        let (ip, other_ip) = ("192.0.2.1".parse().unwrap(), "192.0.2.2".parse().unwrap());
        let t0 = Instant::now();
        for i in 0..FREE_FAILURES {
            assert_eq!(throttle.wait(ip, "olga", t0), None, "failure {i} is free");
            throttle.failed(ip, "olga", t0);
        }
        assert_eq!(throttle.wait(ip, "olga", t0), None);
        throttle.failed(ip, "olga", t0);
        assert_eq!(throttle.wait(ip, "olga", t0), Some(Duration::from_secs(1)));
        throttle.failed(ip, "olga", t0);
        assert_eq!(throttle.wait(ip, "olga", t0), Some(Duration::from_secs(2)));
        assert_eq!(throttle.wait(other_ip, "olga", t0), None, "other address");
        assert_eq!(throttle.wait(ip, "root", t0), None, "other user");
        let t1 = t0 + Duration::from_secs(2);
        assert_eq!(throttle.wait(ip, "olga", t1), None, "the wait is over");
        throttle.failed(ip, "olga", t1);
        assert_eq!(throttle.wait(ip, "olga", t1), Some(Duration::from_secs(4)));
        for _ in 0..30 {
            throttle.failed(ip, "olga", t1);
        }
        assert_eq!(throttle.wait(ip, "olga", t1), Some(MAX_WAIT), "capped");
        throttle.succeeded(ip, "olga");
        // The username's failures are forgiven; the address's (40 of them) are not.
        assert_eq!(throttle.wait(other_ip, "olga", t1), None);
        assert_eq!(
            throttle.wait(ip, "olga", t1),
            Some(MAX_WAIT),
            "the address still waits"
        );
        throttle.failed(ip, "olga", t1);
        assert_eq!(throttle.wait(ip, "olga", t1 + FORGET_AFTER), None);
    }

    #[test]
    fn spraying_many_usernames_from_one_address_backs_off() {
        let throttle = LoginThrottle::default();
        let (ip, other_ip) = ("192.0.2.1".parse().unwrap(), "192.0.2.2".parse().unwrap());
        let t0 = Instant::now();
        for i in 0..=FREE_ADDRESS_FAILURES {
            let user = format!("user{i}");
            assert_eq!(throttle.wait(ip, &user, t0), None, "failure {i} is free");
            throttle.failed(ip, &user, t0);
        }
        assert_eq!(
            throttle.wait(ip, "somebody-new", t0),
            Some(Duration::from_secs(1)),
            "a new username from the spraying address waits"
        );
        assert_eq!(throttle.wait(other_ip, "somebody-new", t0), None);
    }

    #[test]
    fn the_table_stays_bounded_under_a_flood() {
        let throttle = LoginThrottle::default();
        let t0 = Instant::now();
        for i in 0..(MAX_ENTRIES as u32 + 500) {
            let ip = IpAddr::from((0x0a00_0000 + i).to_be_bytes());
            throttle.failed(ip, "admin", t0 + Duration::from_millis(i.into()));
        }
        let table = throttle
            .table
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        assert_eq!(table.by_user.len(), MAX_ENTRIES);
        assert_eq!(table.by_address.len(), MAX_ENTRIES);
    }
}
