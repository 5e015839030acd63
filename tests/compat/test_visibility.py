"""Cross-session visibility on one server.

ZooKeeper's documented guarantees are per session (a client sees a watch event before the data
newer than it; cross-client views need `sync` in an ensemble). But a standalone ZooKeeper has one
DataTree, and FinalRequestProcessor applies a transaction to it before it sends the watch events
and the reply: so once any session has been told about a change (reply or event), a read on any
other session of the same server sees it. Clients and recipes tested against one server (and
tests that coordinate two sessions) rely on that; ringkeeper, serving from per-core views, must
keep it.
"""

from harness import expect_event, scenario

ROUNDS = 100


@scenario
def test_change_seen_by_watcher_is_visible_to_other_sessions(env):
    """After a session receives NodeDataChanged, or the writer its setData reply, a read on a
    third session returns the new version (repeated to catch a window)."""
    writer, watcher = env.raw(), env.raw()
    readers = [env.raw() for _ in range(3)]
    node = env.path("n")
    assert writer.create(node, b"0").err == "OK"
    stale = []
    for i in range(1, ROUNDS + 1):
        assert watcher.exists(node, watch=True).err == "OK"
        handle = writer.send(__import__("rawclient").op_set_data(node, b"%d" % i))
        ev = expect_event(watcher, 5.0)
        assert (ev.type, ev.path) == ("NodeDataChanged", node)
        for k, r in enumerate(readers):
            res = r.exists(node)
            if res.value.version != i:
                stale.append("round %d reader %d after event: version %d" % (i, k, res.value.version))
        assert writer.wait(handle).value.version == i
    env.rec("stale reads", stale)
    assert stale == [], "reads behind a delivered event: %s" % stale[:5]


@scenario
def test_reaped_container_is_gone_for_other_sessions(env):
    """After a watcher is told that the server reaped a container (NodeDeleted), another session's
    getChildren of the parent no longer lists it (ZooKeeper applies the deleteContainer
    transaction to its tree before notifying)."""
    c, w = env.raw(), env.raw()
    stale = []
    for i in range(5):
        name = "c%d" % i
        assert c.create_container(env.path(name)).err == "OK"
        assert c.create(env.path(name, "x")).err == "OK"
        assert w.exists(env.path(name), watch=True).err == "OK"
        assert c.delete(env.path(name, "x")).err == "OK"
        ev = expect_event(w, 15.0)
        assert (ev.type, ev.path) == ("NodeDeleted", env.path(name))
        children = c.get_children(env.base).value
        if name in children:
            stale.append("round %d: %s still listed" % (i, name))
    env.rec("stale reads", stale)
    assert stale == []
