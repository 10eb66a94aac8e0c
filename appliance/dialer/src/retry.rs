//! How an attempt ended and whether to try the contact again.
//!
//! The outcome comes from the SIP answer to our INVITE (RFC 3261 §21) or from the call itself.
//! Each retryable outcome has its own rule (how many attempts in all, how long to wait), since a
//! busy line is worth trying again in minutes and an unanswered one in hours; a number that does
//! not exist or a person who declined is never called again by the campaign.

use crate::Error;
use std::fmt;
use std::time::Duration;

/// How one attempt ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Outcome {
    /// Someone answered and the agent spoke with them.
    Answered,
    /// 486 Busy Here, 600 Busy Everywhere.
    Busy,
    /// Rang out: our ring timeout (we CANCEL, 487), 408, 480.
    NoAnswer,
    /// An answering machine took the call.
    Voicemail,
    /// 603 Decline: the person rejected the call.
    Declined,
    /// 404, 410, 484, 485, 604: the number cannot be reached as written.
    InvalidNumber,
    /// Anything else: the trunk or the network failed (5xx, other 4xx), or the box stopped
    /// mid-attempt.
    Failed,
}

impl Outcome {
    /// The outcome of an INVITE answered with final status `status` (3xx–6xx).
    pub fn of_status(status: u16) -> Outcome {
        match status {
            486 | 600 => Outcome::Busy,
            408 | 480 | 487 => Outcome::NoAnswer,
            603 => Outcome::Declined,
            404 | 410 | 484 | 485 | 604 => Outcome::InvalidNumber,
            _ => Outcome::Failed,
        }
    }

    pub const ALL: [Outcome; 7] = [
        Outcome::Answered,
        Outcome::Busy,
        Outcome::NoAnswer,
        Outcome::Voicemail,
        Outcome::Declined,
        Outcome::InvalidNumber,
        Outcome::Failed,
    ];

    /// The name used in rules, the store and the API.
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Answered => "answered",
            Outcome::Busy => "busy",
            Outcome::NoAnswer => "no_answer",
            Outcome::Voicemail => "voicemail",
            Outcome::Declined => "declined",
            Outcome::InvalidNumber => "invalid_number",
            Outcome::Failed => "failed",
        }
    }

    pub fn parse(s: &str) -> Option<Outcome> {
        Outcome::ALL.into_iter().find(|o| o.as_str() == s)
    }
}

impl fmt::Display for Outcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// For one outcome: attempts in all (the first included), and the wait before the next.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RetryRule {
    pub attempts: u32,
    pub after: Duration,
}

/// A campaign's retry rules. Outcomes without a rule are not retried.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RetryPolicy {
    rules: Vec<(Outcome, RetryRule)>,
}

impl Default for RetryPolicy {
    /// Busy lines again in 10 minutes, unanswered ones in an hour, voicemail in four, a trunk
    /// failure in 15 minutes; three attempts at most for each.
    fn default() -> Self {
        let rule = |attempts, minutes: u64| RetryRule {
            attempts,
            after: Duration::from_secs(minutes * 60),
        };
        RetryPolicy {
            rules: vec![
                (Outcome::Busy, rule(3, 10)),
                (Outcome::NoAnswer, rule(3, 60)),
                (Outcome::Voicemail, rule(2, 240)),
                (Outcome::Failed, rule(3, 15)),
            ],
        }
    }
}

impl RetryPolicy {
    /// `busy=3/10m,no_answer=2/1h`: per outcome, attempts in all and the delay (`s`, `m`, `h`,
    /// `d`). Only the outcomes worth another try may be given a rule.
    pub fn parse(s: &str) -> Result<RetryPolicy, Error> {
        let mut rules = Vec::new();
        for part in s.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let bad = || Error::Retry(part.to_string());
            let (name, rule) = part.split_once('=').ok_or_else(bad)?;
            let outcome = Outcome::parse(name.trim()).ok_or_else(bad)?;
            if matches!(
                outcome,
                Outcome::Answered | Outcome::Declined | Outcome::InvalidNumber
            ) {
                return Err(bad());
            }
            let (attempts, after) = rule.split_once('/').ok_or_else(bad)?;
            let attempts: u32 = attempts.trim().parse().map_err(|_| bad())?;
            let after = duration(after.trim()).ok_or_else(bad)?;
            if attempts == 0 || rules.iter().any(|(o, _)| *o == outcome) {
                return Err(bad());
            }
            rules.push((outcome, RetryRule { attempts, after }));
        }
        Ok(RetryPolicy { rules })
    }

    /// How long after attempt number `attempt_no` (1 for the first) that ended with `outcome`
    /// to try again, or `None` to stop. `max_attempts` caps attempts of any outcome together.
    pub fn next(&self, outcome: Outcome, attempt_no: u32, max_attempts: u32) -> Option<Duration> {
        let (_, rule) = self.rules.iter().find(|(o, _)| *o == outcome)?;
        (attempt_no < rule.attempts && attempt_no < max_attempts).then_some(rule.after)
    }
}

impl fmt::Display for RetryPolicy {
    /// The form [`RetryPolicy::parse`] reads back.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let parts: Vec<String> = self
            .rules
            .iter()
            .map(|(o, r)| format!("{o}={}/{}", r.attempts, format_duration(r.after)))
            .collect();
        f.write_str(&parts.join(","))
    }
}

/// `90s`, `10m`, `2h`, `1d`.
fn duration(s: &str) -> Option<Duration> {
    let unit = match s.chars().last()? {
        's' => 1,
        'm' => 60,
        'h' => 3600,
        'd' => 86_400,
        _ => return None,
    };
    let n: u64 = s[..s.len() - 1].parse().ok()?;
    Some(Duration::from_secs(n.checked_mul(unit)?))
}

fn format_duration(d: Duration) -> String {
    let s = d.as_secs();
    let unit = [(86_400, 'd'), (3600, 'h'), (60, 'm')]
        .into_iter()
        .find(|&(n, _)| s > 0 && s.is_multiple_of(n));
    match unit {
        Some((n, u)) => format!("{}{u}", s / n),
        None => format!("{s}s"),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)] // reason: test code, where a panic is the failure report
    use super::*;

    #[test]
    fn sip_answers_map_to_outcomes() {
        assert_eq!(Outcome::of_status(486), Outcome::Busy);
        assert_eq!(Outcome::of_status(487), Outcome::NoAnswer);
        assert_eq!(Outcome::of_status(480), Outcome::NoAnswer);
        assert_eq!(Outcome::of_status(603), Outcome::Declined);
        assert_eq!(Outcome::of_status(404), Outcome::InvalidNumber);
        assert_eq!(Outcome::of_status(503), Outcome::Failed);
        assert_eq!(Outcome::of_status(403), Outcome::Failed);
    }

    #[test]
    fn each_outcome_retries_by_its_own_rule_within_the_overall_cap() {
        let p = RetryPolicy::parse("busy=3/10m, no_answer=2/1h").unwrap();
        assert_eq!(p.next(Outcome::Busy, 1, 5), Some(Duration::from_secs(600)));
        assert_eq!(p.next(Outcome::Busy, 2, 5), Some(Duration::from_secs(600)));
        assert_eq!(p.next(Outcome::Busy, 3, 5), None);
        assert_eq!(
            p.next(Outcome::NoAnswer, 1, 5),
            Some(Duration::from_secs(3600))
        );
        assert_eq!(p.next(Outcome::Busy, 2, 2), None, "the overall cap wins");
        assert_eq!(p.next(Outcome::Voicemail, 1, 5), None, "no rule: no retry");
        for never in [Outcome::Answered, Outcome::Declined, Outcome::InvalidNumber] {
            assert_eq!(RetryPolicy::default().next(never, 1, 9), None);
        }
        assert_eq!(p.to_string(), "busy=3/10m,no_answer=2/1h");
        assert_eq!(
            RetryPolicy::parse(&RetryPolicy::default().to_string()).unwrap(),
            RetryPolicy::default()
        );
    }

    #[test]
    fn bad_rules_are_refused_with_the_rule_named() {
        for bad in [
            "busy",
            "busy=3",
            "busy=x/1m",
            "busy=3/10",
            "busy=0/1m",
            "declined=2/1h",
            "ringing=2/1h",
            "busy=1/1m,busy=2/1m",
        ] {
            let e = RetryPolicy::parse(bad).unwrap_err();
            assert!(matches!(e, Error::Retry(_)), "{bad}: {e}");
        }
    }
}
