//! Who runs an execution, so that a run whose process died (`kill -9`, a crash, a
//! lost machine) never blocks its restart.
//!
//! While an execution runs, its EXIT_MESSAGE (empty in Spring Batch until the end)
//! names the process that owns it: host, pid and the process's start time, which tells
//! a live process from a later one that got the same pid, and the system the pid
//! belongs to: the boot id and the PID namespace (containers on one host may share a
//! host name, each with its own pids). A launch that finds the instance running asks:
//! is the owner in this very PID namespace of this boot, and is its process still
//! there? Otherwise (another host, another container, a process /proc does not show),
//! has the owner's heartbeat (LAST_UPDATED, refreshed by the launcher) gone quiet for
//! longer than the lease? A dead owner's execution is marked FAILED and the instance
//! restarts as after any failure. Records written before the namespace was part of
//! them (`… on HOST`) are still read, and judged as before.

use std::time::Duration;

use chrono::NaiveDateTime;

/// The default lease: a run whose heartbeat is older than this is presumed dead (only
/// used when the owner cannot be checked directly: on another host, in another PID
/// namespace, or hidden from this process).
pub const DEFAULT_LEASE: Duration = Duration::from_secs(30);

const PREFIX: &str = "running in process ";

/// The current process, as written into EXIT_MESSAGE while it runs a job.
pub fn current_owner() -> String {
    let pid = std::process::id();
    let started = match read_stat(pid) {
        Ok(stat) => start_ticks(&stat).unwrap_or(0),
        Err(_) => 0,
    };
    let mut record = format!("{PREFIX}{pid} (started {started}) on {}", host_name());
    if let Some((boot, namespace)) = namespace() {
        record.push_str(&format!(" (boot {boot}, pid namespace {namespace})"));
    }
    record
}

/// Why the execution's owner is known to be dead, or `None` while it may be alive.
pub fn dead_owner_reason(
    exit_message: &str,
    last_updated: Option<NaiveDateTime>,
    now: NaiveDateTime,
    lease: Duration,
) -> Option<String> {
    verdict(exit_message, last_updated, now, lease, &|pid, started| {
        process_alive(read_stat(pid), started, || process_exists(pid))
    })
}

/// [`dead_owner_reason`] with the check of a local process given (for tests).
fn verdict(
    exit_message: &str,
    last_updated: Option<NaiveDateTime>,
    now: NaiveDateTime,
    lease: Duration,
    alive: &dyn Fn(u32, u64) -> Option<bool>,
) -> Option<String> {
    if let Some(owner) = parse(exit_message)
        && owner.host == host_name()
        && owner.same_system()
        && let Some(alive) = alive(owner.pid, owner.started)
    {
        return (!alive).then(|| format!("its process {} on {} is gone", owner.pid, owner.host));
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

/// An owner record, as parsed from EXIT_MESSAGE.
struct Owner<'a> {
    pid: u32,
    started: u64,
    host: &'a str,
    /// `(boot id, PID namespace)`; `None` in records that predate it.
    system: Option<(&'a str, &'a str)>,
}

impl Owner<'_> {
    /// Whether the owner's pid means the same process here: the same boot and PID
    /// namespace (an old record without them is taken to be, as before).
    fn same_system(&self) -> bool {
        match self.system {
            None => true,
            Some((boot, ns)) => namespace().is_some_and(|(b, n)| b == boot && n.to_string() == ns),
        }
    }
}

fn parse(message: &str) -> Option<Owner<'_>> {
    let rest = message.strip_prefix(PREFIX)?;
    let (pid, rest) = rest.split_once(" (started ")?;
    let (started, rest) = rest.split_once(") on ")?;
    // Host names hold no spaces: what follows one is the system's identity.
    let (host, system) = match rest.split_once(' ') {
        None => (rest, None),
        Some((host, tail)) => {
            let inner = tail.strip_prefix("(boot ")?.strip_suffix(')')?;
            let (boot, ns) = inner.split_once(", pid namespace ")?;
            (host, Some((boot, ns)))
        }
    };
    Some(Owner {
        pid: pid.parse().ok()?,
        started: started.parse().ok()?,
        host,
        system,
    })
}

fn host_name() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .or_else(|_| std::fs::read_to_string("/etc/hostname"))
        .map(|h| h.trim().to_owned())
        .ok()
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "localhost".into())
}

/// This process's boot id and PID namespace (the inode of `/proc/self/ns/pid`), where
/// the system has them.
fn namespace() -> Option<(String, u64)> {
    let boot = std::fs::read_to_string("/proc/sys/kernel/random/boot_id").ok()?;
    let link = std::fs::read_link("/proc/self/ns/pid").ok()?;
    // The link reads `pid:[4026531836]`.
    let text = link.to_string_lossy();
    let inode = text
        .strip_prefix("pid:[")?
        .strip_suffix(']')?
        .parse()
        .ok()?;
    Some((boot.trim().to_owned(), inode))
}

fn read_stat(pid: u32) -> std::io::Result<String> {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
}

/// The start time of a process in clock ticks since boot (field 22 of
/// `/proc/PID/stat`).
fn start_ticks(stat: &str) -> Option<u64> {
    // The command name (field 2) may hold spaces; fields after it follow the last ')'.
    let after = &stat[stat.rfind(')')? + 1..];
    after.split_whitespace().nth(19)?.parse().ok()
}

/// Whether the process exists at all (`kill(pid, 0)`), which /proc mounted with
/// `hidepid` does not tell; `None` where the system cannot say.
fn process_exists(pid: u32) -> Option<bool> {
    #[cfg(unix)]
    {
        let pid = libc::pid_t::try_from(pid).ok()?;
        // SAFETY: signal 0 sends nothing; it only checks that the pid exists.
        if unsafe { libc::kill(pid, 0) } == 0 {
            return Some(true);
        }
        match std::io::Error::last_os_error().raw_os_error() {
            Some(libc::ESRCH) => Some(false),
            Some(libc::EPERM) => Some(true),
            _ => None,
        }
    }
    #[cfg(not(unix))]
    {
        let _ = pid;
        None
    }
}

/// Whether the process whose `/proc/PID/stat` read gave `stat` is the owner that
/// started at `started`, or `None` when this system cannot tell: no `/proc`, a stat
/// that cannot be read (another user's process, `hidepid`), a process that exists but
/// /proc does not show. Only a process known to be absent, or a pid now held by a
/// process that started at another time, counts as gone.
fn process_alive(
    stat: std::io::Result<String>,
    started: u64,
    exists: impl FnOnce() -> Option<bool>,
) -> Option<bool> {
    if !std::path::Path::new("/proc/self/stat").exists() || started == 0 {
        return None;
    }
    match stat {
        Ok(stat) => start_ticks(&stat).map(|ticks| ticks == started),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => match exists() {
            Some(false) => Some(false),
            _ => None,
        },
        Err(_) => None,
    }
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
        let ticks = read_stat(pid).ok().and_then(|s| start_ticks(&s));
        child.wait().unwrap();
        if let Some(ticks) = ticks {
            let gone = format!("{PREFIX}{pid} (started {ticks}) on {}", host_name());
            let reason = dead_owner_reason(&gone, Some(now), now, DEFAULT_LEASE).unwrap();
            assert!(reason.contains("is gone"), "{reason}");
            // The same record in this process's format, with its boot and namespace.
            let (boot, ns) = namespace().expect("Linux has both");
            let gone = format!("{gone} (boot {boot}, pid namespace {ns})");
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

    #[test]
    fn the_owner_record_names_the_boot_and_the_pid_namespace() {
        let me = current_owner();
        let (boot, ns) = namespace().expect("Linux has both");
        assert!(
            me.ends_with(&format!(" (boot {boot}, pid namespace {ns})")),
            "{me}"
        );
        let owner = parse(&me).unwrap();
        assert_eq!(owner.pid, std::process::id());
        assert!(owner.same_system());
    }

    /// Containers on one host may share its name: a dead-looking pid in another PID
    /// namespace (or boot) says nothing about the owner, whose lease decides.
    #[test]
    fn an_owner_in_another_namespace_is_judged_by_its_lease() {
        let now = crate::execution::now();
        let fresh = now - chrono::Duration::seconds(5);
        let stale = now - chrono::Duration::seconds(60);
        let (boot, ns) = namespace().unwrap();
        let gone = |_: u32, _: u64| Some(false);
        for other in [
            format!("(boot {boot}, pid namespace {})", ns + 1),
            format!("(boot not-{boot}, pid namespace {ns})"),
        ] {
            let record = format!("{PREFIX}4242 (started 7) on {} {other}", host_name());
            assert_eq!(
                verdict(&record, Some(fresh), now, DEFAULT_LEASE, &gone),
                None
            );
            let reason = verdict(&record, Some(stale), now, DEFAULT_LEASE, &gone).unwrap();
            assert!(reason.contains("heartbeat"), "{reason}");
        }
        // In this namespace the process check decides, as in a record without one.
        let record = format!(
            "{PREFIX}4242 (started 7) on {} (boot {boot}, pid namespace {ns})",
            host_name()
        );
        let reason = verdict(&record, Some(fresh), now, DEFAULT_LEASE, &gone).unwrap();
        assert!(reason.contains("is gone"), "{reason}");
    }

    /// An unreadable /proc/PID/stat (another user's process, `hidepid=2`) is not a
    /// dead process: the lease decides.
    #[test]
    fn an_unreadable_stat_is_unknown_and_the_lease_decides() {
        use std::io::{Error, ErrorKind};
        let denied = || Err(Error::from(ErrorKind::PermissionDenied));
        assert_eq!(process_alive(denied(), 7, || Some(true)), None);
        // Hidden by `hidepid` (as if absent) while `kill(pid, 0)` finds it.
        let hidden = || Err(Error::from(ErrorKind::NotFound));
        assert_eq!(process_alive(hidden(), 7, || Some(true)), None);
        assert_eq!(process_alive(hidden(), 7, || None), None);
        assert_eq!(process_alive(hidden(), 7, || Some(false)), Some(false));

        let now = crate::execution::now();
        let fresh = now - chrono::Duration::seconds(5);
        let record = format!("{PREFIX}4242 (started 7) on {}", host_name());
        let unknown = |_: u32, started: u64| process_alive(denied(), started, || Some(true));
        assert_eq!(
            verdict(&record, Some(fresh), now, DEFAULT_LEASE, &unknown),
            None
        );
        let stale = now - chrono::Duration::seconds(60);
        assert!(verdict(&record, Some(stale), now, DEFAULT_LEASE, &unknown).is_some());
        // Our own pid is there and readable; pid 1 exists (as init) for kill(pid, 0).
        assert_eq!(process_exists(std::process::id()), Some(true));
    }
}
