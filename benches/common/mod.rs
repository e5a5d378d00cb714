//! What `benches/throughput.rs` and the `benches/peers` package share: the two
//! workloads, their hand-written loops, and the interleaved-rounds measurement.
//!
//! Each of the two uses part of it, so unused items are expected.
#![allow(dead_code)]

pub(crate) mod rounds;
pub(crate) mod workloads;
