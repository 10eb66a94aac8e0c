//! The e2e UA as a standalone UAS for load runs (see `load/sipp_200cps.sh`):
//! answers every call, plays a tone, counts what it hears.
//!
//! Usage: `e2e-uas <sip-port>`; prints `listening <addr>` and a count of
//! ended calls every 5 s.

use std::time::Duration;

use switchboard_e2e::{tone, Ua, UaEvent, UaOptions};

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let port: u16 = std::env::args()
        .nth(1)
        .and_then(|p| p.parse().ok())
        .unwrap_or(5080);
    let options = UaOptions {
        play: tone(440.0, 6000.0, 8000 * 2),
        sip_port: port,
        ..UaOptions::default()
    };
    let mut ua = Ua::start(options).await;
    println!("listening {}", ua.addr);
    let (mut ended, mut frames) = (0u64, 0u64);
    let mut report = tokio::time::interval(Duration::from_secs(5));
    loop {
        tokio::select! {
            event = ua.next() => match event {
                Some(UaEvent::Ended { .. }) => ended += 1,
                Some(UaEvent::Audio { .. }) => frames += 1,
                Some(_) => {}
                None => return,
            },
            _ = report.tick() => println!("calls ended {ended}, frames received {frames}"),
        }
    }
}
