//! Two sessions over real loopback sockets.
#![allow(clippy::unwrap_used)] // reason: test code, where a panic is the failure report

use std::net::SocketAddr;
use std::time::Duration;

use media_net::{Law, MediaEvent, PortPool, RtpSession, SessionConfig, FRAME_SAMPLES};
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
    let a_config = SessionConfig::new(Law::Mu, Some(addr(b.port())), seed);
    let b_config = SessionConfig::new(Law::Mu, Some(addr(a.port())), seed + 1);
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
            match b.events.recv().await.unwrap() {
                MediaEvent::Audio(frame) => {
                    assert_eq!(frame.len(), FRAME_SAMPLES);
                    loud = if rms(&frame) > 2000.0 { loud + 1 } else { 0 };
                }
                _ => {}
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
    let b_config = SessionConfig::new(Law::Mu, Some(wrong), 2);
    let a_config = SessionConfig::new(Law::Mu, Some(([127, 0, 0, 1], b.port()).into()), 1);
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
