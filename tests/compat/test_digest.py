"""ZooKeeper's tree digest in the live server (issue 12): the `hash` four-letter word and
AdminServer command (DataTree.getDigestLog: an entry every 128 zxids, DigestCommand's
`<hex zxid>: <decimal digest>` lines, Commands.DigestCommand's JSON).

The same deterministic sequence of 383 writes (creates of every mode, sets, deletes, a multi,
writes that fail, which take a zxid too) goes through Kazoo to Apache ZooKeeper 3.8 and to
ringkeeper, both standalone, in one run. ctime and mtime differ between the two servers, so
their digests differ; what must hold:

1. On each server, at zxids 0x80, 0x100 and 0x180, the newest `hash` entry is the digest
   recomputed here in Python (zlib's CRC-32, written from DigestCalculator, independent of
   ringkeeper's code) from the tree that server serves at that moment. On ZooKeeper this checks
   the Python digest against the reference; on ringkeeper, ringkeeper against it.
2. ZooKeeper's own log carries each txn's digest: its `hash` entries equal those of its log at
   the same zxids (`ringkeeper dump-log` prints them), and `ringkeeper check` replays the log
   through ringkeeper's model of ZooKeeper's DataTree and finds every txn digest equal.
3. Both servers' `hash` answers have the same shape (lines, zxids, JSON keys and their order).
4. ringkeeper restarted (snapCount=100: from a snapshot, whose header carries the digest, and
   the log after it) keeps the digests it had for the zxids it replays, and the digest of the
   next 128 boundary is again the one recomputed from its tree.
"""

import http.client
import json
import os
import random
import re
import shutil
import struct
import subprocess
import sys
import tempfile
import zlib
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

import conftest  # noqa: E402
from conftest import Server  # noqa: E402
from harness import four_letter  # noqa: E402

from kazoo.client import KazooClient  # noqa: E402
from kazoo.exceptions import BadVersionError, NoNodeError  # noqa: E402

REPO = Path(__file__).resolve().parents[2]
BINARY = Path(os.environ.get("RINGKEEPER_BIN", REPO / "target" / "release" / "ringkeeper"))
TIMEOUT_S = 30.0
INTERVAL = 128
OPS = 3 * INTERVAL - 1  # the session's createSession is zxid 1: the last op is zxid 0x180

pytestmark = [
    pytest.mark.skipif(not Path("/usr/share/java/zookeeper.jar").exists(),
                       reason="Apache ZooKeeper not installed (apt-get install zookeeper)"),
    pytest.mark.skipif(not BINARY.exists(), reason="no ringkeeper binary at %s" % BINARY),
]


def signed64(value):
    value %= 1 << 64
    return value - (1 << 64) if value >= 1 << 63 else value


def served_digest(client):
    """DigestCalculator over the served tree: CRC-32 of path ("" for the root), data and the
    StatPersisted fields big-endian; nodes under /zookeeper/ count 0; summed mod 2^64. The
    stored cversion is the number of creates: (client cversion + numChildren) / 2
    (DataNode.copyStat)."""
    total = 0
    stack = ["/"]
    while stack:
        path = stack.pop()
        data, stat = client.get(path)
        for child in client.get_children(path):
            stack.append(("/" if path == "/" else path + "/") + child)
        if path.startswith("/zookeeper/"):
            continue
        stored_cversion = (stat.cversion + stat.numChildren) // 2
        fields = struct.pack(">qqqqqiiiq", stat.czxid, stat.mzxid, stat.pzxid, stat.ctime,
                             stat.mtime, stat.version, stored_cversion, stat.aversion,
                             stat.ephemeralOwner)
        name = b"" if path == "/" else path.encode()
        total += zlib.crc32(name + (data or b"") + fields)
    return signed64(total)


def hash_entries(port):
    """The 4lw `hash`, parsed; every line must be `<hex zxid>: <decimal digest>`."""
    text = four_letter("127.0.0.1", port, "hash", timeout_s=TIMEOUT_S)
    entries = []
    for line in text.splitlines():
        match = re.fullmatch(r"([0-9a-f]+): (-?[0-9]+)", line)
        assert match, "hash line %r of %r" % (line, text)
        entries.append((int(match.group(1), 16), int(match.group(2))))
    assert text.endswith("\n") or not text, repr(text)
    return entries


def admin_hash(port):
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=TIMEOUT_S)
    try:
        connection.request("GET", "/commands/hash")
        reply = connection.getresponse()
        assert reply.status == 200
        # Keys in the order the server wrote them.
        return json.loads(reply.read(), object_pairs_hook=lambda pairs: pairs)
    finally:
        connection.close()


def served_zxid(port):
    srvr = four_letter("127.0.0.1", port, "srvr", timeout_s=TIMEOUT_S)
    match = re.search(r"^Zxid: (0x[0-9a-f]+)$", srvr, re.M)
    assert match, srvr
    return int(match.group(1), 16)


def operations():
    """383 writes, each taking one zxid: creates (persistent, sequential, ephemeral), sets,
    deletes, a multi, and some that fail (a set at a wrong version, a delete of a missing
    node: ZooKeeper logs an error txn for each)."""
    rng = random.Random(20261203)
    live = []
    ops = []
    counter = 0
    while len(ops) < OPS:
        roll = rng.random()
        if roll < 0.40 or len(live) < 5:
            counter += 1
            parent = rng.choice(["", ""] + [p for p in live if p.count("/") == 1][:20])
            path = "%s/n%03d" % (parent, counter)
            data = bytes(rng.randrange(256) for _ in range(rng.randrange(0, 40)))
            mode = rng.choice(["persistent"] * 6 + ["ephemeral"])
            if mode == "ephemeral" and parent:
                mode = "persistent"
            ops.append(("create", path, data, mode))
            if mode != "ephemeral":
                live.append(path)
        elif roll < 0.45:
            counter += 1
            ops.append(("sequential", "/seq-", str(counter).encode()))
        elif roll < 0.75:
            path = rng.choice(live)
            ops.append(("set", path, bytes([rng.randrange(256)]) * rng.randrange(1, 30)))
        elif roll < 0.88:
            leaves = [p for p in live if not any(q.startswith(p + "/") for q in live)]
            path = rng.choice(leaves)
            live.remove(path)
            ops.append(("delete", path))
        elif roll < 0.92:
            counter += 1
            ops.append(("multi", "/multi%03d" % counter, rng.choice(live)))
            live.append("/multi%03d" % counter)
        elif roll < 0.96:
            ops.append(("bad_set", rng.choice(live)))
        else:
            ops.append(("bad_delete", "/missing%03d" % rng.randrange(1000)))
    return ops


def run(client, op):
    kind = op[0]
    if kind == "create":
        client.create(op[1], op[2], ephemeral=(op[3] == "ephemeral"))
    elif kind == "sequential":
        client.create(op[1], op[2], sequence=True)
    elif kind == "set":
        client.set(op[1], op[2])
    elif kind == "delete":
        client.delete(op[1])
    elif kind == "multi":
        transaction = client.transaction()
        transaction.create(op[1], b"m")
        transaction.set_data(op[2], b"from a multi")
        results = transaction.commit()
        assert not any(isinstance(r, Exception) for r in results), results
    elif kind == "bad_set":
        with pytest.raises(BadVersionError):
            client.set(op[1], b"never", version=12345)
    elif kind == "bad_delete":
        with pytest.raises(NoNodeError):
            client.delete(op[1])


def drive(server):
    """Runs the writes on `server`; at each 128 boundary checks the served zxid and the
    newest `hash` entry against the recomputed digest. Returns the client (still open),
    the `hash` entries at the end and the digests recomputed at the boundaries."""
    client = KazooClient(hosts="127.0.0.1:%d" % server.port, timeout=10.0)
    client.start(timeout=TIMEOUT_S)
    recomputed = {}
    for index, op in enumerate(operations()):
        run(client, op)
        zxid = index + 2
        if zxid % INTERVAL == 0:
            assert served_zxid(server.port) == zxid, (server.name, op)
            digest = served_digest(client)
            entries = hash_entries(server.port)
            assert entries and entries[-1] == (zxid, digest), (
                "%s: hash %r, recomputed from the served tree %d at zxid %#x"
                % (server.name, entries[-3:], digest, zxid))
            recomputed[zxid] = digest
    return client, hash_entries(server.port), recomputed


def tool(*args):
    r = subprocess.run([str(BINARY), *map(str, args)], capture_output=True, text=True,
                       timeout=TIMEOUT_S * 4)
    return r.returncode, r.stdout, r.stderr


@pytest.fixture
def workdir():
    directory = Path(tempfile.mkdtemp(prefix="ringkeeper-digest-"))
    yield directory
    if not os.environ.get("COMPAT_KEEP_LOGS"):
        shutil.rmtree(directory, ignore_errors=True)


def admin_cfg(port, snap_count=None):
    """The AdminServer on; `snap_count` for ringkeeper only, so that its restart starts from a
    snapshot, while ZooKeeper keeps its whole log after snapshot.0 (every txn digest checked)."""
    extra = ["admin.enableServer=true", "admin.serverAddress=127.0.0.1",
             "admin.serverPort=%d" % port]
    return extra + (["snapCount=%d" % snap_count] if snap_count else [])


def test_hash_digests_are_zookeepers(workdir):
    zk_admin, rk_admin = conftest.free_port(), conftest.free_port()
    zookeeper = Server("zookeeper", workdir / "zookeeper", admin_cfg(zk_admin))
    ringkeeper = Server("ringkeeper", workdir / "ringkeeper", admin_cfg(rk_admin, 100))
    started = []
    try:
        for server in (zookeeper, ringkeeper):
            server.start()
            started.append(server)
        answers = {}
        for server, admin_port in ((zookeeper, zk_admin), (ringkeeper, rk_admin)):
            client, entries, recomputed = drive(server)
            assert [zxid for zxid, _ in entries] == [0x80, 0x100, 0x180], (server.name, entries)
            assert dict(entries) == recomputed, server.name
            document = admin_hash(admin_port)
            assert [key for key, _ in document] == ["digests", "command", "error"], document
            assert dict(document)["command"] == "hash" and dict(document)["error"] is None
            listed = dict(document)["digests"]
            assert [[key for key, _ in entry] for entry in listed] == \
                [["zxid", "digest", "digest_version"]] * 3, listed
            assert [(dict(e)["zxid"], dict(e)["digest"]) for e in listed] == entries
            assert all(dict(e)["digest_version"] == 2 for e in listed)
            mntr = four_letter("127.0.0.1", server.port, "mntr", timeout_s=TIMEOUT_S)
            assert "zk_digest_mismatches_count\t0" in mntr.splitlines(), server.name
            answers[server.name] = (client, entries)
        # Same txns, different times: the digests differ (a sanity check of the comparison).
        assert answers["zookeeper"][1] != answers["ringkeeper"][1]

        # 2. ZooKeeper's log: its txn digests at the boundaries are its `hash` entries, and
        # ringkeeper's model of its DataTree reproduces every txn digest.
        answers["zookeeper"][0].stop()
        zookeeper.stop()
        started.remove(zookeeper)
        version2 = zookeeper.dir / "data" / "version-2"
        code, out, err = tool("dump-log", version2)
        assert code == 0, err
        logged = {int(zxid, 16): signed64(int(digest, 16)) for zxid, digest in
                  re.findall(r" zxid (0x[0-9a-f]+) .* digest=(0x[0-9a-f]+) ", out)}
        # The createSession at zxid 1 leaves the empty tree: its digest is 0x51c6d660.
        assert logged.get(1) == 0x51c6d660, out[:400]
        for zxid, digest in answers["zookeeper"][1]:
            assert logged.get(zxid) == digest, (zxid, digest, logged.get(zxid))
        code, out, err = tool("check", "--config", zookeeper.dir / "zoo.cfg")
        assert code == 0, out + err
        # Every txn that carries a digest is checked (ZooKeeper's error txns carry none).
        checked = re.search(r"(\d+) digests checked", out)
        assert checked and int(checked.group(1)) == len(logged) > OPS - 40, (out, len(logged))

        # 4. ringkeeper restarted: from its snapshot (snapCount=100) and the log after it.
        rk_client, before = answers["ringkeeper"]
        rk_client.stop()  # closeSession: one more txn
        ringkeeper.stop()
        started.remove(ringkeeper)
        snapshots = list((ringkeeper.dir / "data").rglob("snapshot.*"))
        assert snapshots, "snapCount=100 wrote no snapshot"
        ringkeeper.start()
        started.append(ringkeeper)
        log = ringkeeper.log.read_text(errors="replace")
        assert "carries no tree digest" not in log, "a fresh snapshot must carry its digest"
        after = hash_entries(ringkeeper.port)
        for zxid, digest in after:
            if zxid <= 0x180:
                assert (zxid, digest) in before, (zxid, digest, before)
        client = KazooClient(hosts="127.0.0.1:%d" % ringkeeper.port, timeout=10.0)
        client.start(timeout=TIMEOUT_S)
        try:
            client.ensure_path("/after-restart")
            while served_zxid(ringkeeper.port) % INTERVAL != 0:
                client.set("/after-restart", b"%d" % served_zxid(ringkeeper.port))
            zxid = served_zxid(ringkeeper.port)
            entries = hash_entries(ringkeeper.port)
            assert entries[-1] == (zxid, served_digest(client)), (zxid, entries[-3:])
        finally:
            client.stop()
    finally:
        for server in started:
            server.stop()
