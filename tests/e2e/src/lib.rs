//! A small in-process user agent on `sip-net` + `media-net` (answers calls,
//! plays audio, reports what it hears), plus helpers to run real peers
//! (sipp, baresip) with a deadline and to analyse audio.
//!
//! Tests wait for conditions on [`Ua::expect`] with a deadline; they never
//! sleep and hope. A peer binary that is not installed skips the test with
//! a message, unless `SWITCHBOARD_REQUIRE_E2E=1` (CI) makes it a failure
//! (`models_api::testing::skip`).

pub mod dns;

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use media_net::{
    accept_answer, answer_offer, local_capabilities, offer, LocalCapabilities, MediaEvent,
    PortPool, RtpSession, RtpSessionHandle, SrtpPolicy,
};
use models_api::testing::{skip, Dependency};
use sip_message::{NameAddr, Uri};
use sip_net::{CallHandle, Event, SipConfig, SipHandle, SipNet};
use tokio::sync::{mpsc, oneshot};

pub const LOCALHOST: IpAddr = IpAddr::V4(Ipv4Addr::LOCALHOST);
/// Upper bound for any one wait; generous for a loaded 2-core machine.
pub const DEADLINE: Duration = Duration::from_secs(60);

/// What the UA reports to the test.
#[derive(Debug, Clone, PartialEq)]
pub enum UaEvent {
    Incoming(CallHandle),
    /// We sent 200 OK to an inbound call.
    Accepted(CallHandle),
    /// The call's media was agreed as SRTP (sent after `Accepted` or `Answered`).
    Secured(CallHandle),
    Provisional {
        call: CallHandle,
        status: u16,
    },
    Answered(CallHandle),
    Failed {
        call: CallHandle,
        status: u16,
    },
    Cancelled(CallHandle),
    Ended {
        call: CallHandle,
        by_peer: bool,
    },
    /// A re-offer and the answer we sent.
    Reoffer {
        call: CallHandle,
        offer: String,
        answer: String,
    },
    Audio {
        call: CallHandle,
        frame: Vec<i16>,
    },
    Digit {
        call: CallHandle,
        digit: char,
    },
    /// The peer asked us to transfer (REFER, answered 202); report with
    /// `sip.transfer_progress`.
    TransferRequested {
        call: CallHandle,
        target: String,
    },
    /// The peer refused our re-offer.
    ReofferFailed {
        call: CallHandle,
        status: u16,
    },
    TransferAccepted(CallHandle),
    TransferSucceeded(CallHandle),
    TransferFailed {
        call: CallHandle,
        status: u16,
    },
}

/// How the UA treats inbound calls.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AnswerMode {
    /// 180 then 200 at once.
    Auto,
    /// 180 only (the caller cancels or the test answers).
    RingOnly,
}

#[derive(Debug, Clone)]
pub struct UaOptions {
    pub answer: AnswerMode,
    /// Audio queued on every call once media starts.
    pub play: Vec<i16>,
    pub rtp_ports: (u16, u16),
    /// SIP port on 127.0.0.1; 0 picks one.
    pub sip_port: u16,
    /// SIP over TLS (a listener and the roots we trust).
    pub tls: Option<sip_net::TlsConfig>,
    /// The user part of our From on outbound calls (`anonymous`: a caller with no identity).
    pub caller: String,
    /// SRTP (SDES) for every call, with this policy's key.
    pub srtp: SrtpPolicy,
}

impl Default for UaOptions {
    fn default() -> Self {
        UaOptions {
            answer: AnswerMode::Auto,
            play: Vec::new(),
            rtp_ports: (30000, 39999),
            sip_port: 0,
            tls: None,
            caller: "switchboard".into(),
            srtp: SrtpPolicy::Off,
        }
    }
}

enum UaCommand {
    Call {
        target: String,
        reply: oneshot::Sender<CallHandle>,
    },
    /// Queue audio on an established call (after what is queued already).
    Play { call: CallHandle, samples: Vec<i16> },
    /// An RFC 4733 key press.
    Digit { call: CallHandle, digit: char },
}

/// The test's user agent.
pub struct Ua {
    pub sip: SipHandle,
    pub addr: SocketAddr,
    /// The TLS listener, when `UaOptions::tls` has one.
    pub tls_addr: Option<SocketAddr>,
    events: mpsc::UnboundedReceiver<UaEvent>,
    commands: mpsc::UnboundedSender<UaCommand>,
}

struct Call {
    caps: LocalCapabilities,
    /// The host our SIP peer is on: media from it may latch (a NAT, or an SDP that names
    /// another of its addresses).
    peer: Option<IpAddr>,
    our_offer: Option<Vec<u8>>,
    sockets: Option<media_net::RtpSockets>,
    media: Option<RtpSessionHandle>,
}

impl Ua {
    pub async fn start(options: UaOptions) -> Ua {
        init_tracing();
        let mut config = SipConfig::new(SocketAddr::new(LOCALHOST, options.sip_port));
        // The caller's phone acts on the agent's REFER (a transfer to a person).
        config.endpoint.accept_refer = true;
        config.seed = 0x5eed;
        config.tls = options.tls.clone();
        let net = SipNet::bind(config).await.expect("bind SIP");
        let pool = PortPool::new(LOCALHOST, options.rtp_ports.0, options.rtp_ports.1, false)
            .expect("RTP port range");
        let (events_tx, events) = mpsc::unbounded_channel();
        let (commands, commands_rx) = mpsc::unbounded_channel();
        let ua = Ua {
            sip: net.handle.clone(),
            addr: net.local_addr,
            tls_addr: net.tls_addr,
            events,
            commands,
        };
        tokio::spawn(run_ua(net, pool, options, events_tx, commands_rx));
        ua
    }

    /// INVITE `target` (a SIP URI) with our offer.
    pub async fn call(&self, target: &str) -> CallHandle {
        let (reply, rx) = oneshot::channel();
        let _ = self.commands.send(UaCommand::Call {
            target: target.to_owned(),
            reply,
        });
        rx.await.expect("the UA placed the call")
    }

    /// Queues 8 kHz audio on `call` (it starts at once when nothing else is queued).
    pub fn play(&self, call: CallHandle, samples: Vec<i16>) {
        let _ = self.commands.send(UaCommand::Play { call, samples });
    }

    /// Presses `digit` (RFC 4733 telephone-event, 100 ms).
    pub fn press(&self, call: CallHandle, digit: char) {
        let _ = self.commands.send(UaCommand::Digit { call, digit });
    }

    /// The next event (for long-running users such as the load UAS).
    pub async fn next(&mut self) -> Option<UaEvent> {
        self.events.recv().await
    }

    /// Waits for the first event `pick` accepts, failing the test after
    /// [`DEADLINE`]. Other events are dropped.
    pub async fn expect<T>(
        &mut self,
        what: &str,
        mut pick: impl FnMut(&UaEvent) -> Option<T>,
    ) -> T {
        let wait = async {
            loop {
                let event = self.events.recv().await.expect("the UA is running");
                if let Some(t) = pick(&event) {
                    return t;
                }
            }
        };
        tokio::time::timeout(DEADLINE, wait)
            .await
            .unwrap_or_else(|_| panic!("timed out waiting for {what}"))
    }

    /// The next inbound call we answered.
    pub async fn accepted(&mut self) -> CallHandle {
        self.expect("a call we answered", |e| match e {
            UaEvent::Accepted(c) => Some(*c),
            _ => None,
        })
        .await
    }

    /// `samples` of 8 kHz audio heard on any call.
    pub async fn hear(&mut self, samples: usize) -> Vec<i16> {
        let mut heard = Vec::new();
        self.expect("audio", |e| match e {
            UaEvent::Audio { frame, .. } => {
                heard.extend_from_slice(frame);
                (heard.len() >= samples).then_some(())
            }
            _ => None,
        })
        .await;
        heard
    }

    /// Sends BYE on `call` and waits for it to end.
    pub async fn hang_up(&mut self, call: CallHandle) {
        self.sip.hangup(call).await.expect("BYE");
        self.expect("the call to end", |e| {
            matches!(e, UaEvent::Ended { .. }).then_some(())
        })
        .await;
    }
}

async fn run_ua(
    mut net: SipNet,
    pool: PortPool,
    options: UaOptions,
    events: mpsc::UnboundedSender<UaEvent>,
    mut commands: mpsc::UnboundedReceiver<UaCommand>,
) {
    let mut calls: HashMap<CallHandle, Call> = HashMap::new();
    let mut seed = 1u64;
    loop {
        tokio::select! {
            command = commands.recv() => {
                let (target, reply) = match command {
                    None => return,
                    Some(UaCommand::Call { target, reply }) => (target, reply),
                    Some(UaCommand::Play { call, samples }) => {
                        if let Some(media) = calls.get(&call).and_then(|c| c.media.as_ref()) {
                            let _ = media.push_audio(samples);
                        }
                        continue;
                    }
                    Some(UaCommand::Digit { call, digit }) => {
                        if let Some(media) = calls.get(&call).and_then(|c| c.media.as_ref()) {
                            let _ = media.send_digit(digit, Duration::from_millis(100));
                        }
                        continue;
                    }
                };
                let sockets = pool.allocate().expect("RTP port");
                let mut caps = local_capabilities(LOCALHOST, &sockets, 1);
                caps.srtp = options.srtp.clone();
                let sdp = offer(&caps);
                let uri = Uri::parse(&target).expect("target URI");
                let peer = match &uri {
                    Uri::Sip(u) => u.host.to_string().trim_matches(['[', ']']).parse().ok(),
                    _ => None,
                };
                let from = NameAddr::parse(&format!("<sip:{}@{}>", options.caller, net.local_addr)).expect("From");
                let call = net.handle.invite(uri, from, sdp.clone()).await.expect("INVITE");
                calls.insert(call, Call { caps, peer, our_offer: Some(sdp), sockets: Some(sockets), media: None });
                let _ = reply.send(call);
            }
            event = net.events.recv() => {
                let Some(event) = event else { return };
                seed += 1;
                handle_event(&net.handle, &pool, &options, &events, &mut calls, event, seed).await;
            }
        }
    }
}

async fn handle_event(
    sip: &SipHandle,
    pool: &PortPool,
    options: &UaOptions,
    events: &mpsc::UnboundedSender<UaEvent>,
    calls: &mut HashMap<CallHandle, Call>,
    event: Event,
    seed: u64,
) {
    let report = |e| {
        let _ = events.send(e);
    };
    match event {
        Event::IncomingCall(incoming) => {
            let call = incoming.call;
            report(UaEvent::Incoming(call));
            let sockets = pool.allocate().expect("RTP port");
            let mut caps = local_capabilities(LOCALHOST, &sockets, 2);
            caps.srtp = options.srtp.clone();
            let _ = sip.ringing(call).await;
            if options.answer == AnswerMode::RingOnly {
                calls.insert(
                    call,
                    Call {
                        caps,
                        peer: Some(incoming.source.ip()),
                        our_offer: None,
                        sockets: Some(sockets),
                        media: None,
                    },
                );
                return;
            }
            match answer_offer(&incoming.offer, &caps, seed) {
                Ok((sdp, mut config)) => {
                    config.signalling_peer = Some(incoming.source.ip());
                    if let Err(error) = sip.answer(call, sdp).await {
                        tracing::warn!(%error, "could not answer");
                        return;
                    }
                    report(UaEvent::Accepted(call));
                    if config.srtp.is_some() {
                        report(UaEvent::Secured(call));
                    }
                    let media = start_media(call, sockets, config, options, events.clone());
                    calls.insert(
                        call,
                        Call {
                            caps,
                            peer: Some(incoming.source.ip()),
                            our_offer: None,
                            sockets: None,
                            media: Some(media),
                        },
                    );
                }
                Err(error) => {
                    tracing::warn!(%error, "unusable offer");
                    let _ = sip.reject(call, sip_net::Rejection::NotFound).await;
                }
            }
        }
        Event::Provisional { call, status, .. } => report(UaEvent::Provisional { call, status }),
        Event::Answered { call, sdp } => {
            if let Some(c) = calls.get_mut(&call) {
                let our_offer = c.our_offer.clone().unwrap_or_default();
                if let (Ok(mut config), Some(sockets)) =
                    (accept_answer(&our_offer, &sdp, seed), c.sockets.take())
                {
                    config.signalling_peer = c.peer;
                    let secured = config.srtp.is_some();
                    c.media = Some(start_media(call, sockets, config, options, events.clone()));
                    report(UaEvent::Answered(call));
                    if secured {
                        report(UaEvent::Secured(call));
                    }
                    return;
                }
            }
            report(UaEvent::Answered(call));
        }
        Event::Failed { call, status, .. } => {
            calls.remove(&call);
            report(UaEvent::Failed { call, status });
        }
        Event::CallCancelled { call } => {
            calls.remove(&call);
            report(UaEvent::Cancelled(call));
        }
        Event::CallEnded { call, by_peer, .. } => {
            calls.remove(&call);
            report(UaEvent::Ended { call, by_peer });
        }
        Event::Reoffer { call, sdp } => {
            let Some(c) = calls.get_mut(&call) else {
                return;
            };
            c.caps.session_version += 1;
            match answer_offer(&sdp, &c.caps, seed) {
                Ok((answer, config)) => {
                    if let Some(media) = &c.media {
                        let _ = media.update(config);
                    }
                    let _ = sip.answer_reoffer(call, answer.clone()).await;
                    report(UaEvent::Reoffer {
                        call,
                        offer: String::from_utf8_lossy(&sdp).into_owned(),
                        answer: String::from_utf8_lossy(&answer).into_owned(),
                    });
                }
                Err(error) => tracing::warn!(%error, "unusable re-offer"),
            }
        }
        Event::TransferRequested { call, target } => report(UaEvent::TransferRequested {
            call,
            target: target.to_string(),
        }),
        Event::ReofferFailed { call, status } => report(UaEvent::ReofferFailed { call, status }),
        Event::TransferAccepted { call } => report(UaEvent::TransferAccepted(call)),
        Event::TransferSucceeded { call } => report(UaEvent::TransferSucceeded(call)),
        Event::TransferFailed { call, status } => report(UaEvent::TransferFailed { call, status }),
        Event::Dtmf { call, digit, .. } => report(UaEvent::Digit { call, digit }),
        other => tracing::debug!(?other, "UA ignores"),
    }
}

fn start_media(
    call: CallHandle,
    sockets: media_net::RtpSockets,
    config: media_net::RtpConfig,
    options: &UaOptions,
    ua_events: mpsc::UnboundedSender<UaEvent>,
) -> RtpSessionHandle {
    let RtpSession {
        handle, mut events, ..
    } = RtpSession::spawn(sockets, config, 1000);
    if !options.play.is_empty() {
        let _ = handle.push_audio(options.play.clone());
    }
    // Only the call map holds the handle: when the call ends and its entry
    // goes, the session ends and this forwarding task with it.
    tokio::spawn(async move {
        while let Some(event) = events.recv().await {
            let event = match event {
                MediaEvent::Audio(frame) => UaEvent::Audio { call, frame },
                MediaEvent::Digit(digit) => UaEvent::Digit { call, digit },
                MediaEvent::Latched(_) => continue,
            };
            if ua_events.send(event).is_err() {
                return;
            }
        }
    });
    handle
}

/// Logs to the test's output (`RUST_LOG`; by default our info lines, and only the warnings of
/// the model libraries, whose loading takes a hundred lines); once per process.
pub fn init_tracing() {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| {
                "info,whisper_rs=warn,llama_cpp_2=warn,llama-cpp-2=warn".into()
            }),
        )
        .with_test_writer()
        .try_init();
}

/// A peer process killed when dropped (the test's deadline or a panic).
pub struct Peer {
    child: tokio::process::Child,
    name: &'static str,
}

impl Peer {
    /// Spawns `program` with `args`; `None` (test skipped) when it is not
    /// installed and `SWITCHBOARD_REQUIRE_E2E` is not set.
    pub fn spawn(program: &'static str, args: &[String], dir: &Path) -> Option<Peer> {
        if !installed(program) {
            return None;
        }
        let child = tokio::process::Command::new(program)
            .args(args)
            .current_dir(dir)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {program}: {e}"));
        Some(Peer {
            child,
            name: program,
        })
    }

    /// Waits for the exit (failing after [`DEADLINE`]); returns the status
    /// code and the output.
    pub async fn wait(self) -> (i32, String) {
        let name = self.name;
        let output = tokio::time::timeout(DEADLINE, self.child.wait_with_output())
            .await
            .unwrap_or_else(|_| panic!("{name} did not finish in time"))
            .expect("peer output");
        let text = format!(
            "{}\n{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
        (output.status.code().unwrap_or(-1), text)
    }

    pub fn pid(&mut self) -> Option<u32> {
        self.child.id()
    }

    pub fn stdin(&mut self) -> Option<tokio::process::ChildStdin> {
        self.child.stdin.take()
    }
}

/// Whether `program` is on PATH; panics instead when the environment
/// requires the e2e peers.
pub fn installed(program: &str) -> bool {
    let found = std::env::var_os("PATH")
        .is_some_and(|path| std::env::split_paths(&path).any(|dir| dir.join(program).is_file()));
    if !found {
        skip(Dependency::Peers, &format!("{program} is not installed"));
    }
    found
}

/// The committed sipp scenario `name`.
pub fn scenario(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("sipp")
        .join(name)
}

/// sipp as a server on a free loopback port running the committed `scenario` for `calls` calls
/// (`-m`), with `extra` arguments; its port. `None` (test skipped) as for [`Peer::spawn`].
pub fn sipp_server(
    scenario_name: &str,
    calls: u32,
    extra: &[&str],
    dir: &Path,
) -> Option<(Peer, u16)> {
    let port = free_port();
    let mut args: Vec<String> = vec![
        "-sf".into(),
        scenario(scenario_name).display().to_string(),
        "-i".into(),
        "127.0.0.1".into(),
        "-p".into(),
        port.to_string(),
        "-m".into(),
        calls.to_string(),
        "-nostdin".into(),
    ];
    args.extend(extra.iter().map(|a| a.to_string()));
    Peer::spawn("sipp", &args, dir).map(|peer| (peer, port))
}

/// A free UDP port on loopback (bound then released; sipp binds it next).
pub fn free_port() -> u16 {
    let socket = std::net::UdpSocket::bind((LOCALHOST, 0)).expect("bind");
    socket.local_addr().expect("addr").port()
}

/// Writes a headless baresip configuration into `dir`, with `account` (one line of baresip's
/// `accounts` file): SIP on `127.0.0.1:sip_port`, audio read from the WAV file `input`, what it
/// hears dumped to WAV files in `dir` (sndfile), no sound card.
///
/// Media is bound to loopback too (`net_interface`): left to itself baresip takes the address of
/// the host's first interface, and on a box with only loopback it finds none and never dials.
pub fn baresip_config(dir: &Path, sip_port: u16, input: &Path, account: &str) {
    let config = format!(
        "poll_method epoll\n\
         net_interface {LOCALHOST}\n\
         sip_listen {LOCALHOST}:{sip_port}\n\
         audio_player aubridge,nil\n\
         audio_alert aubridge,nil\n\
         audio_source aufile,{input}\n\
         module_path /usr/lib/baresip/modules\n\
         module g711.so\n\
         module aufile.so\n\
         module aubridge.so\n\
         module sndfile.so\n\
         module srtp.so\n\
         snd_path {dir}\n\
         module_tmp account.so\n\
         module_app menu.so\n",
        input = input.display(),
        dir = dir.display(),
    );
    std::fs::write(dir.join("config"), config).expect("write baresip's config");
    std::fs::write(dir.join("accounts"), format!("{account}\n")).expect("write baresip's accounts");
}

/// A sine tone at 8 kHz.
pub fn tone(freq: f64, amplitude: f64, samples: usize) -> Vec<i16> {
    (0..samples)
        .map(|n| (amplitude * (2.0 * std::f64::consts::PI * freq * n as f64 / 8000.0).sin()) as i16)
        .collect()
}

pub fn rms(samples: &[i16]) -> f64 {
    if samples.is_empty() {
        return 0.0;
    }
    (samples.iter().map(|&s| (s as f64).powi(2)).sum::<f64>() / samples.len() as f64).sqrt()
}

/// Goertzel power of `freq` in `samples` at `rate`, normalised by length.
pub fn goertzel(samples: &[i16], freq: f64, rate: f64) -> f64 {
    let w = 2.0 * std::f64::consts::PI * freq / rate;
    let coeff = 2.0 * w.cos();
    let (mut s1, mut s2) = (0.0f64, 0.0f64);
    for &x in samples {
        let s = x as f64 + coeff * s1 - s2;
        s2 = s1;
        s1 = s;
    }
    let power = s1 * s1 + s2 * s2 - coeff * s1 * s2;
    power / (samples.len().max(1) as f64).powi(2)
}

/// Reads a mono or stereo 16-bit WAV, returning the first channel and the rate.
pub fn read_wav(path: &Path) -> (Vec<i16>, u32) {
    let mut reader = hound::WavReader::open(path).unwrap_or_else(|e| panic!("{path:?}: {e}"));
    let spec = reader.spec();
    let channels = spec.channels as usize;
    let samples: Vec<i16> = reader
        .samples::<i16>()
        .step_by(channels.max(1))
        .map(|s| s.expect("sample"))
        .collect();
    (samples, spec.sample_rate)
}

pub fn write_wav(path: &Path, samples: &[i16], rate: u32) {
    let spec = hound::WavSpec {
        channels: 1,
        sample_rate: rate,
        bits_per_sample: 16,
        sample_format: hound::SampleFormat::Int,
    };
    let mut writer = hound::WavWriter::create(path, spec).expect("create wav");
    for &s in samples {
        writer.write_sample(s).expect("write sample");
    }
    writer.finalize().expect("finalize wav");
}
