"""Migration from Apache ZooKeeper (issue 13, items 1 and 2): ringkeeper starts on the files
Apache ZooKeeper 3.8 wrote (snapshots, log segments, a log tail after the last snapshot) and
serves the identical tree, with a live session's ephemerals kept and the session resumable with
the password ZooKeeper gave it; and `ringkeeper export-zookeeper` writes a data directory that
ZooKeeper loads into the same tree.

Each scenario drives the real servers in a directory of its own (not the shared fixtures): the
same zoo.cfg serves ZooKeeper, then ringkeeper, as an operator's migration does. snapCount is
lowered so that ZooKeeper writes several snapshots and log segments. The larger run (100k+
nodes) is scripts/zk-migration.sh.
"""

import os
import re
import signal
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

import conftest  # noqa: E402
import rawclient  # noqa: E402
from harness import digest_id  # noqa: E402

from kazoo.client import KazooClient  # noqa: E402
from kazoo.security import ACL, Id, make_digest_acl  # noqa: E402

REPO = Path(__file__).resolve().parents[2]
BINARY = Path(os.environ.get("RINGKEEPER_BIN", REPO / "target" / "release" / "ringkeeper"))
NODES = int(os.environ.get("ZK_MIGRATION_NODES", "3000"))
SNAP_COUNT = int(os.environ.get("ZK_MIGRATION_SNAP_COUNT", "400"))
TIMEOUT_S = 60.0

pytestmark = [
    pytest.mark.skipif(not Path("/usr/share/java/zookeeper.jar").exists(),
                       reason="Apache ZooKeeper not installed (apt-get install zookeeper)"),
    pytest.mark.skipif(not BINARY.exists(), reason="no ringkeeper binary at %s" % BINARY),
]


def zk_script(action, directory, jvm_flags=""):
    env = dict(os.environ, ZK_JVM_FLAGS=(conftest.ZK_JVM_FLAGS + " " + jvm_flags).strip())
    r = subprocess.run([str(REPO / "scripts" / "reference-zk.sh"), action, str(directory)],
                       capture_output=True, text=True, timeout=TIMEOUT_S, env=env)
    assert r.returncode == 0, "reference-zk.sh %s: %s%s" % (action, r.stdout, r.stderr)


def kill9_zk(directory):
    pid = int((directory / "zk.pid").read_text().strip())
    os.kill(pid, signal.SIGKILL)
    # Await the process's end (bounded): waitpid does not apply to a process we did not fork.
    deadline = TIMEOUT_S
    import time
    start = time.monotonic()
    while time.monotonic() - start < deadline:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            break
        time.sleep(0.05)  # polling a pid's exit; no event to await across processes
    (directory / "zk.pid").unlink()


class Ringkeeper:
    def __init__(self, directory, port):
        self.directory, self.port = directory, port
        self.log = directory / "ringkeeper.log"
        logf = open(self.log, "ab")
        self.proc = subprocess.Popen([str(BINARY), "--config", str(directory / "zoo.cfg")],
                                     stdout=logf, stderr=subprocess.STDOUT,
                                     stdin=subprocess.DEVNULL, cwd=str(directory))
        logf.close()
        ok = conftest.wait_imok(port, lambda: self.proc.poll() is None, TIMEOUT_S)
        if not ok:
            self.stop()
            pytest.fail("ringkeeper did not start; log:\n" + self.log.read_text()[-4000:])

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=conftest.STOP_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=conftest.STOP_TIMEOUT_S)


def kazoo(port, auth=()):
    client = KazooClient(hosts="127.0.0.1:%d" % port, timeout=10.0, auth_data=list(auth))
    client.start(timeout=TIMEOUT_S)
    return client


def write_tree(port, nodes=None):
    """A varied tree: ACLs of every scheme, sequentials, containers, TTL nodes, multis, data
    changes and deletes; returns the live raw session (left open) and its ephemerals."""
    zk = kazoo(port, auth=[("digest", "alice:secret")])
    zk.create("/acl")
    zk.create("/acl/digest", b"d", acl=[make_digest_acl("alice", "secret", all=True)])
    zk.create("/acl/auth", b"a", acl=[ACL(31, Id("auth", ""))])
    zk.create("/acl/ip", b"i", acl=[ACL(31, Id("ip", "127.0.0.1")), ACL(1, Id("world", "anyone"))])
    zk.create("/acl/world-read", b"w", acl=[ACL(17, Id("world", "anyone"))])
    zk.create("/acl/mixed", b"x", acl=[ACL(17, Id("digest", digest_id("bob", "pw"))),
                                       ACL(1, Id("ip", "10.0.0.0/8"))])
    zk.create("/acl/super", b"s", acl=[ACL(31, Id("digest", digest_id("super", "test")))])
    zk.set_acls("/acl/world-read", [ACL(3, Id("world", "anyone"))])
    zk.create("/seq")
    for _ in range(20):
        zk.create("/seq/n-", b"s", sequence=True)
    zk.create("/bulk")
    per_dir = 100
    for d in range(max((NODES if nodes is None else nodes) // per_dir, 1)):
        zk.create("/bulk/d%04d" % d, b"dir")
        futures = [zk.create_async("/bulk/d%04d/n%04d" % (d, i), b"x" * (i % 50))
                   for i in range(per_dir)]
        for future in futures:
            future.get(timeout=TIMEOUT_S)
        if d % 5 == 0:
            zk.set("/bulk/d%04d" % d, b"changed %d" % d)
            zk.delete("/bulk/d%04d/n0000" % d)
    for i in range(10):
        t = zk.transaction()
        t.create("/multi-%d" % i, b"m")
        t.create("/multi-%d/child" % i, b"c")
        t.set_data("/bulk", b"multi %d" % i)
        t.commit()
    t = zk.transaction()  # a failed multi: nothing of it applies
    t.create("/never", b"n")
    t.delete("/does-not-exist")
    t.commit()
    raw = rawclient.RawClient("127.0.0.1", port, timeout_ms=30000)
    assert raw.call(rawclient.op_create_container("/container", b"c")).err == "OK"
    assert raw.call(rawclient.op_create("/container/child", b"k")).err == "OK"
    assert raw.call(rawclient.op_create_ttl("/ttl", b"t", ttl=3600 * 1000)).err == "OK"
    assert raw.call(rawclient.op_create_ttl(
        "/ttl-seq-", b"t", flags=rawclient.PERSISTENT_SEQUENTIAL_WITH_TTL, ttl=7200 * 1000)).err == "OK"
    ephemerals = ["/eph-a", "/seq/eph-"]
    assert raw.call(rawclient.op_create("/eph-a", b"e", flags=rawclient.EPHEMERAL)).err == "OK"
    made = raw.call(rawclient.op_create("/seq/eph-", b"e", flags=rawclient.EPHEMERAL_SEQUENTIAL))
    assert made.err == "OK"
    ephemerals[1] = made.value if isinstance(made.value, str) else made.value[0]
    # A log tail after the last snapshot: a few more writes.
    for i in range(5):
        zk.set("/seq", b"tail %d" % i)
    zk.stop()
    zk.close()
    return raw, ephemerals


def read_tree(port):
    """Every node: path -> (data, stat tuple, acls), read as the super user, one level of the
    tree at a time with pipelined (async) requests."""
    zk = kazoo(port, auth=[("digest", "super:test")])
    tree = {}
    level = ["/"]
    while level:
        pending = [(path, zk.get_async(path), zk.get_acls_async(path),
                    zk.get_children_async(path)) for path in level]
        level = []
        for path, got, got_acls, got_children in pending:
            data, stat = got.get(timeout=TIMEOUT_S)
            acls, _ = got_acls.get(timeout=TIMEOUT_S)
            stat_fields = (stat.czxid, stat.mzxid, stat.ctime, stat.mtime, stat.version,
                           stat.cversion, stat.aversion, stat.ephemeralOwner, stat.dataLength,
                           stat.numChildren, stat.pzxid)
            tree[path] = (data, stat_fields,
                          sorted((a.perms, a.id.scheme, a.id.id) for a in acls))
            for child in got_children.get(timeout=TIMEOUT_S):
                level.append(path.rstrip("/") + "/" + child)
    zk.stop()
    zk.close()
    return tree


def assert_same_tree(expected, actual, what):
    missing = sorted(set(expected) - set(actual))
    extra = sorted(set(actual) - set(expected))
    assert not missing and not extra, "%s: missing %s, extra %s" % (what, missing[:10], extra[:10])
    differing = [(path, expected[path], actual[path]) for path in sorted(expected)
                 if expected[path] != actual[path]]
    assert not differing, "%s: %d nodes differ, e.g. %s" % (what, len(differing), differing[:3])


def run_tool(*args):
    r = subprocess.run([str(BINARY), *map(str, args)], capture_output=True, text=True,
                       timeout=TIMEOUT_S)
    return r.returncode, r.stdout, r.stderr


def check_zookeeper_files_with_the_dump_tools(directory, zk_tree):
    """`check`, `dump-log` and `dump-snapshot` read Apache ZooKeeper's own files (what its
    zkTxnLogToolkit and zkSnapShotToolkit print): every node ZooKeeper served is in the newest
    snapshot or created by a txn of the logs, and `check` predicts the import's zxid."""
    version2 = directory / "data" / "version-2"
    code, out, err = run_tool("check", "--config", directory / "zoo.cfg")
    assert code == 0, out + err
    assert "a start would import" in out and "OK:" in out, out
    assert "digests checked" in out, out
    code, log_out, err = run_tool("dump-log", version2, "--data")
    assert code == 0, err
    assert log_out.count("Apache ZooKeeper log ") == len(list(version2.glob("log.*"))), log_out[:500]
    created = set(re.findall(r"create(?:2|Container|TTL)? '([^']+)'", log_out))
    newest = max(version2.glob("snapshot.*"), key=lambda p: int(p.name.split(".")[1], 16))
    code, snap_out, err = run_tool("dump-snapshot", newest)
    assert code == 0, err
    assert snap_out.startswith("Apache ZooKeeper snapshot "), snap_out[:300]
    in_snapshot = set(line for line in snap_out.splitlines() if line.startswith("/"))
    missing = sorted(path for path in zk_tree
                     if path not in in_snapshot and path not in created)
    assert not missing, missing[:10]
    # The txn zxids are ascending within a file, and the last one is the zxid check predicts.
    zxids = [int(z, 16) for z in re.findall(r" zxid (0x[0-9a-f]+) ", log_out)]
    predicted = re.search(r"txns replayed from \d+ log files, zxid (0x[0-9a-f]+)", out)
    assert predicted and zxids and int(predicted.group(1), 16) == max(zxids), (out, zxids[-3:])
    # A damaged ZooKeeper log is named, not a crash.
    damaged = directory / "damaged"
    damaged.mkdir()
    (damaged / "log.1").write_bytes(b"ZKLG" + b"\x00\x00\x00\x07" + b"\xff" * 40)
    code, out, err = run_tool("dump-log", damaged / "log.1")
    assert code != 0 and "log.1" in err and "panicked" not in err, (code, out, err)


@pytest.mark.parametrize("stop", ["clean", "kill9"])
def test_ringkeeper_serves_zookeepers_tree_and_exports_it_back(stop):
    with tempfile.TemporaryDirectory(prefix="rk-zkmig-") as scratch:
        directory = Path(scratch)
        port = conftest.free_port()
        conftest.write_zoo_cfg(directory, port, extra=[
            "snapCount=%d" % SNAP_COUNT, "preAllocSize=1024", "autopurge.purgeInterval=0"])
        zk_script("start", directory)
        raw = None
        try:
            raw, ephemerals = write_tree(port)
            session_id, password = raw.session_id, raw.passwd
            zk_tree = read_tree(port)
        finally:
            if stop == "kill9":
                kill9_zk(directory)
            else:
                zk_script("stop", directory)
        version2 = directory / "data" / "version-2"
        snapshots = sorted(version2.glob("snapshot.*"))
        logs = sorted(version2.glob("log.*"))
        assert len(snapshots) >= 3 and len(logs) >= 3, (snapshots, logs)
        before = {p.name: p.stat().st_mtime_ns for p in version2.iterdir()}
        check_zookeeper_files_with_the_dump_tools(directory, zk_tree)

        rk = Ringkeeper(directory, port)
        try:
            log = rk.log.read_text()
            assert "imported Apache ZooKeeper's state" in log, log[-3000:]
            # ZooKeeper 3.8 writes the tree digest: the import compared it (snapshot and txns).
            checked = re.search(r"(\d+) digests checked", log)
            assert checked and int(checked.group(1)) > 0, log[-3000:]
            assert (directory / "data" / "zookeeper-import").exists()
            # The live session resumes with ZooKeeper's password, its ephemerals still there.
            resumed = rawclient.RawClient("127.0.0.1", port, timeout_ms=30000,
                                          session_id=session_id, passwd=password)
            assert not resumed.expired, "the imported session was refused"
            assert resumed.session_id == session_id
            for path in ephemerals:
                got = resumed.call(rawclient.op_exists(path))
                assert got.err == "OK" and got.value.ephemeralOwner == session_id, (path, got)
            rk_tree = read_tree(port)
            summary = [line for line in log.splitlines() if "imported Apache" in line]
            print("\n[%s stop] %d znodes, %d snapshots, %d logs; %s"
                  % (stop, len(zk_tree), len(snapshots), len(logs), summary[-1]))
            assert_same_tree(zk_tree, rk_tree, "ringkeeper after the import")
            resumed.sock.close()  # the session stays open: it is exported too
        finally:
            if raw is not None:
                raw.close()
            rk.stop()
        # ZooKeeper's files are untouched.
        assert {p.name: p.stat().st_mtime_ns for p in version2.iterdir()} == before

        # Export back, and Apache ZooKeeper loads it into the same tree.
        back = directory / "back"
        back.mkdir()
        r = subprocess.run([str(BINARY), "export-zookeeper", "--config",
                            str(directory / "zoo.cfg"), "--out", str(back / "data")],
                           capture_output=True, text=True, timeout=TIMEOUT_S)
        assert r.returncode == 0, r.stdout + r.stderr
        back_port = conftest.free_port()
        conftest.write_zoo_cfg(back, back_port)
        zk_script("start", back)
        try:
            zk_back = read_tree(back_port)
        finally:
            zk_script("stop", back)
        zk_log = (back / "zk.log").read_text()
        assert "Digests are not matching" not in zk_log, zk_log[-3000:]
        # The session imported from ZooKeeper came along (its ephemerals with it); compare
        # everything else exactly.
        assert_same_tree(rk_tree, zk_back, "ZooKeeper on the export")


@pytest.mark.parametrize("method", ["gz", "snappy"])
def test_ringkeeper_imports_compressed_snapshots(method):
    """ZooKeeper with `zookeeper.snapshot.compression.method` writes `snapshot.<zxid>.gz`
    (gzip) or `.snappy` (snappy-java's stream); ringkeeper reads them as it reads plain ones."""
    flags = "-Dzookeeper.snapshot.compression.method=%s" % method
    with tempfile.TemporaryDirectory(prefix="rk-zkmig-%s-" % method) as scratch:
        directory = Path(scratch)
        port = conftest.free_port()
        conftest.write_zoo_cfg(directory, port, extra=[
            "snapCount=100", "preAllocSize=1024", "autopurge.purgeInterval=0"])
        zk_script("start", directory, flags)
        try:
            raw, _ = write_tree(port, nodes=400)
            raw.close()  # its ephemerals go; the live-session case is the test above
            zk_tree = read_tree(port)
        finally:
            zk_script("stop", directory, flags)
        version2 = directory / "data" / "version-2"
        compressed = sorted(version2.glob("snapshot.*.%s" % method),
                            key=lambda p: int(p.name.split(".")[1], 16))
        assert len(compressed) >= 2, sorted(version2.iterdir())
        rk = Ringkeeper(directory, port)
        try:
            log = rk.log.read_text()
            assert "imported Apache ZooKeeper's state" in log, log[-3000:]
            assert compressed[-1].name in log, log[-3000:]
            code, out, err = run_tool("dump-snapshot", compressed[-1])
            assert code == 0 and out.startswith("Apache ZooKeeper snapshot "), out[:300] + err
            assert_same_tree(zk_tree, read_tree(port), "ringkeeper on %s snapshots" % method)
        finally:
            rk.stop()
