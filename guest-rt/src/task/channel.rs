//! [`channel`]: an unbounded multi-producer, single-consumer channel
//! between tasks.

use alloc::collections::VecDeque;
use alloc::rc::Rc;
use core::cell::RefCell;
use core::task::{Poll, Waker};

use super::deadlock::{waiting_on, Wait};

struct Chan<T> {
    queue: VecDeque<T>,
    waiter: Option<Waker>,
    senders: usize,
}

/// The sending half of [`channel`]; clone it for more senders.
pub struct Sender<T> {
    chan: Rc<RefCell<Chan<T>>>,
}

/// The receiving half of [`channel`].
pub struct Receiver<T> {
    chan: Rc<RefCell<Chan<T>>>,
}

/// An unbounded multi-producer, single-consumer channel between tasks.
pub fn channel<T>() -> (Sender<T>, Receiver<T>) {
    let chan = Rc::new(RefCell::new(Chan {
        queue: VecDeque::new(),
        waiter: None,
        senders: 1,
    }));
    (Sender { chan: chan.clone() }, Receiver { chan })
}

impl<T> Sender<T> {
    /// Queue `v` (never blocks).
    pub fn send(&self, v: T) {
        let w = {
            let mut c = self.chan.borrow_mut();
            c.queue.push_back(v);
            c.waiter.take()
        };
        if let Some(w) = w {
            w.wake();
        }
    }
}

impl<T> Clone for Sender<T> {
    fn clone(&self) -> Self {
        self.chan.borrow_mut().senders += 1;
        Sender {
            chan: self.chan.clone(),
        }
    }
}

impl<T> Drop for Sender<T> {
    fn drop(&mut self) {
        let w = {
            let mut c = self.chan.borrow_mut();
            c.senders -= 1;
            if c.senders == 0 {
                c.waiter.take()
            } else {
                None
            }
        };
        if let Some(w) = w {
            w.wake();
        }
    }
}

impl<T> Receiver<T> {
    /// The next value, or None once every sender is gone and the queue is empty.
    pub async fn recv(&mut self) -> Option<T> {
        core::future::poll_fn(|cx| {
            let mut c = self.chan.borrow_mut();
            if let Some(v) = c.queue.pop_front() {
                Poll::Ready(Some(v))
            } else if c.senders == 0 {
                Poll::Ready(None)
            } else {
                c.waiter = Some(cx.waker().clone());
                waiting_on(Wait::Channel);
                Poll::Pending
            }
        })
        .await
    }
}
