//! Outbound campaigns through the real SIP stack to real peers (the test UA answering or only
//! ringing, sipp answering busy) and a real SQLite store, on the fake engines, in virtual time:
//! who is called, when, and what each attempt leaves.

use super::*;
use switchboard::config::TrunkConfig;
use switchboard::dialer::Dialer;
use switchboard::trunks::Trunks;
use switchboard_e2e::AnswerMode;
use switchboard_store::{
    AttemptRow, AttemptStatus, Campaign, CampaignId, CampaignStatus, Direction, NewContact,
    UnixMillis,
};

/// A campaign of the agent `desk` over the trunk `carrier`, calling `contacts` (number, zone)
/// every day from 09:00 to 17:00 in their zones, running.
async fn campaign(store: &Store, contacts: &[(&str, &str)], retry: &str) -> CampaignId {
    let list = store.create_contact_list("patients").await.unwrap();
    let contacts: Vec<NewContact> = contacts
        .iter()
        .map(|(number, zone)| NewContact {
            number: number.to_string(),
            name: None,
            time_zone: zone.to_string(),
            fields: "{}".into(),
        })
        .collect();
    store.add_contacts(&list, &contacts).await.unwrap();
    let agent = store.agent_by_name("desk").await.unwrap().unwrap();
    let id = CampaignId::new();
    store
        .create_campaign(&Campaign {
            id: id.clone(),
            name: "reminders".into(),
            agent_id: agent.id,
            list_id: list,
            trunk: "carrier".into(),
            status: CampaignStatus::Running,
            window_start: "09:00".into(),
            window_end: "17:00".into(),
            days: "mon,tue,wed,thu,fri,sat,sun".into(),
            holidays: String::new(),
            max_attempts: 5,
            retry_delay_s: 0,
            retry_policy: retry.into(),
            max_concurrent: 2,
            calls_per_minute: 0,
            caller_id: Some("+442071234567".into()),
            ring_timeout_s: 5,
        })
        .await
        .unwrap();
    id
}

/// Starts a dialer on `line`'s runtime, with the trunk `carrier` at `peer`.
async fn start_dialer(line: &Line, peer: std::net::SocketAddr) {
    let o = &line.outbound;
    let mut config = o.config.clone();
    let trunk: TrunkConfig = toml::from_str(&format!(
        "name = \"carrier\"\nproxy = \"sip:{peer}\"\noptions_interval = 0\n"
    ))
    .unwrap();
    config.trunks = vec![trunk];
    config.node = Some("box-a".into());
    let trunks = Trunks::start(&config, &o.sip).await;
    while trunks.route("carrier").await.is_none() {
        sleep(Duration::from_millis(50)).await;
    }
    let dialer = Dialer::new(
        &config,
        line.store.clone(),
        Arc::clone(&o.runtime),
        o.lines.clone(),
        trunks,
        Arc::clone(&o.capacity),
        "127.0.0.1".into(),
    );
    tokio::spawn(dialer.run());
}

/// The campaign's attempts once `done` holds for them (failing after a minute of virtual time).
async fn attempts_when(
    store: &Store,
    campaign: &CampaignId,
    done: impl Fn(&[AttemptRow]) -> bool,
) -> Vec<AttemptRow> {
    for _ in 0..600 {
        let rows = store.campaign_attempts(campaign).await.unwrap();
        if done(&rows) {
            return rows;
        }
        sleep(Duration::from_millis(100)).await;
    }
    panic!(
        "attempts never got there: {:?}",
        store.campaign_attempts(campaign).await.unwrap()
    );
}

fn of<'a>(rows: &'a [AttemptRow], number: &str) -> Vec<&'a AttemptRow> {
    rows.iter().filter(|r| r.number == number).collect()
}

/// An `Etc/GMT±N` zone where the local time is now `hour`:xx, or at least within the hour
/// either side of it (the zones span UTC-12 to UTC+14).
fn zone_at(hour: i64) -> String {
    let utc = jiff::Timestamp::now()
        .to_zoned_datetime(jiff::tz::TimeZone::UTC)
        .hour() as i64;
    let mut offset = (hour - utc).rem_euclid(24);
    if offset > 14 {
        offset -= 24;
    }
    // Etc/ zones count the other way: Etc/GMT-3 is UTC+3.
    match offset {
        0 => "Etc/GMT".into(),
        o if o > 0 => format!("Etc/GMT-{o}"),
        o => format!("Etc/GMT+{}", -o),
    }
}

const ANSWERS: &str = "+442079460958";
const ON_DND: &str = "+442079460959";
const ASLEEP: &str = "+12125550143";

#[tokio::test]
async fn a_campaign_calls_in_each_contacts_hours_and_never_a_do_not_call_number() {
    let mut line = Line::start(Script::replies([])).await;
    let store = line.store.clone();
    let (noon, midnight) = (zone_at(12), zone_at(0));
    let campaign = campaign(
        &store,
        &[(ANSWERS, &noon), (ON_DND, &noon), (ASLEEP, &midnight)],
        "busy=3/10m",
    )
    .await;
    // Queued while it could still be called; the person asks not to be before it is dialled.
    store
        .queue_first_attempts(&campaign, UnixMillis::now())
        .await
        .unwrap();
    store
        .add_to_dnd(ON_DND, "asked on a call", "olga")
        .await
        .unwrap();
    start_dialer(&line, line.ua.addr).await;

    // The contact whose day it is gets the agent, who speaks first.
    let call = line.ua.accepted().await;
    let heard = line.ua.hear(3200).await;
    assert!(
        switchboard_e2e::rms(&heard) > 100.0,
        "the agent said nothing"
    );
    sleep(Duration::from_secs(4)).await;
    line.ua.hang_up(call).await;
    let rows = attempts_when(&store, &campaign, |rows| {
        of(rows, ANSWERS)
            .iter()
            .any(|r| r.status == AttemptStatus::Answered)
            && of(rows, ON_DND)
                .iter()
                .any(|r| r.status == AttemptStatus::Done)
    })
    .await;
    let answered = of(&rows, ANSWERS);
    assert_eq!(answered.len(), 1, "{rows:?}");
    assert_eq!(answered[0].disposition.as_deref(), Some("answered"));
    let record = store
        .call(answered[0].call_id.as_ref().unwrap())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(record.direction, Direction::Outbound);
    assert_eq!(
        (record.from_number.as_str(), record.to_number.as_str()),
        ("+442071234567", ANSWERS)
    );
    assert_eq!(record.end_reason, Some(EndReason::CallerHungUp));
    assert!(record.answered_at.is_some());
    assert_eq!(line.agent_lines(&record.id).await, [GREETING]);

    // The DND number was never dialled: checked at dial time, its attempt is done, with no call.
    let dnd = of(&rows, ON_DND);
    assert_eq!(
        (dnd[0].disposition.as_deref(), dnd[0].call_id.as_ref()),
        (Some("do_not_call"), None)
    );
    // The contact in the middle of their night waits for 09:00 their time.
    let asleep = of(&rows, ASLEEP);
    assert_eq!(asleep.len(), 1);
    assert_eq!(asleep[0].status, AttemptStatus::Pending);
    let zone = jiff::tz::TimeZone::get(&midnight).unwrap();
    let local = jiff::Timestamp::from_millisecond(asleep[0].due_at.0)
        .unwrap()
        .to_zoned_datetime(zone);
    assert_eq!((local.hour(), local.minute()), (9, 0), "due {local}");
    let wait = asleep[0].due_at.0 - UnixMillis::now().0;
    assert!((0..=11 * 3600 * 1000).contains(&wait), "due in {wait} ms");
    let calls = store.calls(None, 10, None).await.unwrap();
    assert_eq!(calls.len(), 1, "one call placed: {calls:?}");
}

#[tokio::test]
async fn busy_and_unanswered_calls_are_tried_again_by_their_own_rules() {
    let line = Line::start(Script::replies([])).await;
    let store = line.store.clone();
    let dir = tempfile::tempdir().unwrap();
    let Some((sipp, port)) = switchboard_e2e::sipp_server("uas_busy.xml", 1, &[], dir.path())
    else {
        return;
    };
    let noon = zone_at(12);
    let campaign = campaign(&store, &[(ANSWERS, &noon)], "busy=3/10m,no_answer=2/1h").await;
    start_dialer(&line, ([127, 0, 0, 1], port).into()).await;
    let rows = attempts_when(&store, &campaign, |rows| rows.len() == 2).await;
    assert_eq!(
        (
            rows[0].attempt_no,
            rows[0].status,
            rows[0].disposition.as_deref()
        ),
        (1, AttemptStatus::Busy, Some("busy"))
    );
    let record = store
        .call(rows[0].call_id.as_ref().unwrap())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(record.end_reason, Some(EndReason::Unanswered));
    assert_eq!(
        (rows[1].attempt_no, rows[1].status),
        (2, AttemptStatus::Pending)
    );
    let wait = rows[1].due_at.0 - UnixMillis::now().0;
    assert!(
        (9 * 60_000..=10 * 60_000).contains(&wait),
        "the busy line is tried again in 10 minutes, not in {wait} ms"
    );
    let (status, log) = sipp.wait().await;
    assert_eq!(status, 0, "sipp: {log}");
}

#[tokio::test]
async fn a_phone_that_only_rings_is_given_up_at_the_ring_timeout() {
    let line = Line::start(Script::replies([])).await;
    let store = line.store.clone();
    let mut ringing = Ua::start(UaOptions {
        answer: AnswerMode::RingOnly,
        rtp_ports: (24000, 24999),
        ..UaOptions::default()
    })
    .await;
    let noon = zone_at(12);
    let campaign = campaign(&store, &[(ANSWERS, &noon)], "no_answer=2/1h").await;
    start_dialer(&line, ringing.addr).await;
    let call = ringing
        .expect("the INVITE", |e| match e {
            UaEvent::Incoming(c) => Some(*c),
            _ => None,
        })
        .await;
    let rang = tokio::time::Instant::now();
    ringing
        .expect("the CANCEL", |e| {
            matches!(e, UaEvent::Cancelled(c) if *c == call).then_some(())
        })
        .await;
    let rang = rang.elapsed();
    assert!(
        rang >= Duration::from_secs(4) && rang <= Duration::from_secs(7),
        "cancelled after {rang:?}, the ring timeout is 5 s"
    );
    let rows = attempts_when(&store, &campaign, |rows| rows.len() == 2).await;
    assert_eq!(
        (rows[0].status, rows[0].disposition.as_deref()),
        (AttemptStatus::NoAnswer, Some("no_answer"))
    );
    let wait = rows[1].due_at.0 - UnixMillis::now().0;
    assert!(
        (59 * 60_000..=60 * 60_000).contains(&wait),
        "retry in {wait} ms"
    );
}

/// A box that stopped mid-attempt does not dial the contact again at once, nor lose them: the
/// attempt ends `interrupted` and the retry rule for failures queues the next.
#[tokio::test]
async fn attempts_interrupted_by_a_stop_are_closed_and_retried_later() {
    let line = Line::start(Script::replies([])).await;
    let store = line.store.clone();
    let noon = zone_at(12);
    let campaign = campaign(&store, &[(ANSWERS, &noon)], "failed=3/15m").await;
    // The last run of box-a claimed the attempt, then died.
    store
        .queue_first_attempts(&campaign, UnixMillis(0))
        .await
        .unwrap();
    let claimed = store
        .claim_due_attempt(&campaign, "box-a", UnixMillis::now())
        .await
        .unwrap()
        .unwrap();
    start_dialer(&line, line.ua.addr).await;
    let rows = attempts_when(&store, &campaign, |rows| rows.len() == 2).await;
    assert_eq!(rows[0].id, claimed.id);
    assert_eq!(
        (rows[0].status, rows[0].disposition.as_deref()),
        (AttemptStatus::Failed, Some("interrupted"))
    );
    assert_eq!(
        (rows[1].attempt_no, rows[1].status),
        (2, AttemptStatus::Pending)
    );
    let wait = rows[1].due_at.0 - UnixMillis::now().0;
    assert!(
        (14 * 60_000..=15 * 60_000).contains(&wait),
        "retry in {wait} ms"
    );
}
