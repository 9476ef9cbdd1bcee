//! The resident set of this process, shared by the benches that report the
//! memory a table of keys takes.

/// Resident set size in bytes, from /proc (Linux); `None` elsewhere.
pub(crate) fn rss() -> Option<u64> {
    let statm = std::fs::read_to_string("/proc/self/statm").ok()?;
    let pages: u64 = statm.split_whitespace().nth(1)?.parse().ok()?;
    Some(pages * 4096)
}
