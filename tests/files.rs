//! The flat-file items against a real SQLite job repository file:
//!
//! - a CSV reader's restart seeks to the committed position and reads only the rest
//!   of the file (the bytes it reads are counted);
//! - malformed lines are read errors naming the file, line, field and value, skipped
//!   within the skip limit and failing the step past it;
//! - a rolled-back chunk leaves nothing in the file, whether the chunk failed before
//!   its bytes were written or in its commit after, and items a scan commits one by
//!   one reach the file once;
//! - a multi-file reader (a pattern, one file gzipped) restarts in the right file;
//! - `examples/export_jsonl` killed with SIGKILL at ten or more moments, each after a
//!   random number of its commits, leaves every row in the file exactly once;
//! - fixed-width fields, CSV headers and footers, and what a new instance does with an
//!   existing output file.

mod support;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use batch::classify::ErrorMatcher;
use batch::compose::CompositeWriter;
use batch::file::{
    CsvReader, CsvWriter, ExistingFile, FileReader, FixedWidthReader, JsonLinesReader,
    JsonLinesWriter, MalformedRecord, RecordFormat,
};
use batch::prelude::*;
use batch::step::StepBuilder;

#[derive(Debug, Clone, PartialEq, serde::Deserialize, serde::Serialize)]
struct Row {
    id: i64,
    name: String,
    amount: i64,
}

fn row(id: i64) -> Row {
    Row {
        id,
        name: format!("name {id}"),
        amount: id * 3,
    }
}

/// A fresh SQLite repository file in `dir`.
async fn launcher(dir: &Path) -> JobLauncher {
    let url = format!("sqlite:{}", dir.join("batch.db").display());
    JobLauncher::new(SqliteJobRepository::open(&url).await.unwrap())
}

/// Writes a CSV file of `ids` with a header; returns the byte offset where each
/// record's line starts, by id.
fn write_csv(path: &Path, ids: std::ops::RangeInclusive<i64>) -> Vec<u64> {
    let mut text = String::from("id,name,amount\n");
    let mut starts = vec![0];
    for id in ids {
        starts.push(text.len() as u64);
        let r = row(id);
        text.push_str(&format!("{},\"{}\",{}\n", r.id, r.name, r.amount));
    }
    std::fs::write(path, text).unwrap();
    starts
}

/// Delegates to a file reader and keeps the bytes it read when the step closes.
struct Probe<R> {
    inner: R,
    bytes: Arc<AtomicU64>,
}

impl<T: Send, F: RecordFormat<T>> ItemReader<T> for Probe<FileReader<T, F>> {
    async fn read(&mut self) -> Result<Option<T>> {
        self.inner.read().await
    }
    fn open(&mut self, ctx: &ExecutionContext) -> Result<()> {
        self.inner.open(ctx)
    }
    fn update(&mut self, ctx: &mut ExecutionContext) -> Result<()> {
        self.inner.update(ctx)
    }
    fn close(&mut self) -> Result<()> {
        self.bytes.store(self.inner.bytes_read(), Ordering::SeqCst);
        self.inner.close()
    }
}

#[derive(Debug, thiserror::Error)]
#[error("the writer refuses item {0}")]
struct Refused(i64);

/// Collects what it writes; fails (before collecting) on a chunk holding `fail_on`,
/// while `fail_on` is set.
#[derive(Clone, Default)]
struct Collect {
    items: Arc<Mutex<Vec<i64>>>,
    fail_on: Arc<Mutex<Option<i64>>>,
}

impl Collect {
    fn failing_on(id: i64) -> Self {
        let c = Self::default();
        *c.fail_on.lock().unwrap() = Some(id);
        c
    }
    fn ids(&self) -> Vec<i64> {
        self.items.lock().unwrap().clone()
    }
}

impl ItemWriter<Row> for Collect {
    async fn write(&mut self, items: &[Row], _cx: &mut WriteContext<'_>) -> Result<()> {
        let fail_on = *self.fail_on.lock().unwrap();
        if let Some(id) = fail_on
            && items.iter().any(|r| r.id == id)
        {
            return Err(Error::new(Refused(id)));
        }
        self.items
            .lock()
            .unwrap()
            .extend(items.iter().map(|r| r.id));
        Ok(())
    }
}

fn step_context(execution: &JobExecution) -> &ExecutionContext {
    &execution.step_executions[0].context
}

#[tokio::test]
async fn csv_restart_reads_only_the_rest_of_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("rows.csv");
    let starts = write_csv(&input, 1..=20_000);
    let length = std::fs::metadata(&input).unwrap().len();
    let launcher = launcher(dir.path()).await;
    let collect = Collect::failing_on(15_001);
    let bytes = Arc::new(AtomicU64::new(0));
    let job = {
        let (input, collect, bytes) = (input.clone(), collect.clone(), bytes.clone());
        let step = StepBuilder::new("load").chunk_size(500).chunk(move |_| {
            let reader = Probe {
                inner: CsvReader::<Row>::new(&input).name("rows"),
                bytes: bytes.clone(),
            };
            let writer = collect.clone();
            async move { Ok(read_write(reader, writer)) }
        });
        Job::new("csvLoad", Flow::start(step))
    };

    let failed = launcher
        .run(job.clone(), JobParameters::new())
        .await
        .unwrap();
    assert_eq!(failed.status, BatchStatus::Failed);
    assert!(
        bytes.load(Ordering::SeqCst) >= starts[15_001],
        "the first run read to the failure"
    );
    // 30 chunks committed: the next record is id 15,001, on line 15,002.
    let ctx = step_context(&failed);
    assert_eq!(ctx.get::<u64>("rows.offset").unwrap(), Some(starts[15_001]));
    assert_eq!(ctx.get::<u64>("rows.line").unwrap(), Some(15_002));
    assert_eq!(ctx.get::<u64>("rows.read.count").unwrap(), Some(15_000));
    assert_eq!(collect.ids(), (1..=15_000).collect::<Vec<_>>());

    *collect.fail_on.lock().unwrap() = None;
    let done = launcher.run(job, JobParameters::new()).await.unwrap();
    assert_eq!(done.status, BatchStatus::Completed);
    assert_eq!(done.instance.id, failed.instance.id);
    let step = &done.step_executions[0];
    assert_eq!(step.counts.read, 5_000);
    let rest = length - starts[15_001];
    let read = bytes.load(Ordering::SeqCst);
    // The header (read with a buffer of 8 KiB at most), then the rest of the file.
    assert!(
        read >= rest && read <= rest + 8 * 1024,
        "the restart read {read} bytes for a rest of {rest} in a file of {length}"
    );
    assert_eq!(collect.ids(), (1..=20_000).collect::<Vec<_>>());
    assert_eq!(
        step.context.get::<u64>("rows.read.count").unwrap(),
        Some(20_000)
    );
}

#[tokio::test]
async fn malformed_lines_are_named_and_skipped_within_the_limit() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("bad.csv");
    std::fs::write(
        &input,
        "id,name,amount\n1,a,10\n2,b,lots\n3,c,30\n4,d\n5,e,50\n6,\"f\nwith a line end\",60\n7,g,x7\n8,h,80\n",
    )
    .unwrap();

    // Read directly: each malformed record is an error, and reading goes on.
    let mut reader = CsvReader::<Row>::new(&input);
    reader.open(&ExecutionContext::new()).unwrap();
    let (mut ok, mut errors) = (Vec::new(), Vec::new());
    loop {
        match reader.read().await {
            Ok(Some(r)) => ok.push(r.id),
            Ok(None) => break,
            Err(e) => errors.push(e),
        }
    }
    assert_eq!(ok, [1, 3, 5, 6, 8]);
    assert_eq!(errors.len(), 3);
    let first = errors[0]
        .find::<MalformedRecord>()
        .expect("a MalformedRecord");
    assert_eq!(first.file, input);
    assert_eq!(first.line, 3);
    assert_eq!(first.field.as_deref(), Some("amount"));
    assert_eq!(first.value.as_deref(), Some("lots"));
    let shown = errors[0].to_string();
    assert!(
        shown.contains("bad.csv") && shown.contains("line 3") && shown.contains("`amount`"),
        "{shown}"
    );
    assert!(shown.contains("\"lots\""), "{shown}");
    let cause = std::error::Error::source(first).unwrap().to_string();
    assert!(cause.contains("invalid digit"), "{cause}");
    assert!(
        !shown.contains(&cause),
        "the cause is the source, not the message"
    );
    let short = errors[1].find::<MalformedRecord>().unwrap();
    assert_eq!((short.line, short.field.as_deref()), (5, None));
    assert!(
        short.source.to_string().contains("2 fields where 3"),
        "{}",
        short.source
    );
    // After a record spanning two lines, the line numbers still follow the file.
    let last = errors[2].find::<MalformedRecord>().unwrap();
    assert_eq!((last.line, last.value.as_deref()), (9, Some("x7")));

    // JSON lines: the field where the parser stopped, and its value.
    let jsonl = dir.path().join("bad.jsonl");
    std::fs::write(
        &jsonl,
        "{\"id\":1,\"name\":\"a\",\"amount\":1}\n\n{\"id\":2,\"name\":\"b\",\"amount\":\"lots\"}\n{\"id\":3,\"name\":\"c\"}\n{\"id\":4,\n",
    )
    .unwrap();
    let mut reader = JsonLinesReader::<Row>::new(&jsonl);
    reader.open(&ExecutionContext::new()).unwrap();
    assert_eq!(reader.read().await.unwrap().unwrap().id, 1);
    let e = reader.read().await.unwrap_err();
    let bad = e.find::<MalformedRecord>().unwrap();
    assert_eq!(bad.line, 3);
    assert_eq!(bad.field.as_deref(), Some("amount"));
    assert_eq!(bad.value.as_deref(), Some("\"lots\""));
    let e = reader.read().await.unwrap_err();
    let missing = e.find::<MalformedRecord>().unwrap();
    assert_eq!(
        (missing.line, missing.field.as_deref()),
        (4, Some("amount"))
    );
    let e = reader.read().await.unwrap_err();
    assert_eq!(e.find::<MalformedRecord>().unwrap().line, 5);
    assert!(reader.read().await.unwrap().is_none());

    // In a step: skipped up to the limit, like any read error.
    let launcher = launcher(dir.path()).await;
    for (limit, status) in [(3, BatchStatus::Completed), (2, BatchStatus::Failed)] {
        let collect = Collect::default();
        let (input, writer) = (input.clone(), collect.clone());
        let step = StepBuilder::new("load")
            .chunk_size(2)
            .skip(ErrorMatcher::of::<MalformedRecord>())
            .skip_limit(limit)
            .chunk(move |_| {
                let (reader, writer) = (CsvReader::<Row>::new(&input), writer.clone());
                async move { Ok(read_write(reader, writer)) }
            });
        let run = launcher
            .run(
                Job::new("skipLoad", Flow::start(step)),
                JobParameters::new().with("limit", limit as i64),
            )
            .await
            .unwrap();
        assert_eq!(run.status, status, "limit {limit}");
        let counts = &run.step_executions[0].counts;
        if status == BatchStatus::Completed {
            assert_eq!((counts.read, counts.read_skip, counts.write), (5, 3, 5));
            assert_eq!(collect.ids(), [1, 3, 5, 6, 8]);
        } else {
            assert!(
                run.exit_status.description.contains("skip limit"),
                "{}",
                run.exit_status.description
            );
        }
    }
}

/// Fails in `update` (just before the commit, after the writers before it wrote their
/// bytes) at its `at`-th call.
struct FailingUpdate {
    calls: u64,
    at: u64,
}

impl ItemWriter<Row> for FailingUpdate {
    async fn write(&mut self, _: &[Row], _: &mut WriteContext<'_>) -> Result<()> {
        Ok(())
    }
    fn update(&mut self, _: &mut ExecutionContext) -> Result<()> {
        self.calls += 1;
        if self.calls == self.at {
            return Err(Error::msg("the commit fails"));
        }
        Ok(())
    }
}

fn jsonl_ids(path: &Path) -> Vec<i64> {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    assert!(
        text.is_empty() || text.ends_with('\n'),
        "a partial last line"
    );
    text.lines()
        .map(|l| serde_json::from_str::<Row>(l).unwrap().id)
        .collect()
}

#[tokio::test]
async fn a_rolled_back_chunk_leaves_nothing_in_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let launcher = launcher(dir.path()).await;
    let out = dir.path().join("out.jsonl");
    let rows: Vec<Row> = (1..=40).map(row).collect();

    // The chunk of 21..=30 fails in a writer after the file writer wrote it.
    let fail = Arc::new(Mutex::new(Some(25)));
    let job = {
        let (out, rows, fail) = (out.clone(), rows.clone(), fail.clone());
        let step = StepBuilder::new("export").chunk_size(10).chunk(move |_| {
            let collect = Collect {
                fail_on: fail.clone(),
                ..Collect::default()
            };
            let writer = CompositeWriter::new()
                .with(JsonLinesWriter::<Row>::new(&out).name("out"))
                .with(collect);
            let reader = ListReader::new(rows.clone()).restartable("rows");
            async move { Ok(read_write(reader, writer)) }
        });
        Job::new("export", Flow::start(step))
    };
    let failed = launcher
        .run(job.clone(), JobParameters::new())
        .await
        .unwrap();
    assert_eq!(failed.status, BatchStatus::Failed);
    assert_eq!(jsonl_ids(&out), (1..=20).collect::<Vec<_>>());
    let committed = std::fs::metadata(&out).unwrap().len();
    assert_eq!(
        step_context(&failed).get::<u64>("out.offset").unwrap(),
        Some(committed)
    );
    *fail.lock().unwrap() = None;
    let done = launcher.run(job, JobParameters::new()).await.unwrap();
    assert_eq!(done.status, BatchStatus::Completed);
    assert_eq!(jsonl_ids(&out), (1..=40).collect::<Vec<_>>());

    // The third chunk's commit fails after its bytes reached the file: they are cut
    // back at once.
    let out2 = dir.path().join("commit.jsonl");
    let job = {
        let (out, rows) = (out2.clone(), rows.clone());
        let step = StepBuilder::new("export")
            .chunk_size(10)
            .chunk(move |scope| {
                let at = if scope.is_restart() { 0 } else { 4 }; // 1: the initial save
                let writer = CompositeWriter::new()
                    .with(JsonLinesWriter::<Row>::new(&out))
                    .with(FailingUpdate { calls: 0, at });
                let reader = ListReader::new(rows.clone()).restartable("rows");
                async move { Ok(read_write(reader, writer)) }
            });
        Job::new("exportCommit", Flow::start(step))
    };
    let failed = launcher
        .run(job.clone(), JobParameters::new())
        .await
        .unwrap();
    assert_eq!(failed.status, BatchStatus::Failed);
    assert_eq!(jsonl_ids(&out2), (1..=20).collect::<Vec<_>>());
    let done = launcher.run(job, JobParameters::new()).await.unwrap();
    assert_eq!(done.status, BatchStatus::Completed);
    assert_eq!(jsonl_ids(&out2), (1..=40).collect::<Vec<_>>());

    // Fault tolerant: a refused item makes the chunk roll back and be scanned one item
    // per transaction; every other item reaches the file once, in order.
    let out3 = dir.path().join("scan.jsonl");
    let job = {
        let (out, rows) = (out3.clone(), rows.clone());
        let step = StepBuilder::new("export")
            .chunk_size(10)
            .skip(ErrorMatcher::of::<Refused>())
            .skip_limit(5)
            .chunk(move |_| {
                let writer = CompositeWriter::new()
                    .with(JsonLinesWriter::<Row>::new(&out))
                    .with(Collect::failing_on(15));
                let reader = ListReader::new(rows.clone()).restartable("rows");
                async move { Ok(read_write(reader, writer)) }
            });
        Job::new("exportScan", Flow::start(step))
    };
    let done = launcher.run(job, JobParameters::new()).await.unwrap();
    assert_eq!(done.status, BatchStatus::Completed);
    let counts = &done.step_executions[0].counts;
    assert_eq!((counts.write, counts.write_skip), (39, 1));
    let expected: Vec<i64> = (1..=40).filter(|&id| id != 15).collect();
    assert_eq!(jsonl_ids(&out3), expected);
}

fn gzip(path: &Path, text: &str) {
    let file = std::fs::File::create(path).unwrap();
    let mut gz = flate2::write::GzEncoder::new(file, flate2::Compression::default());
    gz.write_all(text.as_bytes()).unwrap();
    gz.finish().unwrap();
}

fn csv_text(ids: std::ops::RangeInclusive<i64>) -> String {
    let mut text = String::from("id,name,amount\n");
    for id in ids {
        let r = row(id);
        text.push_str(&format!("{},{},{}\n", r.id, r.name, r.amount));
    }
    text
}

#[tokio::test]
async fn multi_file_restart_resumes_in_the_right_file() {
    let dir = tempfile::tempdir().unwrap();
    let inputs = dir.path().join("in");
    std::fs::create_dir(&inputs).unwrap();
    std::fs::write(inputs.join("part-1.csv"), csv_text(1..=100)).unwrap();
    gzip(&inputs.join("part-2.csv.gz"), &csv_text(101..=200));
    std::fs::write(inputs.join("part-3.csv"), csv_text(201..=300)).unwrap();
    std::fs::write(inputs.join("notes.txt"), "not an input").unwrap();
    let launcher = launcher(dir.path()).await;
    let collect = Collect::failing_on(150);
    let job = {
        let (pattern, collect) = (inputs.join("part-*.csv*"), collect.clone());
        let step = StepBuilder::new("load").chunk_size(30).chunk(move |_| {
            let reader = CsvReader::<Row>::pattern(&pattern).name("parts");
            let writer = collect.clone();
            async move { Ok(read_write(reader, writer)) }
        });
        Job::new("multiLoad", Flow::start(step))
    };
    let failed = launcher
        .run(job.clone(), JobParameters::new())
        .await
        .unwrap();
    assert_eq!(failed.status, BatchStatus::Failed);
    // Chunks of 30: 1..=120 committed, the last in the middle of the gzipped file.
    let ctx = step_context(&failed);
    assert_eq!(ctx.get::<u64>("parts.file.index").unwrap(), Some(1));
    let name: String = ctx.get("parts.file.name").unwrap().unwrap();
    assert!(name.ends_with("part-2.csv.gz"), "{name}");
    assert_eq!(ctx.get::<u64>("parts.line").unwrap(), Some(22));
    assert_eq!(collect.ids(), (1..=120).collect::<Vec<_>>());

    *collect.fail_on.lock().unwrap() = None;
    let done = launcher
        .run(job.clone(), JobParameters::new())
        .await
        .unwrap();
    assert_eq!(done.status, BatchStatus::Completed);
    assert_eq!(done.step_executions[0].counts.read, 180);
    assert_eq!(collect.ids(), (1..=300).collect::<Vec<_>>());

    // A restart whose files changed says so rather than read the wrong one.
    let collect2 = Collect::failing_on(150);
    let job2 = {
        let (pattern, collect) = (inputs.join("part-*.csv*"), collect2.clone());
        let step = StepBuilder::new("load").chunk_size(30).chunk(move |_| {
            let reader = CsvReader::<Row>::pattern(&pattern).name("parts");
            let writer = collect.clone();
            async move { Ok(read_write(reader, writer)) }
        });
        Job::new("multiLoad2", Flow::start(step))
    };
    let failed = launcher
        .run(job2.clone(), JobParameters::new())
        .await
        .unwrap();
    assert_eq!(failed.status, BatchStatus::Failed);
    std::fs::write(inputs.join("part-0.csv"), csv_text(0..=0)).unwrap();
    let refused = launcher.run(job2, JobParameters::new()).await.unwrap();
    assert_eq!(refused.status, BatchStatus::Failed);
    let e = refused.exit_status.description;
    assert!(e.contains("input files changed"), "{e}");
}

use support::Random;

fn export_jsonl(db: &Path, out: &Path) -> Child {
    Command::new(support::example("export_jsonl"))
        .arg("--db")
        .arg(format!("sqlite:{}", db.display()))
        .arg(format!("output={}", out.display()))
        .args(["rows=20000,long", "pause.ms=5,long,false"])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

/// Lines in the file now (complete or not).
fn lines(path: &Path) -> u64 {
    std::fs::read(path)
        .map(|b| b.iter().filter(|&&c| c == b'\n').count() as u64)
        .unwrap_or(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_writer_leaves_every_record_once() {
    let dir = tempfile::tempdir().unwrap();
    let (db, out) = (
        dir.path().join("batch.db"),
        dir.path().join("customers.jsonl"),
    );
    let rows = 20_000;
    let mut random = Random::new();
    let (mut kills, mut launches) = (0, 0);
    let started = Instant::now();
    // 200 chunks of 100 with a 5 ms pause before each. Each kill waits for the file to
    // grow by 1 to 12 commits since the launch began, then up to one more pause: it
    // follows the job's progress, not the clock, and 12 kills of at most 13 commits
    // each stop before the 200th, so every kill lands before the end however fast the
    // machine is. A kill lands in a pause, while a chunk's bytes are appended, between
    // the append and the commit, or after.
    loop {
        let before = lines(&out);
        let mut child = export_jsonl(&db, &out);
        launches += 1;
        if kills < 12 {
            let target = before + 100 * (1 + random.below(12));
            let deadline = Instant::now() + Duration::from_secs(120);
            while lines(&out) < target && child.try_wait().unwrap().is_none() {
                assert!(Instant::now() < deadline, "the export made no progress");
                std::thread::sleep(Duration::from_micros(500));
            }
            std::thread::sleep(Duration::from_micros(random.below(6000)));
            assert!(
                child.try_wait().unwrap().is_none(),
                "launch {launches} ended before its kill"
            );
            child.kill().unwrap(); // SIGKILL
            child.wait().unwrap();
            kills += 1;
            continue;
        }
        let outcome = child.wait_with_output().unwrap();
        let stderr = String::from_utf8_lossy(&outcome.stderr);
        assert_eq!(
            outcome.status.code(),
            Some(0),
            "after {kills} kills: {stderr}"
        );
        break;
    }
    eprintln!(
        "{kills} kills, {launches} launches, {:.1} s",
        started.elapsed().as_secs_f64()
    );
    assert!(kills >= 10);
    let ids = jsonl_ids_of_customers(&out);
    assert_eq!(
        ids,
        (1..=rows).collect::<Vec<_>>(),
        "every row once, in order"
    );
}

fn jsonl_ids_of_customers(path: &Path) -> Vec<i64> {
    let text = std::fs::read_to_string(path).unwrap();
    assert!(text.ends_with('\n'), "a partial last line");
    text.lines()
        .map(|l| {
            let v: serde_json::Value = serde_json::from_str(l).unwrap();
            let keys: Vec<&String> = v.as_object().unwrap().keys().collect();
            assert_eq!(keys.len(), 4, "{l}");
            for key in ["id", "name", "email", "age"] {
                assert!(v.get(key).is_some(), "{key} in {l}");
            }
            v["id"].as_i64().unwrap()
        })
        .collect()
}

#[derive(Debug, serde::Deserialize)]
struct Payment {
    account: String,
    amount: i64,
}

#[tokio::test]
async fn fixed_width_csv_headers_footers_and_existing_files() {
    let dir = tempfile::tempdir().unwrap();
    let fixed = dir.path().join("payments.txt");
    let text = format!(
        "PAYMENTS 2024-01-02\n# a comment\n{:<8}{:>7}\n{:<8}{:>7}\n{:<8}{:>7}\n",
        "ACC-1", 1200, "ACC-2", -35, "ACC-3", "12x"
    );
    std::fs::write(&fixed, text).unwrap();
    let mut reader = FixedWidthReader::<Payment>::new(&fixed)
        .skip_lines(1)
        .comment("#")
        .field("account", 0..8)
        .field("amount", 8..15);
    reader.open(&ExecutionContext::new()).unwrap();
    let first = reader.read().await.unwrap().unwrap();
    assert_eq!((first.account.as_str(), first.amount), ("ACC-1", 1200));
    assert_eq!(reader.read().await.unwrap().unwrap().amount, -35);
    let e = reader.read().await.unwrap_err();
    let bad = e.find::<MalformedRecord>().unwrap();
    assert_eq!((bad.line, bad.field.as_deref()), (5, Some("amount")));
    assert_eq!(bad.value.as_deref(), Some("12x"));

    // A CSV writer with a header row and a footer, over a failed run and its restart.
    let launcher = launcher(dir.path()).await;
    let out = dir.path().join("out.csv");
    let make = |out: PathBuf, policy: ExistingFile, fail: Option<i64>, name: &str| {
        let step = StepBuilder::new("write").chunk_size(3).chunk(move |scope| {
            let writer = CompositeWriter::new()
                .with(
                    CsvWriter::<Row>::new(&out)
                        .headers()
                        .if_exists(policy)
                        .footer(|n| format!("# {n} rows")),
                )
                .with(Collect {
                    fail_on: Arc::new(Mutex::new(if scope.is_restart() { None } else { fail })),
                    ..Collect::default()
                });
            let reader = ListReader::new((1..=7).map(row)).restartable("rows");
            async move { Ok(read_write(reader, writer)) }
        });
        Job::new(name, Flow::start(step))
    };
    let job = make(out.clone(), ExistingFile::Refuse, Some(5), "csvOut");
    let failed = launcher
        .run(job.clone(), JobParameters::new())
        .await
        .unwrap();
    assert_eq!(failed.status, BatchStatus::Failed);
    let text = std::fs::read_to_string(&out).unwrap();
    assert_eq!(
        text, "id,name,amount\n1,name 1,3\n2,name 2,6\n3,name 3,9\n",
        "no footer after a failure"
    );
    let done = launcher.run(job, JobParameters::new()).await.unwrap();
    assert_eq!(done.status, BatchStatus::Completed);
    let text = std::fs::read_to_string(&out).unwrap();
    let expected: String = std::iter::once("id,name,amount".to_owned())
        .chain((1..=7).map(|id| format!("{id},name {id},{}", id * 3)))
        .chain(std::iter::once("# 7 rows".to_owned()))
        .map(|l| l + "\n")
        .collect();
    assert_eq!(text, expected);

    // A new instance meets the file: refused, appended to, or replaced.
    let refused = launcher
        .run(
            make(out.clone(), ExistingFile::Refuse, None, "again"),
            JobParameters::new(),
        )
        .await
        .unwrap();
    assert_eq!(refused.status, BatchStatus::Failed);
    assert!(
        refused.exit_status.description.contains("already exists"),
        "{}",
        refused.exit_status.description
    );
    assert_eq!(std::fs::read_to_string(&out).unwrap(), expected);
    let appended = launcher
        .run(
            make(out.clone(), ExistingFile::Append, None, "append"),
            JobParameters::new(),
        )
        .await
        .unwrap();
    assert_eq!(appended.status, BatchStatus::Completed);
    let text = std::fs::read_to_string(&out).unwrap();
    assert!(text.starts_with(&expected) && text.len() > expected.len());
    assert_eq!(
        text.matches("id,name,amount").count(),
        1,
        "no header in the middle"
    );
    let replaced = launcher
        .run(
            make(out.clone(), ExistingFile::Replace, None, "replace"),
            JobParameters::new(),
        )
        .await
        .unwrap();
    assert_eq!(replaced.status, BatchStatus::Completed);
    assert_eq!(std::fs::read_to_string(&out).unwrap(), expected);
}
