//! What `/proc` says about a process: whether it runs, its CPU time, memory and
//! threads, and its children; and the pid a test's command wrote down.
#![allow(dead_code)]

/// True while process `pid` runs: a zombie, waiting to be collected by a parent the test
/// cannot be, counts as ended.
pub fn process_alive(pid: i32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Err(_) => false,
        Ok(stat) => {
            let state = stat.rsplit(')').next().unwrap_or("").trim_start();
            !state.starts_with('Z') && !state.starts_with('X')
        }
    }
}

/// The pid a test's command wrote to `file`, once it has.
pub fn read_pid(file: &std::path::Path) -> Option<i32> {
    std::fs::read_to_string(file)
        .ok()
        .and_then(|p| p.trim().parse().ok())
}

/// CPU time (user + system, microseconds), resident memory (KiB) and threads of `pid`.
pub struct ProcUsage {
    pub cpu_us: u64,
    pub rss_kib: u64,
    pub threads: u64,
}

pub fn proc_usage(pid: u32) -> ProcUsage {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let after = stat.rsplit_once(')').map_or("", |(_, r)| r);
    let fields: Vec<&str> = after.split_whitespace().collect();
    let ticks: u64 = fields.get(11).and_then(|v| v.parse().ok()).unwrap_or(0)
        + fields.get(12).and_then(|v| v.parse().ok()).unwrap_or(0);
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let field = |name: &str| {
        status
            .lines()
            .find(|l| l.starts_with(name))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|v| v.parse().ok())
            .unwrap_or(0)
    };
    ProcUsage {
        // /proc counts in USER_HZ, which Linux fixes at 100 for user space.
        cpu_us: ticks * 10_000,
        rss_kib: field("VmRSS:"),
        threads: field("Threads:"),
    }
}

/// Processes whose parent is `pid`, zombies left out (they have ended).
pub fn children_of(pid: u32) -> Vec<u32> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
        let Some(child) = entry.file_name().to_str().and_then(|n| n.parse().ok()) else {
            continue;
        };
        let stat = std::fs::read_to_string(format!("/proc/{child}/stat")).unwrap_or_default();
        let after = stat.rsplit_once(')').map_or("", |(_, r)| r);
        // Fields after the command name: state, then the parent's pid.
        let mut fields = after.split_whitespace();
        let state = fields.next();
        if fields.next() == Some(&pid.to_string()) && state != Some("Z") {
            found.push(child);
        }
    }
    found
}

/// The names of the threads of `pid` (what `/proc/PID/task/TID/comm` says).
pub fn thread_names(pid: u32) -> Vec<String> {
    let tasks = std::fs::read_dir(format!("/proc/{pid}/task"));
    tasks
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|t| std::fs::read_to_string(t.path().join("comm")).ok())
        .map(|n| n.trim_end().to_string())
        .collect()
}

/// Stops process `pid` with SIGSTOP and returns once every one of its threads is
/// stopped. The signal alone is not enough: the kernel wakes one thread to begin the
/// stop, and until that thread runs (milliseconds on a loaded machine) the others go on,
/// so a request sent at once may still be answered. Panics after `patience`.
#[allow(dead_code)]
pub fn stop_process(pid: i32, patience: std::time::Duration) {
    use nix::sys::signal::{kill, Signal};
    kill(nix::unistd::Pid::from_raw(pid), Signal::SIGSTOP).expect("SIGSTOP");
    let deadline = std::time::Instant::now() + patience;
    loop {
        let states: Vec<String> = std::fs::read_dir(format!("/proc/{pid}/task"))
            .into_iter()
            .flatten()
            .flatten()
            .map(|task| {
                let stat = std::fs::read_to_string(task.path().join("stat")).unwrap_or_default();
                let after = stat.rsplit_once(')').map_or("", |(_, r)| r);
                after
                    .split_whitespace()
                    .next()
                    .unwrap_or("gone")
                    .to_string()
            })
            .collect();
        if !states.is_empty() && states.iter().all(|s| s == "T" || s == "t") {
            return;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "process {pid} did not stop: its threads are {states:?}"
        );
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
}
