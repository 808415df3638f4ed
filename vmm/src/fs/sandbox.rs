//! The second wall: an I/O thread restricts itself with Landlock to the
//! pre-opened directories (read-only ones to reading) before it serves
//! the guest, so even a bug in path resolution cannot reach other host
//! files. Landlock applies to the calling thread only; the vCPU thread and
//! the embedding program are not restricted.

use landlock::{
    Access, AccessFs, PathBeneath, Ruleset, RulesetAttr, RulesetCreatedAttr, RulesetStatus, ABI,
};

use super::Preopen;

/// How far the kernel enforced the restriction.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Enforced {
    /// Every requested right is restricted.
    Fully,
    /// The kernel's Landlock is older: some rights are restricted.
    Partly,
    /// The kernel has no Landlock: only the first wall stands.
    No,
}

/// The Landlock ABI whose rights are asked for (best effort below it).
const WANTED: ABI = ABI::V5;

/// Restrict the calling thread to `dirs`. Err: the ruleset could not be
/// built or applied (one line).
pub fn restrict_thread(dirs: &[Preopen]) -> Result<Enforced, String> {
    let all = AccessFs::from_all(WANTED);
    let read = AccessFs::from_read(WANTED);
    let mut ruleset = Ruleset::default()
        .handle_access(all)
        .map_err(|e| format!("landlock: {e}"))?
        .create()
        .map_err(|e| format!("landlock: {e}"))?;
    for d in dirs {
        let access = if d.readonly { read } else { all };
        ruleset = ruleset
            .add_rule(PathBeneath::new(&d.dir, access))
            .map_err(|e| format!("landlock rule for {}: {e}", d.host.display()))?;
    }
    let status = ruleset
        .restrict_self()
        .map_err(|e| format!("landlock: {e}"))?;
    Ok(match status.ruleset {
        RulesetStatus::FullyEnforced => Enforced::Fully,
        RulesetStatus::PartiallyEnforced => Enforced::Partly,
        _ => Enforced::No,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fs::spec::{open_all, DirSpec};

    /// A thread restricted to one directory can open files there but not
    /// elsewhere, even by an absolute path with plain open(2): the second
    /// wall holds without the first.
    #[test]
    fn restricted_thread_cannot_open_outside() {
        let base = std::env::temp_dir().join(format!("vessel-ll-{}", std::process::id()));
        let inside = base.join("in");
        std::fs::create_dir_all(&inside).unwrap();
        std::fs::write(inside.join("ok"), b"1").unwrap();
        std::fs::write(base.join("secret"), b"2").unwrap();
        let dirs = open_all(&[DirSpec {
            host: inside.clone(),
            guest: "/in".into(),
            readonly: true,
        }])
        .unwrap();
        let (b2, i2) = (base.clone(), inside.clone());
        let r = std::thread::spawn(move || {
            let e = restrict_thread(&dirs).unwrap();
            (
                e,
                std::fs::read(i2.join("ok")).is_ok(),
                std::fs::read(b2.join("secret")).is_ok(),
                std::fs::write(i2.join("new"), b"x").is_ok(),
            )
        })
        .join()
        .unwrap();
        std::fs::remove_dir_all(&base).unwrap();
        match r.0 {
            Enforced::No => assert!(r.1, "without Landlock, only openat2 guards"),
            _ => assert_eq!((r.1, r.2, r.3), (true, false, false), "{r:?}"),
        }
    }
}
