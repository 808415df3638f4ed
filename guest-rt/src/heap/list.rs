//! An intrusive singly linked list of free blocks of one size class: each
//! free block's first word points at the next.

use core::ptr::null_mut;

/// Free blocks of one class, with their count.
pub struct FreeList {
    head: *mut u8,
    /// The last block, so two lists join in O(1).
    tail: *mut u8,
    len: usize,
}

// SAFETY: the list owns the free blocks it links; they are reachable only
// through it, so moving it to another vCPU moves that ownership.
unsafe impl Send for FreeList {}

impl FreeList {
    /// An empty list.
    pub const fn new() -> Self {
        FreeList {
            head: null_mut(),
            tail: null_mut(),
            len: 0,
        }
    }

    /// The number of blocks.
    #[inline]
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether there is no block.
    #[inline]
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Add a free block at the front.
    ///
    /// # Safety
    /// `block` is a free block of this list's class (>= 8 bytes, 8-aligned)
    /// that nothing else uses.
    #[inline]
    pub unsafe fn push(&mut self, block: *mut u8) {
        // SAFETY: the caller's contract: the first word is ours to write.
        unsafe { block.cast::<*mut u8>().write(self.head) };
        if self.head.is_null() {
            self.tail = block;
        }
        self.head = block;
        self.len += 1;
    }

    /// Take the front block.
    #[inline]
    pub fn pop(&mut self) -> Option<*mut u8> {
        if self.head.is_null() {
            return None;
        }
        let block = self.head;
        // SAFETY: `block` is a free block of this list, whose first word
        // holds the next one (written by `push`).
        self.head = unsafe { block.cast::<*mut u8>().read() };
        self.len -= 1;
        if self.head.is_null() {
            self.tail = null_mut();
        }
        Some(block)
    }

    /// Move up to `n` blocks from the front into a new list.
    pub fn split_off(&mut self, n: usize) -> FreeList {
        let mut out = FreeList::new();
        while out.len < n {
            let Some(b) = self.pop() else { break };
            // SAFETY: `b` was a free block of this list, now of `out`.
            unsafe { out.push(b) };
        }
        out
    }

    /// Move every block of `other` to the front of this list.
    pub fn append(&mut self, other: FreeList) {
        if other.is_empty() {
            return;
        }
        // SAFETY: `other.tail` is a free block of `other`, whose first word
        // (null, it is last) now links on to this list.
        unsafe { other.tail.cast::<*mut u8>().write(self.head) };
        if self.head.is_null() {
            self.tail = other.tail;
        }
        self.head = other.head;
        self.len += other.len;
    }
}
