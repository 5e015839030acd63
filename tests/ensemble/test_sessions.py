"""Sessions in an ensemble (ZooKeeper Programmer's Guide, "ZooKeeper Sessions"): a session is
global, so a client moves to another server with its id and keeps its ephemerals; a session
that stops heartbeating expires on the leader's clock and its ephemerals go from every server."""

import json
import select
import subprocess
import sys
import threading
import uuid
from pathlib import Path

from kazoo.protocol.states import KazooState

from .harness import wait_until

SERVE_TIMEOUT_S = 60.0
NSCLIENT = Path(__file__).resolve().parent / "nsclient.py"


def test_session_moves_to_another_server_with_its_ephemeral(kind, ensembles):
    e = ensembles(kind).start()
    e.wait_serving(SERVE_TIMEOUT_S)
    a, b = e.followers()[:2]
    other = e.leader()
    root = "/move-%s" % uuid.uuid4().hex[:8]

    c = ensembles.client(e, hosts=e.connect_string([a, b]), randomize_hosts=False)
    states = []
    lost = threading.Event()

    def listener(state):
        states.append(state)
        if state == KazooState.LOST:
            lost.set()
    c.add_listener(listener)
    assert c.client_id is not None
    session = c.client_id[0]
    c.create(root)
    c.create(root + "/eph", b"mine", ephemeral=True)

    e.kill(a)  # the client was on a (hosts in order, not randomised)
    wait_until(lambda: KazooState.SUSPENDED in states, 20, "the client to notice server %d died" % a)
    wait_until(lambda: c.state == KazooState.CONNECTED, 30, "the client to reconnect to %d" % b)
    assert not lost.is_set(), "the session expired instead of moving"
    assert c.client_id[0] == session, "the client got a new session"
    # the session is the same one: its ephemeral is still there, owned by it, on every server
    assert c.exists(root + "/eph").ephemeralOwner == session
    for sid in (b, other):
        r = ensembles.client(e, sid)
        r.sync(root)
        stat = r.exists(root + "/eph")
        assert stat is not None and stat.ephemeralOwner == session, sid
    c.create(root + "/after-move")  # and it still writes


def test_session_expiry_deletes_ephemerals_on_every_server(kind, ensembles):
    e = ensembles(kind).start()
    e.wait_serving(SERVE_TIMEOUT_S)
    root = "/expiry-%s" % uuid.uuid4().hex[:8]
    admin = ensembles.client(e)
    admin.create(root)
    follower = e.followers()[0]

    # A client in another process, on a follower, with a short session; killed -9 so it never
    # sends closeSession: only expiry can remove its ephemeral.
    proc = subprocess.Popen([sys.executable, str(NSCLIENT), "hold-ephemeral",
                             e.address(follower), root + "/eph", "1.0"],
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        ready, _, _ = select.select([proc.stdout], [], [], 40.0)
        assert ready, "the holding client did not report its session within 40 s"
        line = proc.stdout.readline()
        assert line, "the holding client did not start (exit %s)" % proc.poll()
        held = json.loads(line)
        readers = {sid: ensembles.client(e, sid) for sid in e.ids}
        for sid, r in readers.items():
            r.sync(root)
            stat = r.exists(root + "/eph")
            assert stat is not None and stat.ephemeralOwner == held["session"], sid
    finally:
        proc.kill()
        proc.wait(timeout=10)

    bound_s = held["timeout_ms"] / 1000.0 + 15.0

    def gone_everywhere():
        for r in readers.values():
            r.sync(root)
            if r.exists(root + "/eph") is not None:
                return False
        return True
    wait_until(gone_everywhere, bound_s, "the ephemeral of the dead session to vanish everywhere")
    # the other clients' sessions are untouched
    admin.create(root + "/still-writing")
