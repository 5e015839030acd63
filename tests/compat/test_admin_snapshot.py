"""The AdminServer's `snapshot` command (ZooKeeper 3.9's Commands.SnapshotCommand): with an
Authorization header whose ids hold ALL on `/`, the server's state as a ZooKeeper snapshot file,
with the headers `last_zxid` and `snapshot_size`; `streaming=false` gives the headers and no
body; without auth 401, with auth lacking ALL on `/` 403; one per rate-limit interval (429).

The file it streams is loaded by Apache ZooKeeper 3.8 (from Debian) into the identical tree,
data, Stat fields and ACLs, node by node. ZooKeeper 3.8 itself has no `snapshot` command (it came
with 3.9), so the command is not compared with the reference server; its output is.
"""

import http.client
import json
import shutil
import socket
import sys
import tempfile
import time
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

import conftest  # noqa: E402
import test_zk_migration as migration  # noqa: E402
from conftest import SUPER_PASSWORD, Server  # noqa: E402

from kazoo.security import ACL, Id, make_digest_acl  # noqa: E402

TIMEOUT_S = 30.0


def get(port, path, authorization=None):
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=TIMEOUT_S)
    try:
        headers = {"Authorization": authorization} if authorization else {}
        connection.request("GET", path, headers=headers)
        reply = connection.getresponse()
        return reply.status, dict(reply.getheaders()), reply.read()
    finally:
        connection.close()


@pytest.fixture(scope="module")
def ringkeeper():
    tmp = Path(tempfile.mkdtemp(prefix="ringkeeper-admin-snapshot-"))
    admin_port = conftest.free_port()
    server = Server("ringkeeper", tmp / "ringkeeper", extra_cfg=[
        "admin.enableServer=true", "admin.serverAddress=127.0.0.1",
        "admin.serverPort=%d" % admin_port])
    server.admin_port = admin_port
    try:
        server.start()
        if not server.available:
            pytest.skip(server.skip_reason)
        # The AdminServer starts just after the client port answers.
        deadline = time.monotonic() + TIMEOUT_S
        while True:
            try:
                socket.create_connection(("127.0.0.1", admin_port), timeout=1.0).close()
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.05)  # polling a port that is not listening yet
        yield server
    finally:
        server.stop()
        shutil.rmtree(tmp, ignore_errors=True)


def snapshot_when_allowed(port, query="", authorization="digest super:%s" % SUPER_PASSWORD):
    """The first answer that is not 429 (the limiter allows one per 300 ms by default)."""
    deadline = time.monotonic() + TIMEOUT_S
    while True:
        status, headers, body = get(port, "/commands/snapshot" + query, authorization)
        if status != 429 or time.monotonic() > deadline:
            return status, headers, body
        time.sleep(0.05)  # the rate limiter's interval is wall-clock time; nothing to await


def test_snapshot_needs_all_on_root(ringkeeper):
    status, _, body = get(ringkeeper.admin_port, "/commands/snapshot")
    assert status == 401, body
    assert json.loads(body)["error"] == "Auth info is missing for the command"
    # "/" is world:anyone ALL by default, so any id passes; narrowed to alice, bob does not.
    # (ZooKeeper's checkACL passes an entry sharing any bit with ALL, so world:anyone READ
    # would let bob through too.)
    zk = migration.kazoo(ringkeeper.port, auth=[("digest", "alice:secret")])
    try:
        zk.set_acls("/", [make_digest_acl("alice", "secret", all=True)])
        status, _, body = get(ringkeeper.admin_port, "/commands/snapshot", "digest bob:secret")
        assert status == 403, body
        assert json.loads(body)["error"] == "Not authorized"
        status, _, body = snapshot_when_allowed(ringkeeper.admin_port, "?streaming=false",
                                                "digest alice:secret")
        assert status == 200, body
    finally:
        zk.set_acls("/", [ACL(31, Id("world", "anyone"))])
        zk.stop()
        zk.close()


def test_snapshot_is_rate_limited(ringkeeper):
    first = snapshot_when_allowed(ringkeeper.admin_port, "?streaming=false")
    assert first[0] == 200, first
    status, _, _ = get(ringkeeper.admin_port, "/commands/snapshot?streaming=false",
                       "digest super:%s" % SUPER_PASSWORD)
    assert status == 429


def test_snapshot_streams_a_file_zookeeper_loads(ringkeeper):
    zk = migration.kazoo(ringkeeper.port, auth=[("digest", "alice:secret")])
    try:
        zk.create("/snap")
        zk.create("/snap/digest", b"d", acl=[make_digest_acl("alice", "secret", all=True)])
        zk.create("/snap/ip", b"i", acl=[ACL(31, Id("ip", "127.0.0.1"))])
        for i in range(200):
            zk.create("/snap/n-", b"v%d" % i, sequence=True)
        zk.set("/snap", b"changed")
        zk.create("/snap/eph", b"e", ephemeral=True)
        session_id = zk.client_id[0]
        expected = migration.read_tree(ringkeeper.port)

        status, headers, body = snapshot_when_allowed(ringkeeper.admin_port, "?streaming=false")
        assert status == 200 and json.loads(body)["error"] is None, body
        assert int(headers["snapshot_size"]) > 0
        status, headers, body = snapshot_when_allowed(ringkeeper.admin_port)
        assert status == 200, body
        assert headers["Content-Type"] == "application/octet-stream"
        assert int(headers["snapshot_size"]) == len(body)
        assert body[:4] == b"ZKSN"
        zxid = int(headers["last_zxid"], 16)
        assert zxid >= expected["/snap/eph"][1][0]  # the ephemeral's czxid is in it
    finally:
        zk.stop()
        zk.close()

    with tempfile.TemporaryDirectory(prefix="rk-admin-snapshot-zk-") as scratch:
        directory = Path(scratch)
        version2 = directory / "data" / "version-2"
        version2.mkdir(parents=True)
        (version2 / ("snapshot.%x" % zxid)).write_bytes(body)
        port = conftest.free_port()
        conftest.write_zoo_cfg(directory, port)
        migration.zk_script("start", directory)
        try:
            loaded = migration.read_tree(port)
        finally:
            migration.zk_script("stop", directory)
        log = (directory / "zk.log").read_text(errors="replace")
        assert "Digests are not matching" not in log, log[-3000:]
    # The client's session was closed after the snapshot: its ephemeral is in the file (with
    # the session), as it was in the tree read before.
    assert loaded["/snap/eph"][1][7] == session_id
    migration.assert_same_tree(expected, loaded, "ZooKeeper on ringkeeper's snapshot")
