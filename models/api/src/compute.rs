//! One CPU engine computation at a time, in the order they asked.
//!
//! whisper.cpp, llama.cpp and ONNX Runtime (Piper) each run a computation on several threads
//! that spin at barriers between steps. Two computations at once on the same cores (two calls
//! transcribing, or one transcribing while another's reply decodes) slow each other down many
//! times over: on 2 cores, two concurrent calls' transcripts took 5–8 s instead of 0.1–0.4 s.
//! So the CPU engines take turns, step by step (a transcription, one LLM decode step: a prompt
//! chunk and every generating reply's next token, one rendered sentence), each step on every
//! thread it was given. Turns are served first come, first served: a plain mutex lets the
//! decoding loop, which asks again within microseconds of letting go, take turn after turn while
//! a sentence waits to be spoken. A GPU build does not need this for the LLM.
//!
//! Steps nobody is waiting for (an interim transcript, the end-of-call summary) run in the
//! [`background`]: they wait while any other step is waiting, so another call's caller is not
//! kept waiting behind them. The rest of a reply whose first words are playing is not such a
//! step: starved, its audio ran dry mid-reply (two calls at once: p95 1.4 → 2.5 s).

use std::cell::Cell;
use std::collections::VecDeque;
use std::sync::{Condvar, Mutex, PoisonError};

/// Who waits for the CPU, in the order they asked.
struct Queue {
    next: u64,
    busy: bool,
    urgent: VecDeque<u64>,
    background: VecDeque<u64>,
}

static QUEUE: Mutex<Queue> = Mutex::new(Queue {
    next: 0,
    busy: false,
    urgent: VecDeque::new(),
    background: VecDeque::new(),
});
static SERVED: Condvar = Condvar::new();

thread_local! {
    static BACKGROUND: Cell<bool> = const { Cell::new(false) };
}

/// The CPU is this step's while it lives.
#[must_use = "the turn ends when the guard is dropped"]
#[derive(Debug)]
pub struct CpuTurn(());

impl Drop for CpuTurn {
    fn drop(&mut self) {
        QUEUE.lock().unwrap_or_else(PoisonError::into_inner).busy = false;
        SERVED.notify_all();
    }
}

/// Waits until every step that asked earlier has run (in the background: every step waiting
/// at all); the step runs while the guard lives.
pub fn cpu_turn() -> CpuTurn {
    let mut queue = QUEUE.lock().unwrap_or_else(PoisonError::into_inner);
    let ticket = queue.next;
    queue.next += 1;
    if BACKGROUND.get() {
        queue.background.push_back(ticket);
    } else {
        queue.urgent.push_back(ticket);
    }
    loop {
        let first = queue.urgent.front().or(queue.background.front());
        if !queue.busy && first == Some(&ticket) {
            if queue.urgent.front() == Some(&ticket) {
                queue.urgent.pop_front();
            } else {
                queue.background.pop_front();
            }
            queue.busy = true;
            return CpuTurn(());
        }
        queue = SERVED.wait(queue).unwrap_or_else(PoisonError::into_inner);
    }
}

/// This thread's steps are background work while the guard lives.
#[must_use = "the thread is back to urgent work when the guard is dropped"]
#[derive(Debug)]
pub struct Background {
    was: bool,
}

impl Drop for Background {
    fn drop(&mut self) {
        BACKGROUND.set(self.was);
    }
}

/// Marks this thread's steps as background work until the guard is dropped.
pub fn background() -> Background {
    working_in(true)
}

/// Whether this thread's steps are background work.
pub fn in_background() -> bool {
    BACKGROUND.get()
}

/// This thread's steps are background work, or urgent, until the guard is dropped: for a thread
/// that runs a step on behalf of others (a batch carrying several sessions' work).
pub fn working_in(background: bool) -> Background {
    Background {
        was: BACKGROUND.replace(background),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::mpsc;

    /// The queue is global: these tests must not share it.
    static SERIAL: Mutex<()> = Mutex::new(());

    #[test]
    fn a_step_asking_again_at_once_comes_after_those_already_waiting() {
        let _serial = SERIAL.lock().unwrap_or_else(PoisonError::into_inner);
        let decoding = cpu_turn();
        let tickets = || QUEUE.lock().unwrap().next;
        let (tx, rx) = mpsc::channel();
        let waiters: Vec<_> = (0..3)
            .map(|i| {
                let tx = tx.clone();
                let taken = tickets() + 1;
                let handle = std::thread::spawn(move || {
                    let _turn = cpu_turn();
                    tx.send(i).unwrap();
                });
                // Each waiter has taken its ticket before the next one starts.
                while tickets() < taken {
                    std::thread::yield_now();
                }
                handle
            })
            .collect();
        assert!(rx.try_recv().is_err(), "nobody runs during another's turn");
        // The decoding loop lets go and asks for its next token straight away.
        drop(decoding);
        let _next_token = cpu_turn();
        assert_eq!(rx.try_iter().collect::<Vec<_>>(), [0, 1, 2]);
        for handle in waiters {
            handle.join().unwrap();
        }
    }

    #[test]
    fn background_steps_wait_for_every_urgent_one() {
        let _serial = SERIAL.lock().unwrap_or_else(PoisonError::into_inner);
        let tickets = || QUEUE.lock().unwrap().next;
        let decoding = cpu_turn();
        let (tx, rx) = mpsc::channel();
        let mut waiters = Vec::new();
        for (name, in_background) in [("summary", true), ("transcript", false), ("rest", true)] {
            let tx = tx.clone();
            let taken = tickets() + 1;
            waiters.push(std::thread::spawn(move || {
                let _mode = in_background.then(background);
                let _turn = cpu_turn();
                tx.send(name).unwrap();
            }));
            while tickets() < taken {
                std::thread::yield_now();
            }
        }
        drop(decoding);
        for handle in waiters {
            handle.join().unwrap();
        }
        assert_eq!(
            rx.try_iter().collect::<Vec<_>>(),
            ["transcript", "summary", "rest"],
            "the urgent step first, then the background ones in order"
        );
        let _mode = background();
        drop(_mode);
        assert!(!BACKGROUND.get(), "the guard restores the thread's mode");
    }
}
