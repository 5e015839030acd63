"""zk-load (bench/zk-load: the `zookeeper-client` crate on tokio) against ringkeeper: a short run
completes operations with no error of any kind, and reports the server's CPU per operation.

Not a performance test: it keeps the user's-eye benchmark (bench/client_bench.py) working — a
real client library's requests answered, every answer checked, the run's own setup and cleanup
(create and delete of its keys) succeeding — in a couple of seconds. Apache ZooKeeper is run by
the benchmark itself; here only ringkeeper is under test.

zk-load is `$RINGKEEPER_BIN`'s directory's `zk-load`, else `<repo>/target/release/zk-load`
(scripts/test.sh builds it with `cargo build --release --workspace --bins`); without it the test
is skipped with the reason.
"""

import json
import os
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
DURATION = "1s"
WARMUP = "0.3s"
# The window and warm-up plus setup (500 keys), cleanup and a loaded machine.
RUN_TIMEOUT_S = 60


def zk_load_binary():
    candidates = []
    if os.environ.get("RINGKEEPER_BIN"):
        candidates.append(Path(os.environ["RINGKEEPER_BIN"]).resolve().parent / "zk-load")
    candidates.append(REPO / "target" / "release" / "zk-load")
    for c in candidates:
        if c.exists():
            return c
    return None


@pytest.mark.parametrize("op", ["mixed", "create"])
def test_zk_load_real_client_run_has_no_errors(servers, op, tmp_path):
    server = servers["ringkeeper"]
    if not server.available:
        pytest.skip(server.skip_reason)
    binary = zk_load_binary()
    if binary is None:
        pytest.skip("zk-load not built (cargo build --release --workspace --bins, or set "
                    "RINGKEEPER_BIN to a binary with zk-load beside it)")
    report_path = tmp_path / ("zk-load-%s.json" % op)
    cmd = [str(binary), "--servers", "%s:%d" % (server.host, server.port), "--op", op,
           "--read-percent", "50", "--sessions", "4", "--inflight", "4", "--znodes", "500",
           "--duration", DURATION, "--warmup", WARMUP, "--server-pid", str(server.proc.pid),
           "--json", str(report_path)]
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=RUN_TIMEOUT_S)
    output = "%s\n%s\n%s" % (" ".join(cmd), r.stdout, r.stderr)
    # Exit status 3 is zk-load's "the run had errors"; any nonzero status fails.
    assert r.returncode == 0, output
    report = json.loads(report_path.read_text())
    assert report["operations"] > 0, output
    assert report["errors"] == 0 and report["errors_by_kind"] == {}, output
    assert report["connect_failures"] == 0 and report["sessions_lost"] == 0, output
    assert report["unanswered_at_end"] == 0 and report["cleanup_errors"] == 0, output
    assert report["server_cpu_us_per_op"] is not None and report["server_cpu_us_per_op"] > 0, output
    ops = {row["op"] for row in report["latencies"]}
    assert ops == ({"get", "set"} if op == "mixed" else {"create"}), output
