//! Polling a connection without waking oneself.
//!
//! A request's task polls both ends of hyper's body channel: the connection, which sends a
//! decoded chunk (waking the receiver), and the body, whose poll tells the connection it
//! wants more (waking the sender). Both wakers are the task's own, so each chunk would
//! schedule the task again, to find nothing new: three polls of the whole response chain per
//! chunk, measured. [`Quiet`] polls with a waker that drops the wakes its own poll causes
//! (a wake from within the poll, on the polling thread, is always the poll's own doing: the
//! runtime's I/O driver and timers never run inside a task's poll) and passes every other
//! wake (the socket ready, from the driver on this thread between polls or on another
//! thread) to the task.

use std::cell::Cell;
use std::sync::Arc;
use std::task::{Context, Waker};

use futures_util::task::{waker, ArcWake, AtomicWaker};

thread_local! {
    /// The [`Quiet`] polling on this thread, by address; 0 when none is.
    static POLLING: Cell<usize> = const { Cell::new(0) };
}

pub(super) struct Quiet {
    waker: Waker,
    gate: Arc<Gate>,
}

struct Gate {
    task: AtomicWaker,
}

impl ArcWake for Gate {
    fn wake_by_ref(gate: &Arc<Self>) {
        if POLLING.with(Cell::get) == Arc::as_ptr(gate) as usize {
            return;
        }
        gate.task.wake();
    }
}

/// Restores the thread's polling marker, also on unwind.
struct Polling(usize);

impl Drop for Polling {
    fn drop(&mut self) {
        POLLING.with(|p| p.set(self.0));
    }
}

impl Quiet {
    pub fn new() -> Quiet {
        let gate = Arc::new(Gate {
            task: AtomicWaker::new(),
        });
        Quiet {
            waker: waker(gate.clone()),
            gate,
        }
    }

    /// Runs `f` with a context whose waker wakes the task of `cx`, except from within `f`.
    pub fn poll<R>(&self, cx: &Context<'_>, f: impl FnOnce(&mut Context<'_>) -> R) -> R {
        self.gate.task.register(cx.waker());
        let _restore = Polling(POLLING.with(|p| p.replace(Arc::as_ptr(&self.gate) as usize)));
        f(&mut Context::from_waker(&self.waker))
    }
}
