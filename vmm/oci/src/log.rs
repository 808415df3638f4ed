//! `--log FILE` and `--log-format text|json`, as runc writes them:
//! containerd's shim reads the last `error` line of the JSON log to say
//! why a command failed.

use std::io::Write;
use std::path::PathBuf;

use crate::state::now_rfc3339;

/// Where the runtime's messages go besides stderr.
#[derive(Debug, Clone, Default)]
pub struct Log {
    /// The log file, if any.
    pub path: Option<PathBuf>,
    /// JSON lines (`--log-format json`) rather than logfmt text.
    pub json: bool,
}

impl Log {
    /// An error: on stderr and in the log.
    pub fn error(&self, msg: &str) {
        eprintln!("vessel-oci: {msg}");
        self.line("error", msg);
    }

    /// Something worth knowing (a mount left out): in the log only.
    pub fn info(&self, msg: &str) {
        self.line("info", msg);
    }

    fn line(&self, level: &str, msg: &str) {
        let Some(path) = &self.path else { return };
        let time = now_rfc3339();
        let line = if self.json {
            serde_json::json!({ "level": level, "msg": msg, "time": time }).to_string()
        } else {
            format!("time={time:?} level={level} msg={msg:?}")
        };
        // A log that cannot be written must not turn success into failure.
        if let Ok(mut f) = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
        {
            let _ = writeln!(f, "{line}");
        }
    }
}
