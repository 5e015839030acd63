"""Things the server removes by itself: sessions that time out, empty containers, expired TTL nodes.

Both servers run with `znode.container.checkIntervalMs=1000` (conftest): ZooKeeper's
ContainerManager (and ringkeeper's reaper) looks for candidates once a second instead of once a
minute. ZooKeeper's rules (ContainerManager.getCandidates, 3.8):

* a container is a candidate when it is childless and its cversion > 0, i.e. it has had a child;
  a container that never had one stays (znode.container.maxNeverUsedIntervalMs defaults to 0,
  "never");
* a TTL node is a candidate when it is childless and `now - mtime > ttl`;
* candidates are deleted by a deleteContainer transaction, which fires NodeDeleted and the
  parent's NodeChildrenChanged like a delete.

Absence ("not reaped") is observed after a reaping pass that must have seen the node: a control
node created earlier than the checked one and reaped by the server proves that a pass ran while
the checked node was eligible by age, so its survival is the behaviour, not luck of timing.
"""

import time

from harness import expect_event, scenario
from rawclient import EPHEMERAL, PERSISTENT_WITH_TTL

REAP_TIMEOUT_S = 15.0      # interval 1 s + TTL 1 s + ZooKeeper's timer jitter, with a wide margin
EXPIRY_TIMEOUT_S = 15.0    # session timeout 4 s, expiry wheel ticks of tickTime (2 s)
TTL_MS = 1000


@scenario
def test_session_timeout_expires_silent_client(env):
    """A client that negotiated 4000 ms and then sends nothing (no pings) while keeping its socket
    open is expired by the server (ZooKeeper's SessionTrackerImpl: expiry wheel of tickTime):
    its ephemeral is deleted (NodeDeleted to an exists watch and to a data watch held by two other
    sessions, NodeChildrenChanged to the parent's child watch), the silent connection is closed by
    the server, and a reconnect with the session's id and password is answered as expired
    (timeout 0, session id 0)."""
    silent = env.raw(timeout_ms=4000, ping=False)
    env.rec("negotiated", silent.negotiated_timeout_ms)
    assert silent.negotiated_timeout_ms == 4000
    res = env.rec("create-ephemeral", silent.create2(env.path("e"), b"x", flags=EPHEMERAL))
    assert res.err == "OK" and res.value[1].ephemeralOwner == silent.session_id
    exists_watcher, data_watcher = env.raw(), env.raw()
    env.rec("exists-watch", exists_watcher.exists(env.path("e"), watch=True))
    env.rec("data-watch", data_watcher.get_data(env.path("e"), watch=True))
    env.rec("child-watch", data_watcher.get_children(env.base, watch=True))
    t0 = time.monotonic()
    ev = env.rec("exists-watcher-event", expect_event(exists_watcher, EXPIRY_TIMEOUT_S))
    elapsed_s = time.monotonic() - t0
    assert (ev.type, ev.path) == ("NodeDeleted", env.path("e"))
    # Not before the timeout, and within timeout + two ticks (plus scheduling slack).
    assert 3.5 < elapsed_s < 12.0, "expired after %.1fs" % elapsed_s
    got = sorted((e.type, e.path) for e in [expect_event(data_watcher, 5.0)]
                 + data_watcher.events_after_barrier())
    env.rec("data-watcher-events", got)
    assert got == [("NodeChildrenChanged", env.base), ("NodeDeleted", env.path("e"))]
    env.rec("after-expiry", exists_watcher.exists(env.path("e")),
            exists_watcher.get_children(env.base))
    assert silent.closed.wait(5.0), "the server did not close the expired session's connection"
    again = env.raw(session_id=silent.session_id, passwd=silent.passwd)
    env.rec("reconnect", again.negotiated_timeout_ms, again.session_id, again.expired)
    assert again.expired and again.negotiated_timeout_ms == 0 and again.session_id == 0
    assert again.closed.wait(5.0), "the expired answer was not followed by a close"


@scenario
def test_container_reaped_after_last_child_deleted(env):
    """A container whose last child is deleted is deleted by the server (NodeDeleted to an exists
    watch, NodeChildrenChanged to the parent); a container that never had a child is kept."""
    c, w = env.raw(), env.raw()
    env.rec("never-used", c.create_container(env.path("unused")))
    env.rec("used", c.create_container(env.path("used")))
    env.rec("child", c.create(env.path("used", "x")))
    env.rec("watch", w.exists(env.path("used"), watch=True))
    # While the child exists the container is not a candidate: it survives a pass of the reaper,
    # witnessed by an emptied control container created after it being reaped.
    env.rec("control", c.create_container(env.path("control")))
    env.rec("control-child", c.create(env.path("control", "x")))
    env.rec("control-watch", w.exists(env.path("control"), watch=True))
    env.rec("control-child-delete", c.delete(env.path("control", "x")))
    ev = env.rec("control-reaped", expect_event(w, REAP_TIMEOUT_S))
    assert (ev.type, ev.path) == ("NodeDeleted", env.path("control"))
    # Read on the watching session: a session sees the event before any data newer than it.
    # (Reading through c instead also works on ZooKeeper, whose single tree is updated before
    # the event is sent; that cross-session case is test_visibility.py's subject.)
    children = sorted(w.get_children(env.base).value)
    env.rec("still-there", children)  # sorted: ZooKeeper does not order children
    assert children == ["unused", "used"]
    # Now empty it: reaped within a bounded time.
    env.rec("children-watch", w.get_children(env.base, watch=True))
    env.rec("child-delete", c.delete(env.path("used", "x")))
    got = sorted((e.type, e.path) for e in (expect_event(w, REAP_TIMEOUT_S),
                                            expect_event(w, REAP_TIMEOUT_S)))
    env.rec("reaped", got)
    assert got == [("NodeChildrenChanged", env.base), ("NodeDeleted", env.path("used"))]
    env.rec("gone", c.exists(env.path("used")))
    # The never-used container has been seen by at least two reaping passes and is still there.
    res = env.rec("never-used-kept", c.exists(env.path("unused")))
    assert res.err == "OK"
    assert c.get_children(env.base).value == ["unused"]


@scenario
def test_ttl_node_reaped_once_childless_and_expired(env):
    """A TTL node (PERSISTENT_WITH_TTL, ttl 1000 ms) with a child outlives its TTL; once the child
    is deleted the server deletes it (NodeDeleted), since it is childless and older than its TTL
    (ContainerManager: TTL nodes are candidates only when they have no children)."""
    c, w = env.raw(), env.raw()
    env.rec("ttl", c.create_ttl(env.path("t"), TTL_MS, b"d"))
    env.rec("ttl-child", c.create(env.path("t", "x")))
    env.rec("watch", w.exists(env.path("t"), watch=True))
    # A childless control TTL node created after t: once it is reaped, a pass has run while t
    # was past its TTL too.
    env.rec("control", c.create_ttl(env.path("control"), TTL_MS))
    env.rec("control-watch", w.exists(env.path("control"), watch=True))
    ev = env.rec("control-reaped", expect_event(w, REAP_TIMEOUT_S))
    assert (ev.type, ev.path) == ("NodeDeleted", env.path("control"))
    res = env.rec("kept-with-child", c.exists(env.path("t")))
    assert res.err == "OK"
    env.rec("child-delete", c.delete(env.path("t", "x")))
    ev = env.rec("reaped", expect_event(w, REAP_TIMEOUT_S))
    assert (ev.type, ev.path) == ("NodeDeleted", env.path("t"))
    assert env.rec("gone", c.exists(env.path("t"))).err == "NONODE"


@scenario
def test_ttl_node_kept_alive_by_modification(env):
    """The TTL counts from the last modification (mtime): a TTL node whose data is set every
    200 ms outlives several TTLs while unmodified control nodes of the same TTL are reaped; after
    the writes stop it is reaped as well."""
    c, w = env.raw(), env.raw()
    env.rec("ttl", c.create_ttl(env.path("live"), TTL_MS))
    writes = 0
    for control in ("control1", "control2"):
        # Each control node is created after the previous one was reaped, so the pass that reaps
        # it ran at least TTL_MS after the writes below had started.
        env.rec(control, c.create_ttl(env.path(control), TTL_MS))
        env.rec(control + "-watch", w.exists(env.path(control), watch=True))
        deadline = time.monotonic() + REAP_TIMEOUT_S
        while True:
            assert time.monotonic() < deadline, "%s was not reaped" % control
            res = c.set_data(env.path("live"), b"%d" % writes)
            assert res.err == "OK", "the modified TTL node was reaped: %s" % (res,)
            writes += 1
            ev = w.next_event(0.2)  # the write rate is the point, not a synchronisation
            if ev is not None:
                break
        env.rec(control + "-reaped", ev)
        assert (ev.type, ev.path) == ("NodeDeleted", env.path(control))
    res = c.exists(env.path("live"))
    env.rec("still-alive", res.err)  # the number of writes differs between runs: not recorded
    assert res.err == "OK" and res.value.version == writes
    env.rec("live-watch", w.exists(env.path("live"), watch=True).err)
    ev = env.rec("reaped-after-writes-stop", expect_event(w, REAP_TIMEOUT_S))
    assert (ev.type, ev.path) == ("NodeDeleted", env.path("live"))
