"""rk-bench runs against both servers: each workload completes with operations and without a
single verification error (bench/README.md, "How answers are verified").

This is not a performance test: it asserts that the load generator and the server agree under
pipelined load (FIFO replies per session, versions never going back, a get sent after a write
was acknowledged sees that write, as a standalone ZooKeeper server guarantees), not that
either is fast. About 3 seconds per workload and server.

rk-bench is `$RINGKEEPER_BIN`'s directory's `rk-bench`, else `<repo>/target/release/rk-bench`;
without it the test is skipped with the reason.
"""

import json
import os
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
DURATION = "2.5s"
WARMUP = "0.5s"
# The run's window and warm-up plus setup (1000 keys), cleanup and a loaded machine.
RUN_TIMEOUT_S = 60


def rk_bench_binary():
    candidates = []
    if os.environ.get("RINGKEEPER_BIN"):
        candidates.append(Path(os.environ["RINGKEEPER_BIN"]).resolve().parent / "rk-bench")
    candidates.append(REPO / "target" / "release" / "rk-bench")
    for c in candidates:
        if c.exists():
            return c
    return None


@pytest.mark.parametrize("workload", ["set", "get", "mixed"])
def test_rk_bench_workload_verifies_every_answer(server, workload, tmp_path):
    binary = rk_bench_binary()
    if binary is None:
        pytest.skip("rk-bench not built (cargo build --release --bins, or set RINGKEEPER_BIN "
                    "to a binary with rk-bench beside it)")
    report_path = tmp_path / ("%s-%s.json" % (server.name, workload))
    cmd = [str(binary), "--server", "%s:%d" % (server.host, server.port),
           "--workload", workload, "--sessions", "8", "--outstanding", "8",
           "--duration", DURATION, "--warmup", WARMUP, "--json", str(report_path)]
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=RUN_TIMEOUT_S)
    output = "%s\n%s\n%s" % (" ".join(cmd), r.stdout, r.stderr)
    # Exit status 3 is rk-bench's "answers failed verification"; any nonzero status fails.
    assert r.returncode == 0, output
    report = json.loads(report_path.read_text())
    assert report["verification_errors"] == 0, output
    assert report["errors"] == 0, output
    assert report["sessions_lost"] == 0 and report["connect_failures"] == 0, output
    assert report["operations"] > 0, output
    ops = {row["op"] for row in report["latencies"]}
    expected = {"set": {"set"}, "get": {"get"}, "mixed": {"get", "set"}}[workload]
    assert expected <= ops, output


def test_rk_bench_run_longer_than_its_session_timeout_still_cleans_up(server, tmp_path):
    """8 KB sets at 64 outstanding per session for longer than the session timeout (the
    minimum, 2 x tickTime = 4 s): the load sessions ping and live; the setup and cleanup use a
    session of their own each. rk-bench used to keep its setup session open, idle and
    without pings, through the run: the server expired it after the timeout (both servers do,
    as they must) and the cleanup failed with "server closed the connection"."""
    binary = rk_bench_binary()
    if binary is None:
        pytest.skip("rk-bench not built (cargo build --release --bins, or set RINGKEEPER_BIN "
                    "to a binary with rk-bench beside it)")
    report_path = tmp_path / ("%s-long.json" % server.name)
    cmd = [str(binary), "--server", "%s:%d" % (server.host, server.port),
           "--workload", "set", "--value-size", "8192", "--znodes", "100", "--sessions", "2",
           "--outstanding", "64", "--session-timeout", "4s", "--duration", "6s",
           "--warmup", "0s", "--json", str(report_path)]
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=RUN_TIMEOUT_S)
    output = "%s\n%s\n%s" % (" ".join(cmd), r.stdout, r.stderr)
    assert r.returncode == 0, output
    report = json.loads(report_path.read_text())
    assert report["errors"] == 0 and report["verification_errors"] == 0, output
    assert report["sessions_lost"] == 0 and report["connect_failures"] == 0, output
    assert "rk-bench: removed " in r.stderr, output
    assert "cleanup:" not in r.stderr, output
