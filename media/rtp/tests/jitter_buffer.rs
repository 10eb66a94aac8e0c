//! Jitter buffer behaviour in virtual time.

use std::time::{Duration, Instant};

use media_rtp::{JitterBuffer, JitterConfig, PayloadType, Playout, PushOutcome, RtpPacket, Ssrc};

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

fn pkt(seq: u16, ts: u32, ssrc: u32, payload: &[u8]) -> RtpPacket<'_> {
    RtpPacket::new(PayloadType::PCMU, seq, ts, Ssrc(ssrc), payload)
}

fn played(out: &Playout) -> Option<u16> {
    match out {
        Playout::Frame(f) => Some(f.sequence),
        _ => None,
    }
}

#[test]
fn reorders_drops_duplicates_and_reports_loss() {
    let t0 = Instant::now();
    let mut jb = JitterBuffer::new(JitterConfig::default());
    let data = [0u8; 160];
    // Arrival order: 0, 2, 1, 1 (dup), 4 (3 lost), all within the initial delay.
    assert_eq!(jb.push(&pkt(0, 0, 1, &data), t0), PushOutcome::Queued);
    assert_eq!(
        jb.push(&pkt(2, 320, 1, &data), t0 + ms(1)),
        PushOutcome::Queued
    );
    assert_eq!(
        jb.push(&pkt(1, 160, 1, &data), t0 + ms(2)),
        PushOutcome::Queued
    );
    assert_eq!(
        jb.push(&pkt(1, 160, 1, &data), t0 + ms(3)),
        PushOutcome::Duplicate
    );
    assert_eq!(
        jb.push(&pkt(4, 640, 1, &data), t0 + ms(4)),
        PushOutcome::Queued
    );
    assert_eq!(jb.pop(t0), Playout::Buffering);
    let target = jb.stats().target_delay;
    let start = t0 + target;
    let outs: Vec<Playout> = (0..5).map(|i| jb.pop(start + ms(20 * i))).collect();
    assert_eq!(
        outs.iter().map(played).collect::<Vec<_>>(),
        vec![Some(0), Some(1), Some(2), None, Some(4)]
    );
    assert_eq!(
        outs[3],
        Playout::Lost {
            timestamp: 480,
            duration: 160
        }
    );
    // Packet 3 arrives after its tick: too late.
    assert_eq!(
        jb.push(&pkt(3, 480, 1, &data), start + ms(100)),
        PushOutcome::TooLate
    );
    let s = jb.stats();
    assert_eq!((s.played, s.lost, s.late, s.duplicates), (4, 1, 1, 1));
}

#[test]
fn steady_stream_plays_every_tick_across_timestamp_wrap() {
    let t0 = Instant::now();
    let mut jb = JitterBuffer::new(JitterConfig::default());
    let data = [1u8; 160];
    let base = u32::MAX - 160 * 10 + 1;
    let mut seqs = Vec::new();
    for i in 0..100u32 {
        let now = t0 + ms(20 * i as u64);
        jb.push(&pkt(i as u16, base.wrapping_add(160 * i), 7, &data), now);
        if let Some(s) = played(&jb.pop(now + ms(1))) {
            seqs.push(s);
        }
    }
    // All frames in order after the initial buffering, no loss.
    assert!(seqs.len() >= 95, "{}", seqs.len());
    assert!(seqs.windows(2).all(|w| w[1] == w[0] + 1));
    assert_eq!(jb.stats().lost, 0);
}

#[test]
fn ssrc_change_and_timestamp_jump_reset() {
    let t0 = Instant::now();
    let mut jb = JitterBuffer::new(JitterConfig::default());
    let data = [0u8; 160];
    jb.push(&pkt(0, 0, 1, &data), t0);
    assert_eq!(
        jb.push(&pkt(500, 99_999, 2, &data), t0 + ms(20)),
        PushOutcome::Reset
    );
    assert_eq!(jb.len(), 1);
    // A jump of more than 10 s of timestamps on the same SSRC.
    assert_eq!(
        jb.push(&pkt(501, 99_999 + 8000 * 60, 2, &data), t0 + ms(40)),
        PushOutcome::Reset
    );
    assert_eq!(jb.stats().resets, 2);
    let out = jb.pop(t0 + ms(40) + jb.stats().target_delay);
    assert_eq!(played(&out), Some(501));
}

#[test]
fn target_delay_adapts_to_jitter_and_rebuffers_after_silence() {
    let t0 = Instant::now();
    let cfg = JitterConfig::default();
    let mut jb = JitterBuffer::new(cfg);
    let data = [0u8; 160];
    // Arrivals alternate 0 and 30 ms late: jitter ≈ 30 ms, target ≈ 20 + 90 = 110 ms.
    for i in 0..200u32 {
        let late = if i % 2 == 0 { 0 } else { 30 };
        jb.push(
            &pkt(i as u16, 160 * i, 1, &data),
            t0 + ms(20 * i as u64 + late),
        );
    }
    let s = jb.stats();
    assert!(s.jitter > ms(25) && s.jitter <= ms(30), "{:?}", s.jitter);
    assert!(
        s.target_delay > ms(90) && s.target_delay <= ms(110),
        "{:?}",
        s.target_delay
    );
    // Bounded by max_delay.
    let mut jb = JitterBuffer::new(cfg);
    for i in 0..200u32 {
        let late = if i % 2 == 0 { 0 } else { 150 };
        jb.push(
            &pkt(i as u16, 160 * i, 1, &data),
            t0 + ms(20 * i as u64 + late),
        );
    }
    assert_eq!(jb.stats().target_delay, cfg.max_delay);

    // Silence: after max_concealed empty ticks the buffer goes back to buffering.
    let mut jb = JitterBuffer::new(cfg);
    jb.push(&pkt(0, 0, 1, &data), t0);
    let start = t0 + jb.stats().target_delay;
    assert!(played(&jb.pop(start)).is_some());
    let outs: Vec<Playout> = (1..=7).map(|i| jb.pop(start + ms(20 * i))).collect();
    assert_eq!(
        outs.iter()
            .filter(|o| matches!(o, Playout::Lost { .. }))
            .count(),
        5
    );
    assert_eq!(outs[6], Playout::Buffering);
}

#[test]
fn capacity_bounds_memory() {
    let t0 = Instant::now();
    let cfg = JitterConfig {
        capacity: 10,
        ..JitterConfig::default()
    };
    let mut jb = JitterBuffer::new(cfg);
    let data = [0u8; 160];
    for i in 0..30u32 {
        jb.push(&pkt(i as u16, 160 * i, 1, &data), t0);
    }
    assert_eq!(jb.len(), 10);
    assert_eq!(jb.stats().overflow, 20);
}

/// Plays a stream of `ptime`-ms G.711 packets (every `lose`-th missing) the way the session
/// does: per 20 ms tick, pop until 160 samples are had. Returns (samples played, ticks lost).
fn play_stream(ptime: u32, lose: Option<u32>) -> (usize, u64, JitterBuffer) {
    let t0 = Instant::now();
    let mut jb = JitterBuffer::new(JitterConfig {
        timestamp_units_per_byte: 1,
        ..JitterConfig::default()
    });
    let samples = (ptime * 8) as usize;
    let data = vec![0u8; samples];
    let packets = 2000 / ptime; // two seconds
    let mut pending = 0usize; // samples decoded but not yet played
    let mut played_samples = 0usize;
    let mut next_packet = 0u32;
    // Until the last packet has been played (after it the buffer would conceal a few empty
    // ticks, as at the end of any talkspurt).
    for tick in 0..200u64 {
        if jb.stats().played + jb.stats().lost >= u64::from(packets) && next_packet == packets {
            break;
        }
        let now = t0 + ms(20 * tick);
        // Everything sent up to now has arrived.
        while next_packet < packets && u64::from(next_packet * ptime) <= 20 * tick {
            let i = next_packet;
            next_packet += 1;
            if lose.is_some_and(|n| i % n == n - 1) {
                continue;
            }
            jb.push(&pkt(i as u16, i * ptime * 8, 1, &data), now);
        }
        while pending < 160 {
            match jb.pop(now) {
                Playout::Frame(f) => pending += f.payload.len(),
                Playout::Lost { duration, .. } => pending += duration as usize,
                Playout::Buffering => break,
            }
        }
        if pending >= 160 {
            pending -= 160;
            played_samples += 160;
        }
    }
    (played_samples, jb.stats().lost, jb)
}

#[test]
fn packets_of_any_ptime_play_without_gaps() {
    for ptime in [10, 20, 30, 40] {
        let (played, lost, jb) = play_stream(ptime, None);
        let stats = jb.stats();
        assert_eq!(lost, 0, "ptime {ptime}: {stats:?}");
        assert_eq!(stats.late + stats.overflow, 0, "ptime {ptime}: {stats:?}");
        // Two seconds sent; playout started after the target delay and ran to the end.
        assert!(played >= 15_000, "ptime {ptime}: {played} samples played");
        assert_eq!(
            stats.played,
            u64::from(2000 / ptime),
            "ptime {ptime}: all packets played"
        );
    }
}

#[test]
fn a_lost_packet_of_any_ptime_is_concealed_and_playout_carries_on() {
    for ptime in [10, 30, 40] {
        let (played, lost, jb) = play_stream(ptime, Some(7));
        let stats = jb.stats();
        assert!(lost >= 1, "ptime {ptime}: {stats:?}");
        assert_eq!(stats.late, 0, "ptime {ptime}: {stats:?}");
        assert!(played >= 15_000, "ptime {ptime}: {played} samples played");
        let sent = 2000 / ptime;
        assert_eq!(
            stats.played,
            u64::from(sent - sent / 7),
            "ptime {ptime}: {stats:?}"
        );
    }
}
