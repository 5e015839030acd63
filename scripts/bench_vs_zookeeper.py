#!/usr/bin/env python3
"""ringkeeper against Apache ZooKeeper, side by side on this machine, in one run.

    scripts/bench-vs-zookeeper.sh [--out DIR] [--duration 6s] [--warmup 2s] [--quick]
                                  [--force-sync yes|no] [--no-build] [--keep-data]

1. builds the binaries (`cargo build --release --bins`, honouring CARGO_TARGET_DIR);
2. measures the hardware: `rk-bench probe disk` (4 KiB write + fdatasync loop) in the directory
   that holds both data dirs, and `rk-bench probe loopback` (TCP ping-pong on 127.0.0.1);
3. starts both servers from zoo.cfg files that differ only in clientPort and dataDir: both
   dataDirs under one directory (same filesystem, same disk), 127.0.0.1, tickTime 2000,
   forceSync on, 4lw enabled, no connection limit; ZooKeeper with reference-zk.sh's `server`
   JVM profile (zkServer.sh's -Xmx1000m, default collector, full JIT), not the tests' small JVM;
4. warms both up (unrecorded set and get runs: the JVM compiles its hot paths), then runs the
   matrix, alternating the servers and swapping which goes first at every entry
   (Z R, R Z, Z R, ...), so slow drift of a shared machine falls on both equally;
5. reads `mntr` before and after every run: the count of transactions (last zxid) and of log
   syncs gives the achieved group-commit batch size where the server exposes a sync count;
6. writes every run's JSON, the rk-bench output, the table (table.md, also printed) and the
   plots (throughput-vs-outstanding.svg, latency-cdf-set.svg, latency-cdf-get.svg) to
   bench/results/<timestamp>/.

Why Python and not an rk-bench subcommand: this is process orchestration (build, two servers'
lifecycles, config files, a report), which the test tooling already does in Python
(tests/compat/conftest.py, scripts/crash-test.py); rk-bench stays a load generator with no
knowledge of how servers are started. Standard library only, so it runs wherever the tests run.
"""

import argparse
import datetime
import json
import math
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import loopback  # noqa: E402  (scripts/loopback.py: free port, four-letter words)
import preflight  # noqa: E402  (scripts/preflight.py: host description)
from loopback import free_port  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
SERVERS = ("zookeeper", "ringkeeper")
LABEL = {"zookeeper": "ZooKeeper", "ringkeeper": "ringkeeper"}
START_TIMEOUT_S = 60.0
STOP_TIMEOUT_S = 15.0
# zkServer.sh's default heap (ZK_SERVER_HEAP=1000); scripts/reference-zk.sh's `server` profile
# otherwise keeps the JVM's defaults (collector, full JIT).
ZK_HEAP_MB_DEFAULT = 1000
# A run may take the window, the warm-up, setup and cleanup; beyond this it is killed.
RUN_OVERHEAD_LIMIT_S = 120.0


class Entry:
    """One matrix entry: the same rk-bench command against both servers."""

    def __init__(self, key, title, workload, sessions, outstanding, extra=(), figures=()):
        self.key = key
        self.title = title
        self.workload = workload
        self.sessions = sessions
        self.outstanding = outstanding
        self.extra = list(extra)
        # (row label, op or "total", field, unit, higher_is_better)
        self.figures = list(figures)


def tput(op="total"):
    return ("throughput", op, "ops_per_second", "ops/s", True)


def lat(field, op, name):
    return (name, op, field, "us", False)


def latencies(op, fields=("p50_us", "p99_us", "p999_us")):
    names = {"p50_us": "p50", "p90_us": "p90", "p99_us": "p99", "p999_us": "p99.9",
             "mean_us": "mean", "max_us": "max"}
    return [lat(f, op, names[f]) for f in fields]


MATRIX = [
    Entry("set-32x16", "setData, 32 sessions x 16 outstanding", "set", 32, 16,
          figures=[tput()] + latencies("set")),
    Entry("get-32x16", "getData, 32 sessions x 16 outstanding", "get", 32, 16,
          figures=[tput()] + latencies("get")),
    Entry("set-1x1", "setData, 1 session x 1 outstanding (write latency)", "set", 1, 1,
          figures=[tput()] + latencies("set")),
    Entry("get-1x1", "getData, 1 session x 1 outstanding (read latency)", "get", 1, 1,
          figures=[tput()] + latencies("get")),
    Entry("set-16x1", "setData, 16 outstanding (16 sessions x 1)", "set", 16, 1,
          figures=[tput()] + latencies("set", ("p50_us", "p99_us"))),
    Entry("set-16x16", "setData, 256 outstanding (16 sessions x 16)", "set", 16, 16,
          figures=[tput()] + latencies("set", ("p50_us", "p99_us"))),
    Entry("set-64x16", "setData, 1024 outstanding (64 sessions x 16)", "set", 64, 16,
          figures=[tput()] + latencies("set", ("p50_us", "p99_us"))),
    Entry("mixed-32x16", "mixed 90% get / 10% set, 32 sessions x 16", "mixed", 32, 16,
          ["--read-ratio", "0.9"],
          figures=[tput()] + latencies("get", ("p99_us",)) + latencies("set", ("p99_us",))),
    Entry("create-32x16", "create, 32 sessions x 16 outstanding", "create", 32, 16,
          figures=[tput()] + latencies("create", ("p50_us", "p99_us"))),
    Entry("watch-fanout", "watch-fanout, 100 watchers (one round = write until all notified)",
          "watch-fanout", 1, 1, ["--watchers", "100"],
          figures=[("rounds", "total", "ops_per_second", "rounds/s", True)]
          + latencies("fanout", ("p50_us", "p99_us")) + latencies("notification", ("p99_us",))),
    Entry("session-storm", "session-storm, 200 sessions connect at once", "session-storm", 200, 1,
          figures=[("rounds", "total", "ops_per_second", "rounds/s", True)]
          + latencies("storm-round", ("p50_us", "p99_us")) + latencies("connect", ("p99_us",))),
]
# Write throughput against requests in flight (the plot): total outstanding -> entry.
WRITE_SERIES = [(1, "set-1x1"), (16, "set-16x1"), (256, "set-16x16"), (512, "set-32x16"),
                (1024, "set-64x16")]


def four_letter(port, word, timeout_s=5.0):
    return loopback.four_letter(port, word, timeout_s)


def mntr(port):
    """mntr as a dict of key -> string, plus `srvr_zxid` (srvr's "Zxid:" line: ZooKeeper 3.8's
    mntr has no last zxid); empty if the server does not answer."""
    out = {}
    try:
        text = four_letter(port, "mntr")
        for line in text.splitlines():
            key, _, value = line.partition("\t")
            if value:
                out[key.strip()] = value.strip()
        for line in four_letter(port, "srvr").splitlines():
            if line.startswith("Zxid:"):
                out["srvr_zxid"] = line.split(":", 1)[1].strip()
    except OSError:
        pass
    return out


def number(text):
    try:
        return int(text, 0)
    except (TypeError, ValueError):
        try:
            return float(text)
        except (TypeError, ValueError):
            return None


def commit_stats(before, after):
    """Transactions and log syncs between two mntr readings.

    Transactions: the counter part (low 32 bits) of the zxid srvr reports, same epoch. Log syncs: ringkeeper's
    `ringkeeper_txnlog_batches` (and `ringkeeper_txnlog_records`) from mntr; ZooKeeper's `fsynctime` summary count
    (`zk_cnt_fsynctime`, one sample per FileTxnLog.commit). None where not exposed."""
    out = {"transactions": None, "syncs": None, "records": None, "sync_source": None}
    zb, za = number(before.get("srvr_zxid")), number(after.get("srvr_zxid"))
    if isinstance(zb, int) and isinstance(za, int) and (zb >> 32) == (za >> 32):
        out["transactions"] = (za & 0xFFFFFFFF) - (zb & 0xFFFFFFFF)
    for key in ("ringkeeper_txnlog_batches", "zk_cnt_fsynctime"):
        b, a = number(before.get(key)), number(after.get(key))
        if b is not None and a is not None:
            out["syncs"] = a - b
            out["sync_source"] = key
            break
    for key in ("ringkeeper_txnlog_records",):
        b, a = number(before.get(key)), number(after.get(key))
        if b is not None and a is not None:
            out["records"] = a - b
            break
    return out


class Server:
    def __init__(self, name, root, port, force_sync, binary, zk_heap_mb):
        self.name = name
        self.dir = root / name
        self.data = self.dir / "data"
        self.port = port
        self.binary = binary
        self.zk_heap_mb = zk_heap_mb
        self.proc = None
        self.log = self.dir / ("zk.log" if name == "zookeeper" else "ringkeeper.log")
        self.data.mkdir(parents=True, exist_ok=True)
        # The same keys for both; only clientPort and dataDir differ. Unknown keys are reported
        # by ringkeeper and become system properties in ZooKeeper.
        (self.dir / "zoo.cfg").write_text("\n".join([
            "tickTime=2000",
            "dataDir=%s" % self.data,
            "clientPort=%d" % port,
            "clientPortAddress=127.0.0.1",
            "maxClientCnxns=0",
            "forceSync=%s" % force_sync,
            "4lw.commands.whitelist=*",
            "admin.enableServer=false",
            "",
        ]))

    def start(self):
        if self.name == "zookeeper":
            env = dict(os.environ, ZK_JVM_PROFILE="server", ZK_HEAP_MB=str(self.zk_heap_mb),
                       START_TIMEOUT_S=str(int(START_TIMEOUT_S)))
            r = subprocess.run([str(REPO / "scripts" / "reference-zk.sh"), "start", str(self.dir)],
                               capture_output=True, text=True, env=env, timeout=START_TIMEOUT_S + 15)
            if r.returncode != 0:
                raise RuntimeError("ZooKeeper did not start: %s%s" % (r.stdout, r.stderr))
            return
        logf = open(self.log, "wb")
        self.proc = subprocess.Popen([str(self.binary), "--config", str(self.dir / "zoo.cfg")],
                                     stdout=logf, stderr=subprocess.STDOUT,
                                     stdin=subprocess.DEVNULL, cwd=str(self.dir))
        logf.close()
        deadline = time.monotonic() + START_TIMEOUT_S
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError("ringkeeper exited during start; see %s" % self.log)
            try:
                if (four_letter(self.port, "ruok", 1.0) == "imok"
                        and "Mode:" in four_letter(self.port, "srvr", 1.0)):
                    return
            except OSError:
                pass
            time.sleep(0.1)  # polling a port that is not listening yet
        raise RuntimeError("ringkeeper did not answer ruok within %.0fs" % START_TIMEOUT_S)

    def alive(self):
        if self.name == "ringkeeper":
            return self.proc is not None and self.proc.poll() is None
        pid = (self.dir / "zk.pid")
        try:
            os.kill(int(pid.read_text()), 0)
            return True
        except (OSError, ValueError):
            return False

    def stop(self):
        if self.name == "zookeeper":
            subprocess.run([str(REPO / "scripts" / "reference-zk.sh"), "stop", str(self.dir)],
                           capture_output=True, timeout=STOP_TIMEOUT_S + 15)
            return
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout=STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(timeout=STOP_TIMEOUT_S)


def parse_seconds(text):
    text = text.strip()
    if text.endswith("ms"):
        return float(text[:-2]) / 1000
    if text.endswith("s"):
        return float(text[:-1])
    if text.endswith("m"):
        return float(text[:-1]) * 60
    return float(text)


def run_bench(rk_bench, server, entry, out, index, duration_s, warmup_s, tag=""):
    """One rk-bench run; returns its record (report JSON, mntr deltas, exit status)."""
    stem = "%02d-%s-%s%s" % (index, entry.key, server.name, tag)
    json_path = out / "runs" / (stem + ".json")
    cmd = [str(rk_bench), "--server", "127.0.0.1:%d" % server.port, "--workload", entry.workload,
           "--sessions", str(entry.sessions), "--outstanding", str(entry.outstanding),
           "--duration", "%gs" % duration_s, "--warmup", "%gs" % warmup_s,
           "--json", str(json_path)] + entry.extra
    before = mntr(server.port)
    started = time.monotonic()
    try:
        r = subprocess.run(cmd, capture_output=True, text=True,
                           timeout=duration_s + warmup_s + RUN_OVERHEAD_LIMIT_S)
        status, stdout, stderr = r.returncode, r.stdout, r.stderr
    except subprocess.TimeoutExpired as e:
        status, stdout, stderr = "timeout", e.stdout or "", e.stderr or ""
        stdout = stdout.decode() if isinstance(stdout, bytes) else stdout
        stderr = stderr.decode() if isinstance(stderr, bytes) else stderr
    elapsed = time.monotonic() - started
    after = mntr(server.port)
    (out / "runs" / (stem + ".txt")).write_text(" ".join(cmd) + "\n\n" + stdout + stderr)
    report = None
    if json_path.exists():
        report = json.loads(json_path.read_text())
    record = {"entry": entry.key, "server": server.name, "status": status, "elapsed_s": elapsed,
              "command": cmd, "report": report, "commit": commit_stats(before, after)}
    ok = status == 0 and report is not None
    print("  %-14s %-10s %s" % (entry.key, server.name,
                                "%.0f ops/s, errors %d, verification_errors %d" % (
                                    report["ops_per_second"], report["errors"],
                                    report["verification_errors"]) if ok
                                else "FAILED (status %s): %s" % (status, (stderr or stdout).strip()[-300:])),
          flush=True)
    return record


# ---------------------------------------------------------------- the table

def figure(record, op, field):
    if record is None or record["status"] != 0 or record["report"] is None:
        return None
    report = record["report"]
    if op == "total":
        return report.get(field)
    for row in report.get("latencies", []):
        if row["op"] == op:
            return row.get(field)
    return None


def fmt(value, unit):
    if value is None:
        return "n/a"
    if unit in ("ops/s", "rounds/s", "syncs/s"):
        return "{:,.0f}".format(value) if value >= 100 else "{:,.1f}".format(value)
    if unit == "us":
        return "{:,.0f}".format(value) if value >= 100 else "{:,.1f}".format(value)
    return "{:,.1f}".format(value)


def ratio_text(zk, rk):
    if zk is None or rk is None or zk == 0:
        return "n/a"
    return "%.2f" % (rk / zk)


def build_table(matrix, results, probes, host, args, batch_rows):
    lines = []
    lines.append("# ringkeeper vs Apache ZooKeeper, %s" % results["started"])
    lines.append("")
    lines.append("Host: %d CPUs (%s), %s MiB memory, kernel %s; data on %s; disk %s. "
                 "Load average before the run: %s, after: %s." % (
                     host["nproc"], host["cpu"], host["memory_mib"], host["kernel"],
                     host["filesystem"], host["disk"], host["load_average"],
                     results.get("load_after", "?")))
    lines.append("")
    lines.append("Settings (both servers): standalone, 127.0.0.1, tickTime=2000, forceSync=%s, "
                 "dataDirs side by side in %s, 4lw enabled, maxClientCnxns=0. ZooKeeper %s, "
                 "reference-zk.sh server JVM profile (zkServer.sh defaults) with %d MiB heap. Each run: %gs warm-up then %gs measured, rk-bench 128-byte values, "
                 "1000 keys; servers alternated, first server swapped at every entry. "
                 "Ratio = ringkeeper / ZooKeeper; `better` says which side of 1 favours ringkeeper." % (
                     args.force_sync, results["data_root"], results.get("zk_version", "?"),
                     args.zk_heap_mb, args.warmup_s, args.duration_s))
    lines.append("")
    lines.append("| run | figure | ZooKeeper | ringkeeper | ratio rk/zk | better |")
    lines.append("| --- | --- | ---: | ---: | ---: | --- |")
    by = {(r["entry"], r["server"]): r for r in results["runs"]}
    for entry in matrix:
        zk_rec, rk_rec = by.get((entry.key, "zookeeper")), by.get((entry.key, "ringkeeper"))
        for name, op, field, unit, higher in entry.figures:
            zk, rk = figure(zk_rec, op, field), figure(rk_rec, op, field)
            label = name if op in ("total",) or name == "throughput" else "%s %s" % (op, name)
            lines.append("| %s | %s (%s) | %s | %s | %s | %s |" % (
                entry.key, label, unit, fmt(zk, unit), fmt(rk, unit), ratio_text(zk, rk),
                "> 1" if higher else "< 1"))
        for rec in (zk_rec, rk_rec):
            if rec is not None and (rec["status"] != 0 or rec["report"] is None
                                    or rec["report"]["verification_errors"] or rec["report"]["errors"]):
                rep = rec["report"] or {}
                lines.append("| %s | **%s: status %s, errors %s, verification_errors %s** | | | | |" % (
                    entry.key, rec["server"], rec["status"], rep.get("errors"),
                    rep.get("verification_errors")))
    lines.append("")
    lines.append("Against the hardware (same run):")
    lines.append("")
    lines.append("| figure | value |")
    lines.append("| --- | ---: |")
    disk, loop = probes.get("disk"), probes.get("loopback")
    if disk:
        lines.append("| disk: 4 KiB write + fdatasync, rate (syncs/s) | %s |" % fmt(disk["ops_per_second"], "ops/s"))
        lines.append("| disk: fdatasync latency p50 / p99 (us) | %s / %s |" % (
            fmt(disk["p50_us"], "us"), fmt(disk["p99_us"], "us")))
    if loop:
        lines.append("| loopback TCP round trip p50 / p99 (us) | %s / %s |" % (
            fmt(loop["p50_us"], "us"), fmt(loop["p99_us"], "us")))
    for row in batch_rows:
        lines.append("| %s | %s |" % row)
    lines.append("")
    return "\n".join(lines) + "\n"


def batch_rows(results, probes):
    """Writes per sync: measured from mntr where the server exposes a sync count, and, for
    comparison, the lower bound any server must reach: throughput / the disk's sync rate."""
    rows = []
    by = {(r["entry"], r["server"]): r for r in results["runs"]}
    disk = probes.get("disk")
    for key in ("set-32x16", "set-64x16"):
        for name in SERVERS:
            rec = by.get((key, name))
            if rec is None or rec["report"] is None:
                continue
            c = rec["commit"]
            if c["syncs"] and c["transactions"] is not None:
                measured = "%.1f transactions per log sync (%s; %d transactions / %d syncs over the whole rk-bench process, setup and cleanup included)" % (
                    c["transactions"] / c["syncs"], c["sync_source"], c["transactions"], c["syncs"])
            elif name == "ringkeeper":
                measured = "not measured: mntr shows no ringkeeper_txnlog_batches / ringkeeper_txnlog_records"
            else:
                measured = "not measured: mntr shows no fsync count"
            rows.append(("%s %s: group-commit batch size" % (LABEL[name], key), measured))
            if disk and disk["ops_per_second"]:
                rows.append(("%s %s: writes/s / disk syncs/s (batch size needed at the probe's sync rate)" % (
                    LABEL[name], key), "%.1f" % (rec["report"]["ops_per_second"] / disk["ops_per_second"])))
    return rows


# ---------------------------------------------------------------- SVG plots

COLOURS = {"zookeeper": "#d95f02", "ringkeeper": "#1b6ac9"}
W, H = 720, 440
ML, MR, MT, MB = 80, 170, 40, 60


def esc(text):
    return str(text).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def svg_frame(title, xlabel, ylabel):
    return ['<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" viewBox="0 0 %d %d" '
            'font-family="sans-serif" font-size="12">' % (W, H, W, H),
            '<rect width="100%" height="100%" fill="white"/>',
            '<text x="%d" y="22" font-size="15" font-weight="bold">%s</text>' % (ML, esc(title)),
            '<text x="%d" y="%d" text-anchor="middle">%s</text>' % (ML + (W - ML - MR) / 2, H - 15, esc(xlabel)),
            '<text x="18" y="%d" text-anchor="middle" transform="rotate(-90 18 %d)">%s</text>' % (
                MT + (H - MT - MB) / 2, MT + (H - MT - MB) / 2, esc(ylabel))]


def axis_ticks(lo, hi, log):
    if log:
        ticks = []
        e = math.floor(math.log10(lo))
        while 10 ** e <= hi * 1.0001:
            for m in (1, 2, 5):
                v = m * 10 ** e
                if lo <= v <= hi:
                    ticks.append(v)
            e += 1
        return ticks
    # A "nice" step (1, 2 or 5 times a power of ten) giving 4 to 10 ticks.
    raw = max(hi - lo, 1e-9) / 6
    base = 10 ** math.floor(math.log10(raw))
    step = min((m * base for m in (1, 2, 5, 10)), key=lambda c: abs(c - raw))
    v, ticks = math.ceil(lo / step) * step, []
    while v <= hi + 1e-9:
        ticks.append(v)
        v += step
    return ticks


def tick_label(v):
    if v >= 1e4 and v == int(v) and v % 1024 == 0 and math.log2(v) == int(math.log2(v)):
        return "%d" % v
    if v >= 1e6:
        return "%gM" % (v / 1e6)
    if v >= 1e4:
        return "%gk" % (v / 1e3)
    return "%g" % v


def plot(path, title, xlabel, ylabel, series, xlog, ylog, xrange_=None, yrange=None,
         xticks=None, vlines=()):
    """series: [(label, colour, dashed, [(x, y)])]; vlines: [(x, label)]."""
    xs = [x for s in series for x, _ in s[3]] + [v for v, _ in vlines]
    ys = [y for s in series for _, y in s[3]]
    if not xs or not ys:
        return False
    x0, x1 = xrange_ or (min(xs), max(xs))
    y0, y1 = yrange or (0 if not ylog else min(ys), max(ys) * 1.08)
    if xlog and not xticks:
        x0, x1 = 10 ** math.floor(math.log10(x0)), 10 ** math.ceil(math.log10(x1))
    elif xlog:
        x0, x1 = min(xticks) / 1.5, max(xticks) * 1.5
    pw, ph = W - ML - MR, H - MT - MB

    def sx(x):
        if xlog:
            return ML + (math.log10(x) - math.log10(x0)) / (math.log10(x1) - math.log10(x0)) * pw
        return ML + (x - x0) / ((x1 - x0) or 1) * pw

    def sy(y):
        if ylog:
            return MT + ph - (math.log10(y) - math.log10(y0)) / (math.log10(y1) - math.log10(y0)) * ph
        return MT + ph - (y - y0) / ((y1 - y0) or 1) * ph

    out = svg_frame(title, xlabel, ylabel)
    for v in (xticks or axis_ticks(x0, x1, xlog)):
        out.append('<line x1="%.1f" y1="%d" x2="%.1f" y2="%d" stroke="#ddd"/>' % (sx(v), MT, sx(v), MT + ph))
        out.append('<text x="%.1f" y="%d" text-anchor="middle">%s</text>' % (sx(v), MT + ph + 16, tick_label(v)))
    for v in axis_ticks(y0, y1, ylog):
        out.append('<line x1="%d" y1="%.1f" x2="%d" y2="%.1f" stroke="#ddd"/>' % (ML, sy(v), ML + pw, sy(v)))
        out.append('<text x="%d" y="%.1f" text-anchor="end">%s</text>' % (ML - 6, sy(v) + 4, tick_label(v)))
    out.append('<rect x="%d" y="%d" width="%d" height="%d" fill="none" stroke="#333"/>' % (ML, MT, pw, ph))
    for v, label in vlines:
        if x0 <= v <= x1:
            out.append('<line x1="%.1f" y1="%d" x2="%.1f" y2="%d" stroke="#777" stroke-dasharray="2,3"/>' % (
                sx(v), MT, sx(v), MT + ph))
            out.append('<text x="%.1f" y="%d" fill="#555" font-size="10" transform="rotate(-90 %.1f %d)">%s</text>' % (
                sx(v) - 3, MT + ph - 4, sx(v) - 3, MT + ph - 4, esc(label)))
    for i, (label, colour, dashed, points) in enumerate(series):
        pts = [(sx(x), sy(y)) for x, y in points if (not xlog or x > 0) and (not ylog or y > 0)]
        if not pts:
            continue
        out.append('<polyline fill="none" stroke="%s" stroke-width="2"%s points="%s"/>' % (
            colour, ' stroke-dasharray="6,4"' if dashed else "",
            " ".join("%.1f,%.1f" % p for p in pts)))
        if len(pts) <= 12:
            for p in pts:
                out.append('<circle cx="%.1f" cy="%.1f" r="3.5" fill="%s"/>' % (p[0], p[1], colour))
        ly = MT + 10 + 20 * i
        out.append('<line x1="%d" y1="%d" x2="%d" y2="%d" stroke="%s" stroke-width="2"%s/>' % (
            W - MR + 12, ly, W - MR + 36, ly, colour, ' stroke-dasharray="6,4"' if dashed else ""))
        out.append('<text x="%d" y="%d">%s</text>' % (W - MR + 42, ly + 4, esc(label)))
    out.append("</svg>")
    Path(path).write_text("\n".join(out) + "\n")
    return True


def make_plots(out, results, probes):
    by = {(r["entry"], r["server"]): r for r in results["runs"]}
    made = []
    series = []
    for name in SERVERS:
        pts = []
        for outstanding, key in WRITE_SERIES:
            v = figure(by.get((key, name)), "total", "ops_per_second")
            if v:
                pts.append((outstanding, v))
        series.append((LABEL[name], COLOURS[name], False, pts))
    if plot(out / "throughput-vs-outstanding.svg", "setData throughput vs requests in flight",
            "requests in flight (sessions x outstanding per session), log scale", "ops/s", series,
            xlog=True, ylog=False, xticks=[o for o, _ in WRITE_SERIES]):
        made.append("throughput-vs-outstanding.svg")
    for op in ("set", "get"):
        series, vlines = [], []
        for key, dashed in (("%s-32x16" % op, False), ("%s-1x1" % op, True)):
            for name in SERVERS:
                rec = by.get((key, name))
                cdf = None
                if rec and rec["report"]:
                    for row in rec["report"]["latencies"]:
                        if row["op"] == op:
                            cdf = row.get("cdf_us")
                if cdf:
                    series.append(("%s %s" % (LABEL[name], key.split("-")[1]), COLOURS[name], dashed,
                                   [(max(v, 1.0), q) for q, v in cdf]))
        probe = probes.get("disk" if op == "set" else "loopback")
        if probe:
            vlines.append((probe["p50_us"], "%s p50" % ("fdatasync" if op == "set" else "loopback RTT")))
        if plot(out / ("latency-cdf-%s.svg" % op), "%sData latency CDF" % op,
                "latency (us, log scale)", "fraction of requests", series, xlog=True, ylog=False,
                yrange=(0, 1.0), vlines=vlines):
            made.append("latency-cdf-%s.svg" % op)
    return made


# ---------------------------------------------------------------- main

def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", help="output directory (default bench/results/<timestamp>)")
    parser.add_argument("--data-root", help="directory for both dataDirs (default OUT/data); "
                        "put it on the disk under test")
    parser.add_argument("--duration", default="6s", help="measured window per run [6s]")
    parser.add_argument("--warmup", default="2s", help="unrecorded load before each window [2s]")
    parser.add_argument("--server-warmup", default="10s",
                        help="unrecorded set and get load per server before the matrix [10s]")
    parser.add_argument("--quick", action="store_true",
                        help="1 s windows, 0.5 s warm-ups: checks the harness, not the servers")
    parser.add_argument("--force-sync", choices=("yes", "no"), default="yes")
    parser.add_argument("--zk-heap-mb", type=int, default=ZK_HEAP_MB_DEFAULT,
                        help="ZooKeeper's heap (reference-zk.sh server profile) [1000]")
    parser.add_argument("--only", help="comma-separated matrix entries to run (default all)")
    parser.add_argument("--no-build", action="store_true")
    parser.add_argument("--keep-data", action="store_true", help="keep the servers' data dirs")
    args = parser.parse_args()
    args.duration_s = parse_seconds(args.duration)
    args.warmup_s = parse_seconds(args.warmup)
    server_warmup_s = parse_seconds(args.server_warmup)
    if args.quick:
        args.duration_s, args.warmup_s, server_warmup_s = 1.0, 0.5, 1.0
    matrix = MATRIX
    if args.only:
        wanted = set(args.only.split(","))
        matrix = [e for e in MATRIX if e.key in wanted]
        if not matrix:
            parser.error("--only matches no entry of %s" % ", ".join(e.key for e in MATRIX))

    target = Path(os.environ.get("CARGO_TARGET_DIR", REPO / "target")).resolve() / "release"
    if not args.no_build:
        print("== cargo build --release --bins", flush=True)
        subprocess.run(["cargo", "build", "--release", "--bins"], cwd=str(REPO), check=True)
    rk_bench, ringkeeper = target / "rk-bench", target / "ringkeeper"
    for b in (rk_bench, ringkeeper):
        if not b.exists():
            sys.exit("%s missing: build with cargo build --release --bins" % b)
    if not Path("/usr/share/java/zookeeper.jar").exists():
        sys.exit("Apache ZooKeeper not installed (apt-get install zookeeper)")

    stamp = datetime.datetime.now().strftime("%Y%m%d-%H%M%S")
    out = Path(args.out or REPO / "bench" / "results" / stamp).resolve()
    (out / "runs").mkdir(parents=True, exist_ok=True)
    data_root = Path(args.data_root or out / "data").resolve()
    data_root.mkdir(parents=True, exist_ok=True)
    host = preflight.describe_host(str(data_root))
    findings = preflight.checks(str(data_root), str(data_root))
    (out / "host.json").write_text(json.dumps({"host": host, "preflight": [
        dict(zip(("check", "found", "verdict", "advice"), f)) for f in findings]}, indent=2) + "\n")
    print("== host: %d CPUs, %s MiB, kernel %s, %s, load %s" % (
        host["nproc"], host["memory_mib"], host["kernel"], host["disk"], host["load_average"]), flush=True)
    results = {"started": datetime.datetime.now().isoformat(timespec="seconds"),
               "data_root": str(data_root), "host": host, "runs": [], "warmup_runs": []}

    print("== probes (servers not yet started): disk fdatasync in %s, loopback ping-pong" % data_root,
          flush=True)
    probes = {}
    probe_s = "1s" if args.quick else "5s"
    for kind, extra in (("disk", ["--dir", str(data_root)]), ("loopback", [])):
        path = out / ("probe-%s.json" % kind)
        r = subprocess.run([str(rk_bench), "probe", kind, "--duration", probe_s, "--json", str(path)] + extra,
                           capture_output=True, text=True, timeout=120)
        print("  " + (r.stdout or r.stderr).strip(), flush=True)
        if r.returncode == 0:
            probes[kind] = json.loads(path.read_text())

    servers = {}
    try:
        for name in SERVERS:
            servers[name] = Server(name, data_root, free_port(), args.force_sync, ringkeeper,
                                   args.zk_heap_mb)
            servers[name].start()
        # "Zookeeper version: 3.8.0-<git id>, built on ..." -> "3.8.0"
        srvr_first_line = four_letter(servers["zookeeper"].port, "srvr").splitlines()[0]
        results["zk_version"] = srvr_first_line.split(":", 1)[-1].strip().split("-")[0]
        print("== servers: ZooKeeper on 127.0.0.1:%d, ringkeeper on 127.0.0.1:%d" % (
            servers["zookeeper"].port, servers["ringkeeper"].port), flush=True)

        print("== server warm-up (unrecorded): %gs set, %gs get per server" % (
            server_warmup_s, server_warmup_s / 2), flush=True)
        for entry, seconds in ((MATRIX[0], server_warmup_s), (MATRIX[1], server_warmup_s / 2)):
            for name in SERVERS:
                results["warmup_runs"].append(run_bench(rk_bench, servers[name], entry, out, 0,
                                                        seconds, 0.5, tag="-warmup"))

        print("== matrix: %d entries x 2 servers, %gs + %gs each" % (
            len(matrix), args.warmup_s, args.duration_s), flush=True)
        for i, entry in enumerate(matrix, start=1):
            order = SERVERS if i % 2 else tuple(reversed(SERVERS))
            for name in order:
                if not servers[name].alive():
                    raise RuntimeError("%s is not running any more; see %s" % (name, servers[name].log))
                results["runs"].append(run_bench(rk_bench, servers[name], entry, out, i,
                                                 args.duration_s, args.warmup_s))
        # The latency target is set at half of ZooKeeper's peak write throughput: an open-loop
        # run (rk-bench --rate) at that rate against both servers, p99 compared.
        zk_peak = next((figure(r, "total", "ops_per_second") for r in results["runs"]
                        if r["entry"] == "set-32x16" and r["server"] == "zookeeper"), None)
        if zk_peak:
            half = Entry("set-half-zk-peak",
                         "setData, open loop at half of ZooKeeper's set-32x16 throughput "
                         "(%.0f/s), 32 sessions, at most 16 in flight each" % (zk_peak / 2),
                         "set", 32, 16, ["--rate", "%.0f" % (zk_peak / 2)],
                         figures=[tput()] + latencies("set", ("p50_us", "p99_us", "p999_us")))
            matrix = list(matrix) + [half]
            for name in SERVERS:
                results["runs"].append(run_bench(rk_bench, servers[name], half, out,
                                                 len(matrix), args.duration_s, args.warmup_s))
    finally:
        for s in servers.values():
            s.stop()
        for s in servers.values():
            if s.log.exists():
                shutil.copy(s.log, out / s.log.name)
        results["load_after"] = " ".join((preflight.read("/proc/loadavg", "?") or "?").split()[:3])
        if not args.keep_data:
            shutil.rmtree(data_root, ignore_errors=True)

    (out / "results.json").write_text(json.dumps({"results": results, "probes": probes}, indent=2) + "\n")
    table = build_table(matrix, results, probes, host, args, batch_rows(results, probes))
    plots = make_plots(out, results, probes)
    table += "\nPlots: %s\n" % ", ".join(plots)
    (out / "table.md").write_text(table)
    print()
    print(table)
    print("results in %s" % out)
    bad = [r for r in results["runs"] if r["status"] != 0]
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
