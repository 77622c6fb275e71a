//! What this node process uses of the machine — memory, CPU time, threads, open files — for the
//! dashboard's Node page and `GET /api/node`. Read from the kernel on each request: cheap, and
//! never stale.

use serde::Serialize;
use std::path::Path;

/// The process's resource use; a figure the platform does not give is `None`.
#[derive(Debug, Clone, Serialize)]
pub struct Usage {
    /// Resident memory now.
    pub rss_bytes: Option<u64>,
    /// The most resident memory the process has had.
    pub peak_rss_bytes: Option<u64>,
    /// CPU time spent in the process itself.
    pub cpu_user_ms: Option<u64>,
    /// CPU time spent in the kernel on the process's behalf.
    pub cpu_system_ms: Option<u64>,
    /// Threads of the process.
    pub threads: Option<u64>,
    /// Open file descriptors.
    pub open_files: Option<u64>,
    /// The node's database file (service records, storage, retained events).
    pub store_bytes: Option<u64>,
}

/// Reads the process's use now; `data_dir` is the node's data directory.
pub fn read(data_dir: &Path) -> Usage {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let field = |name: &str| -> Option<u64> {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|rest| rest.trim_start_matches(':').split_whitespace().next())
            .and_then(|n| n.parse().ok())
    };
    let (user, system, max_rss) = rusage();
    Usage {
        rss_bytes: field("VmRSS").map(|kib| kib * 1024),
        peak_rss_bytes: field("VmHWM").map(|kib| kib * 1024).or(max_rss),
        cpu_user_ms: user,
        cpu_system_ms: system,
        threads: field("Threads"),
        open_files: std::fs::read_dir("/proc/self/fd")
            .ok()
            .map(|d| d.count() as u64),
        store_bytes: std::fs::metadata(data_dir.join("node.redb"))
            .ok()
            .map(|m| m.len()),
    }
}

/// CPU times and peak RSS from `getrusage`, which every Unix has.
fn rusage() -> (Option<u64>, Option<u64>, Option<u64>) {
    let mut usage = std::mem::MaybeUninit::<libc::rusage>::zeroed();
    // SAFETY: getrusage writes a whole `rusage` into the pointer it is given and nothing else.
    let ok = unsafe { libc::getrusage(libc::RUSAGE_SELF, usage.as_mut_ptr()) } == 0;
    if !ok {
        return (None, None, None);
    }
    // SAFETY: getrusage succeeded, so the struct is initialised (and it was zeroed before).
    let usage = unsafe { usage.assume_init() };
    let ms = |t: libc::timeval| (t.tv_sec as u64) * 1000 + (t.tv_usec as u64) / 1000;
    // Linux counts ru_maxrss in KiB.
    let max_rss = u64::try_from(usage.ru_maxrss).ok().map(|kib| kib * 1024);
    (Some(ms(usage.ru_utime)), Some(ms(usage.ru_stime)), max_rss)
}

#[cfg(test)]
mod tests {
    #[test]
    fn reads_this_process() {
        let dir = tempfile::tempdir().expect("temp dir");
        let usage = super::read(dir.path());
        // Linux gives every figure but the store, which this directory does not have.
        assert!(usage.rss_bytes.is_some_and(|b| b > 0));
        assert!(usage.peak_rss_bytes >= usage.rss_bytes);
        assert!(usage.threads.is_some_and(|t| t >= 1));
        assert!(usage.open_files.is_some_and(|n| n >= 3));
        assert!(usage.cpu_user_ms.is_some());
        assert_eq!(usage.store_bytes, None);
    }
}
