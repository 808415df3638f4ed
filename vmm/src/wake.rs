//! Wakes a halted vCPU when a timed Wait runs out (one timer per vCPU).

use std::sync::{mpsc, Arc};
use std::time::{Duration, Instant};

use crate::arch;
use crate::error::{Error, Result};

/// Sends the wake-up MSI when a timed Wait runs out. Its thread starts at
/// the first timed wait, so guests that never sleep don't pay for it.
pub struct WakeTimer {
    vm: Arc<kvm_ioctls::VmFd>,
    /// The vCPU this timer wakes.
    vcpu: u32,
    tx: Option<mpsc::Sender<Instant>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl WakeTimer {
    pub fn new(vm: Arc<kvm_ioctls::VmFd>, vcpu: u32) -> WakeTimer {
        WakeTimer {
            vm,
            vcpu,
            tx: None,
            thread: None,
        }
    }

    fn start(&mut self) -> Result<()> {
        let (tx, rx) = mpsc::channel::<Instant>();
        let (vm, vcpu) = (self.vm.clone(), self.vcpu);
        let _quiet = crate::stop::quiet();
        let thread = std::thread::Builder::new()
            .name("vessel-wake".into())
            .stack_size(64 << 10)
            .spawn(move || {
                crate::seccomp::enter(crate::seccomp::Role::Timer);
                let mut deadline: Option<Instant> = None;
                loop {
                    let got = match deadline {
                        None => rx.recv().map_err(|_| mpsc::RecvTimeoutError::Disconnected),
                        Some(d) => rx.recv_timeout(d.saturating_duration_since(Instant::now())),
                    };
                    match got {
                        Ok(d) => deadline = Some(deadline.map_or(d, |old| old.min(d))),
                        Err(mpsc::RecvTimeoutError::Timeout) => {
                            deadline = None;
                            // A late MSI only makes the guest re-check its timers.
                            let _ = arch::wake(&vm, vcpu);
                        }
                        Err(mpsc::RecvTimeoutError::Disconnected) => return,
                    }
                }
            })
            .map_err(Error::thread("the wake-up thread"))?;
        self.tx = Some(tx);
        self.thread = Some(thread);
        Ok(())
    }

    pub fn arm(&mut self, after: Duration) -> Result<()> {
        if self.tx.is_none() {
            self.start()?;
        }
        if let Some(tx) = &self.tx {
            let _ = tx.send(Instant::now() + after);
        }
        Ok(())
    }
}

impl Drop for WakeTimer {
    fn drop(&mut self) {
        drop(self.tx.take());
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}
