"""Sessions (resume, expiry, close, password, timeout negotiation) and multi / multiRead.
Reference: ZooKeeper 3.8 ZooKeeperServer.processConnectRequest / reopenSession,
SessionTrackerImpl, PrepRequestProcessor (multi: first failure, RuntimeInconsistency after it,
nothing applied), FinalRequestProcessor (multiRead)."""

import time

from harness import scenario, Session, expect_event
from rawclient import (EPHEMERAL, PERSISTENT_SEQUENTIAL, op_check, op_create, op_create2,
                       op_create_ttl, op_delete, op_set_data, op_get_data, op_get_children)


def sess(c):
    return Session(c.session_id)


# ---------------------------------------------------------------- sessions

@scenario
def test_negotiated_timeout_is_clamped(env):
    """The negotiated timeout is clamped to [minSessionTimeout, maxSessionTimeout] = [2, 20]
    ticks = [4000, 40000] ms with tickTime 2000."""
    got = {}
    for asked in (1, 1000, 4000, 10000, 40000, 100000):
        c = env.raw(timeout_ms=asked)
        got[asked] = c.negotiated_timeout_ms
        c.close()
    env.rec("timeouts", got)
    assert got == {1: 4000, 1000: 4000, 4000: 4000, 10000: 10000, 40000: 40000, 100000: 40000}


@scenario
def test_connect_response_fields(env):
    """ConnectResponse: protocolVersion 0, a 16-byte password, readOnly false."""
    c = env.raw()
    env.rec("connect", c.protocol_version, len(c.passwd), c.read_only, sess(c))
    assert c.protocol_version == 0 and len(c.passwd) == 16 and c.read_only is False
    assert c.session_id != 0


@scenario
def test_session_resume_keeps_ephemerals(env):
    """Reconnecting with the session id and password on a new TCP connection resumes the same
    session: the ephemeral stays and keeps its owner."""
    c = env.raw()
    c.create(env.path("e"), flags=EPHEMERAL)
    c.drop()
    r = env.raw(session_id=c.session_id, passwd=c.passwd)
    env.rec("resumed", sess(r), r.expired, sess(c))
    assert r.session_id == c.session_id and not r.expired
    st = env.rec("owner", r.exists(env.path("e"))).value
    assert st.ephemeralOwner == c.session_id
    env.rec("ephemerals", r.get_ephemerals(env.base))


@scenario
def test_wrong_password_is_expired(env):
    """A reconnect with the right session id but a wrong password gets timeout 0 / session 0
    (the client reports session expired) and the connection is closed. Observed on 3.8.0: the
    server first closes the session's existing connection (processConnectRequest closes the
    old cnxn before checking the password), but the session itself stays alive and can be
    resumed with the right password."""
    c = env.raw()
    c.create(env.path("e"), flags=EPHEMERAL)
    bad = bytes(b ^ 0xFF for b in c.passwd)
    r = env.raw(session_id=c.session_id, passwd=bad)
    env.rec("connect", r.negotiated_timeout_ms, sess(r), r.expired)
    assert r.expired and r.negotiated_timeout_ms == 0
    assert r.closed.wait(5)
    assert c.closed.wait(5), "original connection was not closed"
    good = env.raw(session_id=c.session_id, passwd=c.passwd)
    env.rec("resume", good.expired, sess(good))
    assert not good.expired
    assert env.rec("ephemeral", good.exists(env.path("e"))).err == "OK"


@scenario
def test_unknown_session_is_expired(env):
    r = env.raw(session_id=0x1234567, passwd=b"\x00" * 16)
    env.rec("connect", r.negotiated_timeout_ms, r.session_id)
    assert r.expired
    assert r.closed.wait(5)


@scenario
def test_close_session_deletes_ephemerals_and_fires_watches(env):
    """closeSession (-11) deletes the session's ephemerals in one transaction and fires their
    watches for other clients (NodeDeleted, NodeChildrenChanged on the parent)."""
    c, w = env.raw(), env.raw()
    c.create(env.path("e1"), flags=EPHEMERAL)
    c.create(env.path("e2"), flags=EPHEMERAL)
    w.exists(env.path("e1"), watch=True)
    w.get_data(env.path("e2"), watch=True)
    w.get_children(env.base, watch=True)
    r = env.rec("close", c.close())
    assert r.err == "OK"
    got = sorted((e.type, e.path) for e in w.events_after_barrier())
    env.rec("events", got)
    assert got == sorted([("NodeDeleted", env.path("e1")), ("NodeDeleted", env.path("e2")),
                          ("NodeChildrenChanged", env.base)])
    env.rec("gone", w.exists(env.path("e1")), w.get_children2(env.base))


@scenario
def test_close_session_from_second_connection_expires_the_first(env):
    """Opening a second connection with the same id/password and closing it closes the session:
    the first connection is closed by the server and its ephemerals are gone."""
    c, w = env.raw(), env.raw()
    c.create(env.path("e"), flags=EPHEMERAL)
    w.exists(env.path("e"), watch=True)
    twin = env.raw(session_id=c.session_id, passwd=c.passwd)
    env.rec("twin-close", twin.close())
    ev = env.rec("event", expect_event(w))
    assert (ev.type, ev.path) == ("NodeDeleted", env.path("e"))
    assert c.closed.wait(5), "the first connection of the closed session is still open"
    again = env.raw(session_id=c.session_id, passwd=c.passwd)
    env.rec("reconnect", again.expired)
    assert again.expired


@scenario
def test_session_expires_without_pings(env):
    """A session that sends nothing for its timeout (4000 ms, the minimum) expires: its
    ephemeral is deleted and watchers get NodeDeleted; reconnecting is refused as expired."""
    c = env.raw(timeout_ms=4000, ping=False)
    w = env.raw()
    c.create(env.path("e"), flags=EPHEMERAL)
    w.exists(env.path("e"), watch=True)
    t0 = time.monotonic()
    ev = expect_event(w, timeout_s=15)
    elapsed = time.monotonic() - t0
    env.rec("event", ev)
    assert (ev.type, ev.path) == ("NodeDeleted", env.path("e"))
    assert 3.0 < elapsed < 12.0, elapsed
    assert c.closed.wait(5)
    again = env.raw(session_id=c.session_id, passwd=c.passwd)
    assert env.rec("reconnect-expired", again.expired)


@scenario
def test_requests_after_close_session_are_refused(env):
    """After closeSession the server closes the connection."""
    c = env.raw()
    c.close()
    assert c.closed.is_set()
    env.rec("closed", True)


@scenario
def test_kazoo_session_reconnect_keeps_ephemeral(env):
    """Kazoo: dropping the TCP connection under the client; it reconnects to the same session
    and its ephemeral survives."""
    import socket
    import threading
    from kazoo.protocol.states import KazooState
    k = env.kazoo()
    k.create(env.path("e"), ephemeral=True)
    sid = k.client_id[0]
    back = threading.Event()
    lost = threading.Event()

    def listener(state):
        if state == KazooState.SUSPENDED:
            lost.set()
        elif state == KazooState.CONNECTED and lost.is_set():
            back.set()

    k.add_listener(listener)
    k._connection._socket.shutdown(socket.SHUT_RDWR)
    assert back.wait(15)
    env.rec("same-session", k.client_id[0] == sid)
    st = k.exists(env.path("e"))
    env.rec("ephemeral", st, Session(sid))
    assert st is not None and st.ephemeralOwner == sid


# ---------------------------------------------------------------- multi

@scenario
def test_multi_success_returns_every_result(env):
    """A successful multi answers one result per op, in order: create -> path, create2 ->
    path + stat, setData -> stat, delete and check -> empty; all ops share one zxid."""
    c = env.raw()
    c.create(env.path("old"))
    r = env.rec("multi", c.multi([
        op_create(env.path("a"), b"1"),
        op_create2(env.path("b"), b"22"),
        op_set_data(env.path("a"), b"333", 0),
        op_check(env.path("b"), 0),
        op_delete(env.path("old")),
        op_create(env.path("s-"), flags=PERSISTENT_SEQUENTIAL),
    ]))
    assert r.err == "OK"
    kinds = [x[0] for x in r.value]
    # Observed on 3.8.0: create2 inside multi answers a plain CreateResult (type create, path
    # only, no Stat).
    assert kinds == ["create", "create", "setData", "check", "delete", "create"]
    st_a = r.value[2][1]
    assert st_a.czxid == st_a.mzxid == r.zxid
    env.rec("after", c.get_children2(env.base).value[1])


@scenario
def test_multi_failure_reports_first_error_and_applies_nothing(env):
    """A failing multi: ops before the failing one report error 0 (OK), the failing op its own
    code, later ops RuntimeInconsistency; the reply header err is 0 (observed on 3.8.0); nothing
    is applied."""
    c = env.raw()
    c.create(env.path("x"))
    r = env.rec("multi", c.multi([
        op_create(env.path("new")),
        op_set_data(env.path("x"), b"v", 5),
        op_create(env.path("new2")),
        op_delete(env.path("x")),
    ]))
    assert [x[1] for x in r.value] == ["OK", "BADVERSION", "RUNTIMEINCONSISTENCY",
                                       "RUNTIMEINCONSISTENCY"]
    assert all(x[0] == "error" for x in r.value)
    assert env.rec("new", c.exists(env.path("new"))).err == "NONODE"
    env.rec("x", c.exists(env.path("x")))


@scenario
def test_multi_check_failure(env):
    """check inside multi: a stale version fails the whole multi with BadVersion; a missing
    node fails it with NoNode."""
    c = env.raw()
    c.create(env.path("v"))
    c.set_data(env.path("v"), b"1")
    r1 = env.rec("check-stale", c.multi([op_check(env.path("v"), 0), op_create(env.path("a"))]))
    assert [x[1] for x in r1.value] == ["BADVERSION", "RUNTIMEINCONSISTENCY"]
    r2 = env.rec("check-missing", c.multi([op_create(env.path("a")), op_check(env.path("zz"), 0)]))
    assert [x[1] for x in r2.value] == ["OK", "NONODE"]
    r3 = env.rec("check-ok", c.multi([op_check(env.path("v"), 1), op_create(env.path("a"))]))
    assert r3.err == "OK"


@scenario
def test_multi_sees_its_own_earlier_ops(env):
    """Later ops in a multi see the effects of earlier ones: create a parent then a child, set
    its data with version 0, then delete both."""
    c = env.raw()
    r = env.rec("multi", c.multi([
        op_create(env.path("p")), op_create(env.path("p", "c")),
        op_set_data(env.path("p", "c"), b"x", 0), op_check(env.path("p", "c"), 1),
        op_delete(env.path("p", "c")), op_delete(env.path("p")),
    ]))
    assert r.err == "OK"
    assert env.rec("p", c.exists(env.path("p"))).err == "NONODE"


@scenario
def test_multi_sequential_and_ttl_inside(env):
    """Sequential and TTL creates inside a multi."""
    c = env.raw()
    c.create(env.path("q"))
    r = env.rec("multi", c.multi([
        op_create(env.path("q", "s-"), flags=PERSISTENT_SEQUENTIAL),
        op_create(env.path("q", "s-"), flags=PERSISTENT_SEQUENTIAL),
        op_create_ttl(env.path("q", "t"), ttl=60000),
    ]))
    assert r.value[0][1] == env.path("q", "s-0000000000")
    assert r.value[1][1] == env.path("q", "s-0000000001")


@scenario
def test_empty_multi(env):
    c = env.raw()
    r = env.rec("multi", c.multi([]))
    assert r.err == "OK" and r.value == []


@scenario
def test_multi_ephemeral_under_ephemeral_in_same_multi(env):
    c = env.raw()
    r = env.rec("multi", c.multi([op_create(env.path("e"), flags=EPHEMERAL),
                                  op_create(env.path("e", "c"))]))
    assert [x[1] for x in r.value] == ["OK", "NOCHILDRENFOREPHEMERALS"]


@scenario
def test_multi_read_mixed_results(env):
    """multiRead (22): per-op results; a failing op yields an error result for that op only."""
    c = env.raw()
    c.create(env.path("d"), b"data")
    c.create(env.path("d", "k"))
    r = env.rec("multiRead", c.multi_read([
        op_get_data(env.path("d")), op_get_children(env.path("d")),
        op_get_data(env.path("missing")), op_get_children(env.path("missing")),
        op_get_data(env.path("d", "k")),
    ]))
    assert r.err == "OK"
    assert [x[0] for x in r.value] == ["getData", "getChildren", "error", "error", "getData"]
    assert r.value[2][1] == "NONODE"


@scenario
def test_multi_with_read_op_is_rejected(env):
    """A read op inside a write multi (or a write op inside multiRead): observed result."""
    c = env.raw()
    c.create(env.path("d"))
    env.rec("multi-with-getData", c.multi([op_get_data(env.path("d"))]))
    env.rec("multiRead-with-create", c.multi_read([op_create(env.path("n"))]))
    env.rec("n", c.exists(env.path("n")).err)


@scenario
def test_kazoo_transaction(env):
    """Kazoo's transaction API: committed results and a failing transaction's exceptions."""
    k = env.kazoo()
    t = k.transaction()
    t.create(env.path("a"), b"1")
    t.create(env.path("b"))
    t.set_data(env.path("a"), b"2")
    t.check(env.path("b"), 0)
    env.rec("ok", t.commit())
    t = k.transaction()
    t.create(env.path("c"))
    t.delete(env.path("zz"))
    t.create(env.path("d"))
    res = env.rec("fail", t.commit())
    assert [type(x).__name__ for x in res] == ["RolledBackError", "NoNodeError",
                                               "RuntimeInconsistency"]
    env.rec("c", k.exists(env.path("c")))
