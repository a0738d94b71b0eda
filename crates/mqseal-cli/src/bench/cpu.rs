//! CPU time (user + system) of threads and processes, read from Linux's /proc; `None` where it
//! is not available.

use std::fs;
use std::path::Path;

/// Clock ticks per second of the times in /proc/*/stat (USER_HZ, 100 on Linux).
const USER_HZ: u64 = 100;

/// CPU time the calling thread has used so far, in nanoseconds.
///
/// The kernel brings a running thread's figure up to date only when the thread leaves the CPU
/// (or at a scheduler tick), so this first sleeps for a millisecond: the figure is then exact,
/// and the sleep itself uses no CPU.
pub fn thread_ns() -> Option<u64> {
    std::thread::sleep(std::time::Duration::from_millis(1));
    task_ns(Path::new("/proc/thread-self"))
}

/// CPU time used so far by the live threads of process `pid` (`"self"`: this process), in
/// nanoseconds. Threads that already exited are not counted; a thread on a CPU right now may
/// be up to a scheduler tick behind (read it when the process is idle).
pub fn process_ns(pid: &str) -> Option<u64> {
    let tasks = fs::read_dir(format!("/proc/{pid}/task")).ok()?;
    let mut total = None;
    for task in tasks.flatten() {
        if let Some(ns) = task_ns(&task.path()) {
            total = Some(total.unwrap_or(0) + ns);
        }
    }
    total
}

/// One task's CPU time: `schedstat` (nanoseconds on the CPU), else `stat` (clock ticks).
fn task_ns(dir: &Path) -> Option<u64> {
    schedstat_ns(&fs::read_to_string(dir.join("schedstat")).unwrap_or_default())
        .or_else(|| stat_ns(&fs::read_to_string(dir.join("stat")).ok()?))
}

/// First field of `/proc/<pid>/task/<tid>/schedstat`: time spent on the CPU, in ns.
fn schedstat_ns(text: &str) -> Option<u64> {
    text.split_whitespace().next()?.parse().ok()
}

/// `utime + stime` (fields 14 and 15) of a `/proc/<pid>/stat` line, in ns. The command name
/// (field 2) is in parentheses and may contain spaces, so fields are counted after its `)`.
fn stat_ns(text: &str) -> Option<u64> {
    let (_, rest) = text.rsplit_once(')')?;
    let mut fields = rest.split_whitespace().skip(11);
    let utime: u64 = fields.next()?.parse().ok()?;
    let stime: u64 = fields.next()?.parse().ok()?;
    Some((utime + stime) * (1_000_000_000 / USER_HZ))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn parses_schedstat_and_stat() {
        assert_eq!(schedstat_ns("98591 2394194 2\n"), Some(98591));
        assert_eq!(schedstat_ns(""), None);
        let stat = "4242 (a (weird) name) S 1 2 3 4 5 6 7 8 9 10 250 30 0 0 20 0 1 0";
        assert_eq!(stat_ns(stat), Some(280 * 10_000_000));
        assert_eq!(stat_ns("4242 (truncated) S 1 2"), None);
    }

    #[test]
    fn this_thread_and_process_have_used_cpu() {
        if !Path::new("/proc/thread-self").exists() {
            return; // not Linux: nothing to read
        }
        let mut x = 0u64;
        for i in 0..100_000u64 {
            x = x.wrapping_mul(31).wrapping_add(i);
        }
        std::hint::black_box(x);
        assert!(thread_ns().is_some_and(|ns| ns > 0));
        assert!(process_ns("self").is_some_and(|ns| ns > 0));
    }
}
