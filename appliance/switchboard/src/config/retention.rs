//! `[retention]` and `[agents.retention]`: how long what a call leaves behind is kept.

use std::num::NonZeroU32;
use std::time::Duration;

use super::*;

/// Days after a call ends that each layer of it is kept; a period left out keeps that layer
/// until it is erased. `[retention]` is the box's policy; an agent's `[agents.retention]`
/// overrides it period by period.
#[derive(Clone, Copy, Debug, Default, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields, default)]
pub struct RetentionConfig {
    /// The call's recording.
    pub recordings_days: Option<NonZeroU32>,
    /// Its words: transcript, turns, summary, outcome, and the caller memory made from them.
    pub transcripts_days: Option<NonZeroU32>,
    /// The call record itself, with its consent decision.
    pub calls_days: Option<NonZeroU32>,
}

/// How long each layer is kept, as applied: nothing outlives the call record.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Retention {
    pub recordings: Option<Duration>,
    pub transcripts: Option<Duration>,
    pub calls: Option<Duration>,
}

impl RetentionConfig {
    /// This policy, with `fallback`'s periods where this one sets none.
    pub fn or(self, fallback: RetentionConfig) -> RetentionConfig {
        RetentionConfig {
            recordings_days: self.recordings_days.or(fallback.recordings_days),
            transcripts_days: self.transcripts_days.or(fallback.transcripts_days),
            calls_days: self.calls_days.or(fallback.calls_days),
        }
    }

    /// The periods to apply. Nothing is kept longer than its record: removing a record takes
    /// its words along, but waits for its recording (a file on one box), so a recording goes
    /// by the records' period at the latest.
    pub fn applied(self) -> Retention {
        let days =
            |d: Option<NonZeroU32>| d.map(|d| Duration::from_secs(u64::from(d.get()) * 86_400));
        let calls = days(self.calls_days);
        let within_calls = |d: Option<Duration>| match (d, calls) {
            (Some(d), Some(c)) => Some(d.min(c)),
            (d, _) => d,
        };
        Retention {
            recordings: within_calls(days(self.recordings_days).or(calls)),
            transcripts: within_calls(days(self.transcripts_days)),
            calls,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn days(n: u32) -> Option<NonZeroU32> {
        NonZeroU32::new(n)
    }

    #[test]
    fn an_agents_periods_override_the_boxs_and_nothing_outlives_the_record() {
        let box_policy = RetentionConfig {
            recordings_days: days(30),
            transcripts_days: days(400),
            calls_days: days(365),
        };
        let agent = RetentionConfig {
            recordings_days: days(7),
            ..RetentionConfig::default()
        };
        let day = Duration::from_secs(86_400);
        assert_eq!(
            agent.or(box_policy).applied(),
            Retention {
                recordings: Some(7 * day),
                transcripts: Some(365 * day),
                calls: Some(365 * day),
            }
        );
        assert_eq!(RetentionConfig::default().applied(), Retention::default());
        let records_only = RetentionConfig {
            calls_days: days(90),
            ..RetentionConfig::default()
        };
        assert_eq!(
            records_only.applied(),
            Retention {
                recordings: Some(90 * day),
                transcripts: None,
                calls: Some(90 * day),
            },
            "a record waits for its recording, so they go together; its words go with it"
        );
    }
}
