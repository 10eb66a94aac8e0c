//! Whole conversations with the call state machine, in virtual time: every input is what a runtime would
//! see on a real call, every assertion something the caller (or the compliance officer) would notice.

use std::time::{Duration, Instant};
use switchboard_call::*;

const FRAME: Duration = Duration::from_millis(20);

struct Call {
    s: CallSession,
    now: Instant,
    log: Vec<Action>,
    /// Early transcriptions asked for at pauses, kept apart: most scenarios do not answer them.
    peeks: Vec<Action>,
    /// Those asked for while the caller talks on.
    interims: Vec<Action>,
}

impl Call {
    fn new(config: CallConfig) -> Call {
        let mut c = Call {
            s: CallSession::new(config),
            now: Instant::now(),
            log: Vec::new(),
            peeks: Vec::new(),
            interims: Vec::new(),
        };
        c.input(Input::Answered);
        c
    }

    fn input(&mut self, i: Input) -> Vec<Action> {
        self.s.handle(self.now, i);
        self.drain()
    }

    fn drain(&mut self) -> Vec<Action> {
        let mut out = Vec::new();
        while let Some(a) = self.s.poll_action() {
            match a {
                Action::Peek { interim: true, .. } => self.interims.push(a),
                Action::Peek { .. } => self.peeks.push(a),
                a => out.push(a),
            }
        }
        self.log.extend(out.iter().cloned());
        out
    }

    /// `ms` of caller audio: voiced or not, at `db`; optionally our own playback at `agent_db`.
    fn audio(&mut self, ms: u64, voiced: bool, db: f32, agent_db: Option<f32>) -> Vec<Action> {
        let mut out = Vec::new();
        for _ in 0..ms / 20 {
            self.now += FRAME;
            if let Some(e) = agent_db {
                self.s.handle(self.now, Input::AgentAudio { energy_db: e });
            }
            self.s.handle(
                self.now,
                Input::CallerAudio {
                    voiced,
                    energy_db: db,
                },
            );
            out.extend(self.drain());
            self.timeouts();
        }
        out
    }

    /// Answers the latest peek with `text`.
    fn partial(&mut self, text: &str) -> Vec<Action> {
        let Some(Action::Peek { end, .. }) = self.peeks.last().cloned() else {
            panic!("no peek to answer")
        };
        self.input(Input::Partial {
            text: text.into(),
            end,
        })
    }

    fn speak(&mut self, ms: u64) -> Vec<Action> {
        let mut out = self.audio(ms, true, -20.0, None);
        out.extend(self.audio(1200, false, -70.0, None));
        out
    }

    fn timeouts(&mut self) {
        while let Some(t) = self.s.poll_timeout() {
            if t > self.now {
                break;
            }
            self.s.handle_timeout(self.now);
            self.drain();
        }
    }

    fn advance(&mut self, d: Duration) -> Vec<Action> {
        let before = self.log.len();
        let end = self.now + d;
        while let Some(t) = self.s.poll_timeout().filter(|t| *t <= end) {
            self.now = t.max(self.now);
            self.s.handle_timeout(self.now);
            self.drain();
        }
        self.now = end;
        self.log[before..].to_vec()
    }

    fn say_turn(&mut self, text: &str) -> Vec<Action> {
        let acts = self.speak(600);
        assert!(
            acts.iter().any(|a| matches!(a, Action::Transcribe { .. })),
            "{acts:?}"
        );
        self.input(Input::Transcript { text: text.into() })
    }
}

fn play(p: Prompt, interruptible: bool) -> Action {
    Action::Play {
        prompt: p,
        interruptible,
    }
}

fn consent_call() -> Call {
    let mut c = Call::new(CallConfig {
        consent: ConsentMode::Required,
        ..Default::default()
    });
    assert_eq!(c.log, [play(Prompt::Greeting, false)]);
    assert_eq!(
        c.input(Input::PlaybackFinished),
        [play(Prompt::ConsentQuestion, false)]
    );
    // Talking over the consent question is not heard as its answer.
    assert!(c.speak(600).is_empty(), "the question is not interruptible");
    assert!(c.input(Input::PlaybackFinished).is_empty());
    c
}

#[test]
fn consent_yes_starts_recording_only_after_the_decision_is_stored() {
    let mut c = consent_call();
    let acts = c.say_turn("Yes, that's fine.");
    assert_eq!(
        acts,
        [Action::LogConsent {
            answer_text: "Yes, that's fine.".into(),
            decision: Answer::Yes
        }]
    );
    // Audio and time pass before the database confirms: still no recording.
    c.speak(400);
    assert!(!c.log.contains(&Action::StartRecording));
    let acts = c.input(Input::ConsentLogged);
    assert_eq!(
        acts,
        [
            Action::StartRecording,
            play(Prompt::ConsentAcknowledged, true)
        ]
    );
}

#[test]
fn consent_no_never_records_and_the_call_goes_on() {
    let mut c = consent_call();
    let acts = c.say_turn("No thanks.");
    assert_eq!(
        acts,
        [Action::LogConsent {
            answer_text: "No thanks.".into(),
            decision: Answer::No
        }]
    );
    assert_eq!(
        c.input(Input::ConsentLogged),
        [play(Prompt::ConsentAcknowledged, true)]
    );
    c.input(Input::PlaybackFinished);
    let acts = c.say_turn("When are you open on Saturday?");
    assert_eq!(
        acts,
        [Action::Reply {
            caller_text: "When are you open on Saturday?".into()
        }]
    );
    assert!(!c.log.contains(&Action::StartRecording));
}

#[test]
fn unclear_consent_is_asked_once_more_then_treated_as_no() {
    let mut c = consent_call();
    assert_eq!(c.say_turn("What?"), [play(Prompt::ConsentReask, false)]);
    c.input(Input::PlaybackFinished);
    let acts = c.say_turn("Hmm, I want to book a cleaning");
    assert!(
        matches!(
            &acts[..],
            [Action::LogConsent {
                decision: Answer::Unclear,
                ..
            }]
        ),
        "{acts:?}"
    );
    assert_eq!(
        c.input(Input::ConsentLogged),
        [play(Prompt::ConsentAcknowledged, true)]
    );
    assert!(!c.log.contains(&Action::StartRecording));
}

#[test]
fn consent_by_keypad() {
    let mut c = consent_call();
    let acts = c.input(Input::Dtmf { digit: '1' });
    assert!(matches!(
        &acts[..],
        [Action::LogConsent {
            decision: Answer::Yes,
            ..
        }]
    ));
}

fn listening_call(config: CallConfig) -> Call {
    let mut c = Call::new(config);
    assert_eq!(c.log, [play(Prompt::Greeting, true)]);
    c.input(Input::PlaybackFinished);
    c
}

#[test]
fn abuse_ends_the_call_politely_and_blacklists() {
    let mut c = listening_call(CallConfig::default());
    let acts = c.say_turn("This is fucking useless");
    assert_eq!(
        acts,
        [
            Action::Blacklist {
                reason: "abusive language (fucking)".into()
            },
            play(Prompt::AbuseGoodbye, false)
        ]
    );
    assert!(c.speak(500).is_empty(), "the goodbye is not interruptible");
    assert_eq!(
        c.input(Input::PlaybackFinished),
        [Action::Hangup {
            reason: EndReason::Abuse
        }]
    );
    assert!(c.s.is_ended());
}

/// "Don't call me again" is honoured by code, at any point of the call (here, as the answer to
/// the recording question): the number goes on the DND list and the call ends with a
/// confirmation, not left to the LLM.
#[test]
fn a_request_not_to_be_called_again_is_honoured_and_ends_the_call() {
    let mut c = consent_call();
    let acts = c.say_turn("No. Take me off your list.");
    assert_eq!(
        acts,
        [Action::DoNotCall, play(Prompt::DoNotCallGoodbye, false)]
    );
    assert_eq!(
        c.input(Input::PlaybackFinished),
        [Action::Hangup {
            reason: EndReason::DoNotCall
        }]
    );
    let mut c = listening_call(CallConfig::default());
    let acts = c.say_turn("Can you call me again next week?");
    assert!(
        matches!(&acts[..], [Action::Reply { .. }]),
        "an ordinary request: {acts:?}"
    );
}

#[test]
fn barge_in_pauses_within_200ms_and_backchannels_resume() {
    let mut c = listening_call(CallConfig::default());
    c.say_turn("When are you open?");
    // The reply is playing; the caller says "uh-huh".
    let acts = c.audio(200, true, -20.0, Some(-15.0));
    assert_eq!(acts, [Action::PausePlayback]);
    let paused_at = c.log.len();
    let acts = c.audio(1200, false, -70.0, None);
    assert!(matches!(&acts[..], [Action::Transcribe { .. }]), "{acts:?}");
    assert_eq!(
        c.input(Input::Transcript {
            text: "Uh-huh.".into()
        }),
        [Action::ResumePlayback]
    );

    // Now a real interruption.
    let acts = c.audio(160, true, -20.0, Some(-15.0));
    assert_eq!(
        acts,
        [Action::PausePlayback],
        "paused on the 8th frame: 160 ms"
    );
    assert!(c.audio(400, true, -20.0, Some(-15.0)).is_empty());
    let acts = c.audio(1200, false, -70.0, None);
    assert!(matches!(&acts[..], [Action::Transcribe { .. }]), "{acts:?}");
    let acts = c.input(Input::Transcript {
        text: "No, I meant Sunday.".into(),
    });
    assert_eq!(
        acts,
        [
            Action::StopPlayback,
            Action::Reply {
                caller_text: "No, I meant Sunday.".into()
            }
        ]
    );
    assert!(paused_at > 0);
}

#[test]
fn a_cough_pauses_then_resumes() {
    let mut c = listening_call(CallConfig::default());
    c.say_turn("When are you open?");
    assert_eq!(
        c.audio(180, true, -20.0, Some(-15.0)),
        [Action::PausePlayback]
    );
    assert_eq!(c.audio(1200, false, -70.0, None), [Action::ResumePlayback]);
}

#[test]
fn the_greeting_can_be_talked_over() {
    let mut c = Call::new(CallConfig::default());
    assert_eq!(
        c.audio(200, true, -20.0, Some(-15.0)),
        [Action::PausePlayback]
    );
    let acts = c.audio(1200, false, -70.0, None);
    assert!(
        matches!(&acts[..], [Action::StopPlayback, Action::Transcribe { .. }]),
        "{acts:?}"
    );
    let acts = c.input(Input::Transcript {
        text: "Hi, are you open today?".into(),
    });
    assert_eq!(
        acts,
        [Action::Reply {
            caller_text: "Hi, are you open today?".into()
        }]
    );
}

#[test]
fn our_own_echo_does_not_interrupt() {
    let mut c = listening_call(CallConfig::default());
    c.say_turn("When are you open?");
    // The line returns our voice 12 dB down, and the VAD calls it speech.
    assert!(c.audio(2000, true, -27.0, Some(-15.0)).is_empty());
    // The caller talking louder than the echo does interrupt.
    assert_eq!(
        c.audio(200, true, -12.0, Some(-15.0)),
        [Action::PausePlayback]
    );
}

#[test]
fn keypad_zero_and_requests_for_a_person_transfer() {
    let mut c = listening_call(CallConfig {
        can_transfer: true,
        ..Default::default()
    });
    c.say_turn("What are your prices?");
    let acts = c.input(Input::Dtmf { digit: '0' });
    assert_eq!(acts, [Action::StopPlayback, play(Prompt::Handoff, false)]);
    assert_eq!(c.input(Input::PlaybackFinished), [Action::Transfer]);
    assert_eq!(
        c.input(Input::TransferFailed),
        [play(Prompt::TransferFailed, true)]
    );
    c.input(Input::PlaybackFinished);
    assert_eq!(
        c.say_turn("Can I speak to a real person?"),
        [play(Prompt::Handoff, false)]
    );
    assert_eq!(c.input(Input::PlaybackFinished), [Action::Transfer]);
    assert_eq!(
        c.input(Input::TransferSucceeded),
        [Action::Hangup {
            reason: EndReason::Transferred
        }]
    );

    let mut c = listening_call(CallConfig::default());
    assert_eq!(
        c.input(Input::Dtmf { digit: '0' }),
        [play(Prompt::NoHuman, true)]
    );
}

#[test]
fn silence_reprompts_then_says_goodbye() {
    let mut c = listening_call(CallConfig::default());
    assert_eq!(
        c.advance(Duration::from_secs(9)),
        [play(Prompt::Reprompt, false)]
    );
    c.input(Input::PlaybackFinished);
    assert_eq!(
        c.advance(Duration::from_secs(9)),
        [play(Prompt::Reprompt, false)]
    );
    c.input(Input::PlaybackFinished);
    assert_eq!(
        c.advance(Duration::from_secs(9)),
        [play(Prompt::Goodbye, false)]
    );
    assert_eq!(
        c.input(Input::PlaybackFinished),
        [Action::Hangup {
            reason: EndReason::Silence
        }]
    );
}

#[test]
fn calls_end_at_the_maximum_length() {
    let mut c = listening_call(CallConfig {
        max_call: Duration::from_secs(60),
        ..Default::default()
    });
    c.say_turn("Tell me everything.");
    let acts = c.advance(Duration::from_secs(61));
    assert_eq!(acts, [Action::StopPlayback, play(Prompt::Goodbye, false)]);
    assert_eq!(
        c.input(Input::PlaybackFinished),
        [Action::Hangup {
            reason: EndReason::MaxDuration
        }]
    );
}

#[test]
fn an_engine_failure_is_spoken_about_never_silent() {
    let mut c = listening_call(CallConfig {
        can_transfer: true,
        ..Default::default()
    });
    c.say_turn("When are you open?");
    assert_eq!(
        c.input(Input::EngineFailed),
        [Action::StopPlayback, play(Prompt::Fallback, false)]
    );
    assert_eq!(c.input(Input::PlaybackFinished), [Action::Transfer]);

    let mut c = listening_call(CallConfig::default());
    c.say_turn("When are you open?");
    c.input(Input::EngineFailed);
    assert_eq!(
        c.input(Input::PlaybackFinished),
        [Action::Hangup {
            reason: EndReason::EngineFailure
        }]
    );
}

#[test]
fn a_caller_who_goes_on_talking_is_heard_as_one_turn() {
    let mut c = listening_call(CallConfig::default());
    c.audio(600, true, -20.0, None);
    let acts = c.audio(600, false, -70.0, None);
    assert!(matches!(&acts[..], [Action::Transcribe { .. }]));
    // They resume before the transcript is back.
    c.audio(300, true, -20.0, None);
    assert!(c
        .input(Input::Transcript {
            text: "I'd like to book".into()
        })
        .is_empty());
    let acts = c.audio(1200, false, -70.0, None);
    assert!(matches!(&acts[..], [Action::Transcribe { .. }]));
    let acts = c.input(Input::Transcript {
        text: "a cleaning on Tuesday.".into(),
    });
    assert_eq!(
        acts,
        [Action::Reply {
            caller_text: "I'd like to book a cleaning on Tuesday.".into()
        }]
    );
}

/// Frames of silence until the session asks for something; how long that took.
fn silence_until_action(c: &mut Call, limit_ms: u64) -> (u64, Vec<Action>) {
    for ms in (20..=limit_ms).step_by(20) {
        let acts = c.audio(20, false, -70.0, None);
        if !acts.is_empty() {
            return (ms, acts);
        }
    }
    (limit_ms, Vec::new())
}

#[test]
fn a_pause_is_transcribed_early_and_a_complete_sentence_ends_the_turn_sooner() {
    // Without a partial, the default hangover (500 ms) ends the turn.
    let mut c = listening_call(CallConfig::default());
    c.audio(800, true, -20.0, None);
    let (waited, acts) = silence_until_action(&mut c, 2000);
    assert!(matches!(&acts[..], [Action::Transcribe { .. }]), "{acts:?}");
    assert_eq!(waited, 500);
    assert_eq!(c.peeks.len(), 1, "one peek for one pause: {:?}", c.peeks);

    // With the peek's text ending a sentence, 250 ms of silence is enough.
    let mut c = listening_call(CallConfig::default());
    let spoke_from = c.now;
    c.audio(800, true, -20.0, None);
    let last_voiced = c.now;
    let mut waited = 0;
    while c.peeks.is_empty() {
        assert!(c.audio(20, false, -70.0, None).is_empty());
        waited += 20;
    }
    assert_eq!(waited, 60, "the peek comes 60 ms into the pause");
    let Action::Peek { start, end, .. } = c.peeks[0] else {
        unreachable!()
    };
    assert_eq!(end, last_voiced);
    assert_eq!(
        start, spoke_from,
        "from the start of the first voiced frame"
    );
    assert_eq!(
        c.partial("How much is a cleaning?"),
        [Action::Prepare {
            text: "How much is a cleaning?".into()
        }],
        "the reply can be prepared while the turn may still go on"
    );
    let (more, acts) = silence_until_action(&mut c, 2000);
    assert_eq!(
        acts,
        [Action::Transcribe {
            start,
            end: last_voiced
        }],
        "the turn ends on the peeked segment, so its transcript can be reused"
    );
    assert_eq!(waited + more, 260);
}

#[test]
fn long_speech_is_transcribed_as_it_goes_to_prepare_the_reply_not_to_end_the_turn() {
    let mut c = listening_call(CallConfig::default());
    c.audio(2000, true, -20.0, None);
    assert_eq!(c.interims.len(), 3, "one every 600 ms of speech");
    assert!(c.peeks.is_empty(), "no pause yet");
    let Action::Peek { end, .. } = c.interims[0] else {
        unreachable!()
    };
    // The caller talks on: the words prepare the reply, and a complete-sounding sentence
    // does not shorten the wait at the coming pause.
    assert_eq!(
        c.input(Input::Partial {
            text: "How much is it?".into(),
            end,
        }),
        [Action::Prepare {
            text: "How much is it?".into()
        }]
    );
    let (waited, acts) = silence_until_action(&mut c, 2000);
    assert!(matches!(&acts[..], [Action::Transcribe { .. }]), "{acts:?}");
    assert_eq!(waited, 500);
    assert_eq!(c.peeks.len(), 1, "the pause is peeked as always");
}

#[test]
fn a_pause_the_caller_talked_on_from_does_not_shorten_the_turn() {
    let mut c = listening_call(CallConfig::default());
    c.audio(800, true, -20.0, None);
    c.audio(120, false, -70.0, None);
    assert_eq!(c.peeks.len(), 1);
    // The caller goes on ("… and for a child?") before the pause's transcript is in.
    c.audio(600, true, -20.0, None);
    assert_eq!(
        c.partial("How much is a cleaning?"),
        [Action::Prepare {
            text: "How much is a cleaning?".into()
        }]
    );
    let (waited, acts) = silence_until_action(&mut c, 2000);
    assert!(matches!(&acts[..], [Action::Transcribe { .. }]), "{acts:?}");
    assert_eq!(
        waited, 500,
        "the default hangover, not a finished sentence's"
    );
}

#[test]
fn a_trailing_number_holds_the_turn_open_and_each_pause_is_peeked_once() {
    let mut c = listening_call(CallConfig::default());
    c.audio(800, true, -20.0, None);
    c.audio(120, false, -70.0, None);
    assert_eq!(c.peeks.len(), 1);
    c.partial("My number is five five five");
    // 600 ms of silence would have ended it by default; mid-number it waits for more.
    assert!(c.audio(600, false, -70.0, None).is_empty());
    c.audio(600, true, -20.0, None);
    let (_, acts) = silence_until_action(&mut c, 2000);
    assert!(matches!(&acts[..], [Action::Transcribe { .. }]), "{acts:?}");
    assert_eq!(c.peeks.len(), 2, "{:?}", c.peeks);
}

#[test]
fn no_peeks_while_a_prompt_plays_and_late_partials_do_not_leak_into_the_next_turn() {
    let mut c = consent_call();
    assert!(c.peeks.is_empty(), "talking over the consent question");
    // The consent answer is policy's, not the LLM's: nothing to prepare.
    c.audio(600, true, -20.0, None);
    c.audio(120, false, -70.0, None);
    assert_eq!(c.peeks.len(), 1);
    assert!(c.partial("Yes").is_empty());
    let acts = c.audio(600, false, -70.0, None);
    assert!(matches!(&acts[..], [Action::Transcribe { .. }]), "{acts:?}");
    let acts = c.input(Input::Transcript {
        text: "Yes.".into(),
    });
    assert!(matches!(&acts[..], [Action::LogConsent { .. }]), "{acts:?}");
    c.input(Input::ConsentLogged);
    c.input(Input::PlaybackFinished);
    let peeks = c.peeks.len();
    // A partial arriving after its utterance ended must not shorten the next one.
    c.partial("Thanks.");
    c.audio(800, true, -20.0, None);
    let (waited, acts) = silence_until_action(&mut c, 2000);
    assert!(matches!(&acts[..], [Action::Transcribe { .. }]), "{acts:?}");
    assert_eq!(waited, 500);
    assert_eq!(c.peeks.len(), peeks + 1);
}

fn reply(text: &str) -> Action {
    Action::Reply {
        caller_text: text.into(),
    }
}

#[test]
fn transfer_rules_topics_an_accepted_offer_and_repeated_misunderstanding() {
    let config = CallConfig {
        can_transfer: true,
        transfer_topics: vec!["billing dispute".into()],
        ..Default::default()
    };
    // A configured topic goes to a person, whatever else is said.
    let mut c = listening_call(config.clone());
    assert_eq!(
        c.say_turn("Hi, I have a billing dispute about my last visit."),
        [play(Prompt::Handoff, false)]
    );
    assert_eq!(c.input(Input::PlaybackFinished), [Action::Transfer]);

    // "I don't know, shall I transfer you?" answered with a short yes.
    let mut c = listening_call(config.clone());
    assert_eq!(
        c.say_turn("Do you do implants?"),
        [reply("Do you do implants?")]
    );
    c.input(Input::CouldNotHelp);
    c.input(Input::PlaybackFinished);
    assert_eq!(c.say_turn("Yes, please."), [play(Prompt::Handoff, false)]);

    // The offer holds for one turn only, and a new question is not a yes.
    let mut c = listening_call(config.clone());
    c.say_turn("Do you do implants?");
    c.input(Input::CouldNotHelp);
    c.input(Input::PlaybackFinished);
    assert_eq!(
        c.say_turn("Yes, and how much is a filling?"),
        [reply("Yes, and how much is a filling?")]
    );
    c.input(Input::PlaybackFinished);
    assert_eq!(c.say_turn("Sure."), [reply("Sure.")]);

    // Two unintelligible turns in a row: a person takes over.
    let mut c = listening_call(config);
    assert!(c.say_turn("").is_empty());
    assert_eq!(c.say_turn(""), [play(Prompt::Handoff, false)]);

    // Without anyone to transfer to, the offer and the rules change nothing.
    let mut c = listening_call(CallConfig {
        transfer_topics: vec!["billing dispute".into()],
        ..Default::default()
    });
    c.say_turn("Do you do implants?");
    c.input(Input::CouldNotHelp);
    c.input(Input::PlaybackFinished);
    assert_eq!(c.say_turn("Yes."), [reply("Yes.")]);
    c.input(Input::PlaybackFinished);
    assert!(c.say_turn("").is_empty());
    assert!(c.say_turn("").is_empty());
    assert_eq!(
        c.say_turn("A billing dispute."),
        [play(Prompt::NoHuman, true)]
    );
}
