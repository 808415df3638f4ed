//! What the server counts, shown at `GET /metrics` (Prometheus text
//! format 0.0.4) and by `--stats` when it stops.

use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::Mutex;
use std::time::Duration;

/// Upper bounds (seconds) of the request latency histogram's buckets.
pub const BUCKETS: [f64; 14] = [
    0.0002, 0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0,
];

/// The server's counters; shared by the HTTP side and the workers.
#[derive(Default)]
pub struct Metrics {
    by_status: Mutex<BTreeMap<u16, u64>>,
    exits: Mutex<BTreeMap<&'static str, u64>>,
    /// Per bucket of [`BUCKETS`], plus one for +Inf (not cumulative here).
    buckets: [AtomicU64; BUCKETS.len() + 1],
    latency_ns: AtomicU64,
    /// VMs built from the snapshot.
    pub vms_created: AtomicU64,
    /// Restores of a VM to the snapshot between requests.
    pub vms_restored: AtomicU64,
    /// VMs thrown away (after a failure, or after each `--fresh` request).
    pub vms_discarded: AtomicU64,
    /// Workers running a request now.
    pub busy: AtomicU64,
    /// Requests accepted and waiting for a worker.
    pub queued: AtomicU64,
    /// Requests refused because the queue was full.
    pub rejected: AtomicU64,
    /// Worker threads (the pool size).
    pub pool: AtomicU64,
    /// Nanoseconds spent building VMs from the snapshot (all of them).
    pub build_ns: AtomicU64,
    /// Nanoseconds spent restoring VMs to the snapshot.
    pub restore_ns: AtomicU64,
    /// Nanoseconds spent tearing down thrown-away VMs.
    pub discard_ns: AtomicU64,
    /// Nanoseconds spent in guest calls, and their number.
    pub call_ns: AtomicU64,
    /// Guest calls timed in `call_ns`.
    pub calls: AtomicU64,
}

/// Add `d` in nanoseconds to `c`.
pub fn add_time(c: &AtomicU64, d: Duration) {
    c.fetch_add(u64::try_from(d.as_nanos()).unwrap_or(u64::MAX), Relaxed);
}

fn bump<K: Ord>(m: &Mutex<BTreeMap<K, u64>>, k: K) {
    let mut m = m.lock().unwrap_or_else(|p| p.into_inner());
    *m.entry(k).or_insert(0) += 1;
}

fn snapshot<K: Ord + Clone>(m: &Mutex<BTreeMap<K, u64>>) -> BTreeMap<K, u64> {
    m.lock().unwrap_or_else(|p| p.into_inner()).clone()
}

impl Metrics {
    /// Count one answered request: its status and how long it took.
    pub fn request(&self, status: u16, took: Duration) {
        bump(&self.by_status, status);
        let s = took.as_secs_f64();
        let i = BUCKETS
            .iter()
            .position(|&b| s <= b)
            .unwrap_or(BUCKETS.len());
        self.buckets[i].fetch_add(1, Relaxed);
        let ns = u64::try_from(took.as_nanos()).unwrap_or(u64::MAX);
        self.latency_ns.fetch_add(ns, Relaxed);
    }

    /// Count how a guest call ended (`ok`, `timeout`, `crash`...).
    pub fn exit(&self, reason: &'static str) {
        bump(&self.exits, reason);
    }

    /// Requests answered with `status` so far.
    pub fn status_count(&self, status: u16) -> u64 {
        snapshot(&self.by_status).get(&status).copied().unwrap_or(0)
    }

    /// The Prometheus text exposition.
    pub fn render(&self) -> String {
        let mut o = String::new();
        let by_status = snapshot(&self.by_status);
        help(
            &mut o,
            "vessel_requests_total",
            "counter",
            "HTTP requests answered, by status",
        );
        for (code, n) in &by_status {
            let _ = writeln!(o, "vessel_requests_total{{code=\"{code}\"}} {n}");
        }
        help(
            &mut o,
            "vessel_request_duration_seconds",
            "histogram",
            "time from request to response",
        );
        let mut cum = 0;
        for (i, b) in BUCKETS.iter().enumerate() {
            cum += self.buckets[i].load(Relaxed);
            let _ = writeln!(
                o,
                "vessel_request_duration_seconds_bucket{{le=\"{b}\"}} {cum}"
            );
        }
        cum += self.buckets[BUCKETS.len()].load(Relaxed);
        let _ = writeln!(
            o,
            "vessel_request_duration_seconds_bucket{{le=\"+Inf\"}} {cum}"
        );
        let sum = self.latency_ns.load(Relaxed) as f64 / 1e9;
        let _ = writeln!(o, "vessel_request_duration_seconds_sum {sum}");
        let _ = writeln!(o, "vessel_request_duration_seconds_count {cum}");
        help(
            &mut o,
            "vessel_guest_exits_total",
            "counter",
            "how guest calls ended, by reason",
        );
        for (reason, n) in snapshot(&self.exits) {
            let _ = writeln!(o, "vessel_guest_exits_total{{reason=\"{reason}\"}} {n}");
        }
        let counters = [
            (
                "vessel_vms_created_total",
                "VMs built from the snapshot",
                &self.vms_created,
            ),
            (
                "vessel_vms_restored_total",
                "VM restores to the snapshot",
                &self.vms_restored,
            ),
            (
                "vessel_vms_discarded_total",
                "VMs thrown away",
                &self.vms_discarded,
            ),
            (
                "vessel_requests_rejected_total",
                "requests refused: queue full",
                &self.rejected,
            ),
        ];
        for (name, text, v) in counters {
            help(&mut o, name, "counter", text);
            let _ = writeln!(o, "{name} {}", v.load(Relaxed));
        }
        let secs = |c: &AtomicU64| c.load(Relaxed) as f64 / 1e9;
        let times = [
            (
                "vessel_vm_build_seconds",
                "building VMs from the snapshot",
                &self.build_ns,
                &self.vms_created,
            ),
            (
                "vessel_vm_restore_seconds",
                "restoring VMs to the snapshot",
                &self.restore_ns,
                &self.vms_restored,
            ),
            (
                "vessel_vm_discard_seconds",
                "tearing down VMs",
                &self.discard_ns,
                &self.vms_discarded,
            ),
            (
                "vessel_guest_call_seconds",
                "guest calls (the function itself)",
                &self.call_ns,
                &self.calls,
            ),
        ];
        for (name, text, t, n) in times {
            help(&mut o, name, "summary", text);
            let _ = writeln!(
                o,
                "{name}_sum {}\n{name}_count {}",
                secs(t),
                n.load(Relaxed)
            );
        }
        let gauges = [
            ("vessel_pool_size", "worker VMs in the pool", &self.pool),
            ("vessel_pool_busy", "workers running a request", &self.busy),
            (
                "vessel_queue_depth",
                "requests waiting for a worker",
                &self.queued,
            ),
        ];
        for (name, text, v) in gauges {
            help(&mut o, name, "gauge", text);
            let _ = writeln!(o, "{name} {}", v.load(Relaxed));
        }
        o
    }

    /// The `--stats` table printed at shutdown.
    pub fn table(&self) -> String {
        let mut o = String::from("vessel serve: stats\n");
        let by_status = snapshot(&self.by_status);
        let total: u64 = by_status.values().sum();
        let codes: Vec<String> = by_status.iter().map(|(c, n)| format!("{c}: {n}")).collect();
        let _ = writeln!(o, "  requests       {total} ({})", codes.join(", "));
        let mean = if total > 0 {
            self.latency_ns.load(Relaxed) as f64 / total as f64 / 1e3
        } else {
            0.0
        };
        let _ = writeln!(o, "  latency mean   {mean:.1} us");
        let exits: Vec<String> = snapshot(&self.exits)
            .iter()
            .map(|(r, n)| format!("{r}: {n}"))
            .collect();
        let _ = writeln!(o, "  guest calls    {}", exits.join(", "));
        let _ = writeln!(
            o,
            "  VMs            {} created, {} restored, {} discarded",
            self.vms_created.load(Relaxed),
            self.vms_restored.load(Relaxed),
            self.vms_discarded.load(Relaxed)
        );
        let mean_us = |t: &AtomicU64, n: &AtomicU64| match n.load(Relaxed) {
            0 => 0.0,
            n => t.load(Relaxed) as f64 / n as f64 / 1e3,
        };
        let _ = writeln!(
            o,
            "  mean us        build {:.0}, restore {:.0}, teardown {:.0}, guest call {:.0}",
            mean_us(&self.build_ns, &self.vms_created),
            mean_us(&self.restore_ns, &self.vms_restored),
            mean_us(&self.discard_ns, &self.vms_discarded),
            mean_us(&self.call_ns, &self.calls)
        );
        let _ = writeln!(o, "  queue full     {}", self.rejected.load(Relaxed));
        o
    }
}

fn help(o: &mut String, name: &str, kind: &str, text: &str) {
    let _ = writeln!(o, "# HELP {name} {text}\n# TYPE {name} {kind}");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn histogram_is_cumulative_and_counts_match() {
        let m = Metrics::default();
        m.request(200, Duration::from_micros(100));
        m.request(200, Duration::from_millis(3));
        m.request(504, Duration::from_secs(20));
        let t = m.render();
        assert!(t.contains("vessel_requests_total{code=\"200\"} 2\n"), "{t}");
        assert!(t.contains("vessel_requests_total{code=\"504\"} 1\n"), "{t}");
        assert!(t.contains("_bucket{le=\"0.0002\"} 1\n"), "{t}");
        assert!(t.contains("_bucket{le=\"0.005\"} 2\n"), "{t}");
        assert!(t.contains("_bucket{le=\"10\"} 2\n"), "{t}");
        assert!(t.contains("_bucket{le=\"+Inf\"} 3\n"), "{t}");
        assert!(
            t.contains("vessel_request_duration_seconds_count 3\n"),
            "{t}"
        );
    }
}
