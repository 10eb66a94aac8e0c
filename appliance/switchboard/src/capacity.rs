//! How many calls the box carries at once. `calls.max_concurrent` is the ceiling; below it the
//! box learns its own limit from the voice-to-voice latency of the turns it answers: when turns
//! answered at the limit miss `calls.target_p95_ms`, it takes one call fewer; when they beat it
//! with room to spare, one more. A box that is too slow for one more caller turns that caller
//! away with 503 instead of making every caller wait.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// Turns measured at the limit before it moves.
const SAMPLES: usize = 20;

#[derive(Debug)]
pub struct Capacity {
    /// One permit a call, `ceiling` in all: the hard cap, and what shutdown drains.
    slots: Arc<Semaphore>,
    ceiling: usize,
    limit: AtomicUsize,
    learner: Option<Mutex<Learner>>,
}

impl Capacity {
    /// Starts at the ceiling; with a `target`, the limit then follows the measurements.
    pub fn new(ceiling: usize, target: Option<Duration>) -> Arc<Capacity> {
        let ceiling = ceiling.max(1);
        metrics::gauge!("switchboard_calls_capacity").set(ceiling as f64);
        Arc::new(Capacity {
            slots: Arc::new(Semaphore::new(ceiling)),
            ceiling,
            limit: AtomicUsize::new(ceiling),
            learner: target.map(|t| Mutex::new(Learner::new(t))),
        })
    }

    /// A slot for one more call, held until the call's record is closed; `None` at the limit.
    pub fn try_admit(&self) -> Option<OwnedSemaphorePermit> {
        if self.active() >= self.limit() {
            return None;
        }
        self.slots.clone().try_acquire_owned().ok()
    }

    /// [`Capacity::try_admit`] for an outbound call: only while more than `reserve` slots
    /// stay free for inbound callers under the current limit.
    pub fn try_admit_leaving(&self, reserve: usize) -> Option<OwnedSemaphorePermit> {
        if self.active() + reserve >= self.limit() {
            return None;
        }
        self.try_admit()
    }

    pub fn active(&self) -> usize {
        self.ceiling - self.slots.available_permits()
    }

    pub fn limit(&self) -> usize {
        self.limit.load(Ordering::Relaxed)
    }

    /// One answered turn: from the end of the caller's speech to the first audio of the reply.
    pub fn turn_answered(&self, voice_to_voice: Duration) {
        let Some(learner) = &self.learner else {
            return;
        };
        let mut learner = learner.lock().unwrap_or_else(|p| p.into_inner());
        let (active, limit) = (self.active(), self.limit());
        let Some(step) = learner.record(voice_to_voice, active, limit, self.ceiling) else {
            return;
        };
        self.limit.store(step.limit, Ordering::Relaxed);
        metrics::gauge!("switchboard_calls_capacity").set(step.limit as f64);
        tracing::warn!(
            from = limit,
            to = step.limit,
            p95_ms = step.p95.as_millis() as u64,
            target_ms = learner.target.as_millis() as u64,
            "call capacity changed: voice-to-voice p95 over the last {SAMPLES} turns at the limit"
        );
    }

    /// Waits until every admitted call has released its slot, up to `timeout`.
    pub async fn drain(&self, timeout: Duration) -> bool {
        let all = u32::try_from(self.ceiling).unwrap_or(u32::MAX);
        tokio::time::timeout(timeout, self.slots.acquire_many(all))
            .await
            .is_ok_and(|permit| permit.is_ok())
    }
}

/// The decision rule, without clocks or locks.
#[derive(Debug)]
struct Learner {
    target: Duration,
    window: Vec<Duration>,
}

#[derive(Debug, PartialEq, Eq)]
struct Step {
    limit: usize,
    p95: Duration,
}

impl Learner {
    fn new(target: Duration) -> Learner {
        Learner {
            target,
            window: Vec::with_capacity(SAMPLES),
        }
    }

    /// Records a turn answered while `active` calls were up; a new limit once enough turns
    /// at the limit say so. Turns below the limit say nothing about it and are not counted.
    fn record(
        &mut self,
        turn: Duration,
        active: usize,
        limit: usize,
        ceiling: usize,
    ) -> Option<Step> {
        if active < limit {
            return None;
        }
        self.window.push(turn);
        if self.window.len() < SAMPLES {
            return None;
        }
        let mut turns = std::mem::take(&mut self.window);
        turns.sort();
        // Nearest rank: the 19th of 20.
        let p95 = turns[(turns.len() * 95).div_ceil(100) - 1];
        let limit = if p95 > self.target && limit > 1 {
            limit - 1
        } else if p95 < self.target * 3 / 4 && limit < ceiling {
            limit + 1
        } else {
            return None;
        };
        Some(Step { limit, p95 })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TARGET: Duration = Duration::from_millis(1200);

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    /// Feeds `n` turns of `turn` at `active` calls; the last answer.
    fn feed(
        l: &mut Learner,
        n: usize,
        turn: Duration,
        active: usize,
        limit: usize,
    ) -> Option<Step> {
        (0..n)
            .map(|_| l.record(turn, active, limit, 4))
            .last()
            .flatten()
    }

    #[test]
    fn slow_turns_at_the_limit_lower_it_fast_ones_raise_it() {
        let mut l = Learner::new(TARGET);
        assert_eq!(feed(&mut l, SAMPLES - 1, ms(2000), 2, 2), None);
        assert_eq!(
            l.record(ms(2000), 2, 2, 4),
            Some(Step {
                limit: 1,
                p95: ms(2000)
            })
        );
        // Never below one call.
        assert_eq!(feed(&mut l, SAMPLES, ms(3000), 1, 1), None);
        // Well under the target at the limit: one more.
        assert_eq!(
            feed(&mut l, SAMPLES, ms(600), 1, 1),
            Some(Step {
                limit: 2,
                p95: ms(600)
            })
        );
        // Near the target: stays.
        assert_eq!(feed(&mut l, SAMPLES, ms(1000), 2, 2), None);
        // Never above the ceiling.
        assert_eq!(feed(&mut l, SAMPLES, ms(300), 4, 4), None);
    }

    #[test]
    fn turns_below_the_limit_do_not_count_and_one_outlier_does_not_move_it() {
        let mut l = Learner::new(TARGET);
        assert_eq!(feed(&mut l, 3 * SAMPLES, ms(5000), 1, 2), None);
        assert!(l.window.is_empty());
        let mut turns = vec![ms(1000); SAMPLES - 1];
        turns.push(ms(4000));
        let steps: Vec<_> = turns
            .into_iter()
            .filter_map(|t| l.record(t, 2, 2, 4))
            .collect();
        assert!(steps.is_empty(), "{steps:?}");
    }

    #[tokio::test]
    async fn admission_follows_the_learnt_limit() {
        let capacity = Capacity::new(2, Some(TARGET));
        let first = capacity.try_admit().expect("a slot");
        let second = capacity.try_admit().expect("a second slot");
        assert!(capacity.try_admit().is_none(), "over the ceiling");
        for _ in 0..SAMPLES {
            capacity.turn_answered(ms(2500));
        }
        assert_eq!(capacity.limit(), 1);
        drop(second);
        assert!(capacity.try_admit().is_none(), "one call is the limit now");
        drop(first);
        let only = capacity.try_admit().expect("the one slot");
        for _ in 0..SAMPLES {
            capacity.turn_answered(ms(400));
        }
        assert_eq!(capacity.limit(), 2);
        let _two = capacity.try_admit().expect("room again");
        drop(only);
        assert!(!capacity.drain(ms(10)).await, "a call is still up");
    }

    #[tokio::test]
    async fn without_a_target_the_ceiling_is_the_limit() {
        let capacity = Capacity::new(1, None);
        for _ in 0..SAMPLES {
            capacity.turn_answered(ms(9000));
        }
        assert_eq!(capacity.limit(), 1);
        let slot = capacity.try_admit();
        assert!(slot.is_some());
        drop(slot);
        assert!(capacity.drain(ms(10)).await);
    }
}
