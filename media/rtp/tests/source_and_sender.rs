//! Source validation (RFC 3550 A.1), loss (A.3), jitter (A.8), the sender and pacing.

use std::time::{Duration, Instant};

use media_rtp::{Pacer, PayloadType, RtpSender, SenderConfig, SequenceOutcome, SourceState, Ssrc};

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

#[test]
fn probation_then_valid() {
    let t0 = Instant::now();
    let mut s = SourceState::new(Ssrc(1), 8000, 1000);
    assert_eq!(s.update(1000, 0, t0), SequenceOutcome::Probation);
    assert!(!s.is_valid());
    assert_eq!(
        s.update(1001, 160, t0 + ms(20)),
        SequenceOutcome::Valid(1001)
    );
    assert!(s.is_valid());
    assert_eq!(s.stats().received, 1);
    assert_eq!(s.stats().expected, 1);
}

#[test]
fn probation_restarts_on_out_of_order() {
    let t0 = Instant::now();
    let mut s = SourceState::new(Ssrc(1), 8000, 10);
    assert_eq!(s.update(10, 0, t0), SequenceOutcome::Probation);
    assert_eq!(s.update(50, 0, t0), SequenceOutcome::Probation);
    assert_eq!(s.update(51, 0, t0), SequenceOutcome::Valid(51));
}

#[test]
fn sequence_wrap_extends() {
    let t0 = Instant::now();
    let mut s = SourceState::new(Ssrc(1), 8000, 65534);
    s.update(65534, 0, t0);
    assert_eq!(s.update(65535, 160, t0), SequenceOutcome::Valid(65535));
    assert_eq!(s.update(0, 320, t0), SequenceOutcome::Valid(65536));
    assert_eq!(s.update(1, 480, t0), SequenceOutcome::Valid(65537));
    // A reordered packet from before the wrap keeps its old cycle.
    assert_eq!(s.update(65535, 160, t0), SequenceOutcome::Valid(65535));
    assert_eq!(s.stats().extended_highest, 65537);
}

#[test]
fn large_jump_needs_two_sequential_packets() {
    let t0 = Instant::now();
    let mut s = SourceState::new(Ssrc(1), 8000, 100);
    s.update(100, 0, t0);
    s.update(101, 0, t0);
    assert_eq!(s.update(30000, 0, t0), SequenceOutcome::Jump);
    assert_eq!(s.update(30001, 0, t0), SequenceOutcome::Restarted(30001));
    assert_eq!(s.update(30002, 0, t0), SequenceOutcome::Valid(30002));
}

#[test]
fn loss_and_fraction_in_report_block() {
    let t0 = Instant::now();
    let mut s = SourceState::new(Ssrc(9), 8000, 0);
    s.update(0, 0, t0);
    // Sequence 1..=100 with 5, 15, …, 95 dropped: 90 received of 100 expected.
    for seq in 1..=100u16 {
        if seq % 10 != 5 {
            s.update(seq, seq as u32 * 160, t0 + ms(seq as u64 * 20));
        }
    }
    let stats = s.stats();
    assert_eq!(stats.expected, 100);
    assert_eq!(stats.received, 90);
    assert_eq!(stats.cumulative_lost, 10);
    let block = s.report_block(t0 + ms(2000));
    assert_eq!(block.ssrc, Ssrc(9));
    assert_eq!(block.fraction_lost, (10 * 256 / 100) as u8);
    assert_eq!(block.cumulative_lost, 10);
    assert_eq!(block.highest_sequence, 100);
    assert_eq!(block.jitter, 0, "perfectly paced arrivals have no jitter");
    // Next interval: 10 more, none lost.
    for seq in 101..=110u16 {
        s.update(seq, seq as u32 * 160, t0 + ms(seq as u64 * 20));
    }
    let block = s.report_block(t0 + ms(3000));
    assert_eq!(block.fraction_lost, 0);
    assert_eq!(block.cumulative_lost, 10);
}

#[test]
fn jitter_converges_to_alternating_delay() {
    let t0 = Instant::now();
    let mut s = SourceState::new(Ssrc(1), 8000, 0);
    // Arrivals alternate 0 and 10 ms late: |D| = 80 timestamp units every packet.
    for seq in 0..2000u16 {
        let late = if seq % 2 == 0 { 0 } else { 10 };
        s.update(seq, seq as u32 * 160, t0 + ms(seq as u64 * 20 + late));
    }
    let j = s.stats().jitter;
    assert!((75..=80).contains(&j), "jitter {j}");
    assert!((s.jitter().as_micros() as i64 - 10_000).abs() < 700);
}

#[test]
fn lsr_and_dlsr() {
    let t0 = Instant::now();
    let mut s = SourceState::new(Ssrc(1), 8000, 0);
    s.on_sender_report(0x0011_2233_4455_6677, t0);
    let block = s.report_block(t0 + ms(500));
    assert_eq!(block.last_sender_report, 0x2233_4455);
    assert_eq!(block.delay_since_last_sender_report, 32768);
}

fn sender() -> RtpSender {
    RtpSender::new(SenderConfig {
        ssrc: Ssrc(0xABCD),
        payload_type: PayloadType::PCMA,
        clock_rate: 8000,
        ptime_ms: 20,
        initial_sequence: 65534,
        initial_timestamp: u32::MAX - 159,
    })
}

#[test]
fn sender_continuity_and_marker() {
    let mut tx = sender();
    let payload = [0xD5u8; 160];
    let p1 = tx.next_packet(&payload);
    assert!(p1.marker);
    assert_eq!((p1.sequence, p1.timestamp), (65534, u32::MAX - 159));
    let p2 = tx.next_packet(&payload);
    assert!(!p2.marker);
    assert_eq!((p2.sequence, p2.timestamp), (65535, 0));
    // Silence for 3 packet times, then a new talkspurt.
    tx.skip(3);
    let p3 = tx.next_packet(&payload);
    assert!(p3.marker);
    assert_eq!((p3.sequence, p3.timestamp), (0, 160 * 4));
    let info = tx.sender_info(1 << 32, p3.timestamp);
    assert_eq!((info.packet_count, info.octet_count), (3, 480));
}

#[test]
fn pacer_is_drift_free_and_caps_bursts() {
    let t0 = Instant::now();
    let mut pacer = Pacer::new(t0, ms(20));
    assert_eq!(pacer.poll_timeout(), t0);
    assert_eq!(pacer.handle_timeout(t0, 3), 1);
    assert_eq!(pacer.handle_timeout(t0 + ms(5), 3), 0);
    assert_eq!(pacer.poll_timeout(), t0 + ms(20));
    // Woken 3 ms late: one packet, and the next deadline stays on the 20 ms grid.
    assert_eq!(pacer.handle_timeout(t0 + ms(23), 3), 1);
    assert_eq!(pacer.poll_timeout(), t0 + ms(40));
    // A 200 ms stall: 10 due, at most 3 sent, grid kept.
    assert_eq!(pacer.handle_timeout(t0 + ms(225), 3), 3);
    assert_eq!(pacer.poll_timeout(), t0 + ms(240));
}
