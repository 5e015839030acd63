"""Overload with large values is slowed, never dropped (issue "Write path"; the rk-bench run of
bench/bigsnap_bench.py that saw its sessions expire under 8 KB writes at 64 outstanding per
session): one session of a real client library (zk-load, the `zookeeper-client` crate) keeps
2,000 creates of 8 KB values in flight, twice globalOutstandingLimit (1000) and twice what the
server takes from one connection, while a second client (Kazoo) reads. Every create is answered
without error and applied (each request slot's znodes are numbered without a gap), no session
is lost, no connection is closed, and the reader is served throughout. Apache ZooKeeper 3.8
does the same by pausing reads from the sockets (NIOServerCnxn.disableRecv); ringkeeper stops
reading the writer's socket frame by frame (net/conn.rs `wait_for_room`) and keeps its session
alive meanwhile (`CoreState::report_touches`).

Both servers are run (differential): a failure on ZooKeeper means the scenario is wrong, not
ringkeeper.
"""

import re
import threading
import time

import pytest

import harness
import zk_load

VALUE_BYTES = 8192
INFLIGHT = 2000
# The reader's bound: a read answered later than this while the writer is held back is a
# reader starved by the writer's backlog (both servers answer within milliseconds).
READ_TIMEOUT_S = 5.0


@pytest.mark.parametrize("kind", harness.TARGETS)
def test_thousands_of_pipelined_8k_creates_are_all_applied_while_a_reader_is_served(
        servers, kind, tmp_path):
    server = servers[kind]
    if not server.available:
        pytest.skip(server.skip_reason)
    if zk_load.binary() is None:
        pytest.skip(zk_load.SKIP_REASON)
    from kazoo.client import KazooClient

    root = "/overload-8k-%s" % kind
    reader = KazooClient(hosts="%s:%d" % (server.host, server.port), timeout=10.0)
    reader.start(timeout=15)
    # Any change after the start (SUSPENDED, LOST) is a lost connection or session.
    states = []
    reader.add_listener(lambda state: states.append(str(state)))
    try:
        reader.create("/overload-8k-reader-%s" % kind, b"r" * VALUE_BYTES)
        stop = threading.Event()
        reads = []
        read_errors = []

        def read_meanwhile():
            while not stop.is_set():
                started = time.monotonic()
                try:
                    data, _ = reader.get("/overload-8k-reader-%s" % kind)
                    assert len(data) == VALUE_BYTES
                    reads.append(time.monotonic() - started)
                except Exception as error:  # reported below, with the writer's output
                    read_errors.append(repr(error))
                    stop.wait(0.1)

        thread = threading.Thread(target=read_meanwhile, daemon=True)
        thread.start()
        try:
            status, report, output = zk_load.run(
                ["%s:%d" % (server.host, server.port)], tmp_path / "overload.json",
                timeout_s=120, op="create", sessions=1, inflight=INFLIGHT,
                value_size=VALUE_BYTES, znodes=1, duration="3s", warmup="0s", root=root,
                no_cleanup=True)
        finally:
            stop.set()
            thread.join(READ_TIMEOUT_S + 5)
        zk_load.assert_clean(status, report, output)
        assert report["operations"] >= INFLIGHT, output
        # Applied: every slot's creates are numbered 0..n-1 with no gap, and together they
        # are at least as many as zk-load counted answered (its count covers the window).
        children = reader.get_children(root + "/c")
        per_slot = {}
        for name in children:
            m = re.fullmatch(r"s(\d+)-(\d+)-(\d+)", name)
            assert m, name
            per_slot.setdefault((m.group(1), m.group(2)), []).append(int(m.group(3)))
        for slot, numbers in per_slot.items():
            numbers.sort()
            assert numbers == list(range(len(numbers))), (slot, numbers[:5], len(numbers))
        assert len(children) >= report["operations"], (len(children), output)
        assert len(per_slot) == INFLIGHT, (len(per_slot), output)
        # The reader was served meanwhile, without losing its connection or session.
        assert not read_errors, (read_errors[:3], output)
        assert reads and max(reads) < READ_TIMEOUT_S, (len(reads), max(reads or [0]), output)
        assert states == [], states
        print("%s: %d creates of %d B answered, %d znodes, %d reads (slowest %.3f s)" % (
            kind, report["operations"], VALUE_BYTES, len(children), len(reads), max(reads)))
    finally:
        cleanup(reader, root)
        try:
            reader.delete("/overload-8k-reader-%s" % kind)
        except Exception:
            pass
        reader.stop()
        reader.close()


def cleanup(client, root):
    """Deletes what the run created (thousands of 8 KB znodes would slow every later test's
    snapshots), pipelined."""
    try:
        children = client.get_children(root + "/c")
    except Exception:
        children = []
    pending = [client.delete_async("%s/c/%s" % (root, name)) for name in children]
    for p in pending:
        p.get(timeout=60)
    for path in ("%s/c" % root, "%s/keys/k0" % root, "%s/keys" % root, root):
        try:
            client.delete(path)
        except Exception:
            pass
