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

import pytest

import zk_load

DURATION = "1s"
WARMUP = "0.3s"
# The window and warm-up plus setup (500 keys), cleanup and a loaded machine.
RUN_TIMEOUT_S = 60


@pytest.mark.parametrize("op", ["mixed", "create"])
def test_zk_load_real_client_run_has_no_errors(servers, op, tmp_path):
    server = servers["ringkeeper"]
    if not server.available:
        pytest.skip(server.skip_reason)
    if zk_load.binary() is None:
        pytest.skip(zk_load.SKIP_REASON)
    status, report, output = zk_load.run(
        ["%s:%d" % (server.host, server.port)], tmp_path / ("zk-load-%s.json" % op),
        pids=[server.proc.pid], timeout_s=RUN_TIMEOUT_S, op=op, read_percent=50, sessions=4,
        inflight=4, znodes=500, duration=DURATION, warmup=WARMUP)
    zk_load.assert_clean(status, report, output)
    assert report["server_cpu_us_per_op"] is not None and report["server_cpu_us_per_op"] > 0, output
    ops = {row["op"] for row in report["latencies"]}
    assert ops == ({"get", "set"} if op == "mixed" else {"create"}), output
