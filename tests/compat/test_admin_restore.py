"""The AdminServer's `restore` command (ZooKeeper 3.9's Commands.RestoreCommand): a POST whose
body is a snapshot in ZooKeeper's file format replaces the server's state.

A ringkeeper server writes a varied tree, streams it with `snapshot`, changes it, and is
restored from the stream: the tree is the snapshot's again (every path, data, Stat field and
ACL), zxids keep growing, a client whose session the snapshot holds resumes it (its ephemeral
is its own), a client whose session it lacks gets SessionExpired, writes go on, and a restart
recovers the restored state plus the writes after it. A body that is not a snapshot changes
nothing; the auth rule, the size limit, the rate limit (one per admin.rateLimiterIntervalInMS
milliseconds, as ZooKeeper reads it for restore) and admin.restore.enabled=false answer as
ZooKeeper does. ZooKeeper 3.8 has no `restore` (it came with 3.9), so the command is not run
against the reference server.
"""

import http.client
import json
import shutil
import socket
import sys
import tempfile
import threading
import time
from pathlib import Path

import pytest
from kazoo.protocol.states import KazooState

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "scripts"))

import conftest  # noqa: E402
import loopback  # noqa: E402  scripts/loopback.py
import test_zk_migration as migration  # noqa: E402
from conftest import SUPER_PASSWORD, Server  # noqa: E402

TIMEOUT_S = 30.0
SUPER = "digest super:%s" % SUPER_PASSWORD


def request(port, method, path, authorization=None, body=None):
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=TIMEOUT_S)
    try:
        headers = {"Authorization": authorization} if authorization else {}
        connection.request(method, path, body=body, headers=headers)
        reply = connection.getresponse()
        return reply.status, dict(reply.getheaders()), reply.read()
    finally:
        connection.close()


def start_server(tmp, name, extra=()):
    admin_port = conftest.free_port()
    server = Server("ringkeeper", tmp / name, extra_cfg=[
        "admin.enableServer=true", "admin.serverAddress=127.0.0.1",
        "admin.serverPort=%d" % admin_port] + list(extra))
    server.admin_port = admin_port
    server.start()
    if not server.available:
        pytest.skip(server.skip_reason)
    wait_admin(server)
    return server


def wait_admin(server):
    # The AdminServer starts just after the client port answers.
    deadline = time.monotonic() + TIMEOUT_S
    while True:
        try:
            socket.create_connection(("127.0.0.1", server.admin_port), timeout=1.0).close()
            return
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.05)  # polling a port that is not listening yet


def user_tree(port):
    """The tree without /zookeeper, which the server fills in itself."""
    return {path: node for path, node in migration.read_tree(port).items()
            if path != "/zookeeper" and not path.startswith("/zookeeper/")}


def server_zxid(port):
    reply = loopback.four_letter(port, "srvr", timeout_s=5.0)
    for line in reply.splitlines():
        if line.startswith("Zxid:"):
            return int(line.split(":", 1)[1].strip(), 16)
    raise AssertionError("no Zxid in srvr: %r" % reply)


@pytest.fixture
def tmp():
    directory = Path(tempfile.mkdtemp(prefix="ringkeeper-admin-restore-"))
    yield directory
    shutil.rmtree(directory, ignore_errors=True)


def test_restore_puts_the_snapshot_back_and_survives_a_restart(tmp):
    server = start_server(tmp, "rk", ["admin.rateLimiterIntervalInMS=0"])
    raw = None
    clients = []
    try:
        raw, ephemerals = migration.write_tree(server.port, nodes=300)
        keeper = migration.kazoo(server.port)
        clients.append(keeper)
        keeper.create("/kept-eph", b"k", ephemeral=True)
        keeper_session = keeper.client_id[0]
        status, headers, snapshot = request(server.admin_port, "GET", "/commands/snapshot",
                                            SUPER)
        assert status == 200, snapshot
        snapshot_zxid = int(headers["last_zxid"], 16)
        expected = user_tree(server.port)
        assert expected["/kept-eph"][1][7] == keeper_session

        # Changes the restore undoes, and a session the snapshot does not hold.
        late = migration.kazoo(server.port)
        clients.append(late)
        late_states = []
        lost = threading.Event()

        def on_state(state):
            late_states.append(state)
            if state == KazooState.LOST:
                lost.set()
        late.add_listener(on_state)
        late.create("/late-eph", b"l", ephemeral=True)
        writer = migration.kazoo(server.port, auth=[("digest", "alice:secret")])
        clients.append(writer)
        writer.create("/after-snapshot", b"a")
        writer.set("/seq", b"changed after the snapshot")
        writer.delete("/bulk/d0001/n0050")
        before_restore = server_zxid(server.port)
        assert before_restore > snapshot_zxid

        # Not a snapshot: refused, nothing changes.
        status, _, body = request(server.admin_port, "POST", "/commands/restore", SUPER,
                                  b"not a snapshot")
        assert status == 500, body
        assert writer.exists("/after-snapshot") is not None

        status, _, body = request(server.admin_port, "POST", "/commands/restore", SUPER,
                                  snapshot)
        assert status == 200, body
        answer = json.loads(body)
        assert answer["command"] == "restore" and answer["error"] is None, answer
        assert answer["last_zxid"] == snapshot_zxid, answer

        # The session the snapshot lacks is expired on reconnecting.
        assert lost.wait(TIMEOUT_S), late_states
        # The one it holds resumes, its ephemeral still its own.
        keeper.sync("/")
        assert keeper.client_id[0] == keeper_session
        assert keeper.exists("/kept-eph").ephemeralOwner == keeper_session
        restored = user_tree(server.port)
        migration.assert_same_tree(expected, restored, "restored")
        assert server_zxid(server.port) > before_restore, "zxids go back after a restore"

        # Writes go on (the writer's session came after the snapshot: a new one), and a
        # restart recovers the restored state and them.
        writer = migration.kazoo(server.port, auth=[("digest", "alice:secret")])
        clients.append(writer)
        writer.create("/after-restore", b"r")
        for client in clients:
            client.stop()
            client.close()
        clients = []
        raw.close()  # the socket only: the session and its ephemerals live on
        raw = None
        expected_after = user_tree(server.port)
        assert "/after-restore" in expected_after and "/after-snapshot" not in expected_after
        assert ephemerals[0] in expected_after
        server.stop()
        server.start()
        recovered = user_tree(server.port)
        # The raw session lived on through the restart, its ephemerals too.
        migration.assert_same_tree(expected_after, recovered, "after a restart")
    finally:
        for client in clients:
            client.stop()
            client.close()
        if raw is not None:
            raw.close()
        server.stop()


def test_restore_auth_size_rate_and_switch(tmp):
    limited = start_server(tmp, "limited", ["admin.restore.maxBytes=100"])
    disabled = start_server(tmp, "disabled", ["admin.restore.enabled=false"])
    try:
        status, _, body = request(limited.admin_port, "POST", "/commands/restore", None, b"x")
        assert status == 401, body
        assert json.loads(body)["error"] == "Auth info is missing for the command"
        status, _, body = request(limited.admin_port, "GET", "/commands/restore", SUPER)
        assert status == 405, body
        status, _, snapshot = request(limited.admin_port, "GET", "/commands/snapshot", SUPER)
        assert status == 200 and len(snapshot) > 100
        status, _, body = request(limited.admin_port, "POST", "/commands/restore", SUPER,
                                  snapshot)
        assert status == 413, body
        assert "admin.restore.maxBytes" in json.loads(body)["error"]
        # One restore per interval (300000 ms by default), whatever became of the first.
        status, _, body = request(limited.admin_port, "POST", "/commands/restore", SUPER,
                                  snapshot[:50])
        assert status == 429, body
        status, _, body = request(disabled.admin_port, "POST", "/commands/restore", SUPER,
                                  snapshot)
        assert status == 503, body
    finally:
        limited.stop()
        disabled.stop()
