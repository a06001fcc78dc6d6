//! A process's CPU time from `/proc/<pid>/stat`: user + system, all threads.

use std::process::Command;

/// Clock ticks per second for `/proc` times (`getconf CLK_TCK`; the crate forbids the unsafe
/// call to sysconf).
pub fn clock_ticks_per_second() -> Result<u64, String> {
    let out = Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .map_err(|e| format!("getconf CLK_TCK: {e}"))?;
    let text = String::from_utf8_lossy(&out.stdout);
    text.trim()
        .parse()
        .map_err(|_| format!("getconf CLK_TCK printed {text:?}"))
}

/// utime + stime of `pid`, in clock ticks.
pub fn cpu_ticks(pid: u32) -> Result<u64, String> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .map_err(|e| format!("/proc/{pid}/stat: {e}"))?;
    parse_stat_ticks(&stat)
}

/// Fields 14 and 15 of a stat line. The command name (field 2) may contain spaces and parens,
/// so counting starts after its last ')'.
fn parse_stat_ticks(stat: &str) -> Result<u64, String> {
    let after = stat
        .rfind(')')
        .and_then(|i| stat.get(i + 1..))
        .ok_or("no ')' in /proc stat")?;
    // After the name: field 3 (state) is index 0, so utime (14) is 11 and stime (15) is 12.
    let fields: Vec<&str> = after.split_whitespace().collect();
    let get = |i: usize| -> Result<u64, String> {
        fields
            .get(i)
            .and_then(|f| f.parse().ok())
            .ok_or_else(|| format!("bad /proc stat line: {stat}"))
    };
    Ok(get(11)? + get(12)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_stat_with_odd_name() {
        let line = "42 (env oy) x) S 1 42 42 0 -1 4194560 100 0 0 0 250 37 0 0 20 0 3 0 5 0 0";
        assert_eq!(parse_stat_ticks(line).unwrap(), 287);
    }

    #[test]
    fn reads_own_process() {
        assert!(cpu_ticks(std::process::id()).is_ok());
        assert!(clock_ticks_per_second().unwrap() > 0);
    }
}
