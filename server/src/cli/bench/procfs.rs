//! What a process (and PostgreSQL's processes) cost, read from `/proc`: CPU time and memory.
//! Linux only, like the embedded cluster the benchmarks run.

use std::path::Path;

/// Clock ticks a second (`getconf CLK_TCK`): 100 on every Linux this runs on.
const TICKS_PER_SEC: f64 = 100.0;

/// The fields of `/proc/<pid>/stat` after the command (which may hold spaces and parentheses).
fn stat_fields(pid: u32) -> Option<Vec<u64>> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let rest = &text[text.rfind(')')? + 2..];
    // Field 3 (state) is a letter: it reads as 0, the rest are numbers.
    Some(rest.split_whitespace().map(|f| f.parse().unwrap_or(0)).collect())
}

/// CPU seconds the process used (user + system), and with `children` also those of its children
/// it has waited for.
fn cpu_of(pid: u32, children: bool) -> Option<f64> {
    let f = stat_fields(pid)?;
    // After the command: state is index 0, so utime (field 14) is index 11.
    let own = f.get(11)? + f.get(12)?;
    let waited = if children { f.get(13)? + f.get(14)? } else { 0 };
    Some((own + waited) as f64 / TICKS_PER_SEC)
}

fn parent_of(pid: u32) -> Option<u32> {
    stat_fields(pid).and_then(|f| f.get(1).and_then(|p| u32::try_from(*p).ok()))
}

/// The live children of `parent`.
fn children(parent: u32) -> Vec<u32> {
    let Ok(dir) = std::fs::read_dir("/proc") else { return Vec::new() };
    dir.filter_map(|e| e.ok()?.file_name().to_str()?.parse::<u32>().ok())
        .filter(|pid| parent_of(*pid) == Some(parent))
        .collect()
}

/// CPU seconds a process used so far.
pub fn process_cpu(pid: u32) -> Option<f64> {
    cpu_of(pid, false)
}

/// PostgreSQL's postmaster, from its data directory.
pub fn postmaster(pg_data: &Path) -> Option<u32> {
    std::fs::read_to_string(pg_data.join("postmaster.pid")).ok()?.lines().next()?.trim().parse().ok()
}

/// CPU seconds the whole cluster used so far: the postmaster, the backends that ended (the
/// postmaster waits for each, so their time is in its children's time), and the live ones.
/// Backends come and go during a run; this total still only grows.
pub fn cluster_cpu(postmaster: u32) -> Option<f64> {
    let mut total = cpu_of(postmaster, true)?;
    for child in children(postmaster) {
        total += cpu_of(child, false).unwrap_or(0.0);
    }
    Some(total)
}

/// Resident memory of a process, bytes (`VmRSS`), and its peak (`VmHWM`).
pub fn rss(pid: u32) -> Option<(u64, u64)> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let kb = |key: &str| -> Option<u64> {
        status.lines().find_map(|l| l.strip_prefix(key)?.split_whitespace().next()?.parse::<u64>().ok())
    };
    Some((kb("VmRSS:")? * 1024, kb("VmHWM:")? * 1024))
}

/// PostgreSQL's memory, bytes: what its processes hold privately (summed), the shared memory the
/// busiest process has touched (the shared buffers, counted once), and the proportional total
/// (`Pss`: each shared page divided among the processes using it).
#[derive(Debug, Default, Clone, Copy)]
pub struct ClusterMemory {
    pub private: u64,
    pub shared: u64,
    pub pss: u64,
    pub processes: usize,
}

pub fn cluster_memory(postmaster: u32) -> ClusterMemory {
    let mut m = ClusterMemory::default();
    for pid in std::iter::once(postmaster).chain(children(postmaster)) {
        let Ok(text) = std::fs::read_to_string(format!("/proc/{pid}/smaps_rollup")) else { continue };
        let kb = |key: &str| -> u64 {
            text.lines().find_map(|l| l.strip_prefix(key)?.split_whitespace().next()?.parse::<u64>().ok()).unwrap_or(0)
                * 1024
        };
        m.private += kb("Private_Clean:") + kb("Private_Dirty:");
        m.shared = m.shared.max(kb("Shared_Clean:") + kb("Shared_Dirty:"));
        m.pss += kb("Pss:");
        m.processes += 1;
    }
    m
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn this_process_has_cpu_time_and_memory() {
        let me = std::process::id();
        // Burn a little CPU so the count cannot stay at zero by accident.
        let t = std::time::Instant::now();
        let mut x = 0u64;
        while t.elapsed() < std::time::Duration::from_millis(50) {
            x = std::hint::black_box(x.wrapping_add(1));
        }
        assert!(process_cpu(me).is_some_and(|s| s > 0.0));
        let (now, peak) = rss(me).expect("status");
        assert!(now > 1_000_000 && peak >= now, "{now} {peak}");
        assert_eq!(parent_of(me), Some(std::os::unix::process::parent_id()));
    }

    #[test]
    fn a_child_is_found_and_its_time_counted_once_waited_for() {
        let mut child = std::process::Command::new("sh")
            .args(["-c", "i=0; while [ $i -lt 200000 ]; do i=$((i+1)); done"])
            .spawn()
            .expect("sh");
        let pid = child.id();
        assert!(children(std::process::id()).contains(&pid));
        let waited = || {
            let f = stat_fields(std::process::id()).expect("stat");
            f[13] + f[14]
        };
        let before = waited();
        child.wait().expect("wait");
        assert!(waited() > before, "the waited-for child's CPU is in its parent's children's time");
    }
}
