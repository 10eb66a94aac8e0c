//! One CPU engine computation at a time, in the order they asked.
//!
//! whisper.cpp, llama.cpp and ONNX Runtime (Piper) each run a computation on several threads
//! that spin at barriers between steps. Two computations at once on the same cores (two calls
//! transcribing, or one transcribing while another's reply decodes) slow each other down many
//! times over: on 2 cores, two concurrent calls' transcripts took 5–8 s instead of 0.1–0.4 s.
//! So the CPU engines take turns, step by step (a transcription, a prefill batch, one generated
//! token, one rendered sentence), each step on every thread it was given. Turns are served
//! first come, first served: a plain mutex lets the decoding loop, which asks again within
//! microseconds of letting go, take turn after turn while a sentence waits to be spoken. A GPU
//! build does not need this for the LLM.

use std::sync::{Condvar, Mutex, PoisonError};

/// Tickets handed out and the ticket being served.
struct Queue {
    next: u64,
    serving: u64,
}

static QUEUE: Mutex<Queue> = Mutex::new(Queue {
    next: 0,
    serving: 0,
});
static SERVED: Condvar = Condvar::new();

/// The CPU is this step's while it lives.
#[must_use = "the turn ends when the guard is dropped"]
#[derive(Debug)]
pub struct CpuTurn(());

impl Drop for CpuTurn {
    fn drop(&mut self) {
        QUEUE.lock().unwrap_or_else(PoisonError::into_inner).serving += 1;
        SERVED.notify_all();
    }
}

/// Waits until every step that asked earlier has run; the step runs while the guard lives.
pub fn cpu_turn() -> CpuTurn {
    let mut queue = QUEUE.lock().unwrap_or_else(PoisonError::into_inner);
    let ticket = queue.next;
    queue.next += 1;
    while queue.serving != ticket {
        queue = SERVED.wait(queue).unwrap_or_else(PoisonError::into_inner);
    }
    CpuTurn(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::mpsc;

    #[test]
    fn a_step_asking_again_at_once_comes_after_those_already_waiting() {
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
}
