//! The per-call RTP session in virtual time: a call's worth of packets and seconds in
//! microseconds, with no socket. Each test plays the caller's side with its own sender.
#![allow(clippy::unwrap_used)] // reason: test code, where a panic is the failure report

use std::net::SocketAddr;
use std::time::{Duration, Instant, SystemTime};

use media_audio::g711::Law;
use media_rtp::rtcp::{self, RtcpPacket};
use media_rtp::sdp::Direction;
use media_rtp::session::{Event, RtpConfig, RtpSession, Socket, Transmit};
use media_rtp::telephone_event::{EventCode, TelephoneEvent};
use media_rtp::{Admission, Error, PayloadType, RtpPacket, RtpSender, SenderConfig, Ssrc};

const CALLER: &str = "192.0.2.10:4000";
const INJECTOR: &str = "198.51.100.9:4000";

fn addr(s: &str) -> SocketAddr {
    s.parse().unwrap()
}

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

/// A session under test, its clock, and everything it sent and reported.
struct Call {
    session: RtpSession,
    now: Instant,
    sent: Vec<(Instant, Transmit)>,
    events: Vec<Event>,
}

impl Call {
    fn new(config: RtpConfig) -> Call {
        Call::with_rtcp_socket(config, true)
    }

    fn with_rtcp_socket(config: RtpConfig, rtcp_socket: bool) -> Call {
        let now = Instant::now();
        Call {
            session: RtpSession::new(now, SystemTime::now(), config, rtcp_socket),
            now,
            sent: Vec::new(),
            events: Vec::new(),
        }
    }

    fn drain(&mut self) {
        while let Some(t) = self.session.poll_transmit() {
            self.sent.push((self.now, t));
        }
        while let Some(e) = self.session.poll_event() {
            self.events.push(e);
        }
    }

    /// Moves the clock on, waking the session whenever it asked to be.
    fn advance(&mut self, by: Duration) {
        let end = self.now + by;
        loop {
            let wake = self.session.poll_timeout();
            if wake > end {
                break;
            }
            self.now = wake.max(self.now);
            self.session.handle_timeout(self.now);
            self.drain();
        }
        self.now = end;
    }

    fn receive(&mut self, from: &str, bytes: &[u8]) {
        self.session
            .handle_datagram(self.now, Socket::Rtp, addr(from), bytes);
        self.drain();
    }

    /// RTP packets sent, in order.
    fn rtp(&self) -> Vec<(Instant, SocketAddr, RtpPacket<'_>)> {
        self.sent
            .iter()
            .filter(|(_, t)| t.socket == Socket::Rtp && RtpPacket::parse(&t.bytes).is_ok())
            .map(|(at, t)| (*at, t.to, RtpPacket::parse(&t.bytes).unwrap()))
            .collect()
    }

    /// RTCP compounds sent, with the socket and address.
    fn rtcp(&self) -> Vec<(Socket, SocketAddr, Vec<RtcpPacket<'_>>)> {
        self.sent
            .iter()
            .filter(|(_, t)| media_rtp::classify(&t.bytes) == media_rtp::PacketKind::Rtcp)
            .map(|(_, t)| (t.socket, t.to, rtcp::parse_compound(&t.bytes).unwrap()))
            .collect()
    }

    fn audio(&self) -> Vec<&Vec<i16>> {
        self.events
            .iter()
            .filter_map(|e| match e {
                Event::Audio(frame) => Some(frame),
                _ => None,
            })
            .collect()
    }
}

fn config() -> RtpConfig {
    let mut config = RtpConfig::new(Law::Mu, Some(addr(CALLER)), 7);
    config.rtcp_interval = Duration::from_secs(5);
    config
}

/// The caller's phone: PCMU packets of `ptime` ms.
fn phone(ssrc: u32, ptime_ms: u32) -> RtpSender {
    RtpSender::new(SenderConfig {
        ssrc: Ssrc(ssrc),
        payload_type: PayloadType::PCMU,
        clock_rate: 8000,
        ptime_ms,
        initial_sequence: 1000,
        initial_timestamp: 0,
    })
}

fn tone(samples: usize, amplitude: f64) -> Vec<i16> {
    (0..samples)
        .map(|i| {
            (amplitude * (i as f64 * 2.0 * std::f64::consts::PI * 440.0 / 8000.0).sin()) as i16
        })
        .collect()
}

fn rms(frame: &[i16]) -> f64 {
    (frame.iter().map(|&s| f64::from(s).powi(2)).sum::<f64>() / frame.len().max(1) as f64).sqrt()
}

#[test]
fn queued_audio_goes_out_paced_and_silence_fills_the_gaps() {
    let mut call = Call::new(config());
    let speech = tone(240, 8000.0);
    call.session.push_audio(&speech);
    call.advance(ms(1000));
    let rtp = call.rtp();
    // One packet every 20 ms from the start, for the whole second (the first at 0 ms).
    assert_eq!(rtp.len(), 51, "packets in a second");
    for pair in rtp.windows(2) {
        assert_eq!(pair[1].0 - pair[0].0, ms(20));
        assert_eq!(pair[1].2.sequence, pair[0].2.sequence.wrapping_add(1));
        assert_eq!(pair[1].2.timestamp, pair[0].2.timestamp.wrapping_add(160));
    }
    assert!(rtp
        .iter()
        .all(|(_, to, p)| *to == addr(CALLER) && p.payload.len() == 160));
    // The queued speech, then µ-law silence.
    let encoded: Vec<u8> = speech.iter().map(|&s| Law::Mu.encode(s)).collect();
    assert_eq!(rtp[0].2.payload, &encoded[..160]);
    assert_eq!(&rtp[1].2.payload[..80], &encoded[160..]);
    assert!(rtp[1].2.payload[80..]
        .iter()
        .all(|&b| b == Law::Mu.silence()));
    assert!(rtp[2].2.payload.iter().all(|&b| b == Law::Mu.silence()));
    assert_eq!(call.session.stats().samples_played, 240);
}

#[test]
fn a_new_ptime_changes_the_packet_size_and_keeps_the_stream() {
    let mut call = Call::new(config());
    call.advance(ms(100));
    let before = call.rtp().len();
    let mut renegotiated = config();
    renegotiated.ptime_ms = 40;
    call.session.update(call.now, renegotiated);
    call.advance(ms(400));
    let rtp = call.rtp();
    let after = &rtp[before..];
    assert_eq!(
        after.len(),
        11,
        "a 40 ms packet every 40 ms, at 0, 40, … 400 ms"
    );
    assert!(after.iter().all(|(_, _, p)| p.payload.len() == 320));
    assert_eq!(after[0].2.ssrc, rtp[0].2.ssrc);
    assert_eq!(
        after[0].2.sequence,
        rtp[before - 1].2.sequence.wrapping_add(1)
    );
}

#[test]
fn the_callers_packets_of_any_size_play_as_20ms_frames_and_a_loss_is_concealed() {
    let mut call = Call::new(config());
    let mut phone = phone(0xCA11, 40);
    let speech = tone(320, 6000.0);
    let payload: Vec<u8> = speech.iter().map(|&s| Law::Mu.encode(s)).collect();
    for i in 0..25 {
        let wire = phone.next_packet(&payload).to_vec();
        if i != 12 {
            call.receive(CALLER, &wire);
        }
        call.advance(ms(40));
    }
    let audio = call.audio();
    assert!(audio.iter().all(|f| f.len() == 160));
    // 25 packets of 40 ms are 50 frames; the jitter buffer holds back a few at the start.
    assert!((44..=50).contains(&audio.len()), "{} frames", audio.len());
    let loud = audio.iter().filter(|f| rms(f) > 1000.0).count();
    assert!(loud >= 40, "{loud} frames carry the caller's tone");
    let stats = call.session.stats();
    assert_eq!(stats.packets_received, 24);
    assert_eq!(stats.frames_concealed, 1);
    assert_eq!(stats.reception.unwrap().cumulative_lost, 1);
}

#[test]
fn media_from_another_host_is_refused_and_never_played() {
    let mut call = Call::new(config());
    let mut caller = phone(0xCA11, 20);
    let mut injector = phone(0xBAD, 20);
    let silence = vec![Law::Mu.silence(); 160];
    let shout: Vec<u8> = tone(160, 20000.0)
        .iter()
        .map(|&s| Law::Mu.encode(s))
        .collect();
    for _ in 0..50 {
        let wire = caller.next_packet(&silence).to_vec();
        call.receive(CALLER, &wire);
        let wire = injector.next_packet(&shout).to_vec();
        call.receive(INJECTOR, &wire);
        call.advance(ms(20));
    }
    assert!(call.audio().len() > 40);
    assert!(
        call.audio().iter().all(|f| rms(f) < 10.0),
        "injected audio played"
    );
    assert_eq!(call.session.stats().packets_refused, 50);
    let refusals: Vec<_> = call
        .events
        .iter()
        .filter(|e| matches!(e, Event::Refused { .. }))
        .collect();
    assert_eq!(
        refusals,
        [&Event::Refused {
            from: addr(INJECTOR),
            why: Admission::ForeignAddress,
            accepted: Some(addr(CALLER)),
        }],
        "reported once"
    );
    // The agent's audio still goes only to the caller.
    assert!(call.rtp().iter().all(|(_, to, _)| *to == addr(CALLER)));
}

#[test]
fn a_nat_port_of_the_callers_host_is_latched_in_the_first_seconds_only() {
    let nat = "192.0.2.10:31000";
    let mut early = Call::new(config());
    early.advance(ms(1000));
    let wire = phone(0xCA11, 20).next_packet(&[0xFF; 160]).to_vec();
    early.receive(nat, &wire);
    assert_eq!(early.events, [Event::Latched(addr(nat))]);
    early.advance(ms(100));
    let (_, to, _) = early.rtp().pop().unwrap();
    assert_eq!(to, addr(nat), "symmetric RTP: sent back where it came from");
    assert!(early.session.stats().latched);

    let mut late = Call::new(config());
    late.advance(ms(10_500));
    late.receive(nat, &wire);
    assert!(!late.events.iter().any(|e| matches!(e, Event::Latched(_))));
    assert_eq!(late.session.stats().packets_refused, 1);
    late.advance(ms(100));
    assert_eq!(late.rtp().pop().unwrap().1, addr(CALLER));
}

#[test]
fn hold_stops_the_packets_and_resume_continues_the_stream() {
    let mut call = Call::new(config());
    call.advance(ms(200));
    let sent = call.rtp().len();
    let (ssrc, sequence, timestamp) = {
        let rtp = call.rtp();
        let last = &rtp.last().unwrap().2;
        (last.ssrc, last.sequence, last.timestamp)
    };
    let mut held = config();
    held.direction = Direction::RecvOnly;
    call.session.update(call.now, held);
    call.advance(ms(1000));
    assert_eq!(call.rtp().len(), sent, "nothing sent while held");
    call.session.update(call.now, config());
    call.advance(ms(20));
    let rtp = call.rtp();
    let resumed = &rtp[sent].2;
    assert_eq!(resumed.ssrc, ssrc);
    assert_eq!(resumed.sequence, sequence.wrapping_add(1));
    // The timestamp kept time through the hold (RFC 3550 §5.1).
    let elapsed = resumed.timestamp.wrapping_sub(timestamp);
    assert!((8000..=8480).contains(&elapsed), "{elapsed} samples");
}

#[test]
fn rtcp_reports_on_schedule_and_says_bye_at_the_end() {
    let mut call = Call::new(config());
    call.advance(ms(12_000));
    let reports = call.rtcp();
    assert_eq!(reports.len(), 2, "one at 5 s, one at 10 s");
    for (socket, to, packets) in &reports {
        assert_eq!(*socket, Socket::Rtcp);
        assert_eq!(*to, addr("192.0.2.10:4001"), "RTCP on the port above RTP");
        assert!(matches!(packets[0], RtcpPacket::SenderReport(_)), "we sent");
        assert!(matches!(packets[1], RtcpPacket::SourceDescription(_)));
    }
    call.session.close(call.now);
    call.drain();
    let (_, _, last) = call.rtcp().pop().unwrap();
    assert!(matches!(last.last(), Some(RtcpPacket::Goodbye(_))));

    // With rtcp-mux, RTCP shares the RTP socket and address.
    let mut muxed = Call::with_rtcp_socket(config(), false);
    muxed.advance(ms(5_000));
    let (socket, to, _) = &muxed.rtcp()[0];
    assert_eq!((*socket, *to), (Socket::Rtp, addr(CALLER)));
}

#[test]
fn digits_go_out_as_rfc4733_events_and_come_in_once() {
    let mut call = Call::new(config());
    assert_eq!(
        call.session.send_digit('x', ms(100)),
        Err(Error::NotADigit('x'))
    );
    call.session.send_digit('5', ms(100)).unwrap();
    call.advance(ms(300));
    let events: Vec<TelephoneEvent> = call
        .rtp()
        .iter()
        .filter(|(_, _, p)| p.payload_type.get() == 101)
        .map(|(_, _, p)| TelephoneEvent::parse(p.payload).unwrap())
        .collect();
    assert!(events.len() >= 5);
    assert!(events
        .iter()
        .all(|e| e.event == EventCode::from_char('5').unwrap()));
    assert_eq!(
        events.iter().filter(|e| e.end).count(),
        3,
        "end sent three times"
    );
    assert_eq!(call.session.stats().digits_sent, 1);

    // The caller presses 7: three end packets with one timestamp are one press.
    let mut phone = phone(0xCA11, 20);
    let pt = PayloadType::new(101).unwrap();
    for (end, duration) in [
        (false, 160),
        (false, 320),
        (true, 480),
        (true, 480),
        (true, 480),
    ] {
        let event = TelephoneEvent {
            event: EventCode::from_char('7').unwrap(),
            end,
            volume: 10,
            duration,
        };
        let wire = phone
            .packet_with(pt, duration == 160, 8000, &event.to_bytes())
            .to_vec();
        call.receive(CALLER, &wire);
    }
    let digits: Vec<_> = call
        .events
        .iter()
        .filter(|e| matches!(e, Event::Digit(_)))
        .collect();
    assert_eq!(digits, [&Event::Digit('7')]);

    let mut no_events = config();
    no_events.telephone_event = None;
    let mut call = Call::new(no_events);
    assert_eq!(
        call.session.send_digit('5', ms(100)),
        Err(Error::NoTelephoneEvent)
    );
}

#[test]
fn barge_in_reports_how_much_of_the_reply_was_heard() {
    let mut call = Call::new(config());
    call.session.push_audio(&tone(1600, 8000.0));
    call.advance(ms(90)); // packets at 0, 20, 40, 60 and 80 ms
    let cleared = call.session.clear_outbound();
    assert_eq!((cleared.sent_samples, cleared.dropped_samples), (800, 800));
    call.advance(ms(20));
    let (_, _, next) = call.rtp().pop().unwrap();
    assert!(next.payload.iter().all(|&b| b == Law::Mu.silence()));
    assert_eq!(call.session.clear_outbound().sent_samples, 0);
}

#[test]
fn an_srtp_call_plays_only_what_the_callers_key_sealed() {
    use media_rtp::srtp::{Keying, MasterKey, Suite};
    let (our_key, their_key) = (MasterKey::new([1; 30]), MasterKey::new([2; 30]));
    let mut ours = config();
    ours.srtp = Some(Keying {
        suite: Suite::AesCm128HmacSha1_80,
        ours: our_key.clone(),
        theirs: their_key.clone(),
    });
    let mut call = Call::new(ours);
    // The caller's end: the same session type, keyed the other way round.
    let mut theirs = RtpConfig::new(Law::Mu, Some(addr("192.0.2.1:20000")), 99);
    theirs.srtp = Some(Keying {
        suite: Suite::AesCm128HmacSha1_80,
        ours: their_key,
        theirs: our_key,
    });
    let mut caller = Call::new(theirs);
    caller.session.push_audio(&tone(8000, 8000.0));
    let mut plain_phone = phone(0xBAD, 20);
    let shout: Vec<u8> = tone(160, 20000.0)
        .iter()
        .map(|&s| Law::Mu.encode(s))
        .collect();
    for _ in 0..50 {
        caller.advance(ms(20));
        for (_, t) in std::mem::take(&mut caller.sent) {
            if t.socket == Socket::Rtp
                && media_rtp::classify(&t.bytes) == media_rtp::PacketKind::Rtp
            {
                call.receive(CALLER, &t.bytes);
            }
        }
        // Plain RTP from the caller's own address: not sealed with the caller's key.
        let wire = plain_phone.next_packet(&shout).to_vec();
        call.receive(CALLER, &wire);
        call.advance(ms(20));
    }
    let audio = call.audio();
    assert!(audio.len() > 40);
    assert!(
        audio.iter().filter(|f| rms(f) > 1000.0).count() > 40,
        "the caller is heard"
    );
    assert!(
        audio.iter().all(|f| rms(f) < 12_000.0),
        "the injected shout is not"
    );
    let stats = call.session.stats();
    assert_eq!(stats.packets_unauthenticated, 50);
    assert!(call.events.iter().any(|e| matches!(
        e,
        Event::Unauthenticated {
            error: Error::SrtpAuthentication,
            ..
        }
    )));
    // What we send is sealed: the payload is not the µ-law silence it carries.
    let sent = call
        .sent
        .iter()
        .find(|(_, t)| t.socket == Socket::Rtp)
        .unwrap();
    let packet = RtpPacket::parse(&sent.1.bytes).unwrap();
    assert_eq!(
        packet.payload.len(),
        170,
        "160 bytes of audio and a 10-byte tag"
    );
    assert!(
        packet
            .payload
            .iter()
            .filter(|&&b| b == Law::Mu.silence())
            .count()
            < 20
    );
}
