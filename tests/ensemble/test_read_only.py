"""Read-only mode and local sessions, as Apache ZooKeeper 3.9 runs them.

Read-only mode (`-Dreadonlymode.enabled=true`; ZooKeeper Administrator's Guide, "Read Only
Mode"; QuorumPeer.run's LOOKING case starting a ReadOnlyZooKeeperServer): a member that has lost
its quorum serves clients that asked for a read-only connection (the ConnectRequest's readOnly
byte) from the data it has, answers every write with NotReadOnly (ReadOnlyRequestProcessor),
says `ro` to `isro`, and closes every connection once the quorum is back; Kazoo with
read_only=True pings the other servers with `isro` meanwhile and moves to one that says `rw`.
The sessions a read-only server gives are local ones (LearnerSessionTracker with
localSessionsEnabled), so it needs `localSessionsEnabled=true` as ZooKeeper's own
ReadOnlyModeTest sets it.

Local sessions (`localSessionsEnabled`, `localSessionsUpgradingEnabled`; QuorumZooKeeperServer
.checkUpgradeSession, LearnerSessionTracker, LeaderSessionTracker): a new session lives on the
server that made it and nowhere else, until it creates an ephemeral, which first makes it global
(the same id, a createSession through the leader); with upgrading off that create fails with
EphemeralOnLocalSession. A local session's id is unknown to every other server: a client that
reconnects elsewhere finds its session expired.

Every scenario runs on both kinds with the same configuration."""

import subprocess
import sys
import uuid

import pytest
from kazoo.exceptions import NotReadOnlyCallError, ZookeeperError
from kazoo.protocol.states import KazooState, KeeperState

from .harness import REPO, four_letter, wait_until

sys.path.insert(0, str(REPO / "tests" / "compat"))
import rawclient  # noqa: E402  tests/compat/rawclient.py

SERVE_TIMEOUT_S = 60.0
RO_TIMEOUT_S = 30.0
READ_ONLY_FLAGS = ["-Dreadonlymode.enabled=true"]
ZKCLI = "/usr/share/zookeeper/bin/zkCli.sh"
LOCAL = {"localSessionsEnabled": "true"}


def isro(e, sid):
    m = e.members[sid]
    return four_letter(m.host, m.client_port, "isro")


def read_only_ensemble(ensembles, kind, extra_cfg=None):
    e = ensembles(kind, extra_cfg=dict(extra_cfg if extra_cfg is not None else LOCAL))
    for sid in e.ids:
        e.configure(sid, jvm_flags=READ_ONLY_FLAGS)
    e.start()
    e.wait_serving(SERVE_TIMEOUT_S)
    return e


def lose_quorum(e, keep):
    for sid in e.ids:
        if sid != keep:
            e.kill(sid)
    wait_until(lambda: isro(e, keep) == "ro", RO_TIMEOUT_S,
               "server %d to say ro after losing its quorum" % keep)


def test_a_server_without_quorum_serves_read_only_clients(kind, ensembles):
    e = read_only_ensemble(ensembles, kind)
    keep = e.followers()[0]
    root = "/ro-%s" % uuid.uuid4().hex[:8]
    w = ensembles.client(e, keep)
    w.create(root, b"before")
    w.create(root + "/child", b"c")
    assert isro(e, keep) == "rw"
    w.stop()

    lose_quorum(e, keep)
    srvr = four_letter(e.members[keep].host, e.members[keep].client_port, "srvr")
    assert "Mode: read-only" in srvr, srvr

    states = []
    c = ensembles.client(e, keep, read_only=True)
    c.add_listener(states.append)
    assert c.client_state == KeeperState.CONNECTED_RO
    assert c.get(root)[0] == b"before"
    assert c.get_children(root) == ["child"]
    assert c.exists(root + "/child").version == 0
    for write in (lambda: c.create(root + "/new"),
                  lambda: c.set(root, b"after"),
                  lambda: c.delete(root + "/child"),
                  lambda: c.sync(root)):
        with pytest.raises(NotReadOnlyCallError):
            write()
    t = c.transaction()
    t.create(root + "/in-multi")
    with pytest.raises(NotReadOnlyCallError):
        t.commit()
    assert c.get(root)[0] == b"before"

    # On the wire: the ConnectResponse carries readOnly=true; a write answers NotReadOnly
    # (ReadOnlyRequestProcessor), a read the data; closeSession of the local session is OK.
    r = raw(e, keep, read_only=True)
    assert r.read_only is True and not r.expired and r.session_id != 0
    assert r.get_data(root).value[0] == b"before"
    assert r.create(root + "/raw").err == "NOTREADONLY"
    assert r.call(rawclient.op_check(root, 0)).err == "NOTREADONLY"
    assert r.close().err == "OK"

    # zkCli -r (ZooKeeperMain's read-only option, the Java client's canBeReadOnly) reads.
    out = subprocess.run(
        [ZKCLI, "-server", e.address(keep), "-r", "get", root],
        capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL)
    assert "before" in out.stdout.splitlines(), out.stdout + out.stderr

    # A client that did not ask for read-only is refused: the connection closes without a
    # ConnectResponse (ZooKeeper: "Refusing session request for not-read-only client").
    with pytest.raises((rawclient.ConnectionClosed, OSError)):
        raw(e, keep, read_only=False)


def test_a_read_only_client_moves_back_when_the_quorum_returns(kind, ensembles):
    e = read_only_ensemble(ensembles, kind)
    keep = e.followers()[0]
    others = [sid for sid in e.ids if sid != keep]
    root = "/ro-back-%s" % uuid.uuid4().hex[:8]
    w = ensembles.client(e, keep)
    w.create(root, b"v0")
    w.stop()
    lose_quorum(e, keep)

    # Kazoo's pinger asks only the first host of its list (KazooClient's _server_pinger):
    # a revived server comes first, the read-only one second.
    c = ensembles.client(e, hosts=e.connect_string([others[0], keep]), randomize_hosts=False,
                         read_only=True)
    states = []
    c.add_listener(states.append)
    assert c.client_state == KeeperState.CONNECTED_RO
    ro_session = c.client_id[0]
    assert c.get(root)[0] == b"v0"

    e.start([others[0], others[1]])
    wait_until(lambda: c.client_state == KeeperState.CONNECTED, RO_TIMEOUT_S,
               "the read-only client to move to a read-write server")
    c.create(root + "/after", b"rw again")
    assert c.get(root + "/after")[0] == b"rw again"
    print("states", states, "ro session", hex(ro_session), "rw session", hex(c.client_id[0]))
    # The read-only server's session was local to it: the read-write server does not know it,
    # so the client was told its session expired and started a new one.
    assert KazooState.LOST in states
    assert c.client_id[0] != ro_session
    wait_until(lambda: isro(e, keep) == "rw", RO_TIMEOUT_S, "the old server to rejoin")


def raw(e, sid, **kw):
    m = e.members[sid]
    kw.setdefault("call_timeout_s", 5.0)
    return rawclient.RawClient(m.host, m.client_port, **kw)


def test_a_local_session_lives_on_its_server_until_it_creates_an_ephemeral(kind, ensembles):
    e = ensembles(kind, extra_cfg=dict(LOCAL, localSessionsUpgradingEnabled="true")).start()
    e.wait_serving(SERVE_TIMEOUT_S)
    a, b = e.followers()[:2]
    root = "/local-%s" % uuid.uuid4().hex[:8]
    c = raw(e, a)
    assert c.read_only is False
    assert c.create(root, b"from a local session").err == "OK"
    assert c.get_data(root).value[0] == b"from a local session"
    # Another server does not know the local session: resuming it there is answered as an
    # expired session (timeout 0, then the connection closes).
    other = raw(e, b, session_id=c.session_id, passwd=c.passwd)
    assert other.expired and other.negotiated_timeout_ms == 0
    other.close()
    # On its own server it goes on: reads, persistent writes, and a resume there.
    assert c.create(root + "/still").err == "OK"
    again = raw(e, a, session_id=c.session_id, passwd=c.passwd)
    assert not again.expired and again.session_id == c.session_id
    assert again.exists(root + "/still").err == "OK"
    again.close()
    c.close()

    # Its first ephemeral makes it global (same id), after which it resumes anywhere and
    # its ephemeral is on every server.
    d = raw(e, a)
    assert d.create(root + "/eph", b"e", flags=rawclient.EPHEMERAL).err == "OK"
    st = d.exists(root + "/eph")
    assert st.err == "OK" and st.value.ephemeralOwner == d.session_id
    leader = raw(e, e.leader())
    assert leader.call(rawclient.op_sync(root)).err == "OK"
    st = leader.exists(root + "/eph")
    assert st.err == "OK" and st.value.ephemeralOwner == d.session_id
    leader.close()
    moved = raw(e, b, session_id=d.session_id, passwd=d.passwd)
    assert not moved.expired and moved.session_id == d.session_id
    st = moved.exists(root + "/eph")
    assert st.err == "OK" and st.value.ephemeralOwner == d.session_id
    assert moved.create(root + "/from-b", flags=rawclient.EPHEMERAL).err == "OK"
    moved.close()


def test_an_ephemeral_on_a_local_session_fails_when_upgrading_is_off(kind, ensembles):
    """localSessionsUpgradingEnabled is false by default (QuorumPeerConfig)."""
    e = ensembles(kind, extra_cfg=LOCAL).start()
    e.wait_serving(SERVE_TIMEOUT_S)
    root = "/noupgrade-%s" % uuid.uuid4().hex[:8]
    leader = e.leader()
    for sid in (e.followers()[0], leader):
        c = raw(e, sid)
        assert c.create(root).err in ("OK", "NODEEXISTS")
        assert c.create(root + "/eph-%d" % sid,
                        flags=rawclient.EPHEMERAL).err == "EPHEMERALONLOCALSESSION"
        multi = c.call(rawclient.op_multi([
            rawclient.op_create(root + "/m-%d" % sid),
            rawclient.op_create(root + "/me-%d" % sid, flags=rawclient.EPHEMERAL)]))
        # ZooKeeper's follower lets the multi through to the leader, whose prep fails the
        # ephemeral op with SessionExpired (the leader does not know the session); its
        # leader and ringkeeper's members fail it with EphemeralOnLocalSession.
        failing = ("SESSIONEXPIRED" if kind == "zookeeper" and sid != leader
                   else "EPHEMERALONLOCALSESSION")
        assert multi.value == [("error", "OK"), ("error", failing)], multi
        assert c.exists(root + "/eph-%d" % sid).err == "NONODE"
        assert c.exists(root + "/m-%d" % sid).err == "NONODE"
        # The session is still there and still local.
        assert c.create(root + "/persistent-%d" % sid).err == "OK"
        c.close()
