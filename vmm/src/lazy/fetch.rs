//! Serving one missing page: read it from the file (zeros past its end),
//! copy it into place, count it; and the fetch threads that wait for
//! userfaultfd events.

use std::fs::File;
use std::os::unix::fs::FileExt;
use std::sync::atomic::Ordering;

use super::uffd::Uffd;
use super::{Backing, Shared};
use crate::memory::PAGE;

/// Fill `page` (one page of the region at byte `offset`) from the file:
/// bytes past the end of the file read as zero.
pub fn fill_page(file: &File, file_len: u64, offset: u64, page: &mut [u8]) -> std::io::Result<()> {
    page.fill(0);
    if offset >= file_len {
        return Ok(());
    }
    let want = ((file_len - offset) as usize).min(page.len());
    let mut done = 0;
    while done < want {
        match file.read_at(&mut page[done..want], offset + done as u64) {
            Ok(0) => break, // file shrank: the rest reads as zero
            Ok(n) => done += n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// Read the page at `offset` of region `r` into `page` (zeros past the end
/// of the file, or where it cannot be read) and copy it into place. A page
/// someone else filled first (a duplicate event, or another filler) is
/// fine. Errors are recorded in `shared`.
pub fn serve_page(uffd: &Uffd, shared: &Shared, r: &Backing, offset: u64, page: &mut [u8]) {
    if let Err(e) = fill_page(&r.file, r.file_len, offset, page) {
        shared.fail(format!(
            "lazy region {}: reading offset {offset:#x} failed: {e} (page filled with zeros)",
            r.name
        ));
        page.fill(0);
    }
    match uffd.copy(&r.map, offset, page) {
        Ok(true) => {
            shared.pages.fetch_add(1, Ordering::Relaxed);
        }
        Ok(false) => {} // someone filled it first
        Err(e) => shared.fail(format!(
            "lazy region {}: UFFDIO_COPY at offset {offset:#x}: {e}",
            r.name
        )),
    }
}

/// A fetch thread: wait for a fault event or the stop signal, sleep the
/// emulated latency (cut short by the stop signal), serve the page.
pub fn fetch_loop(uffd: &Uffd, shared: &Shared) {
    let mut page = vec![0u8; PAGE as usize];
    loop {
        let mut fds = [
            libc::pollfd {
                fd: uffd.fd(),
                events: libc::POLLIN,
                revents: 0,
            },
            shared.stop_pollfd(),
        ];
        // SAFETY: two valid pollfds in a live array.
        let n = unsafe { libc::poll(fds.as_mut_ptr(), 2, -1) };
        if shared.stopping() {
            return;
        }
        if n <= 0 {
            continue; // EINTR
        }
        let Some(addr) = uffd.read_fault() else {
            continue; // another worker took it
        };
        let addr = addr & !(PAGE - 1);
        let Some(r) = shared.regions.iter().find(|r| r.holds_host(addr)) else {
            shared.fail(format!(
                "userfaultfd event at unknown host address {addr:#x}"
            ));
            continue;
        };
        if !shared.sleep_latency() {
            return;
        }
        let is_async = shared.count_fault();
        serve_page(uffd, shared, r, addr - r.host_addr(), &mut page);
        if is_async {
            shared.async_filled.fetch_add(1, Ordering::Relaxed);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pages_past_the_end_of_the_file_read_as_zero() {
        let dir = std::env::temp_dir().join(format!("vessel-fill-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let f = dir.join("f");
        std::fs::write(&f, vec![7u8; 5000]).unwrap();
        let mut page = vec![1u8; 4096];
        let file = File::open(&f).unwrap();
        fill_page(&file, 5000, 4096, &mut page).unwrap();
        assert!(page[..904].iter().all(|&b| b == 7) && page[904..].iter().all(|&b| b == 0));
        fill_page(&file, 5000, 8192, &mut page).unwrap();
        assert!(page.iter().all(|&b| b == 0));
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
