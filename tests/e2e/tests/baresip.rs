//! Our UA against baresip running headless: audio from a WAV file (aufile),
//! what it receives dumped to WAV by the sndfile filter, no sound card
//! (aubridge as the player).
#![allow(clippy::unwrap_used)] // reason: test code, where a panic is the failure report

use std::path::{Path, PathBuf};
use std::time::Duration;

use switchboard_e2e::{
    free_port, goertzel, read_wav, rms, tone, write_wav, Peer, Ua, UaEvent, UaOptions, DEADLINE,
};

const OUR_TONE: f64 = 1000.0;
const THEIR_TONE: f64 = 600.0;

fn configure(dir: &Path, sip_port: u16) {
    configure_account(dir, sip_port, "");
}

/// `params`: more account parameters (`;mediaenc=srtp-mand`).
fn configure_account(dir: &Path, sip_port: u16, params: &str) {
    write_wav(
        &dir.join("in.wav"),
        &tone(THEIR_TONE, 8000.0, 8000 * 20),
        8000,
    );
    switchboard_e2e::baresip_config(
        dir,
        sip_port,
        &dir.join("in.wav"),
        &format!("<sip:baresip@127.0.0.1>;regint=0;answermode=auto{params}"),
    );
}

fn baresip(dir: &Path, extra: &[String]) -> Option<Peer> {
    let mut args = vec![
        "-f".to_owned(),
        dir.display().to_string(),
        "-t".into(),
        "50".into(),
    ];
    args.extend(extra.iter().cloned());
    Peer::spawn("baresip", &args, dir)
}

/// baresip in `dir`, dialling our UA at once with account parameters `params`.
fn baresip_calling(ua: &Ua, dir: &Path, params: &str) -> Option<Peer> {
    configure_account(dir, free_port(), params);
    baresip(dir, &["-e".into(), format!("/dial sip:agent@{}", ua.addr)])
}

/// SIGTERM lets baresip close its WAV files; then wait for the exit.
async fn stop(peer: Peer, pid: Option<u32>) -> String {
    if let Some(pid) = pid {
        let _ = std::process::Command::new("kill")
            .arg("-TERM")
            .arg(pid.to_string())
            .status();
    }
    peer.wait().await.1
}

fn decoded_dump(dir: &Path) -> Option<PathBuf> {
    std::fs::read_dir(dir)
        .ok()?
        .flatten()
        .map(|e| e.path())
        .find(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with("dump-") && n.ends_with("-dec.wav"))
        })
}

/// What baresip decoded and dumped, from its first half second on (jitter buffer start, decoder
/// warm-up), and its rate; `output` is what baresip said, for the failure message.
fn baresip_heard(dir: &Path, output: &str) -> (Vec<i16>, u32) {
    let dump =
        decoded_dump(dir).unwrap_or_else(|| panic!("no sndfile dump; baresip said:\n{output}"));
    let (samples, rate) = read_wav(&dump);
    let skip = (rate / 2) as usize;
    assert!(
        samples.len() > skip + rate as usize,
        "only {} samples recorded; baresip said:\n{output}",
        samples.len()
    );
    (samples[skip..].to_vec(), rate)
}

/// `freq` stands well above the noise floor of the other probe frequencies.
fn assert_tone(samples: &[i16], freq: f64, rate: f64, what: &str) {
    assert!(
        rms(samples) > 1000.0,
        "{what}: too quiet (rms {})",
        rms(samples)
    );
    let at = goertzel(samples, freq, rate);
    for other in [350.0, 450.0, 800.0, 1400.0, 2200.0] {
        if (other - freq).abs() < 100.0 {
            continue;
        }
        let off = goertzel(samples, other, rate);
        assert!(
            at > 100.0 * off,
            "{what}: {freq} Hz power {at} vs {other} Hz {off}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn baresip_calls_us_and_records_our_tone() {
    let mut ua = Ua::start(UaOptions {
        play: tone(OUR_TONE, 8000.0, 8000 * 30),
        ..UaOptions::default()
    })
    .await;
    let dir = tempfile::tempdir().unwrap();
    let Some(mut peer) = baresip_calling(&ua, dir.path(), "") else {
        return;
    };
    let pid = peer.pid();
    let call = ua.accepted().await;
    // Let 3 s of our tone flow: count baresip's frames arriving here as the clock.
    let mut frames = 0;
    ua.expect("3 s of media", |e| match e {
        UaEvent::Audio { .. } => {
            frames += 1;
            (frames >= 150).then_some(())
        }
        _ => None,
    })
    .await;
    ua.hang_up(call).await;
    let output = stop(peer, pid).await;
    let (samples, rate) = baresip_heard(dir.path(), &output);
    assert_tone(&samples, OUR_TONE, rate as f64, "baresip's recording");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn we_call_baresip_and_hear_its_file() {
    let mut ua = Ua::start(UaOptions::default()).await;
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    configure(dir.path(), port);
    let Some(mut peer) = baresip(dir.path(), &[]) else {
        return;
    };
    let pid = peer.pid();
    // baresip may not listen yet: the INVITE is retransmitted (Timer A) until it does.
    let call = ua.call(&format!("sip:baresip@127.0.0.1:{port}")).await;
    ua.expect("the auto-answer", |e| {
        (*e == UaEvent::Answered(call)).then_some(())
    })
    .await;
    let heard = ua.hear(8000 * 3).await;
    ua.hang_up(call).await;
    let _ = tokio::time::timeout(DEADLINE, stop(peer, pid)).await;
    let _ = Duration::ZERO;
    assert_tone(
        &heard[8000..],
        THEIR_TONE,
        8000.0,
        "what we heard from baresip",
    );
}

/// baresip insists on SRTP (RTP/SAVP, SDES keys): the call is agreed as SRTP and each side hears
/// the other's tone, which it can only if both seal and open every packet as RFC 3711 says
/// (baresip drops what does not authenticate; so do we).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_srtp_call_from_baresip_carries_audio_both_ways() {
    let mut ua = Ua::start(UaOptions {
        play: tone(OUR_TONE, 8000.0, 8000 * 30),
        srtp: media_net::SrtpPolicy::Accept(media_net::MasterKey::new([0x5b; 30])),
        ..UaOptions::default()
    })
    .await;
    let dir = tempfile::tempdir().unwrap();
    let Some(mut peer) = baresip_calling(&ua, dir.path(), ";mediaenc=srtp-mand") else {
        return;
    };
    let pid = peer.pid();
    let call = ua.accepted().await;
    ua.expect("SRTP agreed", |e| {
        matches!(e, UaEvent::Secured(c) if *c == call).then_some(())
    })
    .await;
    let heard = ua.hear(8000 * 3).await;
    ua.hang_up(call).await;
    let output = stop(peer, pid).await;
    assert_tone(&heard[4000..], THEIR_TONE, 8000.0, "what we decrypted");
    let (samples, rate) = baresip_heard(dir.path(), &output);
    assert_tone(&samples, OUR_TONE, rate as f64, "what baresip decrypted");
}
