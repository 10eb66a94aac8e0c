//! Two sessions over real loopback sockets.
#![allow(clippy::unwrap_used)] // reason: test code, where a panic is the failure report

use std::net::SocketAddr;
use std::time::Duration;

use media_net::{Law, MediaEvent, PortPool, RtpConfig, RtpSession, FRAME_SAMPLES};
use tokio::time::timeout;

const LIMIT: Duration = Duration::from_secs(20);

fn tone(freq: f64, samples: usize) -> Vec<i16> {
    (0..samples)
        .map(|n| (8000.0 * (2.0 * std::f64::consts::PI * freq * n as f64 / 8000.0).sin()) as i16)
        .collect()
}

fn rms(frame: &[i16]) -> f64 {
    (frame.iter().map(|&s| (s as f64).powi(2)).sum::<f64>() / frame.len() as f64).sqrt()
}

fn pair(pool: &PortPool, seed: u64) -> (RtpSession, RtpSession) {
    let a = pool.allocate().unwrap();
    let b = pool.allocate().unwrap();
    let addr = |port| SocketAddr::from(([127, 0, 0, 1], port));
    let a_config = RtpConfig::new(Law::Mu, Some(addr(b.port())), seed);
    let b_config = RtpConfig::new(Law::Mu, Some(addr(a.port())), seed + 1);
    (
        RtpSession::spawn(a, a_config, 500),
        RtpSession::spawn(b, b_config, 500),
    )
}

#[tokio::test]
async fn audio_and_digits_cross_and_barge_in_reports_what_was_sent() {
    let pool = PortPool::new("127.0.0.1".parse().unwrap(), 46000, 46099, false).unwrap();
    let (a, mut b) = pair(&pool, 10);
    a.handle.push_audio(tone(1000.0, 8000 * 30)).unwrap();
    // Wait until b hears the tone for 10 consecutive frames.
    let mut loud = 0;
    timeout(LIMIT, async {
        while loud < 10 {
            if let MediaEvent::Audio(frame) = b.events.recv().await.unwrap() {
                assert_eq!(frame.len(), FRAME_SAMPLES);
                loud = if rms(&frame) > 2000.0 { loud + 1 } else { 0 };
            }
        }
    })
    .await
    .expect("tone received");
    let cleared = a.handle.clear_outbound().await.unwrap();
    assert!(cleared.sent_samples >= 10 * FRAME_SAMPLES as u64);
    assert_eq!(
        cleared.sent_samples as usize + cleared.dropped_samples,
        8000 * 30
    );
    // After the clear, b hears silence again.
    timeout(LIMIT, async {
        let mut quiet = 0;
        while quiet < 10 {
            if let MediaEvent::Audio(frame) = b.events.recv().await.unwrap() {
                quiet = if rms(&frame) < 10.0 { quiet + 1 } else { 0 };
            }
        }
    })
    .await
    .expect("silence after clear_outbound");

    for d in ['1', '5', '#', '9'] {
        a.handle.send_digit(d, Duration::from_millis(100)).unwrap();
    }
    let digits = timeout(LIMIT, async {
        let mut digits = String::new();
        while digits.len() < 4 {
            if let MediaEvent::Digit(d) = b.events.recv().await.unwrap() {
                digits.push(d);
            }
        }
        digits
    })
    .await
    .expect("digits received");
    assert_eq!(digits, "15#9");
    let stats = b.handle.stats().await.unwrap();
    assert_eq!(stats.digits_received, 4);
    assert!(stats.frames_delivered > 20);
    assert!(stats.reception.is_some());
}

#[tokio::test]
async fn symmetric_rtp_latches_to_the_real_source() {
    let pool = PortPool::new("127.0.0.1".parse().unwrap(), 46100, 46199, true).unwrap();
    let a = pool.allocate().unwrap();
    let b = pool.allocate().unwrap();
    let a_port = a.port();
    // b believes a is somewhere else (a NAT rewrote the address).
    let wrong: SocketAddr = "127.0.0.1:9".parse().unwrap();
    let b_config = RtpConfig::new(Law::Mu, Some(wrong), 2);
    let a_config = RtpConfig::new(Law::Mu, Some(([127, 0, 0, 1], b.port()).into()), 1);
    let mut a = RtpSession::spawn(a, a_config, 500);
    let mut b = RtpSession::spawn(b, b_config, 500);
    let latched = timeout(LIMIT, async {
        loop {
            if let MediaEvent::Latched(to) = b.events.recv().await.unwrap() {
                return to;
            }
        }
    })
    .await
    .expect("b latches");
    assert_eq!(latched, SocketAddr::from(([127, 0, 0, 1], a_port)));
    // And now a receives b's stream.
    timeout(LIMIT, async {
        loop {
            if let MediaEvent::Audio(_) = a.events.recv().await.unwrap() {
                return;
            }
        }
    })
    .await
    .expect("a hears b after the latch");
    let stats = b.handle.stats().await.unwrap();
    assert!(stats.latched);
}

/// The receiving side of a raw socket: (payload sizes, timestamp steps, arrival gaps) of the
/// first `n` audio packets.
async fn capture(
    socket: &tokio::net::UdpSocket,
    n: usize,
) -> (Vec<usize>, Vec<u32>, Vec<Duration>) {
    let mut buf = [0u8; 2048];
    let (mut sizes, mut steps, mut gaps) = (Vec::new(), Vec::new(), Vec::new());
    let (mut last_ts, mut last_at) = (None, None);
    while sizes.len() < n {
        let (len, _) = socket.recv_from(&mut buf).await.unwrap();
        let packet = media_rtp::RtpPacket::parse(&buf[..len]).unwrap();
        if packet.payload_type != media_rtp::PayloadType::PCMU {
            continue;
        }
        let now = std::time::Instant::now();
        sizes.push(packet.payload.len());
        if let (Some(ts), Some(at)) = (last_ts, last_at) {
            steps.push(packet.timestamp.wrapping_sub(ts));
            gaps.push(now - at);
        }
        last_ts = Some(packet.timestamp);
        last_at = Some(now);
    }
    (sizes, steps, gaps)
}

#[tokio::test]
async fn outbound_packets_follow_the_negotiated_ptime() {
    let pool = PortPool::new("127.0.0.1".parse().unwrap(), 46200, 46299, false).unwrap();
    for ptime in [10u32, 30, 40] {
        let ours = pool.allocate().unwrap();
        let peer = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let mut config = RtpConfig::new(Law::Mu, Some(peer.local_addr().unwrap()), 3);
        config.ptime_ms = ptime;
        let session = RtpSession::spawn(ours, config, 500);
        let n = (1000 / ptime) as usize; // one second of packets
        let started = std::time::Instant::now();
        let (sizes, steps, _) = timeout(LIMIT, capture(&peer, n)).await.unwrap();
        let took = started.elapsed();
        let samples = (ptime * 8) as usize;
        assert!(
            sizes.iter().all(|&s| s == samples),
            "ptime {ptime}: {sizes:?}"
        );
        assert!(
            steps.iter().all(|&s| s == samples as u32),
            "ptime {ptime}: {steps:?}"
        );
        // Paced at ptime: n packets span (n - 1)·ptime, give or take a loaded machine.
        let expected = Duration::from_millis(u64::from(ptime) * (n as u64 - 1));
        assert!(
            took + Duration::from_millis(60) >= expected
                && took < expected * 2 + Duration::from_millis(500),
            "ptime {ptime}: {n} packets in {took:?}, expected about {expected:?}"
        );
        drop(session);
    }
}

#[tokio::test]
async fn inbound_packets_of_any_size_become_continuous_20ms_frames() {
    let pool = PortPool::new("127.0.0.1".parse().unwrap(), 46300, 46399, false).unwrap();
    for ptime in [10u32, 30, 40] {
        let ours = pool.allocate().unwrap();
        let our_port = ours.port();
        let peer = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let config = RtpConfig::new(Law::Mu, Some(peer.local_addr().unwrap()), 4);
        let mut session = RtpSession::spawn(ours, config, 1000);
        // A 1 kHz tone in `ptime` packets, paced in real time for 1.2 s.
        let to = SocketAddr::from(([127, 0, 0, 1], our_port));
        let sender = tokio::spawn(async move {
            send_tone(&peer, to, 1000.0, 77, ptime, (1200 / ptime) as usize).await;
        });
        // 40 frames (800 ms) of loud 20 ms frames in a row: no gaps, no concealment.
        let mut loud = 0;
        timeout(LIMIT, async {
            while loud < 40 {
                if let MediaEvent::Audio(frame) = session.events.recv().await.unwrap() {
                    assert_eq!(frame.len(), FRAME_SAMPLES);
                    loud = if rms(&frame) > 2000.0 { loud + 1 } else { 0 };
                }
            }
        })
        .await
        .unwrap_or_else(|_| panic!("ptime {ptime}: no continuous tone"));
        sender.await.unwrap();
        let stats = session.handle.stats().await.unwrap();
        assert_eq!(stats.frames_concealed, 0, "ptime {ptime}: {stats:?}");
        assert!(
            stats.frames_delivered >= u64::from(800 / ptime),
            "ptime {ptime}: {stats:?}"
        );
    }
}

/// Energy of `freq` in `frame` (Goertzel), relative to the frame's length.
fn energy_at(frame: &[i16], freq: f64) -> f64 {
    let k = 2.0 * (2.0 * std::f64::consts::PI * freq / 8000.0).cos();
    let (mut s1, mut s2) = (0.0, 0.0);
    for &x in frame {
        let s = x as f64 + k * s1 - s2;
        s2 = s1;
        s1 = s;
    }
    (s1 * s1 + s2 * s2 - k * s1 * s2).sqrt() / frame.len() as f64
}

/// `packets` of a `freq` tone from `socket` to `to`, one every `ptime` ms, as SSRC `ssrc`.
async fn send_tone(
    socket: &tokio::net::UdpSocket,
    to: SocketAddr,
    freq: f64,
    ssrc: u32,
    ptime: u32,
    packets: usize,
) {
    let samples = (ptime * 8) as usize;
    let audio = tone(freq, samples * packets);
    let mut ticker = tokio::time::interval(Duration::from_millis(u64::from(ptime)));
    for i in 0..packets {
        ticker.tick().await;
        let payload: Vec<u8> = audio[i * samples..(i + 1) * samples]
            .iter()
            .map(|&s| Law::Mu.encode(s))
            .collect();
        let packet = media_rtp::RtpPacket::new(
            media_rtp::PayloadType::PCMU,
            i as u16,
            (i * samples) as u32,
            media_rtp::Ssrc(ssrc),
            &payload,
        );
        socket.send_to(&packet.to_vec(), to).await.unwrap();
    }
}

/// Someone who can reach the box sends RTP into a live call: from another host before the
/// caller's first packet, from another port of the caller's host once the call is up, and as a
/// second SSRC from the caller's own address. The call plays the caller's tone and none of
/// theirs, and keeps sending to the caller.
#[tokio::test]
async fn injected_media_is_never_played() {
    const CALLER_HZ: f64 = 1000.0;
    const INJECTED_HZ: f64 = 2500.0;
    let pool = PortPool::new("127.0.0.1".parse().unwrap(), 46400, 46499, false).unwrap();
    let ours = pool.allocate().unwrap();
    let to: SocketAddr = ([127, 0, 0, 1], ours.port()).into();
    let caller = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let caller_addr = caller.local_addr().unwrap();
    let mut config = RtpConfig::new(Law::Mu, Some(caller_addr), 5);
    config.signalling_peer = Some(caller_addr.ip());
    let mut session = RtpSession::spawn(ours, config, 1000);

    // Another host (127.0.0.2 is loopback too, but not the caller's address) goes first.
    let other_host = tokio::net::UdpSocket::bind("127.0.0.2:0").await.unwrap();
    send_tone(&other_host, to, INJECTED_HZ, 666, 20, 10).await;
    let other_port = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let injections = async {
        tokio::time::sleep(Duration::from_millis(300)).await;
        tokio::join!(
            send_tone(&other_host, to, INJECTED_HZ, 666, 20, 50),
            send_tone(&other_port, to, INJECTED_HZ, 77, 20, 50),
            send_tone(&caller, to, INJECTED_HZ, 4242, 20, 50),
        );
    };
    let senders = async { tokio::join!(send_tone(&caller, to, CALLER_HZ, 77, 20, 75), injections) };
    // Every frame played while the senders run, and for a moment after.
    let mut frames = Vec::new();
    let collect = async {
        loop {
            if let MediaEvent::Audio(frame) = session.events.recv().await.unwrap() {
                frames.push(frame);
            }
        }
    };
    tokio::select! {
        _ = senders => {}
        () = collect => {}
    }
    let _ = timeout(Duration::from_millis(300), async {
        loop {
            if let MediaEvent::Audio(frame) = session.events.recv().await.unwrap() {
                frames.push(frame);
            }
        }
    })
    .await;

    let injected = frames
        .iter()
        .filter(|f| energy_at(f, INJECTED_HZ) > 500.0)
        .count();
    let heard = frames
        .iter()
        .filter(|f| energy_at(f, CALLER_HZ) > 1000.0)
        .count();
    assert_eq!(injected, 0, "frames with the injected tone");
    assert!(
        heard > 40,
        "the caller's tone in {heard} of {} frames",
        frames.len()
    );
    let stats = session.handle.stats().await.unwrap();
    assert!(stats.packets_refused >= 100, "{stats:?}");
    assert_eq!(
        stats.remote_rtp,
        Some(caller_addr),
        "still sending to the caller"
    );
    assert!(!stats.latched);
}
