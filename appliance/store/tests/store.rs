//! The same store tests against a real SQLite file and a real PostgreSQL server.
//!
//! PostgreSQL comes from `SWITCHBOARD_TEST_POSTGRES_URL` (the test script installs and starts a
//! server on 127.0.0.1); each test creates and drops its own database. Without the variable the
//! PostgreSQL half fails when `SWITCHBOARD_REQUIRE_POSTGRES=1` (as in CI) and is skipped otherwise.
#![allow(clippy::unwrap_used)] // reason: test helpers, where a panic is the failure report

use models_api::testing::{skip, Dependency};
use std::collections::HashSet;
use switchboard_store::*;

struct Db {
    store: Store,
    _dir: Option<tempfile::TempDir>,
    pg_drop: Option<(String, String)>,
}

impl Db {
    async fn sqlite() -> Db {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open_sqlite(&dir.path().join("sub/switchboard.db"), DataKey::random())
            .await
            .unwrap();
        assert_eq!(store.backend(), Backend::Sqlite);
        Db {
            store,
            _dir: Some(dir),
            pg_drop: None,
        }
    }

    async fn postgres() -> Option<Db> {
        use sqlx::{Connection, Executor};
        let Ok(admin) = std::env::var("SWITCHBOARD_TEST_POSTGRES_URL") else {
            skip(
                Dependency::Postgres,
                "PostgreSQL half: SWITCHBOARD_TEST_POSTGRES_URL is not set",
            );
            return None;
        };
        let name = format!("sbtest_{}", uuid_like());
        let mut conn = sqlx::PgConnection::connect(&admin)
            .await
            .expect("connect to PostgreSQL");
        conn.execute(format!("CREATE DATABASE {name}").as_str())
            .await
            .unwrap();
        let store = Store::open(&database_url(&admin, &name), DataKey::random())
            .await
            .unwrap();
        assert_eq!(store.backend(), Backend::Postgres);
        Some(Db {
            store,
            _dir: None,
            pg_drop: Some((admin, name)),
        })
    }

    async fn done(self) {
        self.store.close().await;
        if let Some((admin, name)) = self.pg_drop {
            use sqlx::{Connection, Executor};
            let mut conn = sqlx::PgConnection::connect(&admin).await.unwrap();
            conn.execute(format!("DROP DATABASE {name} WITH (FORCE)").as_str())
                .await
                .unwrap();
        }
    }
}

/// The URL of database `name` on the server `admin` points to.
fn database_url(admin: &str, name: &str) -> String {
    match admin.rfind('/') {
        Some(i) if i > "postgres://".len() => format!("{}/{name}", &admin[..i]),
        _ => format!("{admin}/{name}"),
    }
}

/// PostgreSQL over TLS as a site runs it (`sslmode=verify-full`, the site's CA): the session is
/// encrypted, and a server whose certificate that CA did not sign is refused before any query.
#[tokio::test]
async fn postgres_over_tls_is_encrypted_and_the_server_verified() {
    let Some(db) = Db::postgres().await else {
        return;
    };
    let (Ok(ca), Ok(other_ca)) = (
        std::env::var("SWITCHBOARD_TEST_POSTGRES_CA"),
        std::env::var("SWITCHBOARD_TEST_POSTGRES_OTHER_CA"),
    ) else {
        skip(
            Dependency::Postgres,
            "PostgreSQL TLS: SWITCHBOARD_TEST_POSTGRES_CA is not set (start_test_postgres sets it)",
        );
        return db.done().await;
    };
    let (admin, name) = db.pg_drop.clone().unwrap();
    let url = database_url(&admin, &name);
    let encrypted = async |url: String| -> bool {
        let store = Store::open(&url, DataKey::random()).await.unwrap();
        let ssl: i64 = sqlx::query_scalar(
            "SELECT CAST(CASE WHEN ssl THEN 1 ELSE 0 END AS BIGINT) FROM pg_stat_ssl \
             WHERE pid = pg_backend_pid()",
        )
        .fetch_one(store.pool())
        .await
        .unwrap();
        store.close().await;
        ssl == 1
    };
    assert!(encrypted(format!("{url}?sslmode=verify-full&sslrootcert={ca}")).await);
    assert!(
        !encrypted(format!("{url}?sslmode=disable")).await,
        "the check tells a clear session from an encrypted one"
    );
    let refused = Store::open(
        &format!("{url}?sslmode=verify-full&sslrootcert={other_ca}"),
        DataKey::random(),
    )
    .await
    .unwrap_err();
    assert!(matches!(refused, StoreError::Open { .. }), "{refused}");
    db.done().await;
}

fn uuid_like() -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    format!("{}_{nanos}", std::process::id())
}

/// Runs each test body once on SQLite and once on PostgreSQL.
macro_rules! both {
    ($($name:ident),* $(,)?) => {
        mod sqlite { $(
            #[tokio::test]
            async fn $name() {
                let db = super::Db::sqlite().await;
                super::$name(&db.store).await;
                db.done().await;
            }
        )* }
        mod postgres { $(
            #[tokio::test]
            async fn $name() {
                let Some(db) = super::Db::postgres().await else { return };
                super::$name(&db.store).await;
                db.done().await;
            }
        )* }
    };
}

both!(
    migrations_applied_once,
    agents_route_numbers,
    call_record_lifecycle,
    consent_is_logged_with_the_call,
    consent_for_unknown_call_writes_nothing,
    blacklist_removal_is_audited,
    abuse_blocks_lapse_and_grow_with_each_offence,
    contacts_import_and_campaign_claims,
    concurrent_claims_never_share_an_attempt,
    a_campaign_is_run_paused_recovered_and_finished,
    api_tokens_resolve_users,
    sessions_resolve_enabled_users_until_they_expire,
    caller_memory_is_kept_replaced_and_forgotten,
    a_caller_is_forgotten_by_every_agent,
    calls_are_listed_newest_first_in_pages,
    a_user_of_the_agent_role_sees_the_calls_of_its_agents_only,
    retention_removes_recordings_then_words_then_records,
    a_caller_is_erased_everywhere_but_the_do_not_call_list,
    personal_data_is_sealed_at_rest_and_found_by_number,
    a_key_rotation_reseals_every_value_under_the_next_key,
    calls_left_open_by_a_crash_are_closed_by_their_node,
    the_audit_chain_shows_edits_deletions_and_insertions,
);

async fn migrations_applied_once(s: &Store) {
    assert_eq!(
        s.schema_versions().await.unwrap(),
        vec![1, 2, 3, 4, 5, 6, 7, 8, 9]
    );
    s.ping().await.unwrap();
}

fn acme(numbers: &[&str]) -> Agent {
    Agent {
        id: AgentId::new(),
        name: "acme".into(),
        numbers: numbers.iter().map(|n| n.to_string()).collect(),
        greeting: "Thanks for calling Acme Dental.".into(),
        prompt: "You are the receptionist of Acme Dental.".into(),
        consent: Consent::Required,
        transfer_to: Some("sip:frontdesk@10.0.0.5".into()),
        language: "en".into(),
        voice: "en_US-joe-medium".into(),
    }
}

async fn agents_route_numbers(s: &Store) {
    let id = s
        .upsert_agent(&acme(&["1000", "+15550001000"]))
        .await
        .unwrap();
    let routed = s.agent_for_number("+15550001000").await.unwrap().unwrap();
    assert_eq!(routed.id, id);
    assert_eq!(
        routed.transfer_to.as_deref(),
        Some("sip:frontdesk@10.0.0.5")
    );
    assert!(s.agent_for_number("2000").await.unwrap().is_none());

    // Updating keeps the id and replaces the numbers.
    let mut changed = acme(&["2000"]);
    changed.greeting = "Hello again.".into();
    assert_eq!(s.upsert_agent(&changed).await.unwrap(), id);
    assert!(s.agent_for_number("1000").await.unwrap().is_none());
    assert_eq!(
        s.agent_for_number("2000").await.unwrap().unwrap().greeting,
        "Hello again."
    );

    // A number owned by another agent is refused and leaves that agent untouched.
    let mut other = acme(&["3000", "2000"]);
    other.name = "other".into();
    let err = s.upsert_agent(&other).await.unwrap_err();
    assert!(
        matches!(
            err,
            StoreError::Conflict {
                what: "agent number",
                ..
            }
        ),
        "{err}"
    );
    assert!(
        s.agent_by_name("other").await.unwrap().is_none(),
        "rolled back"
    );
    assert_eq!(s.agent_names().await.unwrap(), vec!["acme".to_string()]);
}

fn new_call(from: &str) -> CallRecord {
    CallRecord {
        id: CallRecordId::new(),
        sip_call_id: "a84b4c76e66710@pc33.example.com".into(),
        direction: Direction::Inbound,
        agent_id: None,
        from_number: from.into(),
        to_number: "1000".into(),
        started_at: UnixMillis(1_700_000_000_000),
        answered_at: None,
        ended_at: None,
        end_reason: None,
        consent: None,
        node: Some("box-a".into()),
    }
}

/// After a crash a box closes the calls it left open, ended at the last word heard, and
/// leaves alone those another box sharing the database is carrying.
async fn calls_left_open_by_a_crash_are_closed_by_their_node(s: &Store) {
    let cut_off = new_call("+15551230001");
    let elsewhere = CallRecord {
        node: Some("box-b".into()),
        ..new_call("+15551230002")
    };
    let finished = new_call("+15551230003");
    for c in [&cut_off, &elsewhere, &finished] {
        s.insert_call(c).await.unwrap();
    }
    let line = TranscriptLine {
        seq: 1,
        at_ms: 4_200,
        speaker: Speaker::Caller,
        text: "I'd like to book".into(),
    };
    s.append_transcript(&cut_off.id, &line).await.unwrap();
    let end = EndOfCall::new(EndReason::CallerHungUp);
    s.finish_call(&finished.id, UnixMillis(1_700_000_009_000), &end)
        .await
        .unwrap();

    assert_eq!(
        s.close_interrupted_calls("box-a").await.unwrap(),
        vec![cut_off.id.clone()]
    );
    let closed = s.call(&cut_off.id).await.unwrap().unwrap();
    assert_eq!(closed.end_reason, Some(EndReason::Interrupted));
    assert_eq!(closed.ended_at, Some(UnixMillis(1_700_000_004_200)));
    assert_eq!(closed.node.as_deref(), Some("box-a"));
    let other = s.call(&elsewhere.id).await.unwrap().unwrap();
    assert_eq!(other.ended_at, None, "box-b's call is still live");
    let done = s.call(&finished.id).await.unwrap().unwrap();
    assert_eq!(done.end_reason, Some(EndReason::CallerHungUp));
    assert!(s.close_interrupted_calls("box-a").await.unwrap().is_empty());
}

async fn call_record_lifecycle(s: &Store) {
    let call = new_call("+15551230001");
    s.insert_call(&call).await.unwrap();
    s.mark_answered(&call.id, UnixMillis(1_700_000_000_500))
        .await
        .unwrap();
    let turn = Turn {
        seq: 1,
        started_at: UnixMillis(1_700_000_003_000),
        caller_text: "When are you open?".into(),
        agent_text: "We are open Monday to".into(),
        interrupted: true,
        timings: TurnTimings {
            endpoint_ms: Some(250),
            stt_ms: Some(140),
            llm_first_token_ms: Some(210),
            tts_first_audio_ms: Some(80),
            voice_to_voice_ms: Some(690),
        },
    };
    s.record_turn(&call.id, &turn).await.unwrap();
    assert_eq!(s.turns(&call.id).await.unwrap(), vec![turn]);
    for (seq, speaker, text) in [(1, Speaker::Agent, "Hello"), (2, Speaker::Caller, "Hi")] {
        let line = TranscriptLine {
            seq,
            at_ms: seq * 1000,
            speaker,
            text: text.into(),
        };
        s.append_transcript(&call.id, &line).await.unwrap();
    }
    let t = s.transcript(&call.id).await.unwrap();
    assert_eq!(
        t.iter().map(|l| l.speaker).collect::<Vec<_>>(),
        [Speaker::Agent, Speaker::Caller]
    );

    let end = EndOfCall::new(EndReason::CallerHungUp);
    s.finish_call(&call.id, UnixMillis(1_700_000_060_000), &end)
        .await
        .unwrap();
    // A second end (e.g. a late BYE retransmission) does not overwrite the first.
    let late = EndOfCall::new(EndReason::Silence);
    s.finish_call(&call.id, UnixMillis(1_700_000_099_000), &late)
        .await
        .unwrap();
    let stored = s.call(&call.id).await.unwrap().unwrap();
    assert_eq!(stored.answered_at, Some(UnixMillis(1_700_000_000_500)));
    assert_eq!(stored.ended_at, Some(UnixMillis(1_700_000_060_000)));
    assert_eq!(stored.end_reason, Some(EndReason::CallerHungUp));

    let missing = CallRecordId::new();
    let err = s
        .finish_call(&missing, UnixMillis(0), &end)
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::NotFound { what: "call", .. }));
}

async fn consent_is_logged_with_the_call(s: &Store) {
    let call = new_call("+15551230002");
    s.insert_call(&call).await.unwrap();
    let rec = ConsentRecord {
        call_id: call.id.clone(),
        caller_number: call.from_number.clone(),
        question: "May we record this call?".into(),
        answer_text: "no thanks".into(),
        decision: ConsentDecision::No,
        decided_at: UnixMillis(1_700_000_001_000),
    };
    s.record_consent(&rec).await.unwrap();
    assert_eq!(s.consent_log(&call.id).await.unwrap(), vec![rec]);
    assert_eq!(
        s.call(&call.id).await.unwrap().unwrap().consent.as_deref(),
        Some("declined")
    );
}

async fn consent_for_unknown_call_writes_nothing(s: &Store) {
    let ghost = CallRecordId::new();
    let rec = ConsentRecord {
        call_id: ghost.clone(),
        caller_number: "+15551230003".into(),
        question: "May we record this call?".into(),
        answer_text: "yes".into(),
        decision: ConsentDecision::Yes,
        decided_at: UnixMillis(1),
    };
    // The foreign key refuses the log row; nothing is half-written.
    assert!(s.record_consent(&rec).await.is_err());
    assert!(s.consent_log(&ghost).await.unwrap().is_empty());
}

async fn abuse_blocks_lapse_and_grow_with_each_offence(s: &Store) {
    const HOUR: i64 = 3_600_000;
    let call = new_call("+15551230005");
    s.insert_call(&call).await.unwrap();
    let first = std::time::Duration::from_secs(24 * 3600);
    let block = async |at: UnixMillis| {
        s.block_for_abuse(
            &call.from_number,
            "profanity",
            &call.id,
            "agent:front",
            at,
            first,
        )
        .await
        .unwrap()
    };
    let t0 = UnixMillis(1_700_000_000_000);
    let once = block(t0).await;
    assert_eq!(once.offences, 1);
    assert_eq!(once.expires_at, Some(UnixMillis(t0.0 + 24 * HOUR)));
    assert!(once.active_at(UnixMillis(t0.0 + 23 * HOUR)));
    assert!(
        !once.active_at(UnixMillis(t0.0 + 24 * HOUR)),
        "a first block lapses"
    );
    // Back after the block lapsed and abusive again: four times as long.
    let t1 = UnixMillis(t0.0 + 48 * HOUR);
    let twice = block(t1).await;
    assert_eq!(twice.offences, 2);
    assert_eq!(twice.expires_at, Some(UnixMillis(t1.0 + 96 * HOUR)));
    assert_eq!(
        s.blacklist_entry(&call.from_number).await.unwrap(),
        Some(twice.clone())
    );
    // Capped at 90 days however often.
    let mut last = twice;
    for _ in 0..6 {
        last = block(t1).await;
    }
    assert_eq!(last.offences, 8);
    assert_eq!(last.expires_at, Some(UnixMillis(t1.0 + 90 * 24 * HOUR)));
    assert_eq!(s.blacklist().await.unwrap(), vec![last]);
}

async fn blacklist_removal_is_audited(s: &Store) {
    let call = new_call("+15551230004");
    s.insert_call(&call).await.unwrap();
    let entry = BlacklistEntry {
        number: call.from_number.clone(),
        reason: "profanity".into(),
        source_call_id: Some(call.id.clone()),
        added_by: "system".into(),
        added_at: UnixMillis(1_700_000_002_000),
        expires_at: None,
        offences: 1,
    };
    assert!(s.add_to_blacklist(&entry).await.unwrap());
    let again = BlacklistEntry {
        reason: "second".into(),
        ..entry.clone()
    };
    assert!(
        !s.add_to_blacklist(&again).await.unwrap(),
        "duplicate keeps the first reason"
    );
    assert_eq!(
        s.blacklist_entry(&entry.number).await.unwrap(),
        Some(entry.clone())
    );
    assert!(s.is_do_not_call(&entry.number).await.unwrap());

    s.remove_from_blacklist(&entry.number, "alice")
        .await
        .unwrap();
    assert!(!s.is_do_not_call(&entry.number).await.unwrap());
    let audit = s.audit_entries(10).await.unwrap();
    assert_eq!(audit.len(), 1);
    assert_eq!(
        (audit[0].actor.as_str(), audit[0].action.as_str()),
        ("alice", "blacklist.remove")
    );
    assert_eq!(audit[0].target, "…04", "the last two digits only");

    let err = s
        .remove_from_blacklist(&entry.number, "alice")
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::NotFound { .. }));
    assert_eq!(
        s.audit_entries(10).await.unwrap().len(),
        1,
        "a failed removal is not audited"
    );
}

fn contact(number: &str) -> NewContact {
    NewContact {
        number: number.into(),
        name: Some(format!("Contact {number}")),
        time_zone: "America/New_York".into(),
        fields: "{}".into(),
    }
}

async fn campaign_with(s: &Store, numbers: &[&str]) -> CampaignId {
    let agent = s.upsert_agent(&acme(&["1000"])).await.unwrap();
    let list = s.create_contact_list("spring recall").await.unwrap();
    let contacts: Vec<_> = numbers.iter().map(|n| contact(n)).collect();
    assert_eq!(
        s.add_contacts(&list, &contacts).await.unwrap(),
        numbers.len() as u64
    );
    let id = CampaignId::new();
    s.create_campaign(&Campaign {
        id: id.clone(),
        name: "recall".into(),
        agent_id: agent,
        list_id: list,
        trunk: "default".into(),
        status: CampaignStatus::Running,
        window_start: "09:00".into(),
        window_end: "18:00".into(),
        days: "mon,tue,wed,thu,fri".into(),
        holidays: String::new(),
        max_attempts: 3,
        retry_delay_s: 3600,
        retry_policy: "no_answer=3/1h".into(),
        max_concurrent: 2,
        calls_per_minute: 0,
        caller_id: None,
        ring_timeout_s: 30,
    })
    .await
    .unwrap();
    id
}

async fn contacts_import_and_campaign_claims(s: &Store) {
    let campaign = campaign_with(s, &["+15550000001", "+15550000002", "+15550000003"]).await;
    s.add_to_dnd("+15550000002", "customer request", "alice")
        .await
        .unwrap();
    assert_eq!(
        s.queue_first_attempts(&campaign, UnixMillis(1000))
            .await
            .unwrap(),
        2
    );
    assert_eq!(
        s.queue_first_attempts(&campaign, UnixMillis(1000))
            .await
            .unwrap(),
        0,
        "idempotent"
    );

    assert!(s
        .claim_due_attempt(&campaign, "box-a", UnixMillis(999))
        .await
        .unwrap()
        .is_none());
    let first = s
        .claim_due_attempt(&campaign, "box-a", UnixMillis(1000))
        .await
        .unwrap()
        .unwrap();
    let second = s
        .claim_due_attempt(&campaign, "box-a", UnixMillis(1000))
        .await
        .unwrap()
        .unwrap();
    assert!(s
        .claim_due_attempt(&campaign, "box-a", UnixMillis(1000))
        .await
        .unwrap()
        .is_none());
    let mut dialled = vec![first.contact.number.clone(), second.contact.number.clone()];
    dialled.sort();
    assert_eq!(
        dialled,
        ["+15550000001", "+15550000003"],
        "the DND number is never dialled"
    );

    // No answer: the retry is queued with the result, and becomes claimable when due.
    s.finish_attempt(
        &first.id,
        AttemptStatus::NoAnswer,
        None,
        None,
        Some(UnixMillis(5000)),
    )
    .await
    .unwrap();
    assert!(s
        .claim_due_attempt(&campaign, "box-a", UnixMillis(4999))
        .await
        .unwrap()
        .is_none());
    let retry = s
        .claim_due_attempt(&campaign, "box-a", UnixMillis(5000))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        (retry.attempt_no, retry.contact.number.clone()),
        (2, first.contact.number)
    );
}

async fn concurrent_claims_never_share_an_attempt(s: &Store) {
    let numbers: Vec<String> = (0..20).map(|i| format!("+1555010{i:04}")).collect();
    let refs: Vec<&str> = numbers.iter().map(String::as_str).collect();
    let campaign = campaign_with(s, &refs).await;
    s.queue_first_attempts(&campaign, UnixMillis(0))
        .await
        .unwrap();
    let mut tasks = Vec::new();
    for node in 0..4 {
        let (s, campaign) = (s.clone(), campaign.clone());
        tasks.push(tokio::spawn(async move {
            let mut mine = Vec::new();
            while let Some(a) = s
                .claim_due_attempt(&campaign, &format!("box-{node}"), UnixMillis(1))
                .await
                .unwrap()
            {
                mine.push(a.contact.number);
            }
            mine
        }));
    }
    let mut all = Vec::new();
    for t in tasks {
        all.extend(t.await.unwrap());
    }
    let unique: HashSet<_> = all.iter().collect();
    assert_eq!(
        (all.len(), unique.len()),
        (20, 20),
        "every contact claimed exactly once"
    );
}

async fn a_campaign_is_run_paused_recovered_and_finished(s: &Store) {
    let campaign = campaign_with(s, &["+15550000001", "+15550000002"]).await;
    let stored = s.campaign_by_name("recall").await.unwrap().unwrap();
    assert_eq!(
        (
            stored.id.clone(),
            stored.retry_policy.as_str(),
            stored.ring_timeout_s
        ),
        (campaign.clone(), "no_answer=3/1h", 30)
    );
    s.set_campaign_status(&campaign, CampaignStatus::Paused, "olga")
        .await
        .unwrap();
    assert!(s
        .campaigns(Some(CampaignStatus::Running))
        .await
        .unwrap()
        .is_empty());
    assert_eq!(
        s.campaigns(Some(CampaignStatus::Paused)).await.unwrap()[0].name,
        "recall"
    );
    let audit = s.audit_entries(10).await.unwrap();
    assert!(audit
        .iter()
        .any(|e| e.action == "campaign.status" && e.actor == "olga"));
    s.set_campaign_status(&campaign, CampaignStatus::Running, "olga")
        .await
        .unwrap();

    s.queue_first_attempts(&campaign, UnixMillis(0))
        .await
        .unwrap();
    let a = s
        .claim_due_attempt(&campaign, "box-a", UnixMillis(1))
        .await
        .unwrap()
        .unwrap();
    let b = s
        .claim_due_attempt(&campaign, "box-b", UnixMillis(1))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(s.attempts_in_flight(&campaign).await.unwrap(), 2);
    // Outside the contact's window: handed back, due later, claimable again then.
    s.defer_attempt(&b.id, UnixMillis(500)).await.unwrap();
    assert_eq!(s.attempts_in_flight(&campaign).await.unwrap(), 1);
    assert!(s
        .claim_due_attempt(&campaign, "box-b", UnixMillis(499))
        .await
        .unwrap()
        .is_none());
    // box-a stopped mid-dial: its claim is found, by it only.
    let claimed = s.claimed_attempts("box-a").await.unwrap();
    assert_eq!(
        claimed
            .iter()
            .map(|c| (&c.id, c.attempt_no))
            .collect::<Vec<_>>(),
        [(&a.id, 1)]
    );
    assert!(s.claimed_attempts("box-c").await.unwrap().is_empty());
    s.finish_attempt(
        &a.id,
        AttemptStatus::Failed,
        Some("interrupted"),
        None,
        None,
    )
    .await
    .unwrap();
    assert!(
        !s.finish_campaign_if_done(&campaign).await.unwrap(),
        "b is pending"
    );
    let b = s
        .claim_due_attempt(&campaign, "box-b", UnixMillis(500))
        .await
        .unwrap()
        .unwrap();
    s.finish_attempt(&b.id, AttemptStatus::Answered, Some("reached"), None, None)
        .await
        .unwrap();
    let progress = s.campaign_progress(&campaign).await.unwrap();
    assert_eq!(progress.contacts, 2);
    assert_eq!(progress.count(AttemptStatus::Answered), 1);
    assert_eq!(progress.count(AttemptStatus::Failed), 1);
    assert_eq!(progress.count(AttemptStatus::Pending), 0);
    let rows = s.campaign_attempts(&campaign).await.unwrap();
    assert_eq!(rows.len(), 2);
    assert!(rows
        .iter()
        .any(|r| r.disposition.as_deref() == Some("interrupted") && r.number == a.contact.number));
    assert!(s.finish_campaign_if_done(&campaign).await.unwrap());
    assert_eq!(
        s.campaign_by_name("recall").await.unwrap().unwrap().status,
        CampaignStatus::Finished
    );
}

async fn api_tokens_resolve_users(s: &Store) {
    let alice = s
        .create_user("alice", "$argon2id$v=19$stub", Role::Operator)
        .await
        .unwrap();
    let err = s.create_user("alice", "x", Role::Admin).await.unwrap_err();
    assert!(matches!(err, StoreError::Conflict { what: "user", .. }));
    assert_eq!(
        s.user_by_name("alice").await.unwrap().unwrap().role,
        Role::Operator
    );

    s.create_api_token(&alice.id, "ci", "digest-1", None)
        .await
        .unwrap();
    s.create_api_token(&alice.id, "old", "digest-2", Some(UnixMillis(10)))
        .await
        .unwrap();
    let now = UnixMillis(100);
    assert_eq!(
        s.user_for_token("digest-1", now).await.unwrap().unwrap().id,
        alice.id
    );
    assert!(
        s.user_for_token("digest-2", now).await.unwrap().is_none(),
        "expired"
    );
    assert!(s.user_for_token("nope", now).await.unwrap().is_none());
}

async fn sessions_resolve_enabled_users_until_they_expire(s: &Store) {
    let bob = s
        .create_user("bob", "$argon2id$v=19$stub", Role::Agent)
        .await
        .unwrap();
    let now = UnixMillis::now();
    let later = UnixMillis(now.0 + 3_600_000);
    s.create_session(&bob, "session-1", later, r#"{"ip":"192.0.2.7"}"#)
        .await
        .unwrap();
    s.create_api_token(&bob.id, "script", "token-1", None)
        .await
        .unwrap();
    assert_eq!(
        s.user_for_session("session-1", now)
            .await
            .unwrap()
            .unwrap()
            .username,
        "bob"
    );
    assert!(
        s.user_for_session("session-1", later)
            .await
            .unwrap()
            .is_none(),
        "expired at expires_at"
    );
    assert!(
        s.user_for_session("token-1", now).await.unwrap().is_none(),
        "an API token is not a session"
    );
    let audit = s.audit_entries(10).await.unwrap();
    assert_eq!(
        (audit[0].action.as_str(), audit[0].actor.as_str()),
        ("user.login", "bob")
    );

    // Disabling ends the session and the token at once; enabling brings them back.
    s.set_user_disabled("bob", true, "root").await.unwrap();
    assert!(s
        .user_for_session("session-1", now)
        .await
        .unwrap()
        .is_none());
    assert!(s.user_for_token("token-1", now).await.unwrap().is_none());
    s.set_user_disabled("bob", false, "root").await.unwrap();
    assert!(s
        .user_for_session("session-1", now)
        .await
        .unwrap()
        .is_some());
    let err = s
        .set_user_disabled("nobody", true, "root")
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::NotFound { what: "user", .. }));

    assert!(s.delete_session("session-1").await.unwrap());
    assert!(!s.delete_session("session-1").await.unwrap());
    assert!(s
        .user_for_session("session-1", now)
        .await
        .unwrap()
        .is_none());
    assert_eq!(
        s.audit_entries(10)
            .await
            .unwrap()
            .iter()
            .map(|e| e.action.as_str())
            .collect::<Vec<_>>(),
        ["user.enable", "user.disable", "user.login"]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_first_opens_of_one_sqlite_file_both_succeed() {
    for _ in 0..5 {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("switchboard.db");
        let key = DataKey::random();
        let (a, b) = tokio::join!(
            Store::open_sqlite(&path, key.clone()),
            Store::open_sqlite(&path, key.clone())
        );
        assert_eq!(
            a.unwrap().schema_versions().await.unwrap(),
            vec![1, 2, 3, 4, 5, 6, 7, 8, 9]
        );
        assert_eq!(
            b.unwrap().schema_versions().await.unwrap(),
            vec![1, 2, 3, 4, 5, 6, 7, 8, 9]
        );
    }
}

#[tokio::test]
async fn a_database_from_a_newer_version_is_refused_and_left_untouched() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("switchboard.db");
    let key = DataKey::random();
    let store = Store::open_sqlite(&path, key.clone()).await.unwrap();
    // What a later release's migration leaves behind.
    tamper(
        &store,
        "INSERT INTO _sqlx_migrations (version, description, success, checksum, execution_time) \
         VALUES (9999, 'from the future', 1, x'00', 0)",
    )
    .await;
    let before = schema(store.pool()).await;
    store.close().await;
    let err = Store::open_sqlite(&path, key).await.unwrap_err();
    assert!(
        matches!(
            err,
            StoreError::NewerSchema { database: 9999, known }
                if known == switchboard_store::known_schema()
        ),
        "{err}"
    );
    assert!(err.to_string().contains("newer switchboard"), "{err}");
    // Its content, not its bytes: closing connections checkpoints the log into the file.
    let pool = sqlx::AnyPool::connect(&format!("sqlite://{}", path.display()))
        .await
        .unwrap();
    assert_eq!(schema(&pool).await, before, "the database was changed");
}

/// The tables' definitions and the applied migrations.
async fn schema(pool: &sqlx::AnyPool) -> Vec<String> {
    use sqlx::Row;
    let rows = sqlx::query(
        "SELECT sql FROM sqlite_master WHERE sql IS NOT NULL \
         UNION ALL SELECT CAST(version AS TEXT) FROM _sqlx_migrations",
    )
    .fetch_all(pool)
    .await
    .unwrap();
    rows.iter().map(|r| r.get::<String, _>(0)).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_writers_wait_for_each_other() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("switchboard.db");
    let key = DataKey::random();
    let (a, b) = (
        Store::open_sqlite(&path, key.clone()).await.unwrap(),
        Store::open_sqlite(&path, key).await.unwrap(),
    );
    let mut tasks = Vec::new();
    for (i, s) in [a, b].into_iter().cycle().take(8).enumerate() {
        tasks.push(tokio::spawn(async move {
            let mut agent = acme(&[&format!("{i}000")]);
            agent.name = format!("agent{i}");
            s.upsert_agent(&agent).await
        }));
    }
    for t in tasks {
        t.await
            .unwrap()
            .expect("no \"database is locked\" between two writers");
    }
}

async fn caller_memory_is_kept_replaced_and_forgotten(s: &Store) {
    let agent = s.upsert_agent(&acme(&["1000"])).await.unwrap();
    let number = "+15551230009";
    assert_eq!(s.caller_memory(&agent, number).await.unwrap(), None);

    let first = new_call(number);
    s.insert_call(&first).await.unwrap();
    let memory = CallerMemory {
        agent_id: agent.clone(),
        caller_number: number.into(),
        summary: "The caller asked what a porcelain crown costs.".into(),
        updated_at: UnixMillis(1_700_000_010_000),
        last_call_id: Some(first.id.clone()),
    };
    s.remember_caller(&memory).await.unwrap();
    assert_eq!(
        s.caller_memory(&agent, number).await.unwrap(),
        Some(memory.clone())
    );
    assert_eq!(
        s.caller_memory(&agent, "+15550000000").await.unwrap(),
        None,
        "memory is per number"
    );

    // The next call from the number replaces the summary.
    let second = new_call(number);
    s.insert_call(&second).await.unwrap();
    let newer = CallerMemory {
        summary: "The caller booked a crown for Tuesday and asked for a callback.".into(),
        updated_at: UnixMillis(1_700_000_020_000),
        last_call_id: Some(second.id.clone()),
        ..memory.clone()
    };
    s.remember_caller(&newer).await.unwrap();
    assert_eq!(
        s.caller_memories(&agent).await.unwrap(),
        vec![newer.clone()]
    );

    s.forget_caller(&agent, number, "alice").await.unwrap();
    assert_eq!(s.caller_memory(&agent, number).await.unwrap(), None);
    let audit = s.audit_entries(10).await.unwrap();
    assert_eq!(audit.len(), 1);
    assert_eq!(
        (
            audit[0].actor.as_str(),
            audit[0].action.as_str(),
            audit[0].target.as_str()
        ),
        ("alice", "caller_memory.forget", "…09"),
        "the audit log names a number by its last two digits"
    );
    assert!(
        !audit[0].detail.contains("crown"),
        "the forgotten summary does not live on in the audit log"
    );
    let err = s.forget_caller(&agent, number, "alice").await.unwrap_err();
    assert!(matches!(err, StoreError::NotFound { .. }));
    assert_eq!(s.audit_entries(10).await.unwrap().len(), 1);
}

async fn a_caller_is_forgotten_by_every_agent(s: &Store) {
    let front = s.upsert_agent(&acme(&["1000"])).await.unwrap();
    let mut sales = acme(&["2000"]);
    sales.name = "sales".into();
    let sales = s.upsert_agent(&sales).await.unwrap();
    let number = "+15551230042";
    for (agent, summary) in [(&front, "Asked about crowns."), (&sales, "Wants a quote.")] {
        s.remember_caller(&CallerMemory {
            agent_id: agent.clone(),
            caller_number: number.into(),
            summary: summary.into(),
            updated_at: UnixMillis::now(),
            last_call_id: None,
        })
        .await
        .unwrap();
    }
    s.remember_caller(&CallerMemory {
        agent_id: front.clone(),
        caller_number: "+15550000001".into(),
        summary: "Someone else.".into(),
        updated_at: UnixMillis::now(),
        last_call_id: None,
    })
    .await
    .unwrap();
    assert_eq!(s.memories_of_caller(number).await.unwrap().len(), 2);

    assert_eq!(s.forget_caller_everywhere(number, "olga").await.unwrap(), 2);
    assert!(s.memories_of_caller(number).await.unwrap().is_empty());
    assert_eq!(
        s.memories_of_caller("+15550000001").await.unwrap().len(),
        1,
        "other callers are kept"
    );
    let audit = s.audit_entries(10).await.unwrap();
    assert_eq!(audit.len(), 1);
    assert_eq!(
        (
            audit[0].actor.as_str(),
            audit[0].action.as_str(),
            audit[0].target.as_str()
        ),
        ("olga", "caller_memory.forget", "…42")
    );
    let err = s
        .forget_caller_everywhere(number, "olga")
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::NotFound { .. }));
}

async fn calls_are_listed_newest_first_in_pages(s: &Store) {
    let mut ids = Vec::new();
    for i in 0..5 {
        let mut call = new_call("+15551230001");
        call.started_at = UnixMillis(1_700_000_000_000 + i * 1000);
        s.insert_call(&call).await.unwrap();
        ids.push(call.id);
    }
    let first = s.calls(None, 2, None).await.unwrap();
    assert_eq!(
        first.iter().map(|c| &c.id).collect::<Vec<_>>(),
        [&ids[4], &ids[3]]
    );
    let next = s.calls(Some(first[1].started_at), 10, None).await.unwrap();
    assert_eq!(
        next.iter().map(|c| &c.id).collect::<Vec<_>>(),
        [&ids[2], &ids[1], &ids[0]]
    );
}

async fn a_user_of_the_agent_role_sees_the_calls_of_its_agents_only(s: &Store) {
    let acme_id = s.upsert_agent(&acme(&["1000"])).await.unwrap();
    let other = s
        .upsert_agent(&Agent {
            id: AgentId::new(),
            name: "other".into(),
            ..acme(&["2000"])
        })
        .await
        .unwrap();
    let mut calls = Vec::new();
    for (i, agent) in [Some(&acme_id), Some(&other), None, Some(&acme_id)]
        .iter()
        .enumerate()
    {
        let mut call = new_call("+15551230001");
        call.agent_id = agent.cloned();
        call.started_at = UnixMillis(1_700_000_000_000 + i as i64 * 1000);
        s.insert_call(&call).await.unwrap();
        calls.push(call.id);
    }
    let ann = s
        .create_user("ann", "$argon2id$x", Role::Agent)
        .await
        .unwrap();
    let seen = |list: Vec<CallRecord>| list.into_iter().map(|c| c.id).collect::<Vec<_>>();
    assert!(
        seen(s.calls(None, 10, Some(&ann.id)).await.unwrap()).is_empty(),
        "a user assigned no agent sees no call"
    );
    s.set_user_agents("ann", &["acme".into(), "acme".into()], "olga")
        .await
        .unwrap();
    assert_eq!(s.user_agents(&ann.id).await.unwrap(), ["acme"]);
    assert_eq!(
        seen(s.calls(None, 10, Some(&ann.id)).await.unwrap()),
        [calls[3].clone(), calls[0].clone()]
    );
    assert_eq!(seen(s.calls(None, 10, None).await.unwrap()).len(), 4);
    s.set_user_agents("ann", &["other".into()], "olga")
        .await
        .unwrap();
    assert_eq!(
        seen(s.calls(None, 10, Some(&ann.id)).await.unwrap()),
        [calls[1].clone()]
    );
    let mut audit: Vec<(String, String, String)> = s
        .audit_entries(10)
        .await
        .unwrap()
        .into_iter()
        .map(|e| (e.action, e.target, e.detail))
        .collect();
    audit.sort();
    let entry = |agents: &str| ("user.agents".into(), "ann".into(), agents.into());
    assert_eq!(
        audit,
        [
            entry(r#"{"agents":["acme"]}"#),
            entry(r#"{"agents":["other"]}"#)
        ]
    );
    let err = s.set_user_agents("nobody", &[], "olga").await.unwrap_err();
    assert!(matches!(err, StoreError::NotFound { .. }));
}

const DAY: i64 = 86_400_000;
const T0: i64 = 1_700_000_000_000;

/// A call of `agent` from `from` that ended at `ended` (`None`: still up), with a turn, a
/// transcript line, a summary, a consent decision and, when given, a recording.
async fn ended_call(
    s: &Store,
    agent: Option<&AgentId>,
    from: &str,
    ended: Option<i64>,
    recording: Option<&str>,
) -> CallRecordId {
    let mut call = new_call(from);
    call.agent_id = agent.cloned();
    call.started_at = UnixMillis(ended.unwrap_or(T0) - 60_000);
    s.insert_call(&call).await.unwrap();
    let id = call.id;
    s.record_consent(&ConsentRecord {
        call_id: id.clone(),
        caller_number: from.into(),
        question: "May we record this call?".into(),
        answer_text: "yes".into(),
        decision: ConsentDecision::Yes,
        decided_at: call.started_at,
    })
    .await
    .unwrap();
    s.record_turn(
        &id,
        &Turn {
            seq: 1,
            started_at: call.started_at,
            caller_text: "My card number is 4111.".into(),
            agent_text: "Noted.".into(),
            interrupted: false,
            timings: TurnTimings::default(),
        },
    )
    .await
    .unwrap();
    s.append_transcript(
        &id,
        &TranscriptLine {
            seq: 1,
            at_ms: 0,
            speaker: Speaker::Caller,
            text: "My card number is 4111.".into(),
        },
    )
    .await
    .unwrap();
    if let Some(ended) = ended {
        let end = EndOfCall {
            recording_path: recording.map(str::to_owned),
            summary: Some("The caller gave a card number.".into()),
            ..EndOfCall::new(EndReason::CallerHungUp)
        };
        s.finish_call(&id, UnixMillis(ended), &end).await.unwrap();
    }
    id
}

async fn retention_removes_recordings_then_words_then_records(s: &Store) {
    let acme_id = s.upsert_agent(&acme(&["1000"])).await.unwrap();
    let other = s
        .upsert_agent(&Agent {
            id: AgentId::new(),
            name: "other".into(),
            ..acme(&["2000"])
        })
        .await
        .unwrap();
    let old = ended_call(
        s,
        Some(&acme_id),
        "+15550000001",
        Some(T0),
        Some("/r/old.sbrec"),
    )
    .await;
    let new = ended_call(s, Some(&acme_id), "+15550000002", Some(T0 + 10 * DAY), None).await;
    let open = ended_call(s, Some(&acme_id), "+15550000003", None, None).await;
    let others = ended_call(s, Some(&other), "+15550000004", Some(T0), None).await;
    let stray = ended_call(s, None, "+15550000005", Some(T0), None).await;
    s.remember_caller(&CallerMemory {
        agent_id: acme_id.clone(),
        caller_number: "+15550000001".into(),
        summary: "Gave a card number.".into(),
        updated_at: UnixMillis(T0),
        last_call_id: Some(old.clone()),
    })
    .await
    .unwrap();
    let acme = CallsOf::Agent(&acme_id);
    let cutoff = UnixMillis(T0 + DAY);

    // Recordings: only those this box holds.
    assert!(s
        .recordings_ended_before(acme, "box-b", cutoff)
        .await
        .unwrap()
        .is_empty());
    let files = s
        .recordings_ended_before(acme, "box-a", cutoff)
        .await
        .unwrap();
    assert_eq!(files, [(old.clone(), "/r/old.sbrec".to_owned())]);
    // A record whose recording is still on disk waits for it.
    assert_eq!(s.purge_calls(acme, cutoff, "acme").await.unwrap(), 0);
    assert!(s.call(&old).await.unwrap().is_some());
    s.forget_recording(&old).await.unwrap();

    // Words: transcript, turns, summary and the memory made from them; the record stays.
    assert_eq!(
        s.purge_transcripts(acme, cutoff, "acme").await.unwrap(),
        (1, 1)
    );
    assert!(s.transcript(&old).await.unwrap().is_empty());
    assert!(s.turns(&old).await.unwrap().is_empty());
    assert_eq!(s.end_of_call(&old).await.unwrap().unwrap().summary, None);
    assert!(s
        .caller_memory(&acme_id, "+15550000001")
        .await
        .unwrap()
        .is_none());
    assert_eq!(s.consent_log(&old).await.unwrap().len(), 1);
    assert_eq!(
        s.purge_transcripts(acme, cutoff, "acme").await.unwrap(),
        (0, 0),
        "done once"
    );
    for kept in [&new, &open, &others] {
        assert_eq!(
            s.transcript(kept).await.unwrap().len(),
            1,
            "newer, open and other agents' calls keep their words"
        );
    }

    // Records, with their consent decisions.
    assert_eq!(s.purge_calls(acme, cutoff, "acme").await.unwrap(), 1);
    assert!(s.call(&old).await.unwrap().is_none());
    assert!(s.consent_log(&old).await.unwrap().is_empty());
    for kept in [&new, &open, &others, &stray] {
        assert!(s.call(kept).await.unwrap().is_some());
    }
    assert_eq!(
        s.purge_calls(CallsOf::NoAgent, cutoff, "(no agent)")
            .await
            .unwrap(),
        1
    );
    assert!(s.call(&stray).await.unwrap().is_none());

    let mut purges: Vec<String> = s
        .audit_entries(10)
        .await
        .unwrap()
        .into_iter()
        .filter(|e| e.action == "retention.purge" && e.actor == "system")
        .map(|e| format!("{} {}", e.target, e.detail))
        .collect();
    purges.sort();
    assert_eq!(purges.len(), 3, "{purges:?}");
    assert!(
        purges[0].starts_with("(no agent) {\"calls\":1"),
        "{purges:?}"
    );
    assert!(s.verify_audit().await.unwrap().breaks.is_empty());
}

async fn a_caller_is_erased_everywhere_but_the_do_not_call_list(s: &Store) {
    let acme_id = s.upsert_agent(&acme(&["1000"])).await.unwrap();
    let number = "+15550007777";
    let first = ended_call(s, Some(&acme_id), number, Some(T0), Some("/r/a.sbrec")).await;
    // The same person, as a trunk that drops the `+` writes them.
    let second = ended_call(s, Some(&acme_id), "15550007777", Some(T0 + DAY), None).await;
    let someone_else = ended_call(s, Some(&acme_id), "+15550008888", Some(T0), None).await;
    s.remember_caller(&CallerMemory {
        agent_id: acme_id.clone(),
        caller_number: number.into(),
        summary: "Asked about whitening.".into(),
        updated_at: UnixMillis(T0),
        last_call_id: Some(first.clone()),
    })
    .await
    .unwrap();
    s.block_for_abuse(
        number,
        "abuse",
        &second,
        "system",
        UnixMillis(T0),
        std::time::Duration::from_secs(3600),
    )
    .await
    .unwrap();
    s.add_to_dnd(number, "caller asked", "olga").await.unwrap();
    let list = s.create_contact_list("spring").await.unwrap();
    let contact = |n: &str| NewContact {
        number: n.into(),
        name: Some("Pat".into()),
        time_zone: "UTC".into(),
        fields: "{}".into(),
    };
    s.add_contacts(&list, &[contact(number), contact("+15550008888")])
        .await
        .unwrap();

    let forms = [number.to_owned(), "15550007777".to_owned()];
    let recordings = s.recordings_of_caller(&forms).await.unwrap();
    assert_eq!(
        recordings,
        [(
            first.clone(),
            "/r/a.sbrec".to_owned(),
            Some("box-a".to_owned())
        )]
    );
    let erased = s.erase_caller(&forms, "root").await.unwrap();
    assert_eq!(
        erased,
        Erased {
            calls: 2,
            transcript_lines: 2,
            turns: 2,
            consent_entries: 2,
            memories: 1,
            blacklist_entries: 1,
            contacts: 1,
            kept_on_dnd: true,
        }
    );
    for gone in [&first, &second] {
        assert!(s.call(gone).await.unwrap().is_none());
        assert!(s.transcript(gone).await.unwrap().is_empty());
        assert!(s.consent_log(gone).await.unwrap().is_empty());
    }
    assert!(s.memories_of_caller(number).await.unwrap().is_empty());
    assert!(s.blacklist_entry(number).await.unwrap().is_none());
    assert!(
        s.is_do_not_call(number).await.unwrap(),
        "the do-not-call request outlives the erasure"
    );
    assert_eq!(s.contacts(&list).await.unwrap().len(), 1);
    assert_eq!(
        s.transcript(&someone_else).await.unwrap().len(),
        1,
        "other callers are kept"
    );
    let audit = s.audit_entries(10).await.unwrap();
    let entry = audit.iter().find(|e| e.action == "caller.erase").unwrap();
    assert_eq!(
        (entry.actor.as_str(), entry.target.as_str()),
        ("root", "…77")
    );
    assert!(
        !entry.detail.contains("7777"),
        "the audit log does not keep the number"
    );
    assert_eq!(s.erase_caller(&forms, "root").await.unwrap().calls, 0);
}

/// Every value of the sealed columns, as a copy of the database shows them.
async fn raw_personal_data(s: &Store) -> Vec<String> {
    let mut values = Vec::new();
    for (table, column) in [
        ("calls", "from_number"),
        ("calls", "to_number"),
        ("calls", "summary"),
        ("call_turns", "caller_text"),
        ("call_turns", "agent_text"),
        ("transcript_lines", "text"),
        ("consent_log", "caller_number"),
        ("consent_log", "answer_text"),
        ("caller_memory", "caller_number"),
        ("caller_memory", "summary"),
        ("blacklist", "number"),
        ("dnd", "number"),
        ("contacts", "number"),
        ("contacts", "name"),
    ] {
        let rows: Vec<Option<String>> =
            sqlx::query_scalar(&format!("SELECT {column} FROM {table}"))
                .fetch_all(s.pool())
                .await
                .unwrap();
        values.extend(rows.into_iter().flatten());
    }
    values
}

async fn personal_data_is_sealed_at_rest_and_found_by_number(s: &Store) {
    let acme_id = s.upsert_agent(&acme(&["1000"])).await.unwrap();
    let number = "+15550004321";
    let call = ended_call(s, Some(&acme_id), number, Some(T0), None).await;
    s.remember_caller(&CallerMemory {
        agent_id: acme_id.clone(),
        caller_number: number.into(),
        summary: "Asked about whitening.".into(),
        updated_at: UnixMillis(T0),
        last_call_id: Some(call.clone()),
    })
    .await
    .unwrap();
    s.block_for_abuse(
        number,
        "abuse",
        &call,
        "system",
        UnixMillis(T0),
        std::time::Duration::from_secs(3600),
    )
    .await
    .unwrap();
    s.add_to_dnd("+15550009876", "caller asked", "olga")
        .await
        .unwrap();
    let list = s.create_contact_list("spring").await.unwrap();
    s.add_contacts(
        &list,
        &[NewContact {
            number: number.into(),
            name: Some("Pat Quinlan".into()),
            time_zone: "UTC".into(),
            fields: r#"{"plan":"gold"}"#.into(),
        }],
    )
    .await
    .unwrap();

    let raw = raw_personal_data(s).await;
    assert_eq!(raw.len(), 14, "every sealed column holds a value: {raw:?}");
    for value in &raw {
        assert!(value.starts_with("sb1."), "stored in the clear: {value:?}");
        for secret in [
            "4321",
            "card number",
            "Noted",
            "whitening",
            "Quinlan",
            "9876",
        ] {
            assert!(!value.contains(secret), "{secret:?} readable in {value:?}");
        }
    }
    // Read back in the clear, and found by number.
    let record = s.call(&call).await.unwrap().unwrap();
    assert_eq!(
        (record.from_number.as_str(), record.to_number.as_str()),
        (number, "1000")
    );
    assert_eq!(
        s.transcript(&call).await.unwrap()[0].text,
        "My card number is 4111."
    );
    assert_eq!(s.turns(&call).await.unwrap()[0].agent_text, "Noted.");
    assert_eq!(s.consent_log(&call).await.unwrap()[0].answer_text, "yes");
    assert_eq!(
        s.end_of_call(&call)
            .await
            .unwrap()
            .unwrap()
            .summary
            .as_deref(),
        Some("The caller gave a card number.")
    );
    assert_eq!(
        s.caller_memory(&acme_id, number)
            .await
            .unwrap()
            .unwrap()
            .summary,
        "Asked about whitening."
    );
    assert_eq!(
        s.blacklist_entry(number).await.unwrap().unwrap().number,
        number
    );
    assert!(s.is_do_not_call("+15550009876").await.unwrap());
    assert!(!s.is_do_not_call("+15550009875").await.unwrap());
    assert_eq!(
        s.contacts(&list).await.unwrap()[0].name.as_deref(),
        Some("Pat Quinlan")
    );
    // The audit log names a number by its last two digits only.
    s.remove_from_blacklist(number, "olga").await.unwrap();
    let removal = s.audit_entries(1).await.unwrap().remove(0);
    assert_eq!(
        (removal.action.as_str(), removal.target.as_str()),
        ("blacklist.remove", "…21")
    );
}

/// A data key rotation: every sealed value, numbers and text, is sealed again under the next key,
/// and a number is still found by its sealed value, now the next key's.
async fn a_key_rotation_reseals_every_value_under_the_next_key(s: &Store) {
    personal_data_is_sealed_at_rest_and_found_by_number(s).await;
    let before = raw_personal_data(s).await;
    let next = DataKey::random();
    let resealed = s.reseal(&next).await.unwrap();
    let after = raw_personal_data(s).await;
    assert_eq!(after.len(), before.len());
    // `raw_personal_data` leaves out the columns that were empty; reseal counts what it sealed.
    assert!(resealed as usize >= after.len(), "{resealed} resealed");
    let prefix = format!("sb1.{}.", next.id());
    assert!(
        after.iter().all(|v| v.starts_with(&prefix)),
        "a value left under the old key: {after:?}"
    );
    let from: String = sqlx::query_scalar("SELECT from_number FROM calls")
        .fetch_one(s.pool())
        .await
        .unwrap();
    assert_eq!(from, next.seal_number("+15550004321"), "found by number");
    assert_eq!(next.open_number(&from).unwrap(), "+15550004321");
    let memory: String = sqlx::query_scalar("SELECT summary FROM caller_memory")
        .fetch_one(s.pool())
        .await
        .unwrap();
    assert_eq!(next.open_text(&memory).unwrap(), "Asked about whitening.");
}

/// Rows written before sealing existed are sealed when the store opens; a database sealed with
/// one key is refused to another, which would leave its rows unreadable.
#[tokio::test]
async fn rows_in_the_clear_are_sealed_at_open_and_another_key_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("switchboard.db");
    let key = DataKey::random();
    let s = Store::open_sqlite(&path, key.clone()).await.unwrap();
    tamper(
        &s,
        "INSERT INTO calls (id, sip_call_id, direction, from_number, to_number, started_at, \
         summary) VALUES ('old', 'x@y', 'inbound', '+15550001111', '1000', 1, 'Asked for a refund.')",
    )
    .await;
    tamper(&s, "INSERT INTO dnd (number, source, added_by, added_at) VALUES ('+15550002222', 'call', 'olga', 1)").await;
    // A database from before sealing has not done the pass yet.
    tamper(&s, "DELETE FROM store_flags").await;
    s.close().await;

    let s = Store::open_sqlite(&path, key.clone()).await.unwrap();
    let raw = raw_personal_data(&s).await;
    assert_eq!(raw.len(), 4);
    assert!(raw.iter().all(|v| v.starts_with("sb1.")), "{raw:?}");
    let old = s
        .call(&CallRecordId::from_string("old".into()))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(old.from_number, "+15550001111");
    assert!(s.is_do_not_call("+15550002222").await.unwrap());
    s.close().await;

    let err = Store::open_sqlite(&path, DataKey::random())
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::WrongKey { .. }), "{err}");
    assert!(err.to_string().contains(key.id()), "{err}");
}

/// Raw SQL as an attacker with access to the database would run it.
async fn tamper(s: &Store, sql: &str) {
    sqlx::query(sql).execute(s.pool()).await.unwrap();
}

async fn the_audit_chain_shows_edits_deletions_and_insertions(s: &Store) {
    for user in ["ann", "bob", "cy", "dee"] {
        s.audit("olga", "user.disable", user, "{}").await.unwrap();
    }
    let intact = s.verify_audit().await.unwrap();
    assert_eq!((intact.entries, intact.breaks.len()), (4, 0), "{intact:?}");
    assert_eq!(intact.head.as_ref().map(|h| h.0), Some(4));
    // Writers at once (several boxes on one PostgreSQL) take turns on the chain's head.
    let writers: Vec<_> = (0..8)
        .map(|n| {
            let s = s.clone();
            tokio::spawn(async move { s.audit("olga", "login", &format!("w{n}"), "{}").await })
        })
        .collect();
    for w in writers {
        w.await.unwrap().unwrap();
    }
    let intact = s.verify_audit().await.unwrap();
    assert_eq!((intact.entries, intact.breaks.len()), (12, 0), "{intact:?}");
    tamper(s, "DELETE FROM audit_log WHERE action = 'login'").await;
    tamper(s, "DELETE FROM audit_log WHERE seq > 4").await;

    tamper(s, "UPDATE audit_log SET actor = 'mallory' WHERE seq = 2").await;
    let edited = s.verify_audit().await.unwrap();
    assert!(
        edited.breaks.len() == 1 && edited.breaks[0].starts_with("entry 2 (user.disable bob)"),
        "{edited:?}"
    );
    tamper(s, "UPDATE audit_log SET actor = 'olga' WHERE seq = 2").await;
    assert!(s.verify_audit().await.unwrap().breaks.is_empty());

    tamper(s, "DELETE FROM audit_log WHERE seq = 3").await;
    let deleted = s.verify_audit().await.unwrap();
    assert!(
        deleted.breaks[0] == "entries 3 to 3 are missing: deleted"
            && deleted.breaks[1].starts_with("entry 4 "),
        "{deleted:?}"
    );

    tamper(
        s,
        "INSERT INTO audit_log (id, at, actor, action, target, detail) \
         VALUES ('forged', 1, 'olga', 'user.enable', 'mallory', '{}')",
    )
    .await;
    let inserted = s.verify_audit().await.unwrap();
    assert!(
        inserted
            .breaks
            .iter()
            .any(|b| b.contains("forged (user.enable mallory) is outside the chain")),
        "{inserted:?}"
    );
    // Appends go on from the chain's head whatever was done to it.
    s.audit("olga", "user.enable", "ann", "{}").await.unwrap();
    assert_eq!(s.verify_audit().await.unwrap().head.map(|h| h.0), Some(5));
}

/// Entries written before the chain existed are chained once, in order, when the store opens.
#[tokio::test]
async fn earlier_audit_entries_are_chained_at_open() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("switchboard.db");
    let key = DataKey::random();
    let s = Store::open_sqlite(&path, key.clone()).await.unwrap();
    for (n, user) in ["ann", "bob", "cy"].iter().enumerate() {
        tamper(
            &s,
            &format!(
                "INSERT INTO audit_log (id, at, actor, action, target, detail) \
                 VALUES ('old{n}', {n}, 'olga', 'user.add', '{user}', '{{}}')"
            ),
        )
        .await;
    }
    s.close().await;
    let s = Store::open_sqlite(&path, key).await.unwrap();
    let verdict = s.verify_audit().await.unwrap();
    assert_eq!(
        (verdict.entries, verdict.breaks.len()),
        (3, 0),
        "{verdict:?}"
    );
    s.audit("olga", "user.disable", "bob", "{}").await.unwrap();
    assert_eq!(s.verify_audit().await.unwrap().entries, 4);
    s.close().await;
}
