//! [pure] Command line of rk-bench. Every option is listed in bench/README.md.

use std::net::SocketAddr;
use std::time::Duration;

pub const USAGE: &str = "\
usage: rk-bench --server 127.0.0.1:PORT [options]     run a workload against a server
       rk-bench self-test [options]                    run it against the in-process trivial responder
       rk-bench responder --listen 127.0.0.1:PORT      serve the trivial responder until killed
       rk-bench probe disk --dir DIR | probe loopback  fdatasync rate of DIR's disk; loopback round trip

options (defaults in brackets):
  --workload W          create | set | get | get-children | mixed | multi |
                        ephemeral-churn | watch-fanout | session-storm   [get]
  --read-ratio R        mixed: fraction of gets, 0..1                    [0.9]
  --sessions N          client sessions                                  [8]
  --outstanding K       requests in flight per session (pipelined)       [16]
  --rate R              open loop: R requests/s in total, spread over the sessions,
                        at most K in flight each (latency from the send)  [closed loop]
  --threads T           generator threads, sessions split among them    [min(2, sessions)]
  --duration D          measured window, e.g. 10s, 500ms, 2m            [10s]
  --warmup D            load before the window, not recorded            [2s]
  --value-size B        bytes per znode value, at least 16              [128]
  --znodes N            keys pre-populated under ROOT/keys              [1000]
  --distribution X      uniform | hotkey                                 [uniform]
  --hot-fraction F      hotkey: fraction of operations on the hot keys   [0.9]
  --hot-keys H          hotkey: how many keys are hot                    [1]
  --multi-ops M         multi: setData operations per multi             [4]
  --watchers M          watch-fanout: watcher sessions                   [100]
  --session-timeout D   requested session timeout                        [30s]
  --seed S              seed of every random choice                      [1]
  --root PATH           root znode of the run                            [/rk-bench-<pid>]
  --no-cleanup          leave the root and its znodes in place
  --json FILE           also write the report as JSON to FILE
  --listen ADDR         responder: address to listen on (loopback only)
";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Workload {
    Create,
    Set,
    Get,
    GetChildren,
    Mixed,
    Multi,
    EphemeralChurn,
    WatchFanout,
    SessionStorm,
}

impl Workload {
    pub fn parse(text: &str) -> Option<Workload> {
        Some(match text {
            "create" => Workload::Create,
            "set" => Workload::Set,
            "get" => Workload::Get,
            "get-children" => Workload::GetChildren,
            "mixed" => Workload::Mixed,
            "multi" => Workload::Multi,
            "ephemeral-churn" => Workload::EphemeralChurn,
            "watch-fanout" => Workload::WatchFanout,
            "session-storm" => Workload::SessionStorm,
            _ => return None,
        })
    }

    pub fn name(self) -> &'static str {
        match self {
            Workload::Create => "create",
            Workload::Set => "set",
            Workload::Get => "get",
            Workload::GetChildren => "get-children",
            Workload::Mixed => "mixed",
            Workload::Multi => "multi",
            Workload::EphemeralChurn => "ephemeral-churn",
            Workload::WatchFanout => "watch-fanout",
            Workload::SessionStorm => "session-storm",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Distribution {
    Uniform,
    /// With probability `hot_fraction` pick one of the first `hot_keys` keys, otherwise any key.
    HotKey {
        hot_fraction: f64,
        hot_keys: u32,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    Run,
    SelfTest,
    Responder,
}

#[derive(Debug, Clone)]
pub struct Options {
    pub mode: Mode,
    pub server: Option<SocketAddr>,
    pub listen: Option<SocketAddr>,
    pub workload: Workload,
    pub read_ratio: f64,
    pub sessions: usize,
    pub outstanding: usize,
    pub threads: usize,
    pub duration: Duration,
    pub warmup: Duration,
    pub value_bytes: usize,
    pub znodes: usize,
    pub distribution: Distribution,
    pub multi_ops: usize,
    pub watchers: usize,
    pub session_timeout: Duration,
    pub seed: u64,
    pub root: String,
    pub cleanup: bool,
    pub json: Option<String>,
    /// Open loop: the total request rate (ops/s) spread evenly over the sessions, each
    /// keeping at most `outstanding` in flight; None = closed loop (a new request per reply).
    pub rate: Option<f64>,
}

/// Bounds that keep a run finite and within one machine's means.
const SESSIONS_MAX: usize = 20_000;
const OUTSTANDING_MAX: usize = 10_000;
const THREADS_MAX: usize = 64;
const ZNODES_MAX: usize = 10_000_000;
const VALUE_BYTES_MAX: usize = 1 << 20;
const DURATION_MAX: Duration = Duration::from_secs(24 * 3600);

pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let (number, scale) = if let Some(n) = text.strip_suffix("ms") {
        (n, 1e-3)
    } else if let Some(n) = text.strip_suffix('s') {
        (n, 1.0)
    } else if let Some(n) = text.strip_suffix('m') {
        (n, 60.0)
    } else {
        (text, 1.0)
    };
    let value: f64 = number
        .parse()
        .map_err(|_| format!("bad duration {text:?} (use e.g. 10s, 500ms, 2m)"))?;
    if !(0.0..=DURATION_MAX.as_secs_f64()).contains(&(value * scale)) {
        return Err(format!("duration {text:?} out of range"));
    }
    Ok(Duration::from_secs_f64(value * scale))
}

fn parse_loopback(text: &str) -> Result<SocketAddr, String> {
    let address: SocketAddr = text
        .parse()
        .map_err(|_| format!("bad address {text:?} (use IP:PORT)"))?;
    // Load from this tool goes to the local machine only: benchmarks here compare servers
    // running side by side on one host.
    if !address.ip().is_loopback() {
        return Err(format!("{address} is not a loopback address"));
    }
    Ok(address)
}

fn parse_number<T: std::str::FromStr>(name: &str, text: &str) -> Result<T, String> {
    text.parse()
        .map_err(|_| format!("bad value {text:?} for {name}"))
}

impl Options {
    pub fn defaults() -> Options {
        Options {
            mode: Mode::Run,
            server: None,
            listen: None,
            workload: Workload::Get,
            read_ratio: 0.9,
            sessions: 8,
            outstanding: 16,
            threads: 0,
            duration: Duration::from_secs(10),
            warmup: Duration::from_secs(2),
            value_bytes: 128,
            znodes: 1000,
            distribution: Distribution::Uniform,
            multi_ops: 4,
            watchers: 100,
            session_timeout: Duration::from_secs(30),
            seed: 1,
            root: format!("/rk-bench-{}", std::process::id()),
            cleanup: true,
            json: None,
            rate: None,
        }
    }

    pub fn parse(args: &[String]) -> Result<Options, String> {
        let mut options = Options::defaults();
        let mut distribution = "uniform".to_owned();
        let mut hot_fraction = 0.9f64;
        let mut hot_keys = 1u32;
        let mut index = 0;
        if let Some(first) = args.first() {
            match first.as_str() {
                "self-test" => {
                    options.mode = Mode::SelfTest;
                    index = 1;
                }
                "responder" => {
                    options.mode = Mode::Responder;
                    index = 1;
                }
                _ => {}
            }
        }
        while index < args.len() {
            let flag = args[index].as_str();
            if flag == "--no-cleanup" {
                options.cleanup = false;
                index += 1;
                continue;
            }
            if flag == "--help" || flag == "-h" {
                return Err(String::new());
            }
            let value = args
                .get(index + 1)
                .ok_or_else(|| format!("{flag} needs a value"))?
                .as_str();
            match flag {
                "--server" => options.server = Some(parse_loopback(value)?),
                "--listen" => options.listen = Some(parse_loopback(value)?),
                "--workload" => {
                    options.workload = Workload::parse(value)
                        .ok_or_else(|| format!("unknown workload {value:?}"))?
                }
                "--read-ratio" => options.read_ratio = parse_number(flag, value)?,
                "--sessions" => options.sessions = parse_number(flag, value)?,
                "--outstanding" => options.outstanding = parse_number(flag, value)?,
                "--rate" => {
                    let rate: f64 = parse_number(flag, value)?;
                    if !(rate > 0.0 && rate.is_finite()) {
                        return Err(format!("--rate must be a positive number, not {value}"));
                    }
                    options.rate = Some(rate);
                }
                "--threads" => options.threads = parse_number(flag, value)?,
                "--duration" => options.duration = parse_duration(value)?,
                "--warmup" => options.warmup = parse_duration(value)?,
                "--value-size" => options.value_bytes = parse_number(flag, value)?,
                "--znodes" => options.znodes = parse_number(flag, value)?,
                "--distribution" => distribution = value.to_owned(),
                "--hot-fraction" => hot_fraction = parse_number(flag, value)?,
                "--hot-keys" => hot_keys = parse_number(flag, value)?,
                "--multi-ops" => options.multi_ops = parse_number(flag, value)?,
                "--watchers" => options.watchers = parse_number(flag, value)?,
                "--session-timeout" => options.session_timeout = parse_duration(value)?,
                "--seed" => options.seed = parse_number(flag, value)?,
                "--root" => options.root = value.to_owned(),
                "--json" => options.json = Some(value.to_owned()),
                _ => return Err(format!("unknown option {flag}")),
            }
            index += 2;
        }
        options.distribution = match distribution.as_str() {
            "uniform" => Distribution::Uniform,
            "hotkey" => Distribution::HotKey {
                hot_fraction,
                hot_keys,
            },
            other => return Err(format!("unknown distribution {other:?}")),
        };
        if options.threads == 0 {
            options.threads = options.sessions.clamp(1, 2);
        }
        options.validate()?;
        Ok(options)
    }

    fn validate(&self) -> Result<(), String> {
        if self.mode == Mode::Run && self.server.is_none() {
            return Err("--server is required".into());
        }
        if !(1..=SESSIONS_MAX).contains(&self.sessions) {
            return Err(format!("--sessions must be 1..={SESSIONS_MAX}"));
        }
        if !(1..=OUTSTANDING_MAX).contains(&self.outstanding) {
            return Err(format!("--outstanding must be 1..={OUTSTANDING_MAX}"));
        }
        if !(1..=THREADS_MAX).contains(&self.threads) {
            return Err(format!("--threads must be 1..={THREADS_MAX}"));
        }
        if !(16..=VALUE_BYTES_MAX).contains(&self.value_bytes) {
            return Err(format!(
                "--value-size must be 16..={VALUE_BYTES_MAX} (the value carries a 16-byte header)"
            ));
        }
        if !(1..=ZNODES_MAX).contains(&self.znodes) {
            return Err(format!("--znodes must be 1..={ZNODES_MAX}"));
        }
        if !(0.0..=1.0).contains(&self.read_ratio) {
            return Err("--read-ratio must be within 0..1".into());
        }
        if let Distribution::HotKey {
            hot_fraction,
            hot_keys,
        } = self.distribution
        {
            if !(0.0..=1.0).contains(&hot_fraction) {
                return Err("--hot-fraction must be within 0..1".into());
            }
            if hot_keys == 0 || hot_keys as usize > self.znodes {
                return Err("--hot-keys must be 1..=znodes".into());
            }
        }
        if self.multi_ops == 0 || self.multi_ops > self.znodes.min(1000) {
            return Err("--multi-ops must be 1..=min(znodes, 1000)".into());
        }
        if !(1..=SESSIONS_MAX).contains(&self.watchers) {
            return Err(format!("--watchers must be 1..={SESSIONS_MAX}"));
        }
        if self.duration.is_zero() {
            return Err("--duration must be positive".into());
        }
        if !self.root.starts_with('/') || self.root.len() < 2 || self.root.ends_with('/') {
            return Err("--root must be an absolute znode path other than /".into());
        }
        Ok(())
    }

    pub fn session_timeout_ms(&self) -> i32 {
        self.session_timeout.as_millis().min(i32::MAX as u128) as i32
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(text: &str) -> Vec<String> {
        text.split_whitespace().map(str::to_owned).collect()
    }

    #[test]
    fn durations_accept_units() {
        assert_eq!(parse_duration("10s"), Ok(Duration::from_secs(10)));
        assert_eq!(parse_duration("250ms"), Ok(Duration::from_millis(250)));
        assert_eq!(parse_duration("2m"), Ok(Duration::from_secs(120)));
        assert_eq!(parse_duration("1.5"), Ok(Duration::from_millis(1500)));
        assert!(parse_duration("ten").is_err());
        assert!(parse_duration("-1s").is_err());
    }

    #[test]
    fn full_command_line_parses() {
        let options = Options::parse(&args(
            "--server 127.0.0.1:2181 --workload mixed --read-ratio 0.5 --sessions 32 \
             --outstanding 16 --duration 10s --distribution hotkey --hot-fraction 0.8 --hot-keys 4",
        ));
        let options = options.unwrap_or_else(|error| panic!("{error}"));
        assert_eq!(options.workload, Workload::Mixed);
        assert_eq!(options.sessions, 32);
        assert_eq!(options.threads, 2);
        assert_eq!(
            options.distribution,
            Distribution::HotKey {
                hot_fraction: 0.8,
                hot_keys: 4
            }
        );
    }

    #[test]
    fn non_loopback_targets_and_bad_values_are_refused() {
        assert!(Options::parse(&args("--server 10.0.0.1:2181")).is_err());
        assert!(Options::parse(&args("--server 127.0.0.1:2181 --value-size 8")).is_err());
        assert!(Options::parse(&args("--server 127.0.0.1:2181 --workload nope")).is_err());
        assert!(
            Options::parse(&args("--workload get")).is_err(),
            "needs --server"
        );
        assert!(Options::parse(&args("self-test --workload set")).is_ok());
    }
}
