//! The throughput benchmark's two workloads through this framework, its Rust peers
//! [spring-batch-rs] 0.4.1 and [oxide-batch] 0.6.0, and a hand-written loop, side by
//! side in one process:
//!
//! ```text
//! cargo run --release --manifest-path benches/peers/Cargo.toml            # 1M items
//! cargo run --release --manifest-path benches/peers/Cargo.toml -- 10000000
//! ```
//!
//! - **summary**: a generator reader, a processor making a small summary, a summing
//!   writer (the workload of `cargo bench --bench throughput -- b1`).
//! - **owned**: a reader over a pre-built `Vec<Record>`, a processor returning an owned
//!   upper-case `String` and `id * 2`, a writer summing ids and lengths (`b7`).
//!
//! Each runs as each framework's closest equivalent of a chunk step of 1000 items with
//! an in-memory repository:
//!
//! - this framework: a `StepBuilder` chunk step in a one-step `Job`, launched by a
//!   `JobLauncher` over `InMemoryJobRepository`, on a current-thread Tokio runtime;
//!   the owned workload's reader is `ListReader`.
//! - spring-batch-rs: a `ChunkOrientedStep` (chunk size 1000) in a `JobInstance`, run
//!   synchronously; it keeps its step executions in memory and has no repository. It
//!   has no list reader, so the owned workload's reader hands out a `Vec`'s items
//!   through a `RefCell`; its processor takes items by value, as that API requires.
//! - oxide-batch: a `ChunkPipelineBuilder` chunk job launched by `JobLauncher::
//!   launch_chunk` over `InMemoryJobRepository`, on the same runtime; its `IterReader`
//!   reads the owned workload's `Vec`. It ships no in-memory chunk transaction manager,
//!   so [`MemoryTransactions`] is a minimal one: it keeps the committed counts and
//!   returns them as each commit's checkpoint.
//!
//! The variants of a workload run in interleaved rounds (one untimed warm-up round,
//! then each round runs each variant once, in an order that rotates), and the table
//! gives items per second from the median time, and ratios as medians of the
//! per-round ratios, with their range. Inputs (the owned workload's `Vec`) are built
//! before each run's clock starts.
//!
//! [spring-batch-rs]: https://crates.io/crates/spring-batch-rs
//! [oxide-batch]: https://crates.io/crates/oxide-batch

use std::cell::{Cell, RefCell};
use std::num::NonZeroU64;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::runtime::Runtime;

#[path = "../../common/mod.rs"]
mod common;

use common::rounds::{Variant, interleaved, mega};
use common::workloads::{
    CHUNK, Record, Shouted, Summary, hand_owned, hand_summary, make, records, shout, summarize,
    write_shouted, write_summaries,
};

/// This framework.
mod ours {
    use super::*;
    use batch::prelude::*;
    use batch::step::StepBuilder;

    struct Generator {
        next: u64,
        end: u64,
    }

    impl ItemReader<Record> for Generator {
        async fn read(&mut self) -> Result<Option<Record>> {
            if self.next >= self.end {
                return Ok(None);
            }
            let r = make(self.next);
            self.next += 1;
            Ok(Some(r))
        }
    }

    struct SummarySink(Arc<AtomicU64>);

    impl ItemWriter<Summary> for SummarySink {
        async fn write(&mut self, items: &[Summary], _cx: &mut WriteContext<'_>) -> Result<()> {
            write_summaries(items, &self.0);
            Ok(())
        }
    }

    struct ShoutedSink(Arc<AtomicU64>);

    impl ItemWriter<Shouted> for ShoutedSink {
        async fn write(&mut self, items: &[Shouted], _cx: &mut WriteContext<'_>) -> Result<()> {
            write_shouted(items, &self.0);
            Ok(())
        }
    }

    pub struct Runner {
        launcher: JobLauncher,
        run: Cell<i64>,
    }

    impl Runner {
        pub fn new() -> Self {
            Self {
                launcher: JobLauncher::new(InMemoryJobRepository::new()),
                run: Cell::new(0),
            }
        }

        fn time(&self, rt: &Runtime, job: Job, n: u64) -> Duration {
            self.run.set(self.run.get() + 1);
            let params = JobParameters::new().with("run", self.run.get());
            rt.block_on(async {
                let start = Instant::now();
                let e = self.launcher.run(job, params).await.expect("launch");
                let d = start.elapsed();
                assert_eq!(e.status, BatchStatus::Completed);
                assert_eq!(e.step_executions[0].counts.write, n);
                d
            })
        }

        pub fn summary(&self, rt: &Runtime, n: u64, sink: &Arc<AtomicU64>) -> Duration {
            let sink = sink.clone();
            let step = StepBuilder::new("summary")
                .chunk_size(CHUNK as u64)
                .chunk(move |_| {
                    let sink = sink.clone();
                    async move {
                        Ok(chunk(
                            Generator { next: 0, end: n },
                            |r: &Record| Ok::<_, Error>(Some(summarize(r))),
                            SummarySink(sink),
                        ))
                    }
                });
            self.time(rt, Job::new("summary", Flow::start(step).build()), n)
        }

        pub fn owned(&self, rt: &Runtime, n: u64, sink: &Arc<AtomicU64>) -> Duration {
            let sink = sink.clone();
            let items = Mutex::new(Some(records(n)));
            let step = StepBuilder::new("owned")
                .chunk_size(CHUNK as u64)
                .chunk(move |_| {
                    let items = items.lock().unwrap().take().expect("runs once");
                    let sink = sink.clone();
                    async move {
                        Ok(chunk(
                            ListReader::new(items),
                            |r: &Record| Ok::<_, Error>(Some(shout(r))),
                            ShoutedSink(sink),
                        ))
                    }
                });
            self.time(rt, Job::new("owned", Flow::start(step).build()), n)
        }
    }
}

/// spring-batch-rs.
mod spring {
    use super::*;
    use spring_batch_rs::BatchError;
    use spring_batch_rs::core::item::{
        ItemProcessor, ItemProcessorResult, ItemReader, ItemReaderResult, ItemWriter,
        ItemWriterResult,
    };
    use spring_batch_rs::core::job::{Job, JobBuilder};
    use spring_batch_rs::core::step::StepBuilder;

    struct Generator {
        next: Cell<u64>,
        end: u64,
    }

    impl ItemReader<Record> for Generator {
        fn read(&self) -> ItemReaderResult<Record> {
            let next = self.next.get();
            if next >= self.end {
                return Ok(None);
            }
            self.next.set(next + 1);
            Ok(Some(make(next)))
        }
    }

    struct List(RefCell<std::vec::IntoIter<Record>>);

    impl ItemReader<Record> for List {
        fn read(&self) -> ItemReaderResult<Record> {
            Ok(self.0.borrow_mut().next())
        }
    }

    struct Summarize;

    impl ItemProcessor<Record, Summary> for Summarize {
        fn process(&self, item: Record) -> ItemProcessorResult<Summary> {
            Ok(Some(summarize(&item)))
        }
    }

    struct Shout;

    impl ItemProcessor<Record, Shouted> for Shout {
        fn process(&self, item: Record) -> ItemProcessorResult<Shouted> {
            Ok(Some(shout(&item)))
        }
    }

    struct Sink<'a>(&'a AtomicU64);

    impl ItemWriter<Summary> for Sink<'_> {
        fn write(&self, items: &[Summary]) -> ItemWriterResult {
            write_summaries(items, self.0);
            Ok(())
        }
    }

    impl ItemWriter<Shouted> for Sink<'_> {
        fn write(&self, items: &[Shouted]) -> ItemWriterResult {
            write_shouted(items, self.0);
            Ok(())
        }
    }

    fn time<O>(
        reader: &dyn ItemReader<Record>,
        processor: &dyn ItemProcessor<Record, O>,
        writer: &dyn ItemWriter<O>,
        n: u64,
    ) -> Duration {
        let start = Instant::now();
        let step = StepBuilder::new("step")
            .chunk::<Record, O>(CHUNK as u16)
            .reader(reader)
            .processor(processor)
            .writer(writer)
            .build();
        let job = JobBuilder::new().start(&step).build();
        let result: Result<_, BatchError> = job.run();
        let d = start.elapsed();
        result.expect("spring-batch-rs job");
        let execution = job.get_step_execution("step").expect("step execution");
        assert_eq!(execution.write_count as u64, n);
        d
    }

    pub fn summary(n: u64, sink: &AtomicU64) -> Duration {
        let reader = Generator {
            next: Cell::new(0),
            end: n,
        };
        time(&reader, &Summarize, &Sink(sink), n)
    }

    pub fn owned(n: u64, sink: &AtomicU64) -> Duration {
        let reader = List(RefCell::new(records(n).into_iter()));
        time(&reader, &Shout, &Sink(sink), n)
    }
}

/// oxide-batch.
mod oxide {
    use super::*;
    use oxide_batch::item_components::IterReader;
    use oxide_batch::{
        BoxFuture, BusinessTransaction, Checkpoint, ChunkCommitReceipt, ChunkCounts,
        ChunkDeliveryMode, ChunkExecutionOutcome, ChunkFaultProgress, ChunkPipelineBuilder,
        ChunkRestartContract, ChunkSize, ChunkTransaction, ChunkTransactionError,
        ChunkTransactionManager, ComponentRevision, DefinitionRevision, ExecutionContext,
        InMemoryJobRepository, ItemProcessor, ItemReader, ItemWriter, JobLauncher, JobName,
        JobParameter, JobParameters, ParameterName, ParameterRole, ParameterValue, ProcessContext,
        ProcessOutcome, ProcessorError, ReadContext, ReadOutcome, ReaderError,
        SequentialIdGenerator, StateLimits, StateSchemaId, StateSchemaVersion, StepName,
        StopSource, SystemClock, WriteContext, WriteOutcome, WriterError,
    };

    /// A minimal in-memory chunk transaction manager: a commit adds the chunk's counts
    /// to the step's and returns the step's read count as the checkpoint; a rollback
    /// forgets the chunk. There is no business transaction to lend the writer.
    #[derive(Default)]
    pub struct MemoryTransactions {
        read: Arc<Mutex<u64>>,
    }

    struct MemoryTransaction {
        read: Arc<Mutex<u64>>,
    }

    const CHECKPOINT: &str = "peers.position";
    const CONTEXT: &str = "peers.context";

    fn receipt(read: u64) -> Result<ChunkCommitReceipt, ChunkTransactionError> {
        let checkpoint = format!(
            r#"{{"format":"oxide-batch.checkpoint","format_version":1,"schema":"{CHECKPOINT}","schema_version":1,"payload":{{"read":{read}}}}}"#
        );
        let context = format!(
            r#"{{"format":"oxide-batch.execution-context","format_version":1,"schema":"{CONTEXT}","schema_version":1,"payload":{{}}}}"#
        );
        let invalid = |_| ChunkTransactionError::NotCommitted;
        Ok(ChunkCommitReceipt::new(
            Checkpoint::from_json(checkpoint.as_bytes(), StateLimits::default())
                .map_err(invalid)?,
            ExecutionContext::from_json(context.as_bytes(), StateLimits::default())
                .map_err(invalid)?,
        ))
    }

    impl ChunkTransaction for MemoryTransaction {
        fn business_transaction(&mut self) -> Option<&mut dyn BusinessTransaction> {
            None
        }

        fn commit(
            &mut self,
            counts: ChunkCounts,
            _fault: ChunkFaultProgress,
        ) -> BoxFuture<'_, Result<ChunkCommitReceipt, ChunkTransactionError>> {
            Box::pin(async move {
                let mut read = self.read.lock().unwrap();
                *read += counts.read().get();
                receipt(*read)
            })
        }

        fn rollback(&mut self) -> BoxFuture<'_, Result<(), ChunkTransactionError>> {
            Box::pin(async { Ok(()) })
        }
    }

    impl ChunkTransactionManager for MemoryTransactions {
        fn begin(
            &self,
        ) -> BoxFuture<'_, Result<Box<dyn ChunkTransaction + '_>, ChunkTransactionError>> {
            let read = self.read.clone();
            Box::pin(async move {
                Ok(Box::new(MemoryTransaction { read }) as Box<dyn ChunkTransaction>)
            })
        }
    }

    struct Generator {
        next: u64,
        end: u64,
    }

    impl ItemReader<Record> for Generator {
        async fn read(&mut self, _cx: ReadContext<'_>) -> Result<ReadOutcome<Record>, ReaderError> {
            if self.next >= self.end {
                return Ok(ReadOutcome::EndOfInput);
            }
            let r = make(self.next);
            self.next += 1;
            Ok(ReadOutcome::Item(r))
        }
    }

    struct Summarize;

    impl ItemProcessor<Record, Summary> for Summarize {
        async fn process(
            &self,
            item: &Record,
            _cx: ProcessContext<'_>,
        ) -> Result<ProcessOutcome<Summary>, ProcessorError> {
            Ok(ProcessOutcome::Item(summarize(item)))
        }
    }

    struct Shout;

    impl ItemProcessor<Record, Shouted> for Shout {
        async fn process(
            &self,
            item: &Record,
            _cx: ProcessContext<'_>,
        ) -> Result<ProcessOutcome<Shouted>, ProcessorError> {
            Ok(ProcessOutcome::Item(shout(item)))
        }
    }

    struct Sink(Arc<AtomicU64>);

    impl ItemWriter<Summary> for Sink {
        async fn write(
            &self,
            items: &[Summary],
            _cx: WriteContext<'_>,
        ) -> Result<WriteOutcome, WriterError> {
            write_summaries(items, &self.0);
            Ok(WriteOutcome::Written)
        }
    }

    impl ItemWriter<Shouted> for Sink {
        async fn write(
            &self,
            items: &[Shouted],
            _cx: WriteContext<'_>,
        ) -> Result<WriteOutcome, WriterError> {
            write_shouted(items, &self.0);
            Ok(WriteOutcome::Written)
        }
    }

    pub struct Runner {
        clock: Arc<SystemClock>,
        ids: Arc<SequentialIdGenerator>,
        repository: InMemoryJobRepository,
        run: Cell<u64>,
    }

    type Fallible<T> = Result<T, Box<dyn std::error::Error>>;

    impl Runner {
        pub fn new() -> Self {
            let clock = Arc::new(SystemClock);
            let ids = Arc::new(SequentialIdGenerator::new(NonZeroU64::MIN));
            let repository = InMemoryJobRepository::new(clock.clone(), ids.clone());
            Self {
                clock,
                ids,
                repository,
                run: Cell::new(0),
            }
        }

        fn time<O, R, P>(
            &self,
            rt: &Runtime,
            reader: R,
            processor: P,
            n: u64,
            sink: &Arc<AtomicU64>,
        ) -> Fallible<Duration>
        where
            O: Send + Sync + 'static,
            R: ItemReader<Record> + Send + 'static,
            P: ItemProcessor<Record, O> + Send + 'static,
            Sink: ItemWriter<O>,
        {
            let restart = ChunkRestartContract::new(
                StateSchemaId::new(CHECKPOINT)?,
                StateSchemaVersion::new(1)?,
                StateSchemaId::new(CONTEXT)?,
                StateSchemaVersion::new(1)?,
                ChunkDeliveryMode::AtLeastOnce,
            );
            let mut job = ChunkPipelineBuilder::new(
                StepName::new("step")?,
                ChunkSize::new(CHUNK as u32)?,
                reader,
                ComponentRevision::new("reader-v1")?,
                processor,
                ComponentRevision::new("processor-v1")?,
                Sink(sink.clone()),
                ComponentRevision::new("writer-v1")?,
                ComponentRevision::new("checkpoint-v1")?,
                restart,
                Arc::new(MemoryTransactions::default()),
            )
            .build_chunk_job(JobName::new("peers")?, DefinitionRevision::new("v1")?)?;
            self.run.set(self.run.get() + 1);
            let parameters = JobParameters::try_from_iter([(
                ParameterName::new("run")?,
                JobParameter::new(
                    ParameterValue::string(self.run.get().to_string())?,
                    ParameterRole::Identifying,
                ),
            )])?;
            let (_source, stop) = StopSource::new();
            let launcher =
                JobLauncher::new(&self.repository, self.clock.as_ref(), self.ids.as_ref());
            rt.block_on(async {
                let start = Instant::now();
                let report = launcher.launch_chunk(&mut job, &parameters, &stop).await?;
                let d = start.elapsed();
                let chunk = report.chunk().ok_or("no chunk report")?;
                assert_eq!(chunk.outcome(), ChunkExecutionOutcome::Completed);
                assert_eq!(chunk.committed_counts().written().get(), n);
                Ok(d)
            })
        }

        pub fn summary(&self, rt: &Runtime, n: u64, sink: &Arc<AtomicU64>) -> Duration {
            self.time(rt, Generator { next: 0, end: n }, Summarize, n, sink)
                .expect("oxide-batch job")
        }

        pub fn owned(&self, rt: &Runtime, n: u64, sink: &Arc<AtomicU64>) -> Duration {
            self.time(rt, IterReader::new(records(n)), Shout, n, sink)
                .expect("oxide-batch job")
        }
    }
}

const HAND: &str = "hand loop";
const OURS: &str = "batch (this framework)";
const SPRING: &str = "spring-batch-rs 0.4.1";
const OXIDE: &str = "oxide-batch 0.6.0";

/// Every peer should take at least this many times this framework's time.
const PEER_TARGET: f64 = 1.3;

fn main() {
    let sizes: Vec<u64> = std::env::args()
        .skip(1)
        .map(|a| a.parse().expect("the arguments are item counts"))
        .collect();
    let sizes = if sizes.is_empty() {
        vec![1_000_000]
    } else {
        sizes
    };
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let ours = ours::Runner::new();
    let oxide = oxide::Runner::new();
    println!(
        "machine: {} cores; chunk size {CHUNK}; interleaved rounds (one untimed warm-up), medians",
        std::thread::available_parallelism().map_or(0, |n| n.get())
    );
    for &n in &sizes {
        let rounds = if n <= 1_000_000 { 11 } else { 5 };
        for workload in ["summary", "owned"] {
            let sink = Arc::new(AtomicU64::new(0));
            let s = &sink;
            let (ours, oxide, rt) = (&ours, &oxide, &rt);
            let variants = if workload == "summary" {
                vec![
                    Variant::new(HAND, move || {
                        let start = Instant::now();
                        hand_summary(n, s);
                        start.elapsed()
                    }),
                    Variant::new(OURS, move || ours.summary(rt, n, s)),
                    Variant::new(SPRING, move || spring::summary(n, s)),
                    Variant::new(OXIDE, move || oxide.summary(rt, n, s)),
                ]
            } else {
                vec![
                    Variant::new(HAND, move || {
                        let items = records(n);
                        let start = Instant::now();
                        hand_owned(items, s);
                        start.elapsed()
                    }),
                    Variant::new(OURS, move || ours.owned(rt, n, s)),
                    Variant::new(SPRING, move || spring::owned(n, s)),
                    Variant::new(OXIDE, move || oxide.owned(rt, n, s)),
                ]
            };
            let t = interleaved(rounds, variants);
            assert_ne!(sink.load(Ordering::Relaxed), 0);
            println!();
            println!("{workload} workload, {n} items, {rounds} rounds");
            println!(
                "| {:<22} | {:>11} | {:>22} | {:>22} |",
                "", "items/s", "× hand loop", "× this framework"
            );
            println!("|{:-<24}|{:->13}|{:->24}|{:->24}|", "", ":", ":", ":");
            for name in [HAND, OURS, SPRING, OXIDE] {
                let cell = |of: &str| {
                    if of == name {
                        "1".to_owned()
                    } else {
                        let r = t.ratio(name, of);
                        format!("{:.3} ({:.2}..{:.2})", r.median, r.low, r.high)
                    }
                };
                println!(
                    "| {:<22} | {:>11} | {:>22} | {:>22} |",
                    name,
                    mega(t.rate(name, n)),
                    cell(HAND),
                    if name == HAND {
                        "".to_owned()
                    } else {
                        cell(OURS)
                    },
                );
            }
            for peer in [SPRING, OXIDE] {
                let r = t.ratio(peer, OURS).median;
                println!(
                    "target: {peer} at least {PEER_TARGET:.2}× this framework's time: {r:.3}, {}",
                    if r >= PEER_TARGET { "met" } else { "NOT met" }
                );
            }
        }
    }
}
