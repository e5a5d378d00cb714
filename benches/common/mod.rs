//! What `benches/throughput.rs` and the `benches/peers` package share: the two
//! workloads, their hand-written loops, and the interleaved-rounds measurement.
//!
//! Each of the two uses part of it, so unused items are expected.
#![allow(dead_code)]

pub(crate) mod rounds;
pub(crate) mod workloads;

/// The benchmark names given on the command line, cargo's own flags (`--bench`) left
/// out; an unknown name ends the process with status 2, listing the known ones.
pub(crate) fn chosen(names: &[&str]) -> Vec<String> {
    let args: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with('-'))
        .collect();
    if let Some(unknown) = args.iter().find(|a| !names.contains(&a.as_str())) {
        eprintln!(
            "unknown benchmark `{unknown}`; the names are {}",
            names.join(", ")
        );
        std::process::exit(2);
    }
    args
}
