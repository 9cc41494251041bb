//! What the AgentPhone benchmarks share: CPU time read from /proc and percentiles.

#![allow(dead_code)]

/// Clock ticks per second of /proc's times (USER_HZ: 100 on Linux).
const TICKS_PER_SEC: f64 = 100.0;

/// utime + stime of one process, in seconds (`/proc/<pid>/stat` fields 14 and 15).
pub fn cpu_secs(pid: u32) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // The command name (field 2) may hold spaces: count from the ")" that closes it.
    let Some((_, rest)) = stat.rsplit_once(')') else {
        return 0.0;
    };
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks = |i: usize| {
        fields
            .get(i)
            .and_then(|f| f.parse::<u64>().ok())
            .unwrap_or(0)
    };
    // `rest` starts at field 3 (state): utime is field 14, stime field 15.
    (ticks(11) + ticks(12)) as f64 / TICKS_PER_SEC
}

/// CPU seconds of the PostgreSQL backends serving `database` (their process title is
/// `postgres: [<cluster>:] <user> <database> <client> <state>`). Background processes (WAL writer,
/// checkpointer) are not counted; a backend that ends before the second reading is lost.
pub fn postgres_secs(database: &str) -> f64 {
    let mut total = 0.0;
    for entry in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        let title = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
        let title = String::from_utf8_lossy(&title).replace('\0', " ");
        // `postgres: [<cluster>:] <user> <database> ...`
        let mut words = title.split_whitespace().skip_while(|w| w.ends_with(':'));
        if title.starts_with("postgres:") && words.nth(1) == Some(database) {
            total += cpu_secs(pid);
        }
    }
    total
}

/// The server's and PostgreSQL's CPU seconds at one moment.
#[derive(Clone, Copy)]
pub struct Cpu {
    pub server: f64,
    pub postgres: f64,
}

impl Cpu {
    pub fn now(server_pid: u32, database: &str) -> Self {
        Cpu {
            server: cpu_secs(server_pid),
            postgres: postgres_secs(database),
        }
    }

    /// "server X ms, PostgreSQL Y ms per <what>" for `count` of them since `self`.
    pub fn per(&self, later: Cpu, count: usize, what: &str) -> String {
        let ms = |a: f64, b: f64| (b - a) * 1000.0 / count as f64;
        format!(
            "CPU per {what}: server {:.2} ms, PostgreSQL backends {:.2} ms (totals {:.1} s and {:.1} s)",
            ms(self.server, later.server),
            ms(self.postgres, later.postgres),
            later.server - self.server,
            later.postgres - self.postgres,
        )
    }
}

/// "p50 X ms, p99 Y ms, max Z ms" of latencies in milliseconds.
pub fn percentiles(values: &mut [f64]) -> String {
    if values.is_empty() {
        return "no values".into();
    }
    values.sort_by(f64::total_cmp);
    let at = |p: f64| values[((values.len() as f64 * p) as usize).min(values.len() - 1)];
    format!(
        "p50 {:.1} ms, p90 {:.1} ms, p99 {:.1} ms, max {:.1} ms",
        at(0.5),
        at(0.9),
        at(0.99),
        values[values.len() - 1]
    )
}
