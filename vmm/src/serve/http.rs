//! The HTTP side: routes, request limits, and handing requests to the
//! worker queue. `POST /fn/NAME` calls function NAME; `GET /metrics` and
//! `GET /healthz` are the server's own.

use std::convert::Infallible;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::mpsc::{SyncSender, TrySendError};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use hyper::header::{CONTENT_LENGTH, CONTENT_TYPE};
use hyper::{Method, Request, Response, StatusCode};

use super::call::{Exchange, Reply};
use super::metrics::Metrics;
use super::worker::Job;
use super::FnError;

/// What every connection's service shares.
pub struct State {
    /// The worker queue; `None` once shutdown began.
    pub queue: Mutex<Option<SyncSender<Job>>>,
    /// Counters.
    pub metrics: Arc<Metrics>,
    /// Largest request body.
    pub max_request: usize,
}

/// Answer one request.
pub async fn serve(
    state: Arc<State>,
    req: Request<Incoming>,
) -> Result<Response<Full<Bytes>>, Infallible> {
    let t = Instant::now();
    let path = req.uri().path().to_string();
    let resp = match (req.method(), path.as_str()) {
        (&Method::GET, "/healthz") => text(StatusCode::OK, "text/plain", "ok\n".into()),
        (&Method::GET, "/metrics") => {
            let body = state.metrics.render();
            return Ok(text(
                StatusCode::OK,
                "text/plain; version=0.0.4",
                body.into(),
            ));
        }
        (&Method::POST, p) if p.starts_with("/fn/") => {
            let func = p["/fn/".len()..].to_string();
            reply(call(&state, func, req).await)
        }
        (_, p) if p.starts_with("/fn/") => {
            error(&FnError::new(405, "method", "functions take POST"))
        }
        _ => error(&FnError::new(
            404,
            "not_found",
            format!("no route {path}; use POST /fn/NAME"),
        )),
    };
    state.metrics.request(resp.status().as_u16(), t.elapsed());
    Ok(resp)
}

async fn call(state: &State, func: String, req: Request<Incoming>) -> Reply {
    if func.is_empty() || func.contains('/') {
        return Err(FnError::new(
            404,
            "unknown_function",
            format!("bad function name {func:?}"),
        ));
    }
    let too_large = || {
        FnError::new(
            413,
            "request_too_large",
            format!("the limit is {} bytes", state.max_request),
        )
    };
    let declared = req
        .headers()
        .get(CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok()?.parse::<u64>().ok());
    if declared.is_some_and(|n| n > state.max_request as u64) {
        return Err(too_large());
    }
    let (parts, body) = req.into_parts();
    let body = match Limited::new(body, state.max_request).collect().await {
        Ok(b) => b.to_bytes(),
        Err(e)
            if e.downcast_ref::<http_body_util::LengthLimitError>()
                .is_some() =>
        {
            return Err(too_large())
        }
        Err(e) => return Err(FnError::new(400, "bad_request", e.to_string())),
    };
    let mut headers = String::new();
    for (n, v) in &parts.headers {
        if let Ok(v) = v.to_str() {
            vessel_abi::http::push_header(&mut headers, n.as_str(), v);
        }
    }
    let req = Exchange {
        method: parts.method.to_string(),
        query: parts.uri.query().unwrap_or("").to_string(),
        headers,
        body,
    };
    let (tx, rx) = tokio::sync::oneshot::channel();
    enqueue(
        state,
        Job {
            func,
            req,
            reply: tx,
        },
    )?;
    rx.await.unwrap_or_else(|_| {
        Err(FnError::new(
            500,
            "vmm",
            "the worker ended without an answer",
        ))
    })
}

fn enqueue(state: &State, job: Job) -> Result<(), FnError> {
    let q = state.queue.lock().unwrap_or_else(|p| p.into_inner());
    let Some(q) = q.as_ref() else {
        return Err(FnError::new(503, "shutting_down", "the server is stopping"));
    };
    state.metrics.queued.fetch_add(1, Relaxed);
    match q.try_send(job) {
        Ok(()) => Ok(()),
        Err(e) => {
            state.metrics.queued.fetch_sub(1, Relaxed);
            match e {
                TrySendError::Full(_) => {
                    state.metrics.rejected.fetch_add(1, Relaxed);
                    Err(FnError::new(
                        503,
                        "queue_full",
                        "every worker is busy and the queue is full",
                    ))
                }
                TrySendError::Disconnected(_) => {
                    Err(FnError::new(503, "shutting_down", "the server is stopping"))
                }
            }
        }
    }
}

fn reply(r: Reply) -> Response<Full<Bytes>> {
    match r {
        Ok(r) => {
            let mut resp = Response::new(Full::new(Bytes::from(r.body)));
            *resp.status_mut() = StatusCode::from_u16(r.status).unwrap_or(StatusCode::OK);
            for (n, v) in r.headers {
                resp.headers_mut().append(n, v);
            }
            resp
        }
        Err(e) => error(&e),
    }
}

fn error(e: &FnError) -> Response<Full<Bytes>> {
    let status = StatusCode::from_u16(e.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    if status.is_server_error() {
        tracing::warn!(status = e.status, kind = e.kind, detail = %e.detail, "request failed");
    }
    text(status, "application/json", e.body().into())
}

fn text(status: StatusCode, ct: &'static str, body: Bytes) -> Response<Full<Bytes>> {
    let mut resp = Response::new(Full::new(body));
    *resp.status_mut() = status;
    resp.headers_mut()
        .insert(CONTENT_TYPE, hyper::header::HeaderValue::from_static(ct));
    resp
}
