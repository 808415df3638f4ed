//! `vessel serve`: an HTTP/1.1 server (hyper on tokio) that runs a
//! library guest's exported functions, one request per call, each in a VM
//! of a pool made from one snapshot taken right after the app initialised.
//!
//! The HTTP side runs on one tokio thread (`http.rs`); each worker thread
//! (`worker.rs`) owns one VM at a time and takes requests from a bounded
//! queue (503 when it is full). How a VM lives is the [`Lifecycle`].
//! Every failure of a guest is one request's: a 500/504 with a short JSON
//! error, the VM thrown away and a new one built from the snapshot.

mod call;
mod error;
mod http;
pub mod metrics;
mod native;
pub mod privs;
mod worker;

use std::net::SocketAddr;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::{mpsc, Arc, Mutex};
use std::time::Duration;

use hyper_util::rt::TokioIo;
use tokio::signal::unix::{signal, SignalKind};

pub use self::error::{FnError, ServeError};
use self::metrics::Metrics;
pub use self::privs::RunAs;
use self::worker::{Shared, Worker};
use crate::host::Host;
use crate::sandbox::Sandbox;

/// How the VMs behind the server live.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lifecycle {
    /// A new VM for every request, built from the snapshot (the next one
    /// is built while the worker waits), thrown away after it.
    Fresh,
    /// A pool of VMs, each restored to the snapshot after every request
    /// (copying back only the pages the request wrote).
    Reuse,
    /// A pool of VMs never reset: requests see what earlier ones left
    /// (trusted code only).
    Shared,
    /// No VM: the handlers compiled into the server (the benchmark's
    /// baseline, same queue and workers).
    Native,
}

/// What `vessel serve` was asked for.
#[derive(Debug, Clone)]
pub struct ServeConfig {
    /// The guest ELF (none for [`Lifecycle::Native`]).
    pub guest: Option<Vec<u8>>,
    /// Guest RAM per VM.
    pub mem_size: u64,
    /// Where to listen.
    pub listen: SocketAddr,
    /// How VMs live.
    pub lifecycle: Lifecycle,
    /// Worker threads, each with one VM.
    pub pool: usize,
    /// Requests that may wait for a worker; more get 503.
    pub queue: usize,
    /// Per-request limit on the guest call (504 past it).
    pub timeout: Duration,
    /// Largest request body (413 past it).
    pub max_request: usize,
    /// Largest response body (500 past it).
    pub max_response: usize,
    /// Become this user once KVM and the socket are open.
    pub user: Option<RunAs>,
    /// How long shutdown waits for requests in flight.
    pub grace: Duration,
}

/// A server with its socket open, privileges dropped and workers ready.
pub struct Server {
    listener: std::net::TcpListener,
    state: Arc<http::State>,
    workers: Vec<std::thread::JoinHandle<()>>,
    metrics: Arc<Metrics>,
    grace: Duration,
}

impl Server {
    /// Listen, open KVM for every worker, drop privileges, snapshot the
    /// app after its initialisation and start the workers (each builds
    /// its first VM before taking requests).
    pub fn start(cfg: &ServeConfig) -> Result<Server, ServeError> {
        if cfg.pool == 0 || cfg.pool > 256 {
            return Err(ServeError::Config(format!(
                "--pool {} is not in 1..=256",
                cfg.pool
            )));
        }
        let listener =
            std::net::TcpListener::bind(cfg.listen).map_err(|source| ServeError::Listen {
                addr: cfg.listen.to_string(),
                source,
            })?;
        let native = cfg.lifecycle == Lifecycle::Native;
        let hosts = (0..cfg.pool + usize::from(!native))
            .map(|_| Host::open())
            .collect::<Result<Vec<_>, _>>()?;
        privs::drop_privileges(cfg.user)?;
        let mut hosts = hosts.into_iter();
        let snap = match (&cfg.guest, hosts.next().filter(|_| !native)) {
            (Some(elf), Some(mut host)) => {
                let mut sb = Sandbox::from_bytes(elf.clone())
                    .mem_size(cfg.mem_size)
                    .stdout(Box::new(std::io::sink()))
                    .build(&mut host)?;
                tracing::info!(exports = ?sb.exports(), "app initialised; snapshot taken");
                Some(sb.snapshot()?)
            }
            _ if native => None,
            _ => return Err(ServeError::Config("no app to serve".into())),
        };
        let metrics = Arc::new(Metrics::default());
        metrics.pool.store(cfg.pool as u64, Relaxed);
        let (tx, rx) = mpsc::sync_channel(cfg.queue);
        let shared = Arc::new(Shared {
            snap,
            lifecycle: cfg.lifecycle,
            timeout: cfg.timeout,
            max_response: cfg.max_response,
            metrics: metrics.clone(),
            queue: Mutex::new(rx),
        });
        let (ready_tx, ready) = mpsc::channel();
        let workers = hosts
            .enumerate()
            .map(|(i, host)| {
                let w = Worker::new(host, shared.clone());
                let ready_tx = ready_tx.clone();
                spawn(&format!("serve-worker-{i}"), move || w.run(ready_tx))
            })
            .collect::<Result<Vec<_>, _>>()?;
        drop(shared);
        drop(ready_tx);
        // Ready (and listening announced) once every worker has its VM.
        while ready.recv().is_ok() {}
        let state = Arc::new(http::State {
            queue: Mutex::new(Some(tx)),
            metrics: metrics.clone(),
            max_request: cfg.max_request,
        });
        Ok(Server {
            listener,
            state,
            workers,
            metrics,
            grace: cfg.grace,
        })
    }

    /// The address the server listens on (the port when 0 was asked for).
    pub fn local_addr(&self) -> std::io::Result<SocketAddr> {
        self.listener.local_addr()
    }

    /// The counters (also served at `/metrics`).
    pub fn metrics(&self) -> Arc<Metrics> {
        self.metrics.clone()
    }

    /// Serve until SIGTERM or SIGINT, then stop accepting, finish the
    /// requests in flight (at most the grace period) and stop the workers.
    pub fn run(self) -> Result<Arc<Metrics>, ServeError> {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|source| ServeError::Runtime {
                what: "tokio runtime",
                source,
            })?;
        let Server {
            listener,
            state,
            workers,
            metrics,
            grace,
        } = self;
        rt.block_on(accept_loop(listener, state.clone(), grace))?;
        drop(rt);
        // Closing the queue ends each worker after its current request.
        state.queue.lock().unwrap_or_else(|p| p.into_inner()).take();
        for w in workers {
            if w.join().is_err() {
                tracing::error!("a worker thread panicked");
            }
        }
        Ok(metrics)
    }
}

fn spawn(
    name: &str,
    f: impl FnOnce() + Send + 'static,
) -> Result<std::thread::JoinHandle<()>, ServeError> {
    std::thread::Builder::new()
        .name(name.to_string())
        .spawn(f)
        .map_err(|source| ServeError::Runtime {
            what: "worker thread",
            source,
        })
}

async fn accept_loop(
    listener: std::net::TcpListener,
    state: Arc<http::State>,
    grace: Duration,
) -> Result<(), ServeError> {
    let rt_err = |what| move |source| ServeError::Runtime { what, source };
    listener
        .set_nonblocking(true)
        .map_err(rt_err("listening socket"))?;
    let listener =
        tokio::net::TcpListener::from_std(listener).map_err(rt_err("listening socket"))?;
    let mut term = signal(SignalKind::terminate()).map_err(rt_err("SIGTERM handler"))?;
    let mut int = signal(SignalKind::interrupt()).map_err(rt_err("SIGINT handler"))?;
    let graceful = hyper_util::server::graceful::GracefulShutdown::new();
    loop {
        let conn = tokio::select! {
            c = listener.accept() => c,
            _ = term.recv() => break,
            _ = int.recv() => break,
        };
        let stream = match conn {
            Ok((s, _)) => s,
            Err(e) => {
                // Out of fds or the like: wait a moment rather than spin.
                tracing::warn!(error = %e, "accept failed");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let _ = stream.set_nodelay(true);
        let st = state.clone();
        let svc = hyper::service::service_fn(move |req| http::serve(st.clone(), req));
        let conn =
            hyper::server::conn::http1::Builder::new().serve_connection(TokioIo::new(stream), svc);
        let conn = graceful.watch(conn);
        tokio::spawn(async move {
            if let Err(e) = conn.await {
                tracing::debug!(error = %e, "connection ended with an error");
            }
        });
    }
    tracing::info!("stopping: no new connections; finishing requests in flight");
    drop(listener);
    tokio::select! {
        _ = graceful.shutdown() => {}
        _ = tokio::time::sleep(grace) => tracing::warn!(?grace, "requests still running after the grace period"),
    }
    Ok(())
}
