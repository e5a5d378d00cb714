//! Every scenario under tests/conformance/ runs through the conformance runner (the
//! `conformance` example, on the real fault-tolerant step and a SQLite repository) and
//! must produce what its `expect` says. Fields left out of `expect` are not compared;
//! `exit_description_contains` checks a substring of the exit description.

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;

fn runner() -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    let path = exe
        .parent()
        .unwrap()
        .parent()
        .unwrap()
        .join("examples")
        .join("conformance");
    assert!(path.exists(), "{} is built by `cargo test`", path.display());
    path
}

fn scenarios() -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/conformance");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
        .collect();
    files.sort();
    files
}

/// Differences between `expected` and `actual`, objects compared on the expected keys.
fn compare(path: &str, expected: &Value, actual: &Value, out: &mut Vec<String>) {
    match (expected, actual) {
        (Value::Object(e), Value::Object(a)) => {
            for (k, v) in e {
                if k == "exit_description_contains" {
                    let text = a
                        .get("exit_description")
                        .and_then(Value::as_str)
                        .unwrap_or("");
                    if !text.contains(v.as_str().unwrap_or_default()) {
                        out.push(format!(
                            "{path}.exit_description: `{text}` does not contain {v}"
                        ));
                    }
                    continue;
                }
                match a.get(k) {
                    Some(av) => compare(&format!("{path}.{k}"), v, av, out),
                    None => out.push(format!("{path}.{k}: missing, expected {v}")),
                }
            }
        }
        _ if expected == actual => {}
        _ => out.push(format!("{path}: expected {expected}, got {actual}")),
    }
}

#[test]
fn every_scenario_matches_its_expectation() {
    let files = scenarios();
    assert!(files.len() >= 25, "the project ships at least 25 scenarios");
    let output = Command::new(runner()).args(&files).output().unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "runner failed: {stderr}");
    let mut lines = String::from_utf8(output.stdout)
        .unwrap()
        .lines()
        .map(str::to_owned)
        .collect::<Vec<_>>()
        .into_iter();
    let mut failures = Vec::new();
    for file in &files {
        let scenario: Value =
            serde_json::from_str(&std::fs::read_to_string(file).unwrap()).unwrap();
        let runs = scenario
            .get("runs")
            .and_then(Value::as_array)
            .map_or(1, Vec::len);
        let results: Vec<Value> = (0..runs)
            .map(|_| serde_json::from_str(&lines.next().expect("one line per run")).unwrap())
            .collect();
        let name = file.file_name().unwrap().to_string_lossy().into_owned();
        let mut diffs = Vec::new();
        match scenario.get("expect") {
            Some(Value::Array(per_run)) => {
                assert_eq!(per_run.len(), runs, "{name}: one expectation per run");
                for (i, (e, a)) in per_run.iter().zip(&results).enumerate() {
                    compare(&format!("run {}", i + 1), e, a, &mut diffs);
                }
            }
            Some(e) => compare("last run", e, results.last().unwrap(), &mut diffs),
            None => {}
        }
        if !diffs.is_empty() {
            failures.push(format!("{name}:\n  {}", diffs.join("\n  ")));
        }
    }
    assert!(
        failures.is_empty(),
        "{} scenario(s) differ:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

/// The fault-tolerant step runs a chunk's first attempt without per-item slots until
/// something fails; with a retry listener registered it keeps slots from the start.
/// Every scenario must give the same results, call for call, either way.
#[test]
fn the_first_attempt_without_slots_changes_nothing() {
    let files = scenarios();
    let run = |slots: bool| {
        let mut command = Command::new(runner());
        if slots {
            command.arg("--slots");
        }
        let output = command.args(&files).output().unwrap();
        assert!(
            output.status.success(),
            "runner failed: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        String::from_utf8(output.stdout).unwrap()
    };
    let (plain, slots) = (run(false), run(true));
    let differing: Vec<String> = plain
        .lines()
        .zip(slots.lines())
        .filter(|(a, b)| a != b)
        .map(|(a, b)| {
            format!("first attempt without slots: {a}\nwith slots:                   {b}")
        })
        .collect();
    assert_eq!(plain.lines().count(), slots.lines().count());
    assert!(differing.is_empty(), "{}", differing.join("\n"));
}

#[test]
fn a_malformed_scenario_is_refused_with_file_and_field() {
    let dir = tempfile::tempdir().unwrap();
    let cases = [
        (
            r#"{"items": ["1"], "chunk": 1, "retyr": {"limit": 2}}"#,
            "retyr",
        ),
        (r#"{"items": ["1"], "chunk": 0}"#, "chunk"),
        (
            r#"{"items": ["1"], "chunk": 1, "processor": {"fail": [{"item": "1", "error": "Nope"}]}}"#,
            "processor.fail[0].error",
        ),
        (r#"{"chunk": 2}"#, "items"),
        (
            r#"{"items": ["1"], "chunk": 1, "runs": [{"writer": {"fial": []}}]}"#,
            "fial",
        ),
    ];
    for (i, (text, field)) in cases.iter().enumerate() {
        let path = dir.path().join(format!("bad{i}.json"));
        std::fs::write(&path, text).unwrap();
        let output = Command::new(runner()).arg(&path).output().unwrap();
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(2), "{text}: {stderr}");
        assert!(
            stderr.contains(&format!("bad{i}.json")) && stderr.contains(field),
            "{text}: {stderr}"
        );
    }
}
