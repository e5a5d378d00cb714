//! Runs fault-tolerance scenarios on the real fault-tolerant chunk step and a SQLite
//! job repository, and prints one JSON result per run of each scenario.
//!
//! ```text
//! cargo run --example conformance -- tests/conformance/*.json
//! ```
//!
//! A scenario is a JSON object. Only `items` (what the reader returns, in order) and
//! `chunk` (the commit interval) are required:
//!
//! - `errors`: extra error kinds, each with an optional `parent` that becomes its
//!   source, so a policy naming the parent matches it. Built in: `Skippable`,
//!   `SkippableRuntime`, `Fatal`, `TerminationFailed`.
//! - `reader.fail`, `processor.fail`, `writer.fail`: lists of `{item, error, times}`;
//!   the component fails on `item` its first `times` times (every time when absent).
//!   A failed read consumes the item; a failing write call counts the items before
//!   the failing one as written by that call. `processor.filter` lists items the
//!   processor drops; `processor.transactional: false` is
//!   `processor_non_transactional`.
//! - `retry` and `skip`: `{limit, on, not_on}` (`*` matches every error; the retry
//!   limit counts every attempt, 0 and 1 meaning one; the skip limit defaults to 10).
//!   `no_rollback`: error kinds that leave the transaction alone.
//! - `runs`: one object per run of the same job instance on the same repository,
//!   each replacing the fields it names; run 2 is a restart of run 1.
//! - `name`, `description`, `notes`, `inferred`, `expect`: informational here (the
//!   tests compare `expect`). Any other key is an error that names it.
//!
//! Each result holds the status, exit code and description, the eight counters as
//! persisted, the items read, every processor call, every write call, the items whose
//! write committed, the items passed to the skip listeners, and the step context as
//! persisted. The reader keeps its position in the step context, so a restart resumes
//! after the items it returned.
//!
//! With `--slots` first, every step also gets a retry listener that does nothing. A
//! retry listener hears each attempt open, so the step then keeps every chunk in
//! per-item slots from its first attempt, where it otherwise runs a first attempt
//! without them until something fails: the output must be the same either way.
//!
//! Exit status: 0 when every scenario ran (a FAILED step is a result), 2 when a file
//! is not a valid scenario (the message names the file, the field and what was
//! expected).

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::process::ExitCode;
use std::sync::{Arc, Mutex};

use batch::classify::ErrorMatcher;
use batch::execution::StepExecution;
use batch::fault::SkipListener;
use batch::prelude::*;
use batch::repository::JobRepository;
use batch::step::{ChunkListener, StepBuilder};
use serde::Deserialize;
use serde_json::{Value, json};

const BUILT_IN: [&str; 4] = [
    "Skippable",
    "SkippableRuntime",
    "Fatal",
    "TerminationFailed",
];

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct Scenario {
    #[serde(default)]
    name: Option<String>,
    #[serde(default, rename = "description")]
    _description: Option<Value>,
    #[serde(default, rename = "notes")]
    _notes: Option<Value>,
    #[serde(default, rename = "inferred")]
    _inferred: Option<Value>,
    items: Vec<String>,
    chunk: u64,
    #[serde(default)]
    errors: Option<BTreeMap<String, ErrorKind>>,
    #[serde(default)]
    reader: Option<ReaderSpec>,
    #[serde(default)]
    processor: Option<ProcessorSpec>,
    #[serde(default)]
    writer: Option<WriterSpec>,
    #[serde(default)]
    retry: Option<PolicySpec>,
    #[serde(default)]
    skip: Option<PolicySpec>,
    #[serde(default)]
    no_rollback: Option<Vec<String>>,
    #[serde(default)]
    runs: Option<Vec<Setup>>,
    #[serde(default, rename = "expect")]
    _expect: Option<Value>,
}

impl Scenario {
    fn setup(&self) -> Setup {
        Setup {
            items: Some(self.items.clone()),
            chunk: Some(self.chunk),
            errors: self.errors.clone(),
            reader: self.reader.clone(),
            processor: self.processor.clone(),
            writer: self.writer.clone(),
            retry: self.retry.clone(),
            skip: self.skip.clone(),
            no_rollback: self.no_rollback.clone(),
        }
    }
}

/// The fields of one run; in a `runs` entry, each field named replaces the scenario's.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct Setup {
    #[serde(default)]
    items: Option<Vec<String>>,
    #[serde(default)]
    chunk: Option<u64>,
    #[serde(default)]
    errors: Option<BTreeMap<String, ErrorKind>>,
    #[serde(default)]
    reader: Option<ReaderSpec>,
    #[serde(default)]
    processor: Option<ProcessorSpec>,
    #[serde(default)]
    writer: Option<WriterSpec>,
    #[serde(default)]
    retry: Option<PolicySpec>,
    #[serde(default)]
    skip: Option<PolicySpec>,
    #[serde(default)]
    no_rollback: Option<Vec<String>>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct ErrorKind {
    #[serde(default)]
    parent: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct Fail {
    item: String,
    error: String,
    #[serde(default)]
    times: Option<u64>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct ReaderSpec {
    #[serde(default)]
    fail: Vec<Fail>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct ProcessorSpec {
    #[serde(default)]
    fail: Vec<Fail>,
    #[serde(default)]
    filter: Vec<String>,
    #[serde(default)]
    transactional: Option<bool>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct WriterSpec {
    #[serde(default)]
    fail: Vec<Fail>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct PolicySpec {
    #[serde(default)]
    limit: Option<u64>,
    #[serde(default)]
    on: Vec<String>,
    #[serde(default)]
    not_on: Vec<String>,
}

impl Setup {
    /// This run's setup: the scenario's, with the fields the run names replaced.
    fn overridden_by(&self, run: &Setup) -> Setup {
        Setup {
            items: run.items.clone().or_else(|| self.items.clone()),
            chunk: run.chunk.or(self.chunk),
            errors: run.errors.clone().or_else(|| self.errors.clone()),
            reader: run.reader.clone().or_else(|| self.reader.clone()),
            processor: run.processor.clone().or_else(|| self.processor.clone()),
            writer: run.writer.clone().or_else(|| self.writer.clone()),
            retry: run.retry.clone().or_else(|| self.retry.clone()),
            skip: run.skip.clone().or_else(|| self.skip.clone()),
            no_rollback: run.no_rollback.clone().or_else(|| self.no_rollback.clone()),
        }
    }

    /// Every error kind named anywhere must exist, and parents must form no cycle.
    fn validate(&self, at: &str) -> Result<(), String> {
        if self.chunk == Some(0) {
            return Err(format!(
                "{at}chunk: expected a commit interval of at least 1, found 0"
            ));
        }
        let declared = self.errors.clone().unwrap_or_default();
        let known = |k: &str| BUILT_IN.contains(&k) || declared.contains_key(k);
        for (kind, spec) in &declared {
            if BUILT_IN.contains(&kind.as_str()) {
                return Err(format!(
                    "{at}errors.{kind}: `{kind}` is a built-in kind and cannot be redeclared"
                ));
            }
            if let Some(parent) = &spec.parent
                && !known(parent)
            {
                return Err(format!(
                    "{at}errors.{kind}.parent: unknown error kind `{parent}` (expected a built-in kind {BUILT_IN:?} or one declared in `errors`)"
                ));
            }
            let mut seen = vec![kind.as_str()];
            let mut cur = spec.parent.as_deref();
            while let Some(p) = cur {
                if seen.contains(&p) {
                    return Err(format!(
                        "{at}errors.{kind}.parent: the parents of `{kind}` form a cycle"
                    ));
                }
                seen.push(p);
                cur = declared.get(p).and_then(|s| s.parent.as_deref());
            }
        }
        let check_fails = |field: &str, fails: &[Fail]| -> Result<(), String> {
            for (i, f) in fails.iter().enumerate() {
                if !known(&f.error) {
                    return Err(format!(
                        "{at}{field}.fail[{i}].error: unknown error kind `{}` (expected a built-in kind {BUILT_IN:?} or one declared in `errors`)",
                        f.error
                    ));
                }
            }
            Ok(())
        };
        check_fails("reader", self.reader.as_ref().map_or(&[][..], |r| &r.fail))?;
        check_fails(
            "processor",
            self.processor.as_ref().map_or(&[][..], |r| &r.fail),
        )?;
        check_fails("writer", self.writer.as_ref().map_or(&[][..], |r| &r.fail))?;
        let check_list = |field: &str, kinds: &[String]| -> Result<(), String> {
            for k in kinds {
                if k != "*" && !known(k) {
                    return Err(format!(
                        "{at}{field}: unknown error kind `{k}` (expected `*`, a built-in kind {BUILT_IN:?} or one declared in `errors`)"
                    ));
                }
            }
            Ok(())
        };
        for (name, policy) in [("retry", &self.retry), ("skip", &self.skip)] {
            if let Some(p) = policy {
                check_list(&format!("{name}.on"), &p.on)?;
                check_list(&format!("{name}.not_on"), &p.not_on)?;
            }
        }
        check_list(
            "no_rollback",
            self.no_rollback.as_deref().unwrap_or_default(),
        )?;
        Ok(())
    }
}

/// An injected failure: its kind, with the declared parent as its source (so a
/// policy naming the parent matches it, as a superclass would in Java).
#[derive(Debug)]
struct Injected {
    kind: String,
    item: Option<String>,
    parent: Option<Box<Injected>>,
}

impl Injected {
    fn new(kind: &str, item: Option<&str>, kinds: &BTreeMap<String, ErrorKind>) -> Self {
        let parent = kinds
            .get(kind)
            .and_then(|k| k.parent.as_deref())
            .map(|p| Box::new(Injected::new(p, None, kinds)));
        Self {
            kind: kind.to_owned(),
            item: item.map(str::to_owned),
            parent,
        }
    }
}

impl fmt::Display for Injected {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.item {
            Some(item) => write!(f, "{} on item {item}", self.kind),
            None => f.write_str(&self.kind),
        }
    }
}

impl std::error::Error for Injected {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.parent
            .as_deref()
            .map(|p| p as &(dyn std::error::Error + 'static))
    }
}

fn matcher(kind: &str) -> ErrorMatcher {
    if kind == "*" {
        return ErrorMatcher::any();
    }
    let k = kind.to_owned();
    ErrorMatcher::custom(kind, move |e| {
        e.downcast_ref::<Injected>().is_some_and(|i| i.kind == k)
    })
}

/// Failures planned for one component: item → (kind, how many more times).
struct Plan {
    fails: HashMap<String, (String, Option<u64>)>,
    kinds: BTreeMap<String, ErrorKind>,
}

impl Plan {
    fn new(fails: &[Fail], kinds: &BTreeMap<String, ErrorKind>) -> Self {
        Self {
            fails: fails
                .iter()
                .map(|f| (f.item.clone(), (f.error.clone(), f.times)))
                .collect(),
            kinds: kinds.clone(),
        }
    }

    /// Whether `item` fails this time; counts the time.
    fn fails(&mut self, item: &str) -> Option<Injected> {
        let (kind, times) = self.fails.get_mut(item)?;
        match times {
            Some(0) => None,
            Some(n) => {
                *n -= 1;
                Some(Injected::new(kind, Some(item), &self.kinds))
            }
            None => Some(Injected::new(kind, Some(item), &self.kinds)),
        }
    }
}

/// What one run observed.
#[derive(Default)]
struct Journal {
    reads: Vec<String>,
    processed: Vec<String>,
    writes: Vec<Vec<String>>,
    pending: Vec<String>,
    committed: Vec<String>,
    skipped_read: Vec<String>,
    skipped_process: Vec<String>,
    skipped_write: Vec<String>,
}

type Shared = Arc<Mutex<Journal>>;

struct Reader {
    items: Vec<String>,
    position: usize,
    plan: Plan,
    journal: Shared,
}

const POSITION: &str = "reader.position";

impl ItemReader<String> for Reader {
    async fn read(&mut self) -> Result<Option<String>> {
        let Some(item) = self.items.get(self.position).cloned() else {
            return Ok(None);
        };
        self.position += 1;
        if let Some(e) = self.plan.fails(&item) {
            return Err(e.into());
        }
        self.journal.lock().unwrap().reads.push(item.clone());
        Ok(Some(item))
    }

    fn open(&mut self, ctx: &ExecutionContext) -> Result<()> {
        self.position = ctx.get::<usize>(POSITION)?.unwrap_or(0);
        Ok(())
    }

    fn update(&mut self, ctx: &mut ExecutionContext) -> Result<()> {
        Ok(ctx.put(POSITION, &self.position)?)
    }
}

struct Processor {
    plan: Plan,
    filter: Vec<String>,
    journal: Shared,
}

impl ItemProcessor<String, String> for Processor {
    async fn process(&mut self, item: &String) -> Result<Option<String>> {
        self.journal.lock().unwrap().processed.push(item.clone());
        if let Some(e) = self.plan.fails(item) {
            return Err(e.into());
        }
        Ok((!self.filter.contains(item)).then(|| item.clone()))
    }
}

struct Writer {
    plan: Plan,
    journal: Shared,
}

impl ItemWriter<String> for Writer {
    async fn write(&mut self, items: &[String], _cx: &mut WriteContext<'_>) -> Result<()> {
        let mut journal = self.journal.lock().unwrap();
        journal.writes.push(items.to_vec());
        for item in items {
            if let Some(e) = self.plan.fails(item) {
                return Err(e.into());
            }
            journal.pending.push(item.clone());
        }
        Ok(())
    }
}

/// Moves the items written in a transaction to `committed` when it commits.
/// A retry listener that hears nothing: registered with `--slots`, it makes every
/// attempt use the slot loop.
struct Silent;

impl batch::fault::RetryListener for Silent {}

struct Commits(Shared);

impl ChunkListener for Commits {
    fn after_chunk(&self, _step: &StepExecution) {
        let mut j = self.0.lock().unwrap();
        let pending = std::mem::take(&mut j.pending);
        j.committed.extend(pending);
    }

    fn after_chunk_error(&self, _step: &StepExecution, _error: &Error) {
        self.0.lock().unwrap().pending.clear();
    }
}

struct Skips(Shared);

impl SkipListener<String, String> for Skips {
    fn on_skip_in_read(&self, error: &Error) {
        let item = error
            .find::<Injected>()
            .and_then(|i| i.item.clone())
            .unwrap_or_default();
        self.0.lock().unwrap().skipped_read.push(item);
    }
    fn on_skip_in_process(&self, item: &String, _error: &Error) {
        self.0.lock().unwrap().skipped_process.push(item.clone());
    }
    fn on_skip_in_write(&self, item: &String, _error: &Error) {
        self.0.lock().unwrap().skipped_write.push(item.clone());
    }
}

fn step(setup: &Setup, journal: &Shared, slots: bool) -> batch::step::StepDef {
    let items = setup.items.clone().unwrap_or_default();
    let chunk_size = setup.chunk.unwrap_or(1);
    let kinds = setup.errors.clone().unwrap_or_default();
    let mut b = StepBuilder::new("conformance")
        .chunk_size(chunk_size)
        .chunk_listener(Arc::new(Commits(journal.clone())))
        .skip_listener::<String, String>(Arc::new(Skips(journal.clone())));
    if let Some(retry) = &setup.retry {
        for k in &retry.on {
            b = b.retry(matcher(k));
        }
        for k in &retry.not_on {
            b = b.no_retry(matcher(k));
        }
        b = b.retry_limit(retry.limit.unwrap_or(0) as u32);
    }
    if slots {
        b = b.retry_listener(Arc::new(Silent));
    }
    if let Some(skip) = &setup.skip {
        for k in &skip.on {
            b = b.skip(matcher(k));
        }
        for k in &skip.not_on {
            b = b.no_skip(matcher(k));
        }
        b = b.skip_limit(skip.limit.unwrap_or(batch::fault::DEFAULT_SKIP_LIMIT));
    }
    for k in setup.no_rollback.iter().flatten() {
        b = b.no_rollback(matcher(k));
    }
    let processor = setup.processor.clone().unwrap_or_default();
    if processor.transactional == Some(false) {
        b = b.processor_non_transactional();
    }
    let reader_fails = setup.reader.clone().unwrap_or_default().fail;
    let writer_fails = setup.writer.clone().unwrap_or_default().fail;
    let journal = journal.clone();
    b.chunk(move |_scope| {
        let reader = Reader {
            items: items.clone(),
            position: 0,
            plan: Plan::new(&reader_fails, &kinds),
            journal: journal.clone(),
        };
        let processor = Processor {
            plan: Plan::new(&processor.fail, &kinds),
            filter: processor.filter.clone(),
            journal: journal.clone(),
        };
        let writer = Writer {
            plan: Plan::new(&writer_fails, &kinds),
            journal: journal.clone(),
        };
        async move { Ok(chunk(reader, processor, writer)) }
    })
}

fn counts(s: &StepExecution) -> Value {
    let c = &s.counts;
    json!({
        "read": c.read, "write": c.write, "filter": c.filter, "commit": c.commit,
        "rollback": c.rollback, "read_skip": c.read_skip, "process_skip": c.process_skip,
        "write_skip": c.write_skip,
    })
}

async fn run_scenario(
    scenario: &Scenario,
    db_dir: &std::path::Path,
    slots: bool,
) -> Result<Vec<Value>> {
    let url = format!("sqlite:{}", db_dir.join("conformance.db").display());
    let repository: Arc<dyn JobRepository> = Arc::new(SqliteJobRepository::open(&url).await?);
    let base = scenario.setup();
    let runs: Vec<Setup> = match &scenario.runs {
        Some(runs) => runs.iter().map(|r| base.overridden_by(r)).collect(),
        None => vec![base],
    };
    let name = scenario.name.clone().unwrap_or_default();
    let mut results = Vec::new();
    for setup in &runs {
        let journal: Shared = Arc::default();
        let job = Job::new(
            "conformance",
            Flow::start(step(setup, &journal, slots)).build(),
        );
        let launcher = JobLauncher::with_repository(repository.clone());
        let execution = match launcher.run(job, JobParameters::new()).await {
            Ok(e) => e,
            Err(e) => {
                results.push(json!({ "name": name, "status": "NOT_LAUNCHED", "exit_description": Error::new(e).report() }));
                continue;
            }
        };
        // Counters and context as the repository persisted them.
        let stored = repository
            .job_executions(&execution.instance)
            .await?
            .into_iter()
            .find(|e| e.id == execution.id)
            .ok_or_else(|| Error::msg("the execution just run is not in the repository"))?;
        let j = journal.lock().unwrap();
        let step = stored.step_executions.last();
        results.push(json!({
            "name": name,
            "status": step.map_or("COMPLETED".into(), |s| s.status.to_string()),
            "exit_code": step.map_or(String::new(), |s| s.exit_status.code.clone()),
            "counts": step.map(counts).unwrap_or(Value::Null),
            "reads": j.reads,
            "processed": j.processed,
            "writes": j.writes,
            "committed": j.committed,
            "skipped": { "read": j.skipped_read, "process": j.skipped_process, "write": j.skipped_write },
            "exit_description": step.map_or(String::new(), |s| s.exit_status.description.clone()),
            "context": step.map_or(Value::Null, |s| s.context.to_json()),
        }));
    }
    Ok(results)
}

fn load(path: &str) -> std::result::Result<Scenario, String> {
    let text =
        std::fs::read_to_string(path).map_err(|e| format!("{path}: cannot read the file: {e}"))?;
    let scenario: Scenario =
        serde_json::from_str(&text).map_err(|e| format!("{path}: not a valid scenario: {e}"))?;
    let base = scenario.setup();
    base.validate(&format!("{path}: "))?;
    for (i, run) in scenario.runs.iter().flatten().enumerate() {
        base.overridden_by(run)
            .validate(&format!("{path}: runs[{i}]: "))?;
    }
    Ok(scenario)
}

fn main() -> ExitCode {
    let mut paths: Vec<String> = std::env::args().skip(1).collect();
    let slots = paths.first().is_some_and(|a| a == "--slots");
    if slots {
        paths.remove(0);
    }
    if paths.is_empty() {
        eprintln!("usage: conformance [--slots] SCENARIO.json [MORE.json ...]");
        return ExitCode::from(2);
    }
    let mut scenarios = Vec::new();
    for path in &paths {
        match load(path) {
            Ok(s) => scenarios.push(s),
            Err(message) => {
                eprintln!("error: {message}");
                return ExitCode::from(2);
            }
        }
    }
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    for (path, scenario) in paths.iter().zip(&scenarios) {
        let dir = tempfile::tempdir().expect("a temporary directory");
        match runtime.block_on(run_scenario(scenario, dir.path(), slots)) {
            Ok(results) => {
                for r in results {
                    println!("{r}");
                }
            }
            Err(e) => {
                eprintln!("error: {path}: the runner failed: {}", e.report());
                return ExitCode::from(1);
            }
        }
    }
    ExitCode::SUCCESS
}
