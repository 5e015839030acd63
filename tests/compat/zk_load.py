"""Runs zk-load (bench/zk-load: a load generator on the `zookeeper-client` crate, a real
ZooKeeper client library) for the tests, and reads its JSON report.

zk-load is `$RINGKEEPER_BIN`'s directory's `zk-load`, else `<repo>/target/release/zk-load`
(scripts/test.sh builds it with `cargo build --release --workspace --bins`).
"""

import json
import os
import subprocess
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def binary():
    """The zk-load binary, or None when it is not built."""
    candidates = []
    if os.environ.get("RINGKEEPER_BIN"):
        candidates.append(Path(os.environ["RINGKEEPER_BIN"]).resolve().parent / "zk-load")
    candidates.append(REPO / "target" / "release" / "zk-load")
    for c in candidates:
        if c.exists():
            return c
    return None


SKIP_REASON = ("zk-load not built (cargo build --release --workspace --bins, or set "
               "RINGKEEPER_BIN to a binary with zk-load beside it)")


def run(addresses, report_path, pids=(), timeout_s=120, **options):
    """Runs zk-load against `addresses` ("host:port" strings; sessions are dealt over them)
    with `options` (`sessions=8` becomes `--sessions 8`; `no_cleanup=True` becomes the flag
    `--no-cleanup`). Returns (exit status, report or None, the command and its output for an
    assertion message)."""
    cmd = [str(binary()), "--servers", ",".join(addresses)]
    for key, value in options.items():
        if value is True:
            cmd.append("--" + key.replace("_", "-"))
        else:
            cmd += ["--" + key.replace("_", "-"), str(value)]
    for pid in pids:
        cmd += ["--server-pid", str(pid)]
    cmd += ["--json", str(report_path)]
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout_s)
    output = "%s\n%s\n%s" % (" ".join(cmd), r.stdout[-4000:], r.stderr[-4000:])
    report = json.loads(report_path.read_text()) if report_path.exists() else None
    return r.returncode, report, output


def assert_clean(status, report, output):
    """Every request answered, none failed, no session or connection lost."""
    # Exit status 3 is zk-load's "the run had errors"; any nonzero status fails.
    assert status == 0, output
    assert report is not None, output
    assert report["operations"] > 0, output
    assert report["errors"] == 0 and report["errors_by_kind"] == {}, output
    assert report["connect_failures"] == 0 and report["sessions_lost"] == 0, output
    assert report["unanswered_at_end"] == 0 and report["cleanup_errors"] == 0, output
