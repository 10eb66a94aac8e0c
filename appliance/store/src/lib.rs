//! Switchboard's database: one schema, one set of queries, two engines.
//!
//! SQLite (WAL, foreign keys on, `synchronous = FULL`) is the embedded default; PostgreSQL is the
//! scale-out path. Both go through sqlx's `Any` driver, so every query here is written once in the
//! portable subset of SQL (`$N` placeholders, TEXT ids made by the application, BIGINT unix
//! milliseconds, BIGINT 0/1 flags) and the same tests run against both engines.
//!
//! Personal data (numbers, transcripts, summaries, consent answers, caller memory, contacts) is
//! sealed with the store's [`DataKey`] before it is written and opened when read (`sealing.rs`);
//! every query above takes and returns it in the clear.
//!
//! Durability contract: a function that returns `Ok` has committed. Writes that must never be lost
//! together with something else (a consent decision and the call's consent field, a blacklist
//! removal and its audit entry) share one transaction.

mod agents;
mod audit;
mod calls;
mod campaigns;
mod ids;
mod memory;
mod policy;
mod retention;
mod sealing;
mod users;

pub use agents::{Agent, Consent};
pub use audit::{AuditEntry, AuditVerdict};
pub use calls::{
    CallRecord, Direction, EndOfCall, EndReason, Speaker, TranscriptLine, Turn, TurnTimings,
};
pub use campaigns::{
    Attempt, AttemptRow, AttemptStatus, Campaign, CampaignStatus, ClaimedAttempt, Contact,
    NewContact, Progress,
};
pub use ids::{
    AgentId, ApiTokenId, AttemptId, CallRecordId, CampaignId, ContactId, ContactListId, UnixMillis,
    UserId,
};
pub use memory::CallerMemory;
pub use policy::{BlacklistEntry, ConsentDecision, ConsentRecord};
pub use retention::{CallsOf, Erased};
pub use sealing::DataKey;
pub use users::{Role, User};

use sqlx::any::{AnyConnectOptions, AnyPoolOptions};
use sqlx::{AnyPool, Executor};
use std::path::Path;
use std::str::FromStr;
use std::time::Duration;

/// Everything that can go wrong talking to the database.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("database URL {url:?} is not usable: {reason}")]
    BadUrl { url: String, reason: String },
    #[error("cannot open database {url}: {source}")]
    Open { url: String, source: sqlx::Error },
    #[error("database migration failed: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    /// A downgrade across a migration: the database is left as it is.
    #[error(
        "the database was migrated by a newer switchboard (schema {database}; this version knows \
         up to {known}) and is left untouched: install that version again, or restore the \
         backup taken before the upgrade"
    )]
    NewerSchema { database: i64, known: i64 },
    #[error("{op}: {source}")]
    Query {
        op: &'static str,
        source: sqlx::Error,
    },
    #[error("{what} {key:?} does not exist")]
    NotFound { what: &'static str, key: String },
    #[error("{what} {key:?} already exists")]
    Conflict { what: &'static str, key: String },
    #[error("stored {what} is invalid: {value:?}")]
    Corrupt { what: &'static str, value: String },
    #[error(
        "the database holds personal data sealed with key {sealed_with}, and this key is \
         {have}: restore the key file that sealed it (a new key was not used)"
    )]
    WrongKey { sealed_with: String, have: String },
}

pub type Result<T> = std::result::Result<T, StoreError>;

/// Which engine is behind the pool: the few statements that differ (row locking) branch on it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// A handle to the database; cheap to clone.
#[derive(Clone, Debug)]
pub struct Store {
    pool: AnyPool,
    backend: Backend,
    key: DataKey,
}

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations");

/// The newest schema this build knows: the version of its last migration. A database migrated
/// past it is refused ([`StoreError::NewerSchema`]).
pub fn known_schema() -> i64 {
    MIGRATOR.iter().map(|m| m.version).max().unwrap_or(0)
}

impl Store {
    /// Opens the SQLite database at `path`, creating it (and its folder) if needed.
    pub async fn open_sqlite(path: &Path, key: DataKey) -> Result<Self> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(|e| StoreError::BadUrl {
                url: path.display().to_string(),
                reason: format!("cannot create {}: {e}", dir.display()),
            })?;
        }
        Self::open(&format!("sqlite://{}?mode=rwc", path.display()), key).await
    }

    /// Opens `url` (`sqlite://…` or `postgres://…`) and brings the schema up to date; personal
    /// data is sealed with `key`. A database holding data sealed with another key is refused;
    /// rows written before sealing existed are sealed once, here.
    pub async fn open(url: &str, key: DataKey) -> Result<Self> {
        sqlx::any::install_default_drivers();
        let backend = if url.starts_with("sqlite:") {
            Backend::Sqlite
        } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            Backend::Postgres
        } else {
            return Err(StoreError::BadUrl {
                url: redact(url),
                reason: "expected sqlite://PATH or postgres://…".into(),
            });
        };
        let options = AnyConnectOptions::from_str(url).map_err(|e| StoreError::BadUrl {
            url: redact(url),
            reason: e.to_string(),
        })?;
        let pool = AnyPoolOptions::new()
            // SQLite allows one writer; more connections only add lock waits.
            .max_connections(if backend == Backend::Sqlite { 4 } else { 16 })
            .acquire_timeout(Duration::from_secs(10))
            .after_connect(move |conn, _| {
                Box::pin(async move {
                    if backend == Backend::Sqlite {
                        // WAL for concurrent readers; FULL so a committed write survives power loss;
                        // foreign keys are off by default in SQLite.
                        conn.execute(
                            "PRAGMA journal_mode = WAL; PRAGMA synchronous = FULL; \
                             PRAGMA foreign_keys = ON; PRAGMA busy_timeout = 5000;",
                        )
                        .await?;
                    }
                    Ok(())
                })
            })
            .connect_with(options)
            .await
            .map_err(|source| StoreError::Open {
                url: redact(url),
                source,
            })?;
        // PostgreSQL serialises concurrent migrators with an advisory lock; for SQLite sqlx does
        // not, so two processes opening a new file at once (the daemon and `switchboard user
        // add`, say) would both create the schema. A lock file beside the database serialises them.
        let _guard = match backend {
            Backend::Sqlite => Some(migration_lock(url).await?),
            Backend::Postgres => None,
        };
        MIGRATOR.run(&pool).await.map_err(|e| match e {
            // sqlx checks every applied version before applying any: nothing has changed.
            sqlx::migrate::MigrateError::VersionMissing(database) => StoreError::NewerSchema {
                database,
                known: known_schema(),
            },
            e => StoreError::Migrate(e),
        })?;
        let store = Store { pool, backend, key };
        store.check_key().await?;
        store.seal_plain_rows().await?;
        store.chain_earlier_audit().await?;
        Ok(store)
    }

    /// A transaction that will write. On SQLite it takes the write lock up front (`BEGIN
    /// IMMEDIATE`): a deferred transaction that reads first and then writes fails at once with
    /// "database is locked" when another writer got in between, instead of waiting.
    async fn write_tx(&self) -> Result<sqlx::Transaction<'static, sqlx::Any>> {
        let begin = match self.backend {
            Backend::Sqlite => "BEGIN IMMEDIATE",
            Backend::Postgres => "BEGIN",
        };
        self.pool.begin_with(begin).await.map_err(q("begin"))
    }

    /// The pool itself, for raw SQL outside the store's queries: the tests that tamper with rows
    /// the way an attacker with database access would.
    pub fn pool(&self) -> &AnyPool {
        &self.pool
    }

    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// A cheap round trip, for readiness checks.
    pub async fn ping(&self) -> Result<()> {
        sqlx::query("SELECT 1")
            .execute(&self.pool)
            .await
            .map(drop)
            .map_err(q("ping"))
    }

    /// Applied migration versions, oldest first.
    pub async fn schema_versions(&self) -> Result<Vec<i64>> {
        use sqlx::Row;
        let rows = sqlx::query("SELECT version FROM _sqlx_migrations ORDER BY version")
            .fetch_all(&self.pool)
            .await
            .map_err(q("read schema version"))?;
        rows.iter()
            .map(|r| r.try_get::<i64, _>(0).map_err(q("read schema version")))
            .collect()
    }

    pub async fn close(&self) {
        self.pool.close().await;
    }
}

/// Takes an exclusive lock on `<database>.migrate.lock` (released when the file is dropped).
async fn migration_lock(url: &str) -> Result<std::fs::File> {
    let path = url
        .trim_start_matches("sqlite://")
        .trim_start_matches("sqlite:");
    let path = path.split('?').next().unwrap_or(path);
    let lock_path = format!("{path}.migrate.lock");
    let bad = |e: std::io::Error| StoreError::BadUrl {
        url: url.to_string(),
        reason: format!("cannot lock {lock_path} for migration: {e}"),
    };
    let file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&lock_path)
        .map_err(bad)?;
    tokio::task::spawn_blocking(move || file.lock().map(|()| file))
        .await
        .map_err(|e| bad(std::io::Error::other(e)))?
        .map_err(bad)
}

/// Maps a sqlx error to [`StoreError::Query`] naming the operation.
fn q(op: &'static str) -> impl FnOnce(sqlx::Error) -> StoreError {
    move |source| StoreError::Query { op, source }
}

/// True when `e` is a unique-constraint violation (the same check for both engines).
fn is_unique_violation(e: &sqlx::Error) -> bool {
    matches!(e, sqlx::Error::Database(d) if d.is_unique_violation())
}

/// Hides a password in a database URL before it reaches a log line or an error.
pub fn redact(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme_end), Some(at)) if at > scheme_end => {
            let userinfo = &url[scheme_end + 3..at];
            let user = userinfo.split(':').next().unwrap_or("");
            format!("{}://{}:***@{}", &url[..scheme_end], user, &url[at + 1..])
        }
        _ => url.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::redact;

    #[test]
    fn redacts_passwords_only() {
        assert_eq!(
            redact("postgres://sb:secret@db/sb"),
            "postgres://sb:***@db/sb"
        );
        assert_eq!(redact("sqlite:///var/lib/sb.db"), "sqlite:///var/lib/sb.db");
    }
}
