//! The per-VM handle table: the guest names open files by handles the
//! launcher issued; a closed, foreign or stale handle is an error, never
//! another file.
//!
//! A handle is `generation << 32 | (slot + 1)`. Closing a slot bumps its
//! generation, so an old handle to a reused slot no longer matches.

use std::sync::{Arc, Mutex, MutexGuard};

use vessel_abi::Errno;

/// What a handle refers to.
#[derive(Debug)]
pub enum Object {
    /// A regular file.
    File(std::fs::File),
    /// A directory, with its entries listed when it was opened.
    Dir {
        /// The directory, open for reading.
        fd: std::os::fd::OwnedFd,
        /// (name, [`vessel_abi::fs::kind`]) of each entry but `.` and `..`.
        entries: Vec<(Vec<u8>, u32)>,
    },
}

/// An open handle.
#[derive(Debug)]
pub struct Open {
    /// The file or directory.
    pub object: Object,
    /// Opened for writing.
    pub writable: bool,
    /// Beneath a `:ro` directory.
    pub readonly_dir: bool,
}

#[derive(Default)]
struct Slot {
    generation: u32,
    open: Option<Arc<Open>>,
}

#[derive(Default)]
struct Table {
    slots: Vec<Slot>,
    free: Vec<usize>,
    count: u32,
}

/// The table; shared by the I/O threads.
pub struct Handles {
    table: Mutex<Table>,
    cap: u32,
}

impl Handles {
    /// An empty table of at most `cap` open handles.
    pub fn new(cap: u32) -> Handles {
        Handles {
            table: Mutex::new(Table::default()),
            cap,
        }
    }

    fn lock(&self) -> MutexGuard<'_, Table> {
        // A panic while holding the lock leaves a consistent table (every
        // update is a single assignment), so a poisoned lock is still usable.
        self.table.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Issue a handle for `open`, or TooManyHandles at the cap.
    pub fn insert(&self, open: Open) -> Result<u64, Errno> {
        let mut t = self.lock();
        if t.count >= self.cap {
            return Err(Errno::TooManyHandles);
        }
        let i = match t.free.pop() {
            Some(i) => i,
            None => {
                t.slots.push(Slot::default());
                t.slots.len() - 1
            }
        };
        t.count += 1;
        let slot = &mut t.slots[i];
        slot.open = Some(Arc::new(open));
        Ok((u64::from(slot.generation) << 32) | (i as u64 + 1))
    }

    fn index(&self, t: &Table, h: u64) -> Option<usize> {
        let low = (h & 0xffff_ffff) as usize;
        let i = low.checked_sub(1)?;
        let slot = t.slots.get(i)?;
        (u64::from(slot.generation) == h >> 32 && slot.open.is_some()).then_some(i)
    }

    /// The open file `h` names, or BadHandle.
    pub fn get(&self, h: u64) -> Result<Arc<Open>, Errno> {
        let t = self.lock();
        let i = self.index(&t, h).ok_or(Errno::BadHandle)?;
        t.slots[i].open.clone().ok_or(Errno::BadHandle)
    }

    /// Close `h` (its descriptor closes when the last request using it ends).
    pub fn remove(&self, h: u64) -> Result<(), Errno> {
        let mut t = self.lock();
        let i = self.index(&t, h).ok_or(Errno::BadHandle)?;
        let slot = &mut t.slots[i];
        slot.open = None;
        slot.generation = slot.generation.wrapping_add(1);
        t.free.push(i);
        t.count -= 1;
        Ok(())
    }

    /// Handles open now.
    pub fn count(&self) -> u32 {
        self.lock().count
    }
}

/// The slot a handle names, for routing requests on one handle to one
/// I/O thread (any value works; it is only a hint).
pub fn route_key(h: u64) -> usize {
    (h & 0xffff_ffff) as usize
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dummy() -> Open {
        Open {
            object: Object::File(std::fs::File::open("/dev/null").unwrap()),
            writable: false,
            readonly_dir: false,
        }
    }

    #[test]
    fn closed_stale_and_foreign_handles_are_refused() {
        let t = Handles::new(2);
        let a = t.insert(dummy()).unwrap();
        let b = t.insert(dummy()).unwrap();
        assert_eq!(t.insert(dummy()).unwrap_err(), Errno::TooManyHandles);
        t.remove(a).unwrap();
        assert_eq!(t.remove(a), Err(Errno::BadHandle), "double close");
        let c = t.insert(dummy()).unwrap();
        assert_ne!(a, c, "a reused slot gets a new generation");
        assert_eq!(t.get(a).unwrap_err(), Errno::BadHandle, "stale handle");
        assert!(t.get(b).is_ok() && t.get(c).is_ok());
        for h in [0, u64::MAX, 99, (1 << 32) | 2] {
            assert_eq!(t.get(h).unwrap_err(), Errno::BadHandle, "{h:#x}");
        }
        assert_eq!(t.count(), 2);
    }
}
