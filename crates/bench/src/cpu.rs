//! CPU time spent by processes during a run, from `/proc`: a process and its children
//! (a postmaster and its backends), so a run can say what each operation cost the service
//! and the database in CPU, the input of docs/SCALING.md's capacity model.

use std::fs;

/// Clock ticks per second of `/proc/*/stat` times (`getconf CLK_TCK`; 100 on Linux).
const TICKS_PER_SECOND: f64 = 100.0;

/// The CPU time, in seconds, `pid` and its live children have used (with what their exited
/// children used, once reaped); `None` when `pid` is gone.
pub fn seconds_of_tree(pid: u32) -> Option<f64> {
    let own = ticks(pid)?;
    let children: u64 = fs::read_dir("/proc")
        .ok()?
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
        .filter(|&child| parent(child) == Some(pid))
        .filter_map(ticks)
        .sum();
    Some((own + children) as f64 / TICKS_PER_SECOND)
}

/// The fields of `/proc/PID/stat` after the command name (which may hold spaces).
fn fields(pid: u32) -> Option<Vec<String>> {
    let stat = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let after_name = stat.rsplit_once(')')?.1;
    Some(after_name.split_whitespace().map(str::to_owned).collect())
}

fn parent(pid: u32) -> Option<u32> {
    fields(pid)?.get(1)?.parse().ok()
}

/// utime + stime + cutime + cstime (fields 14 to 17 of stat; 12 to 15 after the name).
fn ticks(pid: u32) -> Option<u64> {
    let f = fields(pid)?;
    (11..15).map(|i| f.get(i)?.parse::<u64>().ok()).sum()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn this_process_has_used_some_cpu() {
        let mut spent = 0u64;
        for i in 0..2_000_000u64 {
            spent = spent.wrapping_add(i * i);
        }
        assert!(spent > 0);
        let seconds = seconds_of_tree(std::process::id()).unwrap_or(-1.0);
        assert!(seconds >= 0.0);
        assert!(seconds_of_tree(u32::MAX).is_none());
    }
}
