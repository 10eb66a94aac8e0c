//! RFC 4733 telephone-event payload, receiver and sender.

use media_rtp::telephone_event::{
    Digit, EventCode, TelephoneEvent, TelephoneEventReceiver, TelephoneEventSender,
};
use media_rtp::{Error, PayloadType, RtpPacket, RtpSender, SenderConfig, Ssrc};

#[test]
fn payload_layout_per_section_2_3() {
    // event=5, E=1, R=0, volume=10, duration=800: 05 8A 03 20
    let e = TelephoneEvent::parse(&[0x05, 0x8A, 0x03, 0x20]).unwrap();
    assert_eq!(
        e,
        TelephoneEvent {
            event: EventCode(5),
            end: true,
            volume: 10,
            duration: 800
        }
    );
    assert_eq!(e.to_bytes(), [0x05, 0x8A, 0x03, 0x20]);
    // The R bit is ignored on receipt (§2.3) and volume is 6 bits.
    let r = TelephoneEvent::parse(&[11, 0x7F, 0, 160]).unwrap();
    assert_eq!(
        (r.event.to_char(), r.end, r.volume, r.duration),
        (Some('#'), false, 63, 160)
    );
    assert_eq!(
        TelephoneEvent::parse(&[1, 2, 3]),
        Err(Error::TelephoneEventTooShort(3))
    );
}

#[test]
fn event_codes_per_section_3_2() {
    let all = "0123456789*#ABCD";
    for (i, c) in all.chars().enumerate() {
        assert_eq!(EventCode::from_char(c), Some(EventCode(i as u8)));
        assert_eq!(EventCode(i as u8).to_char(), Some(c));
    }
    assert_eq!(EventCode::from_char('d'), Some(EventCode(15)));
    assert_eq!(EventCode(16).to_char(), None); // flash
    assert_eq!(EventCode::from_char('x'), None);
}

#[test]
fn sender_produces_start_updates_and_three_ends() {
    // 100 ms digit '7' at 8 kHz with 20 ms updates.
    let packets: Vec<_> = TelephoneEventSender::new(EventCode(7), 10, 4000, 800, 160).collect();
    let durations: Vec<u16> = packets.iter().map(|p| p.event.duration).collect();
    assert_eq!(durations, vec![160, 320, 480, 640, 800, 800, 800]);
    let ends: Vec<bool> = packets.iter().map(|p| p.event.end).collect();
    assert_eq!(ends, vec![false, false, false, false, true, true, true]);
    assert!(packets[0].marker);
    assert!(packets[1..].iter().all(|p| !p.marker));
    assert!(packets
        .iter()
        .all(|p| p.timestamp == 4000 && p.event.volume == 10));
}

#[test]
fn receiver_one_digit_per_press_with_retransmitted_ends() {
    let mut rx = TelephoneEventReceiver::new();
    let mut digits = Vec::new();
    for ts in [1000u32, 3000] {
        for p in TelephoneEventSender::new(EventCode(1), 10, ts, 640, 160) {
            // Every packet is duplicated on the wire (RFC 4733 §2.5.1.4 redundancy-style resend).
            for _ in 0..2 {
                if let Some(d) = rx.handle(p.timestamp, &p.event.to_bytes()).unwrap() {
                    digits.push(d);
                }
            }
        }
    }
    assert_eq!(
        digits,
        vec![
            Digit {
                event: EventCode(1),
                timestamp: 1000
            },
            Digit {
                event: EventCode(1),
                timestamp: 3000
            }
        ]
    );
    assert!(!rx.is_active());
}

#[test]
fn receiver_lost_start_late_end_and_reordering() {
    let mut rx = TelephoneEventReceiver::new();
    let ev = |code, end, dur| {
        TelephoneEvent {
            event: EventCode(code),
            end,
            volume: 10,
            duration: dur,
        }
        .to_bytes()
    };
    // Start packet lost: the first update still yields the digit.
    assert_eq!(
        rx.handle(500, &ev(9, false, 320)).unwrap().map(|d| d.event),
        Some(EventCode(9))
    );
    assert!(rx.is_active());
    assert_eq!(rx.handle(500, &ev(9, true, 480)).unwrap(), None);
    // Next press begins; then a stale end of the previous one arrives late.
    assert!(rx.handle(2000, &ev(4, false, 160)).unwrap().is_some());
    assert_eq!(rx.handle(500, &ev(9, true, 480)).unwrap(), None);
    assert_eq!(rx.handle(2000, &ev(4, true, 320)).unwrap(), None);
    // Timestamps wrap: a press just after the wrap is newer.
    let mut rx = TelephoneEventReceiver::new();
    assert!(rx
        .handle(u32::MAX - 100, &ev(1, true, 160))
        .unwrap()
        .is_some());
    assert!(rx.handle(200, &ev(2, true, 160)).unwrap().is_some());
    assert_eq!(rx.handle(u32::MAX - 100, &ev(1, true, 160)).unwrap(), None);
}

#[test]
fn digit_through_rtp_sender_shares_sequence_space() {
    let mut tx = RtpSender::new(SenderConfig {
        ssrc: Ssrc(5),
        payload_type: PayloadType::PCMU,
        clock_rate: 8000,
        ptime_ms: 20,
        initial_sequence: 10,
        initial_timestamp: 0,
    });
    let audio = [0xFFu8; 160];
    let first = tx.next_packet(&audio).to_vec();
    let te = PayloadType::new(101).unwrap();
    let start_ts = tx.timestamp();
    let mut rx = TelephoneEventReceiver::new();
    let mut wire = Vec::new();
    for p in TelephoneEventSender::new(EventCode(3), 10, start_ts, 480, 160) {
        let bytes = p.event.to_bytes();
        wire.push(tx.packet_with(te, p.marker, p.timestamp, &bytes).to_vec());
        tx.skip(1);
    }
    let seqs: Vec<u16> = wire
        .iter()
        .map(|w| RtpPacket::parse(w).unwrap().sequence)
        .collect();
    assert_eq!(seqs, vec![11, 12, 13, 14, 15]);
    let digits: Vec<_> = wire
        .iter()
        .filter_map(|w| {
            let p = RtpPacket::parse(w).unwrap();
            rx.handle(p.timestamp, p.payload).unwrap()
        })
        .collect();
    assert_eq!(digits.len(), 1);
    assert_eq!(RtpPacket::parse(&first).unwrap().sequence, 10);
    let after = tx.next_packet(&audio);
    assert!(after.marker);
    assert_eq!(after.timestamp, 160 + 5 * 160);
}
