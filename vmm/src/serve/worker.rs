//! One worker thread: takes requests from the queue and runs each in its
//! VM, as its lifecycle says (`--fresh`, `--reuse`, `--shared`), or in the
//! native handler (`--native`, the benchmark's baseline).

use std::sync::atomic::Ordering::Relaxed;
use std::sync::{mpsc, Arc, Mutex};
use std::time::{Duration, Instant};

use vessel_abi::value::to_bytes;

use super::call::{self, Exchange, Reply};
use super::metrics::{self, Metrics};
use super::{native, Lifecycle};
use crate::host::Host;
use crate::sandbox::{Sandbox, SandboxError};
use crate::snapshot::Snapshot;

/// A request for one worker: the function, what it gets, where the answer goes.
pub struct Job {
    /// The exported function (`/fn/NAME`).
    pub func: String,
    /// Method, query, header lines, body.
    pub req: Exchange,
    /// Where the response goes (the HTTP side awaits it).
    pub reply: tokio::sync::oneshot::Sender<Reply>,
}

/// What every worker shares.
pub struct Shared {
    /// The state right after the app's initialisation.
    pub snap: Option<Arc<Snapshot>>,
    /// How VMs live.
    pub lifecycle: Lifecycle,
    /// Per-request time limit.
    pub timeout: Duration,
    /// Largest response body.
    pub max_response: usize,
    /// Counters.
    pub metrics: Arc<Metrics>,
    /// The queue (one receiver, taken in turn).
    pub queue: Mutex<mpsc::Receiver<Job>>,
}

/// One worker's state: its KVM handle and, between requests, its VM.
pub struct Worker {
    host: Host,
    vm: Option<Sandbox>,
    shared: Arc<Shared>,
}

impl Worker {
    /// A worker that will build its VMs with `host`.
    pub fn new(host: Host, shared: Arc<Shared>) -> Worker {
        Worker {
            host,
            vm: None,
            shared,
        }
    }

    /// Build the first VM, say so on `ready`, then serve jobs until the
    /// queue closes (shutdown).
    pub fn run(mut self, ready: mpsc::Sender<()>) {
        self.prepare();
        let _ = ready.send(());
        drop(ready);
        loop {
            let job = {
                let q = self.shared.queue.lock().unwrap_or_else(|p| p.into_inner());
                q.recv()
            };
            let Ok(job) = job else { break };
            let m = &self.shared.metrics;
            m.queued.fetch_sub(1, Relaxed);
            m.busy.fetch_add(1, Relaxed);
            let reply = self.handle(&job.func, &job.req);
            // The client may have gone: nothing to do then.
            let _ = job.reply.send(reply);
            // Busy until the VM for the next request is ready.
            self.after_request();
            self.prepare();
            self.shared.metrics.busy.fetch_sub(1, Relaxed);
        }
    }

    /// Build the next VM ahead of the request that will use it.
    fn prepare(&mut self) {
        if self.vm.is_some() || self.shared.lifecycle == Lifecycle::Native {
            return;
        }
        match self.build() {
            Ok(sb) => self.vm = Some(sb),
            Err(e) => tracing::error!(error = %e, "cannot build a VM from the snapshot"),
        }
    }

    fn build(&mut self) -> Result<Sandbox, SandboxError> {
        let snap = self
            .shared
            .snap
            .clone()
            .ok_or_else(|| SandboxError::NotServing("no snapshot to build VMs from".into()))?;
        let t = Instant::now();
        let sb = Sandbox::from_snapshot(snap)
            .timeout(self.shared.timeout)
            .stdout(Box::new(std::io::sink()))
            .build(&mut self.host)?;
        metrics::add_time(&self.shared.metrics.build_ns, t.elapsed());
        self.shared.metrics.vms_created.fetch_add(1, Relaxed);
        Ok(sb)
    }

    fn handle(&mut self, func: &str, req: &Exchange) -> Reply {
        if self.shared.lifecycle == Lifecycle::Native {
            return native::handle(func, req);
        }
        self.prepare();
        let Some(sb) = self.vm.as_mut() else {
            self.shared.metrics.exit("vmm");
            return Err(super::FnError::new(503, "no_vm", "no VM could be built"));
        };
        let args = to_bytes(&(
            req.method.as_str(),
            req.query.as_str(),
            req.headers.as_str(),
            &req.body[..],
        ));
        let t = Instant::now();
        let r = sb.call_raw(func, &args);
        metrics::add_time(&self.shared.metrics.call_ns, t.elapsed());
        self.shared.metrics.calls.fetch_add(1, Relaxed);
        let r = r.and_then(|bytes| call::decode(func, &bytes));
        let outcome = call::finish(r, self.shared.max_response);
        self.shared.metrics.exit(outcome.reason);
        if outcome.discard {
            self.discard();
        }
        outcome.reply
    }

    /// What the lifecycle does to the VM once the response is sent.
    fn after_request(&mut self) {
        match self.shared.lifecycle {
            Lifecycle::Fresh => self.discard(),
            Lifecycle::Reuse => self.restore(),
            Lifecycle::Shared | Lifecycle::Native => {}
        }
    }

    fn restore(&mut self) {
        let (Some(sb), Some(snap)) = (self.vm.as_mut(), self.shared.snap.as_ref()) else {
            return;
        };
        let t = Instant::now();
        let r = sb.restore(snap);
        metrics::add_time(&self.shared.metrics.restore_ns, t.elapsed());
        match r {
            Ok(()) => {
                self.shared.metrics.vms_restored.fetch_add(1, Relaxed);
            }
            Err(e) => {
                tracing::warn!(error = %e, "restore failed; the VM is discarded");
                self.discard();
            }
        }
    }

    fn discard(&mut self) {
        if let Some(vm) = self.vm.take() {
            let t = Instant::now();
            drop(vm);
            metrics::add_time(&self.shared.metrics.discard_ns, t.elapsed());
            self.shared.metrics.vms_discarded.fetch_add(1, Relaxed);
        }
    }
}
