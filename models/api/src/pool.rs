//! Dedicated engine threads behind a bounded queue.
//!
//! Engines block for hundreds of milliseconds; they must never run on an async runtime's workers.
//! A [`Pool`] owns N named OS threads, each holding its own engine state `E` (a whisper decoder
//! state, a model handle), and a bounded queue of jobs. A full queue is an answer
//! ([`PoolError::Full`]), so admission control can turn it into a 503, not a growing backlog.
//!
//! A job is a closure `FnOnce(&mut E, &CancelToken) -> R`; [`Job`] is the caller's handle to
//! wait for `R` (blocking, or with a timeout) or to cancel it. Dropping a `Job` cancels it.

use std::sync::mpsc::{self, Receiver, RecvTimeoutError, SyncSender, TrySendError};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use crate::CancelToken;

type Task<E> = Box<dyn FnOnce(&mut E) + Send>;

/// Why a job could not be submitted or finished.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum PoolError {
    /// Every thread is busy and the queue is at its bound.
    #[error("engine pool {0:?}: queue full")]
    Full(&'static str),
    /// The pool is shut down, or the worker running the job panicked.
    #[error("engine pool {0:?}: worker gone")]
    Gone(&'static str),
}

/// A fixed set of engine threads.
pub struct Pool<E> {
    name: &'static str,
    queue: Option<SyncSender<Task<E>>>,
    threads: Vec<JoinHandle<()>>,
}

impl<E> std::fmt::Debug for Pool<E> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pool")
            .field("name", &self.name)
            .field("threads", &self.threads.len())
            .finish()
    }
}

impl<E: Send + 'static> Pool<E> {
    /// Starts one thread per element of `states`, named `{name}-{i}`, sharing a queue of
    /// `queue` waiting jobs.
    pub fn new(name: &'static str, states: Vec<E>, queue: usize) -> std::io::Result<Self> {
        let (tx, rx) = mpsc::sync_channel::<Task<E>>(queue);
        let rx = Arc::new(Mutex::new(rx));
        let mut threads = Vec::with_capacity(states.len());
        for (i, mut state) in states.into_iter().enumerate() {
            let rx = Arc::clone(&rx);
            let handle = std::thread::Builder::new()
                .name(format!("{name}-{i}"))
                .spawn(move || loop {
                    // The lock is held only while waiting for the next task, never while
                    // running it; a poisoned lock means a sibling panicked while waiting, which
                    // cannot happen, so treat it as shutdown.
                    let task = match rx.lock() {
                        Ok(guard) => guard.recv(),
                        Err(_) => return,
                    };
                    match task {
                        Ok(task) => task(&mut state),
                        Err(_) => return, // every sender dropped: shutdown
                    }
                })?;
            threads.push(handle);
        }
        Ok(Pool {
            name,
            queue: Some(tx),
            threads,
        })
    }

    /// Queues `job`; fails fast with [`PoolError::Full`] instead of waiting for room.
    pub fn submit<R, F>(&self, job: F) -> Result<Job<R>, PoolError>
    where
        R: Send + 'static,
        F: FnOnce(&mut E, &CancelToken) -> R + Send + 'static,
    {
        let queue = self.queue.as_ref().ok_or(PoolError::Gone(self.name))?;
        let cancel = CancelToken::new();
        let (tx, rx) = mpsc::sync_channel(1);
        let token = cancel.clone();
        let task: Task<E> = Box::new(move |state: &mut E| {
            if token.is_cancelled() {
                return; // cancelled while still queued: skipped, `wait` reports Gone
            }
            // The caller may have given up; a closed result channel is not an error.
            let _ = tx.send(job(state, &token));
        });
        match queue.try_send(task) {
            Ok(()) => Ok(Job {
                name: self.name,
                result: rx,
                cancel,
            }),
            Err(TrySendError::Full(_)) => Err(PoolError::Full(self.name)),
            Err(TrySendError::Disconnected(_)) => Err(PoolError::Gone(self.name)),
        }
    }
}

impl<E> Drop for Pool<E> {
    /// Closes the queue and waits for the threads to finish their current and queued jobs.
    fn drop(&mut self) {
        self.queue = None;
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
    }
}

/// The caller's handle on a submitted job.
#[derive(Debug)]
pub struct Job<R> {
    name: &'static str,
    result: Receiver<R>,
    cancel: CancelToken,
}

/// What [`Job::wait_timeout`] found.
#[derive(Debug, PartialEq, Eq)]
pub enum Waited<R> {
    /// The job's result.
    Done(R),
    /// Not finished yet; the job keeps running.
    Pending,
}

impl<R> Job<R> {
    /// Asks the engine to stop at its next check (or skip the job if still queued).
    pub fn cancel(&self) {
        self.cancel.cancel();
    }

    /// The job's token, e.g. to hand to the code that detects a barge-in.
    pub fn cancel_token(&self) -> &CancelToken {
        &self.cancel
    }

    /// Blocks until the job finishes. [`PoolError::Gone`] if it was skipped after being
    /// cancelled in the queue, or its worker died.
    pub fn wait(self) -> Result<R, PoolError> {
        self.result.recv().map_err(|_| PoolError::Gone(self.name))
    }

    /// Blocks at most `timeout`.
    pub fn wait_timeout(&self, timeout: Duration) -> Result<Waited<R>, PoolError> {
        match self.result.recv_timeout(timeout) {
            Ok(r) => Ok(Waited::Done(r)),
            Err(RecvTimeoutError::Timeout) => Ok(Waited::Pending),
            Err(RecvTimeoutError::Disconnected) => Err(PoolError::Gone(self.name)),
        }
    }
}

impl<R> Drop for Job<R> {
    fn drop(&mut self) {
        self.cancel.cancel();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn runs_jobs_on_named_threads_with_own_state() {
        let pool = Pool::new("test", vec![0u32, 100], 4).unwrap();
        let job = pool
            .submit(|n: &mut u32, _: &CancelToken| {
                *n += 1;
                std::thread::current().name().unwrap().to_owned()
            })
            .unwrap();
        assert!(job.wait().unwrap().starts_with("test-"));
    }

    #[test]
    fn full_queue_is_an_answer() {
        let pool = Pool::new("busy", vec![()], 1).unwrap();
        let (gate_tx, gate_rx) = mpsc::channel::<()>();
        let gate_rx = Mutex::new(gate_rx);
        let (started_tx, started_rx) = mpsc::channel::<()>();
        let blocker = pool
            .submit(move |_, _| {
                started_tx.send(()).unwrap();
                gate_rx.lock().unwrap().recv().unwrap();
            })
            .unwrap();
        started_rx.recv().unwrap();
        let queued = pool.submit(|_, _| 1).unwrap();
        assert_eq!(pool.submit(|_, _| 2).unwrap_err(), PoolError::Full("busy"));
        gate_tx.send(()).unwrap();
        blocker.wait().unwrap();
        assert_eq!(queued.wait().unwrap(), 1);
    }

    #[test]
    fn cancel_reaches_the_running_job() {
        let pool = Pool::new("cancel", vec![()], 1).unwrap();
        let job = pool
            .submit(|_, cancel| {
                let mut spins = 0u64;
                while !cancel.is_cancelled() {
                    std::thread::sleep(Duration::from_millis(1));
                    spins += 1;
                }
                spins
            })
            .unwrap();
        assert_eq!(
            job.wait_timeout(Duration::from_millis(20)).unwrap(),
            Waited::Pending
        );
        job.cancel();
        assert!(job.wait().is_ok());
    }
}
