//! The two workloads, as plain functions any framework can call, and the hand-written
//! loops that do the same work with no framework.
//!
//! - **summary**: a generator makes `Record { id, name: format!("record-{id}") }`, the
//!   processor makes a small `Summary` (two integers) of it, the writer folds the
//!   summaries into a checksum.
//! - **owned**: a list reader hands out the records of a pre-built `Vec<Record>`, the
//!   processor returns an owned `Shouted` (the name in upper case, a new `String`,
//!   and `id * 2`), the writer sums the ids and the names' lengths.
//!
//! Both end with the writer's checksum added to a sink the optimizer cannot see
//! through, so no part of the work can be left out.

use std::hint::black_box;
use std::sync::atomic::{AtomicU64, Ordering};

/// Items per chunk, in every framework and every hand-written loop.
pub(crate) const CHUNK: usize = 1000;

/// The input item of both workloads.
#[derive(Debug, Clone)]
pub(crate) struct Record {
    pub(crate) id: u64,
    pub(crate) name: String,
}

/// What the summary workload's processor makes of a record.
#[derive(Debug)]
pub(crate) struct Summary {
    pub(crate) id: u64,
    pub(crate) len: usize,
}

/// What the owned workload's processor makes of a record.
#[derive(Debug)]
pub(crate) struct Shouted {
    pub(crate) id: u64,
    pub(crate) name: String,
}

/// The summary workload's reader makes each record with this.
pub(crate) fn make(id: u64) -> Record {
    Record {
        id,
        name: format!("record-{id}"),
    }
}

/// The owned workload's input, built before the clock starts.
pub(crate) fn records(n: u64) -> Vec<Record> {
    (0..n).map(make).collect()
}

/// The summary workload's processor.
pub(crate) fn summarize(r: &Record) -> Summary {
    Summary {
        id: r.id.wrapping_mul(31),
        len: r.name.len(),
    }
}

/// The owned workload's processor.
pub(crate) fn shout(r: &Record) -> Shouted {
    Shouted {
        id: r.id * 2,
        name: r.name.to_uppercase(),
    }
}

/// The summary workload's writer.
pub(crate) fn write_summaries(items: &[Summary], sink: &AtomicU64) {
    let mut acc = 0u64;
    for s in items {
        acc = acc.wrapping_add(s.id ^ s.len as u64);
    }
    sink.fetch_add(black_box(acc), Ordering::Relaxed);
}

/// The owned workload's writer.
pub(crate) fn write_shouted(items: &[Shouted], sink: &AtomicU64) {
    let mut acc = 0u64;
    for s in items {
        acc = acc.wrapping_add(s.id).wrapping_add(s.name.len() as u64);
    }
    sink.fetch_add(black_box(acc), Ordering::Relaxed);
}

/// The summary workload by hand: the same reads, transforms, chunked writes and
/// per-chunk "commits" (a counter). Returns the number of chunks.
pub(crate) fn hand_summary(n: u64, sink: &AtomicU64) -> u64 {
    let mut next = 0u64;
    let mut inputs: Vec<Record> = Vec::with_capacity(CHUNK);
    let mut outputs: Vec<Summary> = Vec::with_capacity(CHUNK);
    let mut commits = 0;
    loop {
        inputs.clear();
        while inputs.len() < CHUNK && next < n {
            inputs.push(make(next));
            next += 1;
        }
        outputs.clear();
        outputs.extend(inputs.iter().map(summarize));
        write_summaries(&outputs, sink);
        commits += 1;
        if inputs.len() < CHUNK {
            return black_box(commits);
        }
    }
}

/// The owned workload by hand: records moved out of the list one at a time into the
/// chunk, processed by reference, written as a slice; the chunk's inputs and outputs
/// are dropped when the next chunk starts. Returns the number of chunks.
pub(crate) fn hand_owned(items: Vec<Record>, sink: &AtomicU64) -> u64 {
    let mut source = items.into_iter();
    let mut inputs: Vec<Record> = Vec::with_capacity(CHUNK);
    let mut outputs: Vec<Shouted> = Vec::with_capacity(CHUNK);
    let mut commits = 0;
    loop {
        inputs.clear();
        while inputs.len() < CHUNK {
            match source.next() {
                Some(r) => inputs.push(r),
                None => break,
            }
        }
        outputs.clear();
        outputs.extend(inputs.iter().map(shout));
        write_shouted(&outputs, sink);
        commits += 1;
        if inputs.len() < CHUNK {
            return black_box(commits);
        }
    }
}
