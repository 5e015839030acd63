//! [pure] Command line of zk-load. Every option is listed in bench/README.md.

use std::net::SocketAddr;
use std::time::Duration;

pub const USAGE: &str = "\
usage: zk-load --servers 127.0.0.1:PORT[,127.0.0.1:PORT...] [options]

Sessions are dealt round-robin over the servers (session i connects to server i mod n only).

options (defaults in brackets):
  --op OP               set | create | get | mixed                        [set]
  --read-percent P      mixed: percentage of gets, 0..100                 [90]
  --sessions N          client sessions                                   [1]
  --inflight K          requests in flight per session                    [1]
  --value-size B        bytes per znode value                             [100]
  --znodes N            keys created under ROOT/keys before the load      [10000]
  --duration D          measured window, e.g. 8s, 500ms, 1m              [8s]
  --warmup D            load before the window, not recorded             [2s]
  --server-pid PID      a server process whose CPU (utime+stime from /proc/PID/stat)
                        is read at the start and end of the window; repeat (or
                        comma-separate) for every member of an ensemble   [none]
  --session-timeout D   session timeout asked for                         [30s]
  --connect-parallel C  sessions connecting at once                       [64]
  --seed S              seed of the key choices                           [1]
  --root PATH           root znode of the run (must not exist)           [/zk-load-<pid>]
  --no-cleanup          leave the root and its znodes in place
  --json FILE           also write the report as JSON to FILE
";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    Set,
    Create,
    Get,
    Mixed,
}

impl Op {
    pub fn parse(text: &str) -> Option<Op> {
        Some(match text {
            "set" => Op::Set,
            "create" => Op::Create,
            "get" => Op::Get,
            "mixed" => Op::Mixed,
            _ => return None,
        })
    }

    pub fn name(self) -> &'static str {
        match self {
            Op::Set => "set",
            Op::Create => "create",
            Op::Get => "get",
            Op::Mixed => "mixed",
        }
    }
}

#[derive(Debug, Clone)]
pub struct Options {
    pub servers: Vec<SocketAddr>,
    pub op: Op,
    pub read_percent: u32,
    pub sessions: usize,
    pub inflight: usize,
    pub value_size: usize,
    pub znodes: usize,
    pub duration: Duration,
    pub warmup: Duration,
    pub server_pids: Vec<u32>,
    pub session_timeout: Duration,
    pub connect_parallel: usize,
    pub seed: u64,
    pub root: String,
    pub cleanup: bool,
    pub json: Option<String>,
}

// Bounds: a typo should fail at parse time, not as a run that exhausts memory or file descriptors.
const SESSIONS_MAX: usize = 20_000;
const INFLIGHT_MAX: usize = 4_096;
const VALUE_SIZE_MAX: usize = 1 << 20;
const ZNODES_MAX: usize = 10_000_000;
const CONNECT_PARALLEL_MAX: usize = 4_096;

pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    let bad = || format!("bad duration {text:?} (e.g. 8s, 500ms, 1m)");
    let (number, scale_ms) = if let Some(n) = text.strip_suffix("ms") {
        (n, 1.0)
    } else if let Some(n) = text.strip_suffix('s') {
        (n, 1_000.0)
    } else if let Some(n) = text.strip_suffix('m') {
        (n, 60_000.0)
    } else {
        (text, 1_000.0)
    };
    let value: f64 = number.parse().map_err(|_| bad())?;
    if !value.is_finite() || value < 0.0 || value * scale_ms > 86_400_000.0 {
        return Err(bad());
    }
    Ok(Duration::from_micros(
        (value * scale_ms * 1_000.0).round() as u64
    ))
}

fn parse_loopback(text: &str) -> Result<SocketAddr, String> {
    let address: SocketAddr = text
        .trim()
        .parse()
        .map_err(|_| format!("bad address {text:?} (IP:PORT)"))?;
    // The benchmarks of this project compare servers side by side on one machine; refusing any
    // other target keeps a typo from sending load elsewhere (as rk-bench does).
    if !address.ip().is_loopback() {
        return Err(format!("{address} is not a loopback address"));
    }
    Ok(address)
}

fn parse_number<T: std::str::FromStr>(name: &str, text: &str) -> Result<T, String> {
    text.trim()
        .parse()
        .map_err(|_| format!("{name}: bad number {text:?}"))
}

fn bounded(name: &str, value: usize, low: usize, high: usize) -> Result<usize, String> {
    if value < low || value > high {
        return Err(format!("{name} must be in {low}..={high}, got {value}"));
    }
    Ok(value)
}

/// `Ok(None)` means `--help` was asked for.
pub fn parse(args: &[String]) -> Result<Option<Options>, String> {
    let mut options = Options {
        servers: Vec::new(),
        op: Op::Set,
        read_percent: 90,
        sessions: 1,
        inflight: 1,
        value_size: 100,
        znodes: 10_000,
        duration: Duration::from_secs(8),
        warmup: Duration::from_secs(2),
        server_pids: Vec::new(),
        session_timeout: Duration::from_secs(30),
        connect_parallel: 64,
        seed: 1,
        root: format!("/zk-load-{}", std::process::id()),
        cleanup: true,
        json: None,
    };
    let mut i = 0;
    while i < args.len() {
        let flag = args[i].as_str();
        match flag {
            "-h" | "--help" => return Ok(None),
            "--no-cleanup" => {
                options.cleanup = false;
                i += 1;
                continue;
            }
            _ => {}
        }
        let value = args
            .get(i + 1)
            .ok_or_else(|| format!("{flag} needs a value"))?
            .as_str();
        match flag {
            "--servers" | "--server" => {
                for part in value.split(',').filter(|p| !p.trim().is_empty()) {
                    options.servers.push(parse_loopback(part)?);
                }
            }
            "--op" => {
                options.op = Op::parse(value).ok_or_else(|| format!("unknown --op {value:?}"))?
            }
            "--read-percent" => {
                let p: usize = parse_number(flag, value)?;
                options.read_percent = bounded(flag, p, 0, 100)? as u32;
            }
            "--sessions" => {
                options.sessions = bounded(flag, parse_number(flag, value)?, 1, SESSIONS_MAX)?
            }
            "--inflight" => {
                options.inflight = bounded(flag, parse_number(flag, value)?, 1, INFLIGHT_MAX)?
            }
            "--value-size" => {
                options.value_size = bounded(flag, parse_number(flag, value)?, 0, VALUE_SIZE_MAX)?
            }
            "--znodes" => {
                options.znodes = bounded(flag, parse_number(flag, value)?, 1, ZNODES_MAX)?
            }
            "--duration" => options.duration = parse_duration(value)?,
            "--warmup" => options.warmup = parse_duration(value)?,
            "--server-pid" => {
                for part in value.split(',').filter(|p| !p.trim().is_empty()) {
                    options.server_pids.push(parse_number(flag, part)?);
                }
            }
            "--session-timeout" => options.session_timeout = parse_duration(value)?,
            "--connect-parallel" => {
                options.connect_parallel =
                    bounded(flag, parse_number(flag, value)?, 1, CONNECT_PARALLEL_MAX)?
            }
            "--seed" => options.seed = parse_number(flag, value)?,
            "--root" => {
                if !value.starts_with('/') || value.len() < 2 || value.ends_with('/') {
                    return Err(format!(
                        "--root must be an absolute znode path, got {value:?}"
                    ));
                }
                options.root = value.to_string();
            }
            "--json" => options.json = Some(value.to_string()),
            _ => return Err(format!("unknown option {flag:?}")),
        }
        i += 2;
    }
    if options.servers.is_empty() {
        return Err("--servers is required".to_string());
    }
    if options.duration.is_zero() {
        return Err("--duration must be above 0".to_string());
    }
    Ok(Some(options))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(text: &str) -> Vec<String> {
        text.split_whitespace().map(str::to_string).collect()
    }

    #[test]
    fn defaults_follow_the_issue_matrix() {
        let o = parse(&args("--servers 127.0.0.1:2181")).unwrap().unwrap();
        assert_eq!((o.op, o.sessions, o.inflight), (Op::Set, 1, 1));
        assert_eq!((o.value_size, o.znodes), (100, 10_000));
        assert_eq!(o.duration, Duration::from_secs(8));
        assert!(o.cleanup);
    }

    #[test]
    fn servers_and_pids_accept_lists_and_repeats() {
        let o = parse(&args(
            "--servers 127.0.0.1:1,127.0.0.1:2 --server 127.0.0.1:3 --server-pid 10,11 --server-pid 12",
        ))
        .unwrap()
        .unwrap();
        assert_eq!(o.servers.len(), 3);
        assert_eq!(o.server_pids, vec![10, 11, 12]);
    }

    #[test]
    fn non_loopback_targets_and_bad_values_are_refused() {
        assert!(parse(&args("--servers 10.0.0.1:2181")).is_err());
        assert!(parse(&args("--servers 127.0.0.1:2181 --op delete")).is_err());
        assert!(parse(&args("--servers 127.0.0.1:2181 --read-percent 101")).is_err());
        assert!(parse(&args("--servers 127.0.0.1:2181 --sessions 0")).is_err());
        assert!(parse(&args("--servers 127.0.0.1:2181 --root x")).is_err());
        assert!(parse(&args("--op set")).is_err());
    }

    #[test]
    fn durations_take_units() {
        assert_eq!(parse_duration("500ms").unwrap(), Duration::from_millis(500));
        assert_eq!(parse_duration("1.5s").unwrap(), Duration::from_millis(1500));
        assert_eq!(parse_duration("2m").unwrap(), Duration::from_secs(120));
        assert_eq!(parse_duration("3").unwrap(), Duration::from_secs(3));
        assert!(parse_duration("-1s").is_err());
    }
}
