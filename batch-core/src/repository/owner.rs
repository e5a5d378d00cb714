//! Who runs an execution, so that a run whose process died (`kill -9`, a crash, a
//! lost machine) never blocks its restart.
//!
//! While an execution runs, its EXIT_MESSAGE (empty in Spring Batch until the end)
//! names the process that owns it: host, pid and the process's start time, which tells
//! a live process from a later one that got the same pid. A launch that finds the
//! instance running asks: on this host, is that process still there? Elsewhere, has
//! the owner's heartbeat (LAST_UPDATED, refreshed by the launcher) gone quiet for
//! longer than the lease? A dead owner's execution is marked FAILED and the instance
//! restarts as after any failure.

use std::time::Duration;

use chrono::NaiveDateTime;

/// The default lease: a run whose heartbeat is older than this is presumed dead (only
/// used when the owner cannot be checked directly, i.e. on another host).
pub const DEFAULT_LEASE: Duration = Duration::from_secs(30);

const PREFIX: &str = "running in process ";

/// The current process, as written into EXIT_MESSAGE while it runs a job.
pub fn current_owner() -> String {
    let pid = std::process::id();
    let started = process_start_ticks(pid).unwrap_or(0);
    format!("{PREFIX}{pid} (started {started}) on {}", host_name())
}

/// Why the execution's owner is known to be dead, or `None` while it may be alive.
pub fn dead_owner_reason(
    exit_message: &str,
    last_updated: Option<NaiveDateTime>,
    now: NaiveDateTime,
    lease: Duration,
) -> Option<String> {
    if let Some((pid, started, host)) = parse(exit_message)
        && host == host_name()
        && let Some(alive) = process_alive(pid, started)
    {
        return (!alive).then(|| format!("its process {pid} on {host} is gone"));
    }
    let last = last_updated?;
    let silent = (now - last).to_std().unwrap_or_default();
    (silent > lease).then(|| {
        format!(
            "no heartbeat for {} s (lease {} s)",
            silent.as_secs(),
            lease.as_secs()
        )
    })
}

fn parse(message: &str) -> Option<(u32, u64, &str)> {
    let rest = message.strip_prefix(PREFIX)?;
    let (pid, rest) = rest.split_once(" (started ")?;
    let (started, host) = rest.split_once(") on ")?;
    Some((pid.parse().ok()?, started.parse().ok()?, host))
}

fn host_name() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .or_else(|_| std::fs::read_to_string("/etc/hostname"))
        .map(|h| h.trim().to_owned())
        .ok()
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "localhost".into())
}

/// The start time of a process in clock ticks since boot (field 22 of
/// `/proc/PID/stat`), where the system has `/proc`.
fn process_start_ticks(pid: u32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name (field 2) may hold spaces; fields after it follow the last ')'.
    let after = &stat[stat.rfind(')')? + 1..];
    after.split_whitespace().nth(19)?.parse().ok()
}

/// Whether `pid` is the same live process, or `None` when this system cannot tell.
fn process_alive(pid: u32, started: u64) -> Option<bool> {
    if !std::path::Path::new("/proc/self/stat").exists() || started == 0 {
        return None;
    }
    Some(process_start_ticks(pid) == Some(started))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_current_process_is_alive_and_a_finished_one_is_not() {
        let now = crate::execution::now();
        let me = current_owner();
        assert!(me.starts_with(PREFIX), "{me}");
        assert_eq!(dead_owner_reason(&me, Some(now), now, DEFAULT_LEASE), None);

        let mut child = std::process::Command::new("true").spawn().unwrap();
        let pid = child.id();
        let ticks = process_start_ticks(pid);
        child.wait().unwrap();
        if let Some(ticks) = ticks {
            let gone = format!("{PREFIX}{pid} (started {ticks}) on {}", host_name());
            let reason = dead_owner_reason(&gone, Some(now), now, DEFAULT_LEASE).unwrap();
            assert!(reason.contains("is gone"), "{reason}");
        }
    }

    #[test]
    fn elsewhere_the_lease_decides() {
        let now = crate::execution::now();
        let other = format!("{PREFIX}1 (started 5) on some-other-host");
        let fresh = now - chrono::Duration::seconds(5);
        let stale = now - chrono::Duration::seconds(60);
        assert_eq!(
            dead_owner_reason(&other, Some(fresh), now, DEFAULT_LEASE),
            None
        );
        assert!(
            dead_owner_reason(&other, Some(stale), now, DEFAULT_LEASE)
                .unwrap()
                .contains("heartbeat")
        );
        assert!(dead_owner_reason("", Some(stale), now, DEFAULT_LEASE).is_some());
        assert_eq!(dead_owner_reason("", None, now, DEFAULT_LEASE), None);
    }
}
