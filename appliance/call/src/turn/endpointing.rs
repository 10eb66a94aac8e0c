//! Deciding that the caller has finished speaking, from 20 ms VAD frames and the partial
//! transcript. The wait after the last voiced frame adapts: short after a complete sentence,
//! long while the caller is mid-number, spelling, or trailing off ("um…", "and…").

use std::time::{Duration, Instant};

#[derive(Clone, Debug)]
pub struct EndpointConfig {
    /// Voiced time needed before we call it speech (filters clicks and line noise).
    pub onset: Duration,
    /// Shorter utterances are dropped as noise.
    pub min_speech: Duration,
    /// Silence that ends a turn after a complete sentence.
    pub complete_hangover: Duration,
    /// Silence that ends a turn when nothing tells us more.
    pub default_hangover: Duration,
    /// Silence that ends a turn while the caller is mid-number, spelling or hesitating.
    pub incomplete_hangover: Duration,
    /// A turn is cut here even if the caller keeps talking.
    pub max_utterance: Duration,
    /// Silence after which the utterance so far is transcribed early (`None`: never). Its text
    /// sets the hangover, and when the turn ends at that pause it is the turn's transcript, so
    /// speech-to-text overlaps the hangover instead of following it.
    pub peek: Option<Duration>,
    /// While the caller talks on, the utterance so far is also transcribed after each this much
    /// of it (`None`: only at pauses); the transcripts prepare the reply, they never end a turn.
    pub interim: Option<Duration>,
}

impl Default for EndpointConfig {
    fn default() -> Self {
        EndpointConfig {
            onset: Duration::from_millis(60),
            min_speech: Duration::from_millis(200),
            complete_hangover: Duration::from_millis(250),
            default_hangover: Duration::from_millis(500),
            incomplete_hangover: Duration::from_millis(1000),
            max_utterance: Duration::from_secs(30),
            peek: Some(Duration::from_millis(60)),
            interim: Some(Duration::from_millis(600)),
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EndpointEvent {
    /// Sustained speech began at `at` (the first voiced frame of the run).
    SpeechStarted { at: Instant },
    /// The caller's turn is over: the audio from `start` to `end` is the utterance.
    TurnEnded {
        start: Instant,
        end: Instant,
        waited: Duration,
    },
    /// What started as speech ended too short to be an utterance (a cough, a click).
    Noise,
}

#[derive(Debug)]
pub struct Endpointer {
    config: EndpointConfig,
    state: State,
    hangover: Duration,
}

#[derive(Debug, Clone, Copy)]
enum State {
    Silence {
        run_start: Option<Instant>,
    },
    Speech {
        start: Instant,
        last_voiced: Instant,
        voiced: Duration,
    },
}

/// One VAD frame's length.
const FRAME: Duration = Duration::from_millis(20);

impl Endpointer {
    pub fn new(config: EndpointConfig) -> Self {
        let hangover = config.default_hangover;
        Endpointer {
            config,
            state: State::Silence { run_start: None },
            hangover,
        }
    }

    /// True while an utterance is in progress.
    pub fn in_speech(&self) -> bool {
        matches!(self.state, State::Speech { .. })
    }

    /// Forgets any utterance in progress (e.g. while a non-interruptible prompt plays).
    pub fn reset(&mut self) {
        self.state = State::Silence { run_start: None };
        self.hangover = self.config.default_hangover;
    }

    /// The partial transcript of the utterance so far; sets how long a pause ends it.
    pub fn set_partial(&mut self, text: &str) {
        self.hangover = match completeness(text) {
            Completeness::Complete => self.config.complete_hangover,
            Completeness::Unknown => self.config.default_hangover,
            Completeness::Incomplete => self.config.incomplete_hangover,
        };
    }

    /// The utterance so far (`start`, last voiced frame) once the caller has paused for the
    /// configured peek time; the same pause gives the same pair.
    pub fn pause(&self, now: Instant) -> Option<(Instant, Instant)> {
        let peek = self.config.peek?;
        self.utterance()
            .filter(|(_, last_voiced)| now.duration_since(*last_voiced) >= peek)
    }

    /// The utterance in progress (`start`, last voiced frame), once it is long enough to be one.
    pub fn utterance(&self) -> Option<(Instant, Instant)> {
        match self.state {
            State::Speech {
                start,
                last_voiced,
                voiced,
            } if voiced >= self.config.min_speech => Some((start, last_voiced)),
            _ => None,
        }
    }

    /// The current pause that would end the turn.
    pub fn hangover(&self) -> Duration {
        self.hangover
    }

    /// Feeds the frame that ends at `now`.
    pub fn frame(&mut self, now: Instant, voiced: bool) -> Option<EndpointEvent> {
        match self.state {
            State::Silence { run_start } => {
                if !voiced {
                    self.state = State::Silence { run_start: None };
                    return None;
                }
                let start = run_start.unwrap_or(now - FRAME);
                if now.duration_since(start) >= self.config.onset {
                    self.state = State::Speech {
                        start,
                        last_voiced: now,
                        voiced: now - start,
                    };
                    return Some(EndpointEvent::SpeechStarted { at: start });
                }
                self.state = State::Silence {
                    run_start: Some(start),
                };
                None
            }
            State::Speech {
                start,
                last_voiced,
                voiced: total,
            } => {
                let total = if voiced { total + FRAME } else { total };
                let last_voiced = if voiced { now } else { last_voiced };
                let waited = now.duration_since(last_voiced);
                let too_long = now.duration_since(start) >= self.config.max_utterance;
                if waited >= self.hangover || too_long {
                    self.reset();
                    if total < self.config.min_speech {
                        return Some(EndpointEvent::Noise);
                    }
                    return Some(EndpointEvent::TurnEnded {
                        start,
                        end: last_voiced,
                        waited,
                    });
                }
                self.state = State::Speech {
                    start,
                    last_voiced,
                    voiced: total,
                };
                None
            }
        }
    }
}

#[derive(Debug, PartialEq, Eq)]
enum Completeness {
    Complete,
    Unknown,
    Incomplete,
}

/// Words after which a caller is rarely done: numbers (phone numbers, dates), hesitations,
/// conjunctions and words that need an object.
const CONTINUES: &[&str] = &[
    "zero", "oh", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten",
    "hundred", "thousand", "double", "triple", "um", "uh", "er", "erm", "hmm", "and", "but", "or",
    "so", "because", "to", "the", "a", "an", "my", "is", "at", "on", "for", "with", "of", "like",
    "then", "if", "that", "number", "is", "was",
];

fn completeness(text: &str) -> Completeness {
    let trimmed = text.trim();
    let Some(last) = trimmed.split_whitespace().last() else {
        return Completeness::Unknown;
    };
    let word: String = last
        .chars()
        .filter(|c| c.is_alphanumeric())
        .collect::<String>()
        .to_lowercase();
    let spelled =
        word.chars().count() == 1 && word.chars().all(|c| c.is_alphabetic()) && word != "i";
    if trimmed.ends_with("...")
        || trimmed.ends_with('…')
        || trimmed.ends_with(',')
        || trimmed.ends_with('-')
        || word.chars().any(|c| c.is_ascii_digit())
        || spelled
        || CONTINUES.contains(&word.as_str())
    {
        Completeness::Incomplete
    } else if trimmed.ends_with(['.', '?', '!']) {
        Completeness::Complete
    } else {
        Completeness::Unknown
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Feeds `pattern` (1 = voiced, 0 = silent, one char per 20 ms frame) and returns the events
    /// with their frame index.
    fn run(e: &mut Endpointer, t0: Instant, pattern: &str) -> Vec<(usize, EndpointEvent)> {
        pattern
            .chars()
            .filter(|c| *c == '0' || *c == '1')
            .enumerate()
            .filter_map(|(i, c)| {
                e.frame(t0 + FRAME * (i as u32 + 1), c == '1')
                    .map(|ev| (i, ev))
            })
            .collect()
    }

    #[test]
    fn a_turn_ends_after_the_hangover() {
        let t0 = Instant::now();
        let mut e = Endpointer::new(EndpointConfig::default());
        // 400 ms of speech, then 600 ms of silence: ends 500 ms after the last voiced frame.
        let evs = run(&mut e, t0, &format!("{}{}", "1".repeat(20), "0".repeat(30)));
        assert_eq!(evs.len(), 2);
        assert!(matches!(evs[0].1, EndpointEvent::SpeechStarted { at } if at == t0));
        let (i, EndpointEvent::TurnEnded { start, end, waited }) = evs[1] else {
            panic!()
        };
        assert_eq!((start, end), (t0, t0 + FRAME * 20));
        assert_eq!(waited, Duration::from_millis(500));
        assert_eq!(i, 19 + 25);
    }

    #[test]
    fn clicks_and_short_blips_are_not_turns() {
        let t0 = Instant::now();
        let mut e = Endpointer::new(EndpointConfig::default());
        assert!(run(&mut e, t0, "1010100110000000000000000000000000000").is_empty());
        // Sustained but under 200 ms of voice: speech starts, then it was only noise.
        let evs = run(&mut e, t0, &format!("1111111{}", "0".repeat(40)));
        assert_eq!(evs.len(), 2);
        assert_eq!(evs[1].1, EndpointEvent::Noise);
    }

    #[test]
    fn the_pause_adapts_to_the_partial_transcript() {
        let mut e = Endpointer::new(EndpointConfig::default());
        e.set_partial("When are you open on Saturday?");
        assert_eq!(e.hangover(), Duration::from_millis(250));
        e.set_partial("My number is 555 12");
        assert_eq!(e.hangover(), Duration::from_millis(1000));
        e.set_partial("It's spelled S M I T");
        assert_eq!(e.hangover(), Duration::from_millis(1000));
        e.set_partial("I'd like to book, um");
        assert_eq!(e.hangover(), Duration::from_millis(1000));
        e.set_partial("I wanted to ask about my appointment and");
        assert_eq!(e.hangover(), Duration::from_millis(1000));
        e.set_partial("I wanted to ask about my appointment");
        assert_eq!(e.hangover(), Duration::from_millis(500));
    }

    #[test]
    fn a_mid_number_pause_does_not_end_the_turn() {
        let t0 = Instant::now();
        let mut e = Endpointer::new(EndpointConfig::default());
        e.set_partial("my number is five five five");
        // 400 ms voice, 700 ms pause, 400 ms voice, then silence.
        let p = format!(
            "{}{}{}{}",
            "1".repeat(20),
            "0".repeat(35),
            "1".repeat(20),
            "0".repeat(60)
        );
        let evs = run(&mut e, t0, &p);
        assert_eq!(evs.len(), 2, "{evs:?}");
        let EndpointEvent::TurnEnded { start, end, .. } = evs[1].1 else {
            panic!()
        };
        assert_eq!(start, t0);
        assert_eq!(end, t0 + FRAME * 75, "one turn across the pause");
    }

    #[test]
    fn very_long_speech_is_cut() {
        let t0 = Instant::now();
        let mut e = Endpointer::new(EndpointConfig {
            max_utterance: Duration::from_secs(2),
            ..Default::default()
        });
        let evs = run(&mut e, t0, &"1".repeat(150));
        let cut: Vec<usize> = evs
            .iter()
            .filter(|(_, e)| matches!(e, EndpointEvent::TurnEnded { .. }))
            .map(|(i, _)| *i)
            .collect();
        assert_eq!(
            cut,
            [99],
            "cut at 2 s; the speech that goes on is a new utterance"
        );
    }
}
