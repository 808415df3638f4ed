//! The ring against a fake guest memory: registration, indices, room,
//! buffer checks and completions, without a VM.

use std::mem::size_of;

use vessel_abi::ring::{cq_offset, op, Cqe, RingHeader, Sqe, SQ_OFFSET};

use super::*;

const BASE: u64 = 0x10000;
const ENTRIES: u32 = 4;

#[derive(Default)]
struct Out(Vec<(u32, Vec<u8>)>);
impl HostIo for Out {
    fn write(&mut self, fd: u32, data: &[u8]) -> std::io::Result<()> {
        self.0.push((fd, data.to_vec()));
        Ok(())
    }
    fn read_stdin(&mut self, _: &mut [u8]) -> std::io::Result<usize> {
        Ok(0)
    }
}

fn server(ram: &GuestRam) -> IoServer {
    let budget = Arc::new(OutputBudget::new(100));
    IoServer::new(
        ram.clone(),
        Fs::new(vec![], budget.clone()),
        budget,
        vec![(0x1000, 0x1000)],
        1,
        Duration::ZERO,
    )
}

fn header(ram: &GuestRam) -> RingHeader {
    ram.read_pod(BASE).unwrap()
}

fn push(ram: &GuestRam, sqe: Sqe) {
    let mut h = header(ram);
    let slot = u64::from(h.sq_tail & (ENTRIES - 1));
    ram.write_pod(BASE + SQ_OFFSET + slot * size_of::<Sqe>() as u64, &sqe)
        .unwrap();
    h.sq_tail = h.sq_tail.wrapping_add(1);
    ram.write_pod(BASE, &h).unwrap();
}

fn cqe(ram: &GuestRam, i: u32) -> Cqe {
    let slot = u64::from(i & (ENTRIES - 1));
    ram.read_pod(BASE + cq_offset(ENTRIES) + slot * size_of::<Cqe>() as u64)
        .unwrap()
}

fn enter(s: &IoServer, out: &mut Out, min: u32) -> Result<Entered, Errno> {
    s.enter(0, out, min, 1_000_000_000, &|| false)
}

#[test]
fn setup_checks_size_alignment_memory_and_once() {
    let ram = GuestRam::new(0, 0x20000).unwrap();
    let s = server(&ram);
    assert_eq!(s.setup(0, BASE, 3), Err(Errno::Inval));
    assert_eq!(s.setup(0, BASE + 8, 4), Err(Errno::Inval));
    assert_eq!(s.setup(0, 0x1fff0 & !63, 64), Err(Errno::Fault), "past RAM");
    assert_eq!(s.setup(0, 0x1000, 4), Err(Errno::Fault), "protected");
    assert_eq!(s.setup(1, BASE, 4), Err(Errno::Inval), "no such vCPU");
    assert_eq!(
        s.enter(0, &mut Out::default(), 0, 0, &|| false),
        Err(Errno::Inval)
    );
    assert_eq!(s.setup(0, BASE, ENTRIES), Ok(()));
    assert_eq!(s.setup(0, BASE, ENTRIES), Err(Errno::Busy), "once");
}

#[test]
fn console_requests_complete_in_order_and_bad_buffers_get_their_errors() {
    let ram = GuestRam::new(0, 0x20000).unwrap();
    let s = server(&ram);
    s.setup(0, BASE, ENTRIES).unwrap();
    ram.write(0x8000, b"abcdef").unwrap();
    let con = |handle, addr, len, user_data| Sqe {
        op: op::CONSOLE,
        handle,
        user_data,
        a: GuestSlice { addr, len },
        ..Sqe::default()
    };
    push(&ram, con(1, 0x8000, 3, 10));
    push(&ram, con(2, 0x8003, 3, 11));
    push(&ram, con(1, u64::MAX - 1, 4, 12)); // wraps
    push(&ram, con(1, BASE + 64, 8, 13)); // an SQE of the ring itself
    let mut out = Out::default();
    assert_eq!(enter(&s, &mut out, 4), Ok((4, 4)));
    assert_eq!(out.0, vec![(1, b"abc".to_vec()), (2, b"def".to_vec())]);
    let results: Vec<(u64, i64)> = (0..4)
        .map(|i| (cqe(&ram, i).user_data, cqe(&ram, i).result))
        .collect();
    let e = |e: Errno| i64::from(e as i32);
    assert_eq!(
        results,
        vec![
            (10, 3),
            (11, 3),
            (12, e(Errno::Fault)),
            (13, e(Errno::Busy))
        ]
    );
    let h = header(&ram);
    assert_eq!((h.sq_head, h.cq_tail, h.in_flight), (4, 4, 0));
    // The CQ is full until the guest consumes: nothing more is taken.
    push(&ram, con(1, 0x8000, 1, 14));
    assert_eq!(enter(&s, &mut out, 0), Ok((0, 4)));
    let mut h = header(&ram);
    h.cq_head = 4;
    ram.write_pod(BASE, &h).unwrap();
    assert_eq!(enter(&s, &mut out, 1), Ok((1, 1)));
}

#[test]
fn indices_out_of_range_or_backwards_take_nothing() {
    let ram = GuestRam::new(0, 0x20000).unwrap();
    let s = server(&ram);
    s.setup(0, BASE, ENTRIES).unwrap();
    let mut out = Out::default();
    for (sq_tail, cq_head) in [
        (ENTRIES + 1, 0),
        (u32::MAX, 0),
        (0, 1),
        (0, u32::MAX - ENTRIES),
    ] {
        let h = RingHeader {
            sq_tail,
            cq_head,
            ..RingHeader::default()
        };
        ram.write_pod(BASE, &h).unwrap();
        assert_eq!(
            enter(&s, &mut out, 0),
            Err(Errno::Inval),
            "{sq_tail} {cq_head}"
        );
        assert_eq!(header(&ram).sq_head, 0, "nothing taken");
    }
}

#[test]
fn output_budget_caps_console_writes() {
    let ram = GuestRam::new(0, 0x20000).unwrap();
    let s = server(&ram);
    s.setup(0, BASE, ENTRIES).unwrap();
    push(
        &ram,
        Sqe {
            op: op::CONSOLE,
            handle: 1,
            a: GuestSlice {
                addr: 0x8000,
                len: 101,
            },
            ..Sqe::default()
        },
    );
    let mut out = Out::default();
    enter(&s, &mut out, 1).unwrap();
    assert_eq!(cqe(&ram, 0).result, i64::from(Errno::OutputLimit as i32));
    assert!(s.budget().exceeded() && out.0.is_empty());
}

#[test]
fn file_requests_without_dirs_complete_from_the_io_threads() {
    let ram = GuestRam::new(0, 0x20000).unwrap();
    let s = server(&ram);
    s.setup(0, BASE, ENTRIES).unwrap();
    ram.write(0x8000, b"/x").unwrap();
    push(
        &ram,
        Sqe {
            op: op::OPEN,
            flags: vessel_abi::fs::open::READ,
            user_data: 7,
            a: GuestSlice {
                addr: 0x8000,
                len: 2,
            },
            ..Sqe::default()
        },
    );
    push(
        &ram,
        Sqe {
            op: op::NOP,
            user_data: 8,
            ..Sqe::default()
        },
    );
    let mut out = Out::default();
    let (taken, _) = enter(&s, &mut out, 2).unwrap();
    assert_eq!(taken, 2);
    let mut got: Vec<(u64, i64)> = (0..2)
        .map(|i| (cqe(&ram, i).user_data, cqe(&ram, i).result))
        .collect();
    got.sort();
    assert_eq!(got, vec![(7, i64::from(Errno::NotFound as i32)), (8, 0)]);
}
