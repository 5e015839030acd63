"""Watches: one-shot data / exist / child watches for every event type, persistent and
persistent-recursive watches (addWatch), checkWatches / removeWatches, ordering of events before
the reply that caused them, SetWatches after a reconnect. Reference: ZooKeeper 3.8 WatchManager,
WatchManagerOptimized, DataTree.setWatches, FinalRequestProcessor."""

import socket
import threading

from harness import scenario, expect_event
from rawclient import (EPHEMERAL, WATCH_ANY, WATCH_CHILDREN, WATCH_DATA, ADD_WATCH_PERSISTENT,
                       ADD_WATCH_PERSISTENT_RECURSIVE, op_set_data, op_create, op_delete)


def events(env, label, client):
    evs = client.events_after_barrier()
    env.rec(label, [(e.type, e.state, e.path) for e in evs])
    return [(e.type, e.path) for e in evs]


@scenario
def test_data_watch_fires_on_set_data_once(env):
    """getData(watch) fires NodeDataChanged once; a second change without re-registering fires
    nothing."""
    w, o = env.raw(), env.raw()
    o.create(env.path("n"))
    w.get_data(env.path("n"), watch=True)
    o.set_data(env.path("n"), b"1")
    ev = env.rec("event", expect_event(w))
    assert (ev.type, ev.path) == ("NodeDataChanged", env.path("n"))
    o.set_data(env.path("n"), b"2")
    assert events(env, "after", w) == []


@scenario
def test_data_watch_fires_on_delete(env):
    w, o = env.raw(), env.raw()
    o.create(env.path("n"))
    w.get_data(env.path("n"), watch=True)
    o.delete(env.path("n"))
    assert events(env, "events", w) == [("NodeDeleted", env.path("n"))]


@scenario
def test_exists_watch_on_missing_node_fires_created(env):
    """exists(watch) on a missing node answers NoNode and still registers a watch that fires
    NodeCreated."""
    w, o = env.raw(), env.raw()
    assert env.rec("exists", w.exists(env.path("n"), watch=True)).err == "NONODE"
    o.create(env.path("n"))
    assert events(env, "events", w) == [("NodeCreated", env.path("n"))]


@scenario
def test_get_data_on_missing_node_sets_no_watch(env):
    """getData(watch) on a missing node is NoNode and leaves no watch."""
    w, o = env.raw(), env.raw()
    assert env.rec("get", w.get_data(env.path("n"), watch=True)).err == "NONODE"
    o.create(env.path("n"))
    assert events(env, "events", w) == []
    env.rec("check", w.check_watches(env.path("n"), WATCH_DATA))


@scenario
def test_exists_watch_on_existing_node_fires_changed_and_deleted(env):
    w, o = env.raw(), env.raw()
    o.create(env.path("n"))
    w.exists(env.path("n"), watch=True)
    o.set_data(env.path("n"), b"x")
    w.exists(env.path("n"), watch=True)
    o.delete(env.path("n"))
    assert events(env, "events", w) == [("NodeDataChanged", env.path("n")),
                                        ("NodeDeleted", env.path("n"))]


@scenario
def test_child_watch_fires_on_create_and_delete_not_on_data(env):
    """getChildren(watch) fires NodeChildrenChanged for a child created or deleted, not for a
    child's data change nor the parent's own data change; deleting the parent fires
    NodeDeleted on the child watch."""
    w, o = env.raw(), env.raw()
    o.create(env.path("p"))
    o.create(env.path("p", "a"))
    w.get_children(env.path("p"), watch=True)
    o.set_data(env.path("p", "a"), b"x")
    o.set_data(env.path("p"), b"x")
    o.create(env.path("p", "b"))
    first = events(env, "after-create", w)
    assert first == [("NodeChildrenChanged", env.path("p"))]
    w.get_children2(env.path("p"), watch=True)
    o.delete(env.path("p", "b"))
    assert events(env, "after-delete", w) == [("NodeChildrenChanged", env.path("p"))]
    w.get_children(env.path("p"), watch=True)
    o.delete(env.path("p", "a"))
    w.get_children(env.path("p"), watch=True)
    o.delete(env.path("p"))
    assert events(env, "after-parent-delete", w) == [
        ("NodeChildrenChanged", env.path("p")), ("NodeDeleted", env.path("p"))]


@scenario
def test_watch_triggered_once_per_client_even_if_set_twice(env):
    """Registering the same data watch twice (getData and exists) still delivers one event."""
    w, o = env.raw(), env.raw()
    o.create(env.path("n"))
    w.get_data(env.path("n"), watch=True)
    w.exists(env.path("n"), watch=True)
    w.get_data(env.path("n"), watch=True)
    o.set_data(env.path("n"), b"1")
    assert events(env, "events", w) == [("NodeDataChanged", env.path("n"))]


@scenario
def test_event_is_delivered_before_the_reply_that_caused_it(env):
    """A client watching /x that itself sets /x receives the NodeDataChanged notification
    before the setData reply (FinalRequestProcessor triggers watches while applying the txn,
    before it sends the response)."""
    c = env.raw()
    c.create(env.path("x"))
    c.get_data(env.path("x"), watch=True)
    c.get_children(env.base, watch=True)
    n0 = len(c.frames)
    h1 = c.send(op_set_data(env.path("x"), b"1"))
    h2 = c.send(op_create(env.path("y")))
    c.wait(h1), c.wait(h2)
    frames = [(f[0], f[1]) if f[0] == "event" else f for f in c.frames[n0:]]
    env.rec("frames", [(f[0], f[1], f[2]) for f in c.frames[n0:]])
    assert [f[0] for f in frames] == ["event", "reply", "event", "reply"]
    assert frames[0] == ("event", "NodeDataChanged")
    assert frames[2] == ("event", "NodeChildrenChanged")


@scenario
def test_watch_events_of_multi_come_before_its_reply(env):
    """The events of all ops of a multi precede the multi's reply."""
    c = env.raw()
    c.create(env.path("a"))
    c.create(env.path("b"))
    c.get_data(env.path("a"), watch=True)
    c.exists(env.path("b"), watch=True)
    c.get_children(env.base, watch=True)
    n0 = len(c.frames)
    r = c.multi([op_set_data(env.path("a"), b"1"), op_delete(env.path("b")),
                 op_create(env.path("c"))])
    assert r.err == "OK"
    got = c.frames[n0:]
    env.rec("frames", [(f[0], f[1], f[2]) for f in got])
    assert [f[0] for f in got] == ["event", "event", "event", "reply"]


@scenario
def test_check_watches_codes(env):
    """checkWatches (17): OK when a watch of the asked type exists, NoWatcher otherwise (also for
    a missing path); a data watch set by exists on a missing node counts as a data watch."""
    c = env.raw()
    c.create(env.path("n"))
    c.get_data(env.path("n"), watch=True)
    c.get_children(env.path("n"), watch=True)
    c.exists(env.path("missing"), watch=True)
    res = {
        "data": c.check_watches(env.path("n"), WATCH_DATA).err,
        "children": c.check_watches(env.path("n"), WATCH_CHILDREN).err,
        "any": c.check_watches(env.path("n"), WATCH_ANY).err,
        "missing-data": c.check_watches(env.path("missing"), WATCH_DATA).err,
        "missing-children": c.check_watches(env.path("missing"), WATCH_CHILDREN).err,
        "nothing": c.check_watches(env.path("nothing"), WATCH_ANY).err,
        "base-any": c.check_watches(env.base, WATCH_ANY).err,
    }
    env.rec("check", res)
    assert res == {"data": "OK", "children": "OK", "any": "OK", "missing-data": "OK",
                   "missing-children": "NOWATCHER", "nothing": "NOWATCHER",
                   "base-any": "NOWATCHER"}, res
    # Observed on 3.8.0: checkWatches from ANOTHER session answers OK when any session watches
    # the path, while removeWatches from another session is NoWatcher (and removes nothing).
    other = env.raw()
    # 3.9.3 looks the caller's own watches up (WatchManager.containsWatcher via watch2Paths).
    env.versioned("other-check", other.check_watches(env.path("n"), WATCH_DATA).err,
                  "OK", "NOWATCHER")
    assert env.rec("other-remove", other.remove_watches(env.path("n"), WATCH_DATA)).err == "NOWATCHER"
    env.admin.set_data(env.path("n"), b"x")
    assert events(env, "still-fires", c) == [("NodeDataChanged", env.path("n"))]


@scenario
def test_remove_watches_removes_and_sends_no_event(env):
    """removeWatches (18) removes the watch (later changes fire nothing); the server sends no
    notification for the removal (DataWatchRemoved is generated by the Java client locally);
    removing again is NoWatcher."""
    c, o = env.raw(), env.raw()
    c.create(env.path("n"))
    c.get_data(env.path("n"), watch=True)
    c.get_children(env.path("n"), watch=True)
    assert env.rec("rm-children", c.remove_watches(env.path("n"), WATCH_CHILDREN)).err == "OK"
    assert env.rec("rm-children-again", c.remove_watches(env.path("n"), WATCH_CHILDREN)).err == "NOWATCHER"
    o.create(env.path("n", "c"))
    assert events(env, "after-child", c) == []
    assert env.rec("rm-any", c.remove_watches(env.path("n"), WATCH_ANY)).err == "OK"
    o.set_data(env.path("n"), b"x")
    assert events(env, "after-data", c) == []
    assert env.rec("rm-none", c.remove_watches(env.path("n"), WATCH_ANY)).err == "NOWATCHER"


@scenario
def test_invalid_watcher_type_is_marshalling_error(env):
    """Observed on 3.8.0: checkWatches/removeWatches with an unknown watcher type and addWatch
    with an unknown mode answer MarshallingError; the connection stays open."""
    c = env.raw()
    env.rec("check-7", c.check_watches(env.base, 7))
    env.rec("remove-0", c.remove_watches(env.base, 0))
    env.rec("addWatch-5", c.add_watch(env.base, 5))
    assert c.check_watches(env.base, 7).err == "MARSHALLINGERROR"
    assert env.rec("alive", c.exists(env.base)).err == "OK"


@scenario
def test_persistent_watch_fires_repeatedly_and_survives_delete(env):
    """addWatch PERSISTENT: data changes, child changes and deletes of the node itself, every
    time; it stays after the node is deleted and fires NodeCreated when it comes back; no events
    for grandchildren."""
    c, o = env.raw(), env.raw()
    o.create(env.path("n"))
    assert env.rec("addWatch", c.add_watch(env.path("n"), ADD_WATCH_PERSISTENT)).err == "OK"
    o.set_data(env.path("n"), b"1")
    o.set_data(env.path("n"), b"2")
    o.create(env.path("n", "c"))
    o.create(env.path("n", "c", "g"))
    o.delete(env.path("n", "c", "g"))
    o.delete(env.path("n", "c"))
    o.delete(env.path("n"))
    o.create(env.path("n"))
    got = events(env, "events", c)
    assert got == [("NodeDataChanged", env.path("n")), ("NodeDataChanged", env.path("n")),
                   ("NodeChildrenChanged", env.path("n")), ("NodeChildrenChanged", env.path("n")),
                   ("NodeDeleted", env.path("n")), ("NodeCreated", env.path("n"))]
    # ZOOKEEPER-4466 (3.9): watch modes are tracked per path, and checkWatches of type Data or
    # Children asks for a one-shot watch; 3.8 answered OK for a persistent one.
    env.versioned("check", (c.check_watches(env.path("n"), WATCH_DATA).err,
                            c.check_watches(env.path("n"), WATCH_CHILDREN).err),
                  ("OK", "OK"), ("NOWATCHER", "NOWATCHER"))


@scenario
def test_persistent_recursive_watch_sees_subtree_without_child_events(env):
    """addWatch PERSISTENT_RECURSIVE: NodeCreated / NodeDataChanged / NodeDeleted for the node
    and every descendant; no NodeChildrenChanged events."""
    c, o = env.raw(), env.raw()
    o.create(env.path("r"))
    c.add_watch(env.path("r"), ADD_WATCH_PERSISTENT_RECURSIVE)
    o.create(env.path("r", "a"))
    o.create(env.path("r", "a", "b"))
    o.set_data(env.path("r", "a", "b"), b"x")
    o.set_data(env.path("r"), b"y")
    o.delete(env.path("r", "a", "b"))
    o.create(env.path("other"))
    got = events(env, "events", c)
    assert got == [("NodeCreated", env.path("r", "a")), ("NodeCreated", env.path("r", "a", "b")),
                   ("NodeDataChanged", env.path("r", "a", "b")), ("NodeDataChanged", env.path("r")),
                   ("NodeDeleted", env.path("r", "a", "b"))]


@scenario
def test_persistent_watch_and_one_shot_watch_coexist(env):
    """A one-shot data watch and a persistent watch on the same node: the change delivers one
    event (the client-side Java library dispatches to both watchers); the persistent stays."""
    c, o = env.raw(), env.raw()
    o.create(env.path("n"))
    c.add_watch(env.path("n"), ADD_WATCH_PERSISTENT)
    c.get_data(env.path("n"), watch=True)
    o.set_data(env.path("n"), b"1")
    o.set_data(env.path("n"), b"2")
    got = c.events_after_barrier()
    # ZOOKEEPER-4466 (3.9): the one-shot watch is consumed by the first change and the
    # persistent one stays, so both changes notify; 3.8 dropped the persistent watch too.
    env.versioned("events", len(got), 1, 2)


@scenario
def test_remove_persistent_watches(env):
    """removeWatches on a persistent / persistent-recursive watch (observed on 3.8.0, recorded
    as the transcript)."""
    c, o = env.raw(), env.raw()
    o.create(env.path("p"))
    o.create(env.path("r"))
    c.add_watch(env.path("p"), ADD_WATCH_PERSISTENT)
    c.add_watch(env.path("r"), ADD_WATCH_PERSISTENT_RECURSIVE)
    # ZOOKEEPER-4466 (3.9): removeWatches of type Data or Children removes one-shot watches
    # only; 3.8 removed a persistent watch with them.
    env.versioned("rm-p-data", c.remove_watches(env.path("p"), WATCH_DATA).err, "OK", "NOWATCHER")
    env.rec("rm-p-any", c.remove_watches(env.path("p"), WATCH_ANY))
    env.rec("rm-p-again", c.remove_watches(env.path("p"), WATCH_ANY))
    env.versioned("rm-r-children", c.remove_watches(env.path("r"), WATCH_CHILDREN).err,
                  "OK", "NOWATCHER")
    env.rec("rm-r-any", c.remove_watches(env.path("r"), WATCH_ANY))
    o.set_data(env.path("p"), b"1")
    o.create(env.path("r", "x"))
    assert events(env, "after", c) == []


@scenario
def test_add_watch_on_missing_path_then_created(env):
    """addWatch on a path that does not exist is OK (no validation against the tree) and fires
    NodeCreated when it appears."""
    c, o = env.raw(), env.raw()
    assert env.rec("addWatch", c.add_watch(env.path("later"), ADD_WATCH_PERSISTENT)).err == "OK"
    o.create(env.path("later"))
    assert events(env, "events", c) == [("NodeCreated", env.path("later"))]


@scenario
def test_set_watches_after_reconnect_delivers_missed_events(env):
    """SetWatches (101) on a resumed session with relativeZxid = last zxid seen: for each watch
    whose node changed after that zxid the server fires the event at once
    (DataTree.setWatches): data watch on a changed node -> NodeDataChanged, on a deleted node
    -> NodeDeleted, exist watch on a now-existing node -> NodeCreated, child watch on a parent
    whose children changed -> NodeChildrenChanged."""
    c, o = env.raw(), env.raw()
    for n in ("changed", "deleted", "p", "same"):
        o.create(env.path(n))
    last = c.get_data(env.path("same"), watch=False).zxid
    c.drop()
    o.set_data(env.path("changed"), b"x")
    o.delete(env.path("deleted"))
    o.create(env.path("created"))
    o.create(env.path("p", "kid"))
    r = env.raw(session_id=c.session_id, passwd=c.passwd, last_zxid=last)
    assert r.session_id == c.session_id
    res = r.set_watches(last, data=[env.path("changed"), env.path("deleted"), env.path("same")],
                        exist=[env.path("created"), env.path("nothere")],
                        child=[env.path("p")])
    env.rec("setWatches", res.err)
    got = sorted(events(env, "events", r))
    assert got == sorted([("NodeDataChanged", env.path("changed")),
                          ("NodeDeleted", env.path("deleted")),
                          ("NodeCreated", env.path("created")),
                          ("NodeChildrenChanged", env.path("p"))])
    # the watches that did not fire are registered now
    o.set_data(env.path("same"), b"y")
    o.create(env.path("nothere"))
    assert sorted(events(env, "later", r)) == sorted([("NodeDataChanged", env.path("same")),
                                                      ("NodeCreated", env.path("nothere"))])


@scenario
def test_kazoo_connection_drop_resets_watches(env):
    """Kazoo 2.8 does not send SetWatches: on a dropped connection it fires every watcher with a
    NONE event (state CONNECTING) and forgets it; the session itself is resumed. (Server-side
    SetWatches is covered by test_set_watches_after_reconnect_delivers_missed_events.)"""
    from kazoo.protocol.states import KazooState
    k = env.kazoo()
    o = env.raw()
    o.create(env.path("n"), b"0")
    fired = threading.Event()
    seen = []
    k.get(env.path("n"), watch=lambda ev: (seen.append(ev), fired.set()))
    sid = k.client_id[0]
    lost, back = threading.Event(), threading.Event()

    def listener(state):
        if state == KazooState.SUSPENDED:
            lost.set()
        elif state == KazooState.CONNECTED and lost.is_set():
            back.set()

    k.add_listener(listener)
    k._connection._socket.shutdown(socket.SHUT_RDWR)
    assert back.wait(15), "Kazoo did not reconnect"
    assert fired.wait(10)
    env.rec("event", seen[0], k.client_id[0] == sid)
    assert seen[0].type == "NONE" and k.client_id[0] == sid
    k.get(env.path("n"), watch=lambda ev: (seen.append(ev), fired.set()))
    fired.clear()
    o.set_data(env.path("n"), b"1")
    assert fired.wait(5)
    env.rec("after", seen[-1])


@scenario
def test_kazoo_data_and_child_watches(env):
    """Kazoo's watch callbacks see the same event types (CREATED, DELETED, CHANGED, CHILD)."""
    import queue
    k = env.kazoo()
    o = env.raw()
    q = queue.Queue()
    k.exists(env.path("n"), watch=q.put)
    o.create(env.path("n"))
    k.get(env.path("n"), watch=q.put)
    o.set_data(env.path("n"), b"1")
    k.get_children(env.path("n"), watch=q.put)
    o.create(env.path("n", "c"))
    k.exists(env.path("n", "c"), watch=q.put)
    o.delete(env.path("n", "c"))
    got = [q.get(timeout=5) for _ in range(4)]
    env.rec("events", [(e.type, e.state, e.path) for e in got])
    assert [e.type for e in got] == ["CREATED", "CHANGED", "CHILD", "DELETED"]
