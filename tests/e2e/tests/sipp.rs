//! Our UA (sip-net + media-net) against sipp.
#![allow(clippy::unwrap_used)] // reason: test code, where a panic is the failure report

use std::net::SocketAddr;

use switchboard_e2e::{free_port, rms, scenario, AnswerMode, Peer, Ua, UaEvent, UaOptions};

/// sipp as a UAC calling `ua`, with `scenario_args` (`-sn uac` or `-sf file`).
fn sipp_to(ua: SocketAddr, dir: &std::path::Path, scenario_args: &[String]) -> Option<Peer> {
    let mut args = vec![format!("127.0.0.1:{}", ua.port())];
    args.extend(scenario_args.iter().cloned());
    args.extend(common_args());
    Peer::spawn("sipp", &args, dir)
}

fn common_args() -> Vec<String> {
    [
        "-i",
        "127.0.0.1",
        "-mi",
        "127.0.0.1",
        "-m",
        "1",
        "-timeout",
        "45s",
        "-timeout_error",
        "-nostdin",
    ]
    .into_iter()
    .map(String::from)
    .chain(["-p".into(), free_port().to_string()])
    .chain(["-mp".into(), (free_port() & !1).to_string()])
    .collect()
}

fn file(name: &str) -> Vec<String> {
    vec!["-sf".into(), scenario(name).display().to_string()]
}

async fn assert_sipp_ok(sipp: Peer) {
    let (code, output) = sipp.wait().await;
    assert_eq!(code, 0, "sipp failed:\n{output}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sipp_calls_us_and_hangs_up() {
    let mut ua = Ua::start(UaOptions::default()).await;
    let dir = tempfile::tempdir().unwrap();
    let Some(sipp) = sipp_to(ua.addr, dir.path(), &["-sn".into(), "uac".into()]) else {
        return;
    };
    let call = ua
        .expect("the call", |e| match e {
            UaEvent::Incoming(c) => Some(*c),
            _ => None,
        })
        .await;
    let by_peer = ua
        .expect("the call to end", |e| match e {
            UaEvent::Ended { call: c, by_peer } if *c == call => Some(*by_peer),
            _ => None,
        })
        .await;
    assert!(by_peer);
    assert_sipp_ok(sipp).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn we_call_sipp_and_hang_up() {
    let mut ua = Ua::start(UaOptions::default()).await;
    let dir = tempfile::tempdir().unwrap();
    let args: Vec<String> = ["-sn", "uas"]
        .into_iter()
        .map(String::from)
        .chain(common_args())
        .collect();
    let port = args[args.iter().position(|a| a == "-p").unwrap() + 1].clone();
    let Some(sipp) = Peer::spawn("sipp", &args, dir.path()) else {
        return;
    };
    let call = ua.call(&format!("sip:service@127.0.0.1:{port}")).await;
    ua.expect("the answer", |e| {
        (*e == UaEvent::Answered(call)).then_some(())
    })
    .await;
    ua.sip.hangup(call).await.unwrap();
    let by_peer = ua
        .expect("the call to end", |e| match e {
            UaEvent::Ended { call: c, by_peer } if *c == call => Some(*by_peer),
            _ => None,
        })
        .await;
    assert!(!by_peer);
    assert_sipp_ok(sipp).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sipp_streams_pcap_audio_and_we_hear_it() {
    let mut ua = Ua::start(UaOptions::default()).await;
    let dir = tempfile::tempdir().unwrap();
    let Some(sipp) = sipp_to(ua.addr, dir.path(), &file("uac_pcap_audio.xml")) else {
        return;
    };
    // The pcap is 7 s of speech: ask for 2 s of clearly non-silent frames.
    let mut loud = 0;
    ua.expect("non-silent audio", |e| match e {
        UaEvent::Audio { frame, .. } => {
            if rms(frame) > 300.0 {
                loud += 1;
            }
            (loud >= 100).then_some(())
        }
        _ => None,
    })
    .await;
    ua.expect("the call to end", |e| {
        matches!(e, UaEvent::Ended { by_peer: true, .. }).then_some(())
    })
    .await;
    assert_sipp_ok(sipp).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sipp_sends_rfc2833_digits_in_order() {
    let mut ua = Ua::start(UaOptions::default()).await;
    let dir = tempfile::tempdir().unwrap();
    let Some(sipp) = sipp_to(ua.addr, dir.path(), &file("uac_dtmf.xml")) else {
        return;
    };
    let mut digits = String::new();
    ua.expect("three digits", |e| match e {
        UaEvent::Digit { digit, .. } => {
            digits.push(*digit);
            (digits.len() == 3).then_some(())
        }
        _ => None,
    })
    .await;
    assert_eq!(digits, "15#");
    ua.expect("the call to end", |e| {
        matches!(e, UaEvent::Ended { .. }).then_some(())
    })
    .await;
    assert_sipp_ok(sipp).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hold_and_resume_answer_with_the_right_direction() {
    let mut ua = Ua::start(UaOptions::default()).await;
    let dir = tempfile::tempdir().unwrap();
    let Some(sipp) = sipp_to(ua.addr, dir.path(), &file("uac_hold.xml")) else {
        return;
    };
    let mut answers = Vec::new();
    ua.expect("two re-offers", |e| match e {
        UaEvent::Reoffer { answer, .. } => {
            answers.push(answer.clone());
            (answers.len() == 2).then_some(())
        }
        _ => None,
    })
    .await;
    assert!(answers[0].contains("a=recvonly"), "{}", answers[0]);
    assert!(answers[1].contains("a=sendrecv"), "{}", answers[1]);
    ua.expect("the call to end", |e| {
        matches!(e, UaEvent::Ended { by_peer: true, .. }).then_some(())
    })
    .await;
    assert_sipp_ok(sipp).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn we_hang_up_an_inbound_call() {
    let mut ua = Ua::start(UaOptions::default()).await;
    let dir = tempfile::tempdir().unwrap();
    let Some(sipp) = sipp_to(ua.addr, dir.path(), &file("uac_wait_bye.xml")) else {
        return;
    };
    let call = ua.accepted().await;
    ua.sip.hangup(call).await.unwrap();
    let by_peer = ua
        .expect("the call to end", |e| match e {
            UaEvent::Ended { call: c, by_peer } if *c == call => Some(*by_peer),
            _ => None,
        })
        .await;
    assert!(!by_peer);
    assert_sipp_ok(sipp).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sipp_cancels_before_answer() {
    let mut ua = Ua::start(UaOptions {
        answer: AnswerMode::RingOnly,
        ..UaOptions::default()
    })
    .await;
    let dir = tempfile::tempdir().unwrap();
    let Some(sipp) = sipp_to(ua.addr, dir.path(), &file("uac_cancel.xml")) else {
        return;
    };
    let call = ua
        .expect("the call", |e| match e {
            UaEvent::Incoming(c) => Some(*c),
            _ => None,
        })
        .await;
    ua.expect("the cancel", |e| {
        (*e == UaEvent::Cancelled(call)).then_some(())
    })
    .await;
    assert_sipp_ok(sipp).await;
}

async fn refer_to_sipp(scenario_file: &str) -> (Ua, sip_net::CallHandle, Peer) {
    let ua = Ua::start(UaOptions::default()).await;
    let dir = tempfile::tempdir().unwrap();
    let args: Vec<String> = file(scenario_file)
        .into_iter()
        .chain(common_args())
        .collect();
    let port = args[args.iter().position(|a| a == "-p").unwrap() + 1].clone();
    let Some(sipp) = Peer::spawn("sipp", &args, dir.path()) else {
        panic!("unreachable: checked")
    };
    std::mem::forget(dir); // sipp's working directory outlives this function; the OS tmp cleaner takes it
    let call = ua.call(&format!("sip:service@127.0.0.1:{port}")).await;
    (ua, call, sipp)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refer_accepted_and_notified_200_succeeds() {
    if !switchboard_e2e::installed("sipp") {
        return;
    }
    let (mut ua, call, sipp) = refer_to_sipp("uas_refer_ok.xml").await;
    ua.expect("the answer", |e| {
        (*e == UaEvent::Answered(call)).then_some(())
    })
    .await;
    ua.sip
        .refer(
            call,
            sip_message::Uri::parse("sip:queue@127.0.0.1:5999").unwrap(),
        )
        .await
        .unwrap();
    ua.expect("202", |e| {
        (*e == UaEvent::TransferAccepted(call)).then_some(())
    })
    .await;
    ua.expect("NOTIFY 200", |e| match e {
        UaEvent::TransferSucceeded(c) if *c == call => Some(()),
        UaEvent::TransferFailed { status, .. } => panic!("transfer failed with {status}"),
        _ => None,
    })
    .await;
    ua.hang_up(call).await;
    assert_sipp_ok(sipp).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refer_refused_603_fails() {
    if !switchboard_e2e::installed("sipp") {
        return;
    }
    let (mut ua, call, sipp) = refer_to_sipp("uas_refer_603.xml").await;
    ua.expect("the answer", |e| {
        (*e == UaEvent::Answered(call)).then_some(())
    })
    .await;
    ua.sip
        .refer(
            call,
            sip_message::Uri::parse("sip:queue@127.0.0.1:5999").unwrap(),
        )
        .await
        .unwrap();
    let status = ua
        .expect("the refusal", |e| match e {
            UaEvent::TransferFailed { call: c, status } if *c == call => Some(*status),
            UaEvent::TransferSucceeded(_) => panic!("a refused REFER succeeded"),
            _ => None,
        })
        .await;
    assert_eq!(status, 603);
    ua.hang_up(call).await;
    assert_sipp_ok(sipp).await;
}
