//! A cancellation token an operation is given by whoever started it. The command line ties one to
//! Ctrl-C and SIGTERM (`interrupt`); a console running several people's operations in one process
//! gives each its own, so cancelling one leaves the others running. Nothing below the faces reads
//! a global interrupt: they ask the token they were handed.

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};

#[derive(Clone, Default)]
pub struct Cancel(Arc<Inner>);

#[derive(Default)]
struct Inner {
    /// How many times it was asked to stop (a second Ctrl-C still finishes the step in flight;
    /// a hook stops at a press during its run).
    presses: AtomicU32,
    wake: tokio::sync::Notify,
}

impl std::fmt::Debug for Cancel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Cancel({})", self.presses())
    }
}

impl Cancel {
    pub fn new() -> Cancel {
        Cancel::default()
    }

    /// Asks the operation to stop: the step in flight finishes, nothing new starts.
    pub fn cancel(&self) {
        self.0.presses.fetch_add(1, Ordering::SeqCst);
        self.0.wake.notify_waiters();
    }

    pub fn is_cancelled(&self) -> bool {
        self.presses() > 0
    }

    /// How many times `cancel` was called so far.
    pub fn presses(&self) -> u32 {
        self.0.presses.load(Ordering::SeqCst)
    }

    /// Resolves once cancelled (at once when it already is).
    pub async fn cancelled(&self) {
        self.pressed_after(0).await
    }

    /// Resolves once `cancel` was called more than `presses` times.
    pub async fn pressed_after(&self, presses: u32) {
        loop {
            let woken = self.0.wake.notified();
            tokio::pin!(woken);
            woken.as_mut().enable();
            if self.presses() > presses {
                return;
            }
            woken.await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn tokens_are_independent_and_wake_their_waiters() {
        let a = Cancel::new();
        let b = Cancel::new();
        let waiter = tokio::spawn({
            let a = a.clone();
            async move { a.cancelled().await }
        });
        a.cancel();
        waiter.await.unwrap();
        assert!(a.is_cancelled());
        assert!(
            !b.is_cancelled(),
            "cancelling one operation leaves another running"
        );
    }
}
