//! How much memory the host can hand out now: what the CPU path checks a batch's estimated
//! peak against, since an allocation failure there aborts the process.

/// Memory the operating system can hand out now without swapping (Linux `MemAvailable`), plus
/// what this process's heap holds freed (kept there by `heap_retention`, and reused before the
/// system is asked), in bytes; `None` where it is not known, and then nothing is refused.
pub(crate) fn available_bytes() -> Option<u64> {
    let system = parse_mem_available(&std::fs::read_to_string("/proc/meminfo").ok()?)?;
    Some(system.saturating_add(free_heap_bytes()))
}

/// Bytes the process's malloc holds free, over all arenas (glibc 2.33 and later; 0 elsewhere).
/// `mallinfo2` is looked up at run time, so that the crate still builds and runs against older
/// glibc (RHEL 8 has 2.28), where only the 32-bit `mallinfo` exists.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
pub(crate) fn free_heap_bytes() -> u64 {
    type MallInfo2 = unsafe extern "C" fn() -> libc::mallinfo2;
    static MALLINFO2: std::sync::OnceLock<Option<MallInfo2>> = std::sync::OnceLock::new();
    let found = MALLINFO2.get_or_init(|| {
        // SAFETY: dlsym with RTLD_DEFAULT only searches the loaded objects for the name.
        let symbol = unsafe { libc::dlsym(libc::RTLD_DEFAULT, c"mallinfo2".as_ptr()) };
        // SAFETY: glibc's `mallinfo2` has exactly this signature.
        (!symbol.is_null())
            .then(|| unsafe { std::mem::transmute::<*mut libc::c_void, MallInfo2>(symbol) })
    });
    // SAFETY: mallinfo2 only reads the allocator's statistics.
    found.map_or(0, |mallinfo2| unsafe { mallinfo2() }.fordblks as u64)
}

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
pub(crate) fn free_heap_bytes() -> u64 {
    0
}

/// `MemAvailable:  123456 kB` in `/proc/meminfo`, in bytes.
fn parse_mem_available(meminfo: &str) -> Option<u64> {
    let line = meminfo
        .lines()
        .find_map(|l| l.strip_prefix("MemAvailable:"))?;
    let mut parts = line.split_whitespace();
    let value: u64 = parts.next()?.parse().ok()?;
    match parts.next() {
        Some("kB") | None => Some(value * 1024),
        Some(_) => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mem_available_is_read_in_bytes() {
        let meminfo = "MemTotal:       16318480 kB\nMemFree:         1200000 kB\n\
                       MemAvailable:    8000000 kB\nBuffers:          100 kB\n";
        assert_eq!(parse_mem_available(meminfo), Some(8_000_000 * 1024));
        assert_eq!(parse_mem_available("MemTotal: 1 kB\n"), None);
        assert_eq!(parse_mem_available("MemAvailable: lots\n"), None);
        if cfg!(target_os = "linux") {
            assert!(available_bytes().is_some_and(|b| b > 0));
        }
    }
}
