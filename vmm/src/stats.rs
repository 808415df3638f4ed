//! What one run of a VM did, for `--stats` (a table on stderr) and
//! `--stats-json FILE` (schema in vmm/README.md). Counting is always on:
//! a few integer increments and two clock reads per KVM_RUN, against exits
//! that cost microseconds; only the report is optional.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use serde::Serialize;
use vessel_abi::call::nr;

/// Why KVM_RUN returned, counted per kind.
#[derive(Clone, Debug, Default, Serialize)]
pub struct Exits {
    /// MMIO stores to the hypercall doorbell.
    pub hypercall: u64,
    /// MMIO stores to the fault doorbell (a fatal exception's report).
    pub fault_report: u64,
    /// Returns with nothing to serve: a signal, an interrupt window, EINTR.
    pub interrupted: u64,
    /// arm64: KVM_RUN failed with EFAULT on a lazy page (a launcher-served
    /// async page fault).
    pub lazy_fault: u64,
    /// Anything that ended the guest (unmapped access, triple fault, ...).
    pub fatal: u64,
}

/// Async page faults as the launcher saw them.
#[derive(Clone, Debug, Default, Serialize)]
pub struct AsyncPf {
    /// Faults whose page the guest waited for asynchronously: on x86_64
    /// the lazy-region faults served after the guest enabled KVM's async
    /// page faults; on arm64 the "page not present" tokens the launcher
    /// issued.
    pub not_present: u64,
    /// "Page ready" deliveries: the pages of those faults filled (x86_64,
    /// after which KVM injects "ready"); tokens written to the ready ring
    /// (arm64).
    pub ready: u64,
    /// Faults served synchronously (before the guest enabled async page
    /// faults, or with them off): the vCPU waited in KVM_RUN for the page.
    pub sync: u64,
}

/// The whole report.
#[derive(Clone, Debug, Default, Serialize)]
pub struct Stats {
    /// KVM_RUN returns by reason.
    pub exits: Exits,
    /// Hypercalls by name (`nr_N` for a number the ABI does not know).
    pub hypercalls: BTreeMap<String, u64>,
    /// Async page faults.
    pub async_pf: AsyncPf,
    /// Lazy-region pages read from their files and copied in.
    pub pages_fetched: u64,
    /// Bytes the guest read (stdin).
    pub bytes_read: u64,
    /// Bytes the guest wrote (stdout and stderr).
    pub bytes_written: u64,
    /// Microseconds from the launcher's start to the first KVM_RUN.
    pub launch_to_entry_us: f64,
    /// Microseconds spent inside KVM_RUN (the guest running, or KVM
    /// serving it), summed over the vCPUs.
    pub guest_run_us: f64,
    /// Microseconds of the run spent in the launcher: from its start to
    /// the guest's end, less the guest's run time (with several vCPUs the
    /// difference of a wall time and a sum, 0 when the vCPUs overlap more).
    pub launcher_us: f64,
}

/// The name of hypercall `n`, from the ABI's numbers.
fn call_name(n: u32) -> String {
    let name = match n {
        nr::EXIT => "exit",
        nr::ABORT => "abort",
        nr::WRITE => "write",
        nr::READ => "read",
        nr::CLOCK => "clock",
        nr::RANDOM => "random",
        nr::WAIT => "wait",
        nr::APF_ENABLE => "apf_enable",
        _ => return format!("nr_{n}"),
    };
    name.into()
}

/// What the hypercall handlers count (kept in `hypercall::Ctx`).
#[derive(Clone, Debug, Default)]
pub struct CallCounts {
    /// Calls by number.
    pub by_nr: BTreeMap<u32, u64>,
    /// Bytes the guest read (stdin).
    pub bytes_read: u64,
    /// Bytes the guest wrote (stdout, stderr, the output riding on Exit).
    pub bytes_written: u64,
}

impl CallCounts {
    /// A hypercall numbered `n` was made.
    pub fn call(&mut self, n: u32) {
        *self.by_nr.entry(n).or_insert(0) += 1;
    }
}

/// What lazy memory's fetchers counted.
#[derive(Clone, Copy, Debug, Default)]
pub struct LazyCounts {
    /// Pages copied in.
    pub pages: u64,
    /// Faults served before the guest enabled async page faults (or with
    /// them off): the vCPU waited in KVM_RUN.
    pub sync: u64,
    /// Faults served after it did (x86_64: KVM delivered "page not
    /// present" to the guest, which runs at CPL3 with interrupts on).
    pub async_faults: u64,
    /// Pages filled for those.
    pub async_filled: u64,
}

/// What the launcher-served async page faults counted (arm64).
#[derive(Clone, Copy, Debug, Default)]
pub struct SoftCounts {
    /// "Page not present" tokens issued.
    pub not_present: u64,
    /// Tokens written to the ready ring.
    pub ready: u64,
}

/// One vCPU's counters, kept by its own thread (no locks on the hot path)
/// and merged into the [`Recorder`] when its loop ends.
#[derive(Debug, Default)]
pub struct VcpuCounts {
    /// KVM_RUN returns by reason.
    pub exits: Exits,
    entered: Option<Instant>,
    in_guest: Duration,
}

impl VcpuCounts {
    /// Around every KVM_RUN: `f` runs the vCPU; its time counts as the guest's.
    pub fn kvm_run<T>(&mut self, f: impl FnOnce() -> T) -> T {
        let t = Instant::now();
        self.entered.get_or_insert(t);
        let r = f();
        self.in_guest += t.elapsed();
        r
    }
}

/// The run's counters: every vCPU's, merged as each loop ends.
#[derive(Debug)]
pub struct Recorder {
    exits: Exits,
    calls: CallCounts,
    launched: Instant,
    entered: Option<Instant>,
    ended: Option<Instant>,
    in_guest: Duration,
}

impl Recorder {
    /// Start counting; `launched` is when the launcher started.
    pub fn new(launched: Instant) -> Recorder {
        Recorder {
            exits: Exits::default(),
            calls: CallCounts::default(),
            launched,
            entered: None,
            ended: None,
            in_guest: Duration::ZERO,
        }
    }

    /// A vCPU's loop ended with these counters and its hypercall counts.
    pub fn merge(&mut self, v: VcpuCounts, calls: &CallCounts) {
        let e = &mut self.exits;
        e.hypercall += v.exits.hypercall;
        e.fault_report += v.exits.fault_report;
        e.interrupted += v.exits.interrupted;
        e.lazy_fault += v.exits.lazy_fault;
        e.fatal += v.exits.fatal;
        for (&n, &c) in &calls.by_nr {
            *self.calls.by_nr.entry(n).or_insert(0) += c;
        }
        self.calls.bytes_read += calls.bytes_read;
        self.calls.bytes_written += calls.bytes_written;
        self.entered = match (self.entered, v.entered) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        self.in_guest += v.in_guest;
        self.ended = Some(Instant::now());
    }

    /// The report, with what lazy memory and the soft async page faults
    /// counted.
    pub fn finish(&self, lazy: LazyCounts, soft: SoftCounts) -> Stats {
        let end = self.ended.unwrap_or_else(Instant::now);
        let entry = self.entered.unwrap_or(end);
        let total = end.saturating_duration_since(self.launched);
        Stats {
            exits: self.exits.clone(),
            hypercalls: self
                .calls
                .by_nr
                .iter()
                .map(|(&n, &c)| (call_name(n), c))
                .collect(),
            async_pf: AsyncPf {
                not_present: lazy.async_faults + soft.not_present,
                ready: lazy.async_filled + soft.ready,
                sync: lazy.sync,
            },
            pages_fetched: lazy.pages,
            bytes_read: self.calls.bytes_read,
            bytes_written: self.calls.bytes_written,
            launch_to_entry_us: us(entry.saturating_duration_since(self.launched)),
            guest_run_us: us(self.in_guest),
            launcher_us: us(total.saturating_sub(self.in_guest)),
        }
    }
}

fn us(d: Duration) -> f64 {
    d.as_secs_f64() * 1e6
}

impl Stats {
    /// The report as a table, one line per item, for stderr.
    pub fn table(&self) -> String {
        let e = &self.exits;
        let a = &self.async_pf;
        let mut t = String::from("vessel stats:\n");
        let mut line = |k: &str, v: String| t.push_str(&format!("  {k:<22} {v}\n"));
        line(
            "exits",
            format!(
                "hypercall {} fault_report {} interrupted {} lazy_fault {} fatal {}",
                e.hypercall, e.fault_report, e.interrupted, e.lazy_fault, e.fatal
            ),
        );
        let calls: Vec<String> = self
            .hypercalls
            .iter()
            .map(|(k, v)| format!("{k} {v}"))
            .collect();
        line("hypercalls", calls.join(" "));
        line(
            "async page faults",
            format!(
                "not_present {} ready {} sync {}",
                a.not_present, a.ready, a.sync
            ),
        );
        line("pages fetched", self.pages_fetched.to_string());
        line(
            "bytes read/written",
            format!("{} / {}", self.bytes_read, self.bytes_written),
        );
        line(
            "launch to entry",
            format!("{:.1} us", self.launch_to_entry_us),
        );
        line("guest run", format!("{:.1} us", self.guest_run_us));
        line("launcher", format!("{:.1} us", self.launcher_us));
        t
    }

    /// The report as one JSON object (schema in vmm/README.md).
    pub fn json(&self) -> String {
        serde_json::to_string_pretty(self).unwrap_or_else(|e| format!("{{\"error\": \"{e}\"}}"))
    }
}
