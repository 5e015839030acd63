//! [io] Hardware probes: the figures the servers are measured against (DESIGN.md, "What is
//! measured": writes/s against the disk's fdatasync rate times the batch size; read latency
//! against a loopback round trip).
//!
//! `rk-bench probe disk --dir D`: write 4 KiB and fdatasync, in a loop, in a file preallocated
//! in D (a transaction log appends into a preallocated file and fdatasyncs each batch, so this is
//! the cost of one group commit of one small batch on that filesystem).
//!
//! `rk-bench probe loopback`: a 64-byte ping-pong over one 127.0.0.1 TCP connection with
//! TCP_NODELAY, echo on a second thread: the floor under any request-reply latency on this host.
//!
//! Both run for `--duration` (bounded by `ITERATIONS_MAX`) and print one line; `--json FILE`
//! writes the same figures.

use std::fs::{File, OpenOptions};
use std::io::{Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;
use serde::Serialize;

use crate::options::parse_duration;
use crate::stats::cdf_points;

pub const USAGE: &str = "\
usage: rk-bench probe disk --dir DIR [--duration D] [--json FILE]   4 KiB write + fdatasync loop in DIR
       rk-bench probe loopback [--duration D] [--json FILE]         64 B TCP ping-pong on 127.0.0.1
";

/// Bytes per write of the disk probe: one page, the smallest batch a log writer sends.
const WRITE_BYTES: usize = 4096;
/// The probe file: preallocated (written and synced) before the loop, then overwritten in a
/// ring, so the loop measures data syncs of allocated blocks, not file growth.
const PROBE_FILE_BYTES: u64 = 16 << 20;
const MESSAGE_BYTES: usize = 64;
/// Upper bound of iterations whatever the duration.
const ITERATIONS_MAX: u64 = 10_000_000;
const DURATION_DEFAULT: Duration = Duration::from_secs(3);
/// Round trips before the loopback probe starts recording (connection and caches warm).
const LOOPBACK_WARMUP_ITERATIONS: u64 = 1000;

#[derive(Debug, Serialize)]
pub struct ProbeReport {
    pub probe: String,
    /// What was measured, in words.
    pub description: String,
    pub operations: u64,
    pub seconds: f64,
    pub ops_per_second: f64,
    pub mean_us: f64,
    pub p50_us: f64,
    pub p90_us: f64,
    pub p99_us: f64,
    pub p999_us: f64,
    pub max_us: f64,
    pub cdf_us: Vec<(f64, f64)>,
}

fn histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, 3_600_000_000_000, 3)
        .unwrap_or_else(|_| unreachable!("valid histogram bounds"))
}

fn report(probe: &str, description: String, h: &Histogram<u64>, elapsed: Duration) -> ProbeReport {
    let seconds = elapsed.as_secs_f64().max(1e-9);
    ProbeReport {
        probe: probe.to_owned(),
        description,
        operations: h.len(),
        seconds,
        ops_per_second: h.len() as f64 / seconds,
        mean_us: h.mean() / 1e3,
        p50_us: h.value_at_quantile(0.5) as f64 / 1e3,
        p90_us: h.value_at_quantile(0.9) as f64 / 1e3,
        p99_us: h.value_at_quantile(0.99) as f64 / 1e3,
        p999_us: h.value_at_quantile(0.999) as f64 / 1e3,
        max_us: h.max() as f64 / 1e3,
        cdf_us: cdf_points(h),
    }
}

fn record(h: &mut Histogram<u64>, latency: Duration) {
    let ns = u64::try_from(latency.as_nanos()).unwrap_or(u64::MAX);
    h.saturating_record(ns.clamp(1, h.high()));
}

/// Removes the probe file however the probe ends.
struct RemoveOnDrop(PathBuf);

impl Drop for RemoveOnDrop {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

pub fn disk(directory: &Path, duration: Duration) -> Result<ProbeReport, String> {
    let path = directory.join(format!("rk-bench-fsync-probe-{}", std::process::id()));
    let file: File = OpenOptions::new()
        .read(true)
        .write(true)
        .create_new(true)
        .open(&path)
        .map_err(|e| format!("create {}: {e}", path.display()))?;
    let _remove = RemoveOnDrop(path.clone());
    let zeros = vec![0u8; 1 << 20];
    let mut offset = 0u64;
    while offset < PROBE_FILE_BYTES {
        file.write_all_at(&zeros, offset)
            .map_err(|e| format!("preallocate {}: {e}", path.display()))?;
        offset += zeros.len() as u64;
    }
    file.sync_all()
        .map_err(|e| format!("fsync {}: {e}", path.display()))?;
    let block = [0x5au8; WRITE_BYTES];
    let mut h = histogram();
    let begin = Instant::now();
    let mut iteration = 0u64;
    while begin.elapsed() < duration && iteration < ITERATIONS_MAX {
        let at = (iteration * WRITE_BYTES as u64) % PROBE_FILE_BYTES;
        let start = Instant::now();
        file.write_all_at(&block, at)
            .map_err(|e| format!("write {}: {e}", path.display()))?;
        // sync_data is fdatasync(2) on Linux: what a log writer issues per batch.
        file.sync_data()
            .map_err(|e| format!("fdatasync {}: {e}", path.display()))?;
        record(&mut h, start.elapsed());
        iteration += 1;
    }
    Ok(report(
        "disk",
        format!(
            "{WRITE_BYTES} B pwrite + fdatasync in a preallocated file in {}",
            directory.display()
        ),
        &h,
        begin.elapsed(),
    ))
}

pub fn loopback(duration: Duration) -> Result<ProbeReport, String> {
    let listener = TcpListener::bind("127.0.0.1:0").map_err(|e| format!("listen: {e}"))?;
    let address = listener.local_addr().map_err(|e| e.to_string())?;
    let echo = std::thread::spawn(move || -> Result<(), String> {
        let (mut stream, _) = listener.accept().map_err(|e| e.to_string())?;
        stream.set_nodelay(true).map_err(|e| e.to_string())?;
        let mut buffer = [0u8; MESSAGE_BYTES];
        // Until the client closes: read_exact then fails with UnexpectedEof.
        while stream.read_exact(&mut buffer).is_ok() {
            stream.write_all(&buffer).map_err(|e| e.to_string())?;
        }
        Ok(())
    });
    let mut stream = TcpStream::connect(address).map_err(|e| format!("connect: {e}"))?;
    stream.set_nodelay(true).map_err(|e| e.to_string())?;
    let message = [0xa5u8; MESSAGE_BYTES];
    let mut answer = [0u8; MESSAGE_BYTES];
    let mut h = histogram();
    let mut begin = Instant::now();
    let mut iteration = 0u64;
    while iteration < LOOPBACK_WARMUP_ITERATIONS
        || (begin.elapsed() < duration && iteration < ITERATIONS_MAX)
    {
        let start = Instant::now();
        stream
            .write_all(&message)
            .and_then(|()| stream.read_exact(&mut answer))
            .map_err(|e| format!("ping-pong: {e}"))?;
        if iteration >= LOOPBACK_WARMUP_ITERATIONS {
            record(&mut h, start.elapsed());
        } else if iteration + 1 == LOOPBACK_WARMUP_ITERATIONS {
            begin = Instant::now();
        }
        iteration += 1;
    }
    let elapsed = begin.elapsed();
    let _ = stream.shutdown(Shutdown::Both);
    echo.join()
        .map_err(|_| "echo thread panicked".to_owned())??;
    Ok(report(
        "loopback",
        format!(
            "{MESSAGE_BYTES} B TCP ping-pong on 127.0.0.1, TCP_NODELAY, echo on another thread"
        ),
        &h,
        elapsed,
    ))
}

/// `rk-bench probe ...`: parses its own arguments (after `probe`), runs, prints, writes JSON.
pub fn main(args: &[String]) -> Result<(), String> {
    let kind = args.first().map(String::as_str).unwrap_or("");
    let mut directory: Option<PathBuf> = None;
    let mut duration = DURATION_DEFAULT;
    let mut json: Option<String> = None;
    let mut index = 1;
    while index < args.len() {
        let flag = args[index].as_str();
        let value = args
            .get(index + 1)
            .ok_or_else(|| format!("{flag} needs a value"))?;
        match flag {
            "--dir" => directory = Some(PathBuf::from(value)),
            "--duration" => duration = parse_duration(value)?,
            "--json" => json = Some(value.clone()),
            _ => return Err(format!("unknown option {flag}")),
        }
        index += 2;
    }
    if duration.is_zero() {
        return Err("--duration must be positive".into());
    }
    let result = match kind {
        "disk" => disk(
            &directory.ok_or_else(|| "probe disk needs --dir".to_owned())?,
            duration,
        )?,
        "loopback" => loopback(duration)?,
        _ => return Err(format!("unknown probe {kind:?}")),
    };
    println!(
        "probe {}: {} ops in {:.2} s = {:.0} ops/s; p50 {:.1} us, p99 {:.1} us, p99.9 {:.1} us, max {:.1} us ({})",
        result.probe,
        result.operations,
        result.seconds,
        result.ops_per_second,
        result.p50_us,
        result.p99_us,
        result.p999_us,
        result.max_us,
        result.description
    );
    if let Some(path) = json {
        let text = serde_json::to_string_pretty(&result).map_err(|e| e.to_string())?;
        std::fs::write(&path, text + "\n").map_err(|e| format!("writing {path}: {e}"))?;
    }
    Ok(())
}
