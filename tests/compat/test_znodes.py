"""Znode operations: create in every mode, delete, exists, getData/setData, children, Stat
semantics, sync, getAllChildrenNumber, getEphemerals, path validation and error codes.

Reference: ZooKeeper 3.8/3.9 PrepRequestProcessor (validation, error codes, zxid assignment),
DataTree (Stat updates), PathUtils.validatePath (path rules)."""

from harness import scenario, Zxid
from rawclient import (
    PERSISTENT, EPHEMERAL, PERSISTENT_SEQUENTIAL, EPHEMERAL_SEQUENTIAL, CONTAINER,
    PERSISTENT_WITH_TTL, PERSISTENT_SEQUENTIAL_WITH_TTL,
)


@scenario
def test_create_persistent_stat_is_fresh(env):
    """A new persistent node: version=cversion=aversion=0, czxid == mzxid == pzxid,
    ephemeralOwner 0, dataLength = len(data), numChildren 0 (DataTree.createNode)."""
    c = env.raw()
    res = env.rec("create2", c.create2(env.path("a"), b"hello"))
    path, st = res.value
    assert path == env.path("a")
    assert st.czxid == st.mzxid == st.pzxid and st.czxid > 0
    assert (st.version, st.cversion, st.aversion, st.ephemeralOwner, st.dataLength,
            st.numChildren) == (0, 0, 0, 0, 5, 0)
    assert st.ctime == st.mtime
    env.rec("getData", c.get_data(env.path("a")))


@scenario
def test_create_returns_path_only(env):
    """Opcode create (1) answers CreateResponse with the path only."""
    c = env.raw()
    res = env.rec("create", c.create(env.path("p"), b"x"))
    assert res.err == "OK" and res.value == env.path("p")


@scenario
def test_create_updates_parent_cversion_and_pzxid(env):
    """Creating a child increments the parent's cversion and numChildren and sets its pzxid to
    the child's czxid; the parent's version and mzxid are unchanged."""
    c = env.raw()
    parent = c.create2(env.path("p")).value[1]
    child = c.create2(env.path("p", "c1")).value[1]
    st = env.rec("parent", c.exists(env.path("p"))).value
    assert st.cversion == 1 and st.numChildren == 1 and st.pzxid == child.czxid
    assert st.mzxid == parent.mzxid and st.version == 0
    c.create2(env.path("p", "c2"))
    env.rec("parent2", c.exists(env.path("p")))


@scenario
def test_delete_child_updates_parent_cversion_and_pzxid(env):
    """Deleting a child increments the parent's cversion and sets pzxid to the delete's zxid
    (DataTree.deleteNode: parent.stat.setPzxid(zxid))."""
    c = env.raw()
    c.create(env.path("p"))
    c.create(env.path("p", "c"))
    before = c.exists(env.path("p")).value
    res = env.rec("delete", c.delete(env.path("p", "c")))
    after = env.rec("parent", c.exists(env.path("p"))).value
    assert after.cversion == before.cversion + 1 == 2
    assert after.numChildren == 0
    assert after.pzxid == res.zxid > before.pzxid
    env.rec_zxid("delete-zxid", res.zxid)


@scenario
def test_set_data_bumps_version_and_mzxid(env):
    """setData increments version, sets mzxid to its zxid, keeps czxid, updates dataLength."""
    c = env.raw()
    c.create(env.path("n"), b"one")
    s1 = env.rec("set1", c.set_data(env.path("n"), b"three")).value
    s2 = env.rec("set2", c.set_data(env.path("n"), b"")).value
    assert (s1.version, s2.version) == (1, 2)
    assert s2.mzxid > s1.mzxid > s1.czxid
    assert (s1.dataLength, s2.dataLength) == (5, 0)
    env.rec("get", c.get_data(env.path("n")))


@scenario
def test_set_data_version_check(env):
    """setData with the current version succeeds; with a stale version answers BadVersion and
    changes nothing; -1 matches any version."""
    c = env.raw()
    c.create(env.path("n"), b"a")
    assert env.rec("v0", c.set_data(env.path("n"), b"b", 0)).err == "OK"
    assert env.rec("stale", c.set_data(env.path("n"), b"c", 0)).err == "BADVERSION"
    assert env.rec("future", c.set_data(env.path("n"), b"c", 7)).err == "BADVERSION"
    assert env.rec("any", c.set_data(env.path("n"), b"d", -1)).value.version == 2
    env.rec("get", c.get_data(env.path("n")))


@scenario
def test_set_data_on_missing_node_is_nonode(env):
    c = env.raw()
    assert env.rec("set", c.set_data(env.path("missing"), b"x")).err == "NONODE"


@scenario
def test_null_data_and_empty_data(env):
    """Null data (buffer length -1) reads back as null (getData returns length -1), empty data
    as empty; both have dataLength 0."""
    c = env.raw()
    c.create(env.path("null"), None)
    c.create(env.path("empty"), b"")
    n = env.rec("null", c.get_data(env.path("null"))).value
    e = env.rec("empty", c.get_data(env.path("empty"))).value
    assert n[0] is None and e[0] == b""
    assert n[1].dataLength == e[1].dataLength == 0
    c.set_data(env.path("empty"), None)
    env.rec("set-null", c.get_data(env.path("empty")))


@scenario
def test_create_existing_is_nodeexists(env):
    c = env.raw()
    c.create(env.path("n"))
    assert env.rec("again", c.create(env.path("n"))).err == "NODEEXISTS"
    assert env.rec("again2", c.create2(env.path("n"))).err == "NODEEXISTS"


@scenario
def test_create_without_parent_is_nonode(env):
    c = env.raw()
    assert env.rec("orphan", c.create(env.path("no", "child"))).err == "NONODE"
    assert env.rec("orphan-seq", c.create(env.path("no", "s-"), flags=PERSISTENT_SEQUENTIAL)).err == "NONODE"


@scenario
def test_failed_write_consumes_a_zxid(env):
    """A write that fails in PrepRequestProcessor becomes an error txn with its own zxid, so the
    reply header carries a new zxid and the next successful write's czxid is 2 greater."""
    c = env.raw()
    a = c.create2(env.path("a"))
    fail = c.create(env.path("a"))
    b = c.create2(env.path("b"))
    assert fail.err == "NODEEXISTS"
    env.rec("gap", b.value[1].czxid - a.value[1].czxid, fail.zxid - a.zxid)
    assert b.value[1].czxid - a.value[1].czxid == 2
    assert fail.zxid == a.zxid + 1


@scenario
def test_read_reply_zxid_is_last_committed(env):
    """Reads answer with the server's last processed zxid in the reply header."""
    c = env.raw()
    w = c.create2(env.path("a"))
    r = c.get_data(env.path("a"))
    e = c.exists(env.path("zz"))
    env.rec_zxid("zxids", w.zxid, r.zxid, e.zxid)
    assert w.zxid == r.zxid == e.zxid


@scenario
def test_delete_version_check(env):
    """delete with a wrong version is BadVersion; with the right version or -1 it deletes."""
    c = env.raw()
    c.create(env.path("n"))
    c.set_data(env.path("n"), b"x")
    assert env.rec("wrong", c.delete(env.path("n"), 0)).err == "BADVERSION"
    assert env.rec("right", c.delete(env.path("n"), 1)).err == "OK"
    c.create(env.path("m"))
    assert env.rec("any", c.delete(env.path("m"), -1)).err == "OK"
    assert env.rec("gone", c.exists(env.path("m"))).err == "NONODE"


@scenario
def test_delete_nonempty_is_notempty(env):
    c = env.raw()
    c.create(env.path("p"))
    c.create(env.path("p", "c"))
    assert env.rec("delete", c.delete(env.path("p"))).err == "NOTEMPTY"
    assert env.rec("still", c.exists(env.path("p"))).err == "OK"


@scenario
def test_delete_missing_is_nonode(env):
    c = env.raw()
    assert env.rec("delete", c.delete(env.path("nothing"))).err == "NONODE"
    assert env.rec("delete-deep", c.delete(env.path("a", "b"))).err == "NONODE"


@scenario
def test_delete_missing_with_version_is_nonode(env):
    """NoNode wins over BadVersion when the node does not exist."""
    c = env.raw()
    assert env.rec("delete", c.delete(env.path("nothing"), 3)).err == "NONODE"


@scenario
def test_exists_missing_is_nonode_without_body(env):
    c = env.raw()
    r = env.rec("exists", c.exists(env.path("nope")))
    assert r.err == "NONODE" and r.value is None


@scenario
def test_sequential_names_use_parent_cversion(env):
    """Sequential nodes get the parent's cversion as a 10-digit zero-padded suffix
    (PrepRequestProcessor: String.format("%010d", parentCVersion)); the counter also counts
    non-sequential children and deletes."""
    c = env.raw()
    c.create(env.path("q"))
    names = [c.create(env.path("q", "s-"), flags=PERSISTENT_SEQUENTIAL).value]
    c.create(env.path("q", "plain"))
    names.append(c.create(env.path("q", "s-"), flags=PERSISTENT_SEQUENTIAL).value)
    c.delete(env.path("q", "plain"))
    names.append(c.create(env.path("q", "s-"), flags=EPHEMERAL_SEQUENTIAL).value)
    names.append(c.create(env.path("q", ""), flags=PERSISTENT_SEQUENTIAL).value)
    env.rec("names", names)
    # Observed on ZooKeeper 3.8.0: the delete of 'plain' raised the parent's Stat.cversion
    # (see test_delete_child_updates_parent_cversion_and_pzxid) but NOT the counter used for
    # the next sequential name, which comes out as ...3, not ...4.
    assert names == [env.path("q", "s-0000000000"), env.path("q", "s-0000000002"),
                     env.path("q", "s-0000000003"), env.path("q", "0000000004")]
    env.rec("children", sorted(c.get_children(env.path("q")).value))


@scenario
def test_sequence_counter_ignores_deletes(env):
    """Observed on ZooKeeper 3.8.0: the sequential suffix counts child creations only, while the
    parent's Stat.cversion counts creations and deletions (after 3 creates and 3 deletes
    cversion is 6 and the next suffix is 0000000003)."""
    c = env.raw()
    c.create(env.path("q"))
    for _ in range(3):
        p = c.create(env.path("q", "s-"), flags=PERSISTENT_SEQUENTIAL).value
        c.delete(p)
    st = env.rec("parent", c.exists(env.path("q"))).value
    nxt = env.rec("next", c.create(env.path("q", "s-"), flags=PERSISTENT_SEQUENTIAL)).value
    assert st.cversion == 6 and st.numChildren == 0
    assert nxt == env.path("q", "s-0000000003")
    env.rec("parent-after", c.exists(env.path("q")))


@scenario
def test_sequential_name_may_collide_with_existing_node(env):
    """If a node already has the name a sequential create would produce, the create fails with
    NodeExists (the counter is not skipped)."""
    c = env.raw()
    c.create(env.path("q"))
    c.create(env.path("q", "s-0000000001"))
    r = env.rec("seq", c.create(env.path("q", "s-"), flags=PERSISTENT_SEQUENTIAL))
    assert r.err == "NODEEXISTS"
    env.rec("next", c.create(env.path("q", "s-"), flags=PERSISTENT_SEQUENTIAL))


@scenario
def test_ephemeral_owner_is_session_id(env):
    """An ephemeral's ephemeralOwner is the creating session's id."""
    c = env.raw()
    st = env.rec("create", c.create2(env.path("e"), b"", flags=EPHEMERAL)).value[1]
    env.rec("session", _session(c))
    assert st.ephemeralOwner == c.session_id


def _session(c):
    from harness import Session
    return Session(c.session_id)


@scenario
def test_ephemeral_cannot_have_children(env):
    c = env.raw()
    c.create(env.path("e"), flags=EPHEMERAL)
    for mode in (PERSISTENT, EPHEMERAL, PERSISTENT_SEQUENTIAL):
        r = env.rec("child-%d" % mode, c.create(env.path("e", "c"), flags=mode))
        assert r.err == "NOCHILDRENFOREPHEMERALS"


@scenario
def test_container_node_stat(env):
    """createContainer (19) answers Create2Response; the container's ephemeralOwner is reported
    as 0 to clients (DataTree.getClientEphemeralOwner hides the container marker)."""
    c = env.raw()
    res = env.rec("container", c.create_container(env.path("c")))
    assert res.err == "OK" and res.value[1].ephemeralOwner == 0
    env.rec("exists", c.exists(env.path("c")))
    env.rec("child", c.create2(env.path("c", "x")))


@scenario
def test_ttl_node_create_and_stat(env):
    """createTTL (21) with extendedTypesEnabled: Create2Response; ephemeralOwner is reported as 0
    (the TTL is encoded in the owner server-side but hidden from clients)."""
    c = env.raw()
    res = env.rec("ttl", c.create_ttl(env.path("t"), 60000, b"d"))
    assert res.err == "OK" and res.value[1].ephemeralOwner == 0
    seq = env.rec("ttl-seq", c.create_ttl(env.path("t", "s-"), 60000,
                                          flags=PERSISTENT_SEQUENTIAL_WITH_TTL))
    assert seq.value[0] == env.path("t", "s-0000000000")


@scenario
def test_ttl_errors(env):
    """TTL validation (EphemeralType.TTL / PrepRequestProcessor.validateCreateRequest):
    ttl <= 0 or > 2^40-1 is BadArguments; createTTL with a non-TTL mode is BadArguments; plain
    create with a TTL mode is BadArguments."""
    c = env.raw()
    assert env.rec("zero", c.create_ttl(env.path("a"), 0)).err == "BADARGUMENTS"
    assert env.rec("negative", c.create_ttl(env.path("a"), -5)).err == "BADARGUMENTS"
    assert env.rec("max", c.create_ttl(env.path("a"), (1 << 40) - 1)).err == "OK"
    assert env.rec("too-big", c.create_ttl(env.path("b"), 1 << 40)).err == "BADARGUMENTS"
    assert env.rec("wrong-mode", c.create_ttl(env.path("c"), 1000, flags=PERSISTENT)).err == "BADARGUMENTS"
    assert env.rec("wrong-mode-eph", c.create_ttl(env.path("c"), 1000, flags=EPHEMERAL)).err == "BADARGUMENTS"
    assert env.rec("create-ttl-mode", c.create(env.path("d"), flags=PERSISTENT_WITH_TTL)).err == "BADARGUMENTS"
    assert env.rec("create2-ttl-mode", c.create2(env.path("d"), flags=PERSISTENT_WITH_TTL)).err == "BADARGUMENTS"


@scenario
def test_invalid_flags_are_bad_arguments(env):
    """An unknown CreateMode flag value is rejected (CreateMode.fromFlag -> BadArguments)."""
    c = env.raw()
    assert env.rec("flag-7", c.create(env.path("a"), flags=7)).err == "BADARGUMENTS"
    assert env.rec("flag-99", c.create(env.path("a"), flags=99)).err == "BADARGUMENTS"


@scenario
def test_invalid_paths_error_matrix(env):
    """Path validation, observed on ZooKeeper 3.8.0, for create / sequential create / exists /
    getData / delete. The server looks up the parent (path up to the last '/') BEFORE it
    validates the whole path (PrepRequestProcessor.validatePathForCreate then validatePath), so
    a bad path under a missing parent is NoNode, not BadArguments: `B/x/` (B/x missing) and
    `B//b` are NoNode, `B/a/` (B/a exists) is BadArguments. Reads do no validation except
    exists on a path with a NUL (BadArguments); `exists("")` finds the root (the DataTree keys
    the root as ""), so it answers OK."""
    c = env.raw()
    c.create(env.path("a"))
    b = env.base
    cases = {
        "empty": "", "relative": "relative", "trailing-missing-parent": b + "/x/",
        "trailing-existing-parent": b + "/a/", "double-slash": b + "//b",
        "double-slash-deeper": b + "/a//b", "dot": b + "/.", "dotdot": b + "/..",
        "dot-middle": b + "/a/./b", "nul": b + "/x\u0000y", "control-char": b + "/x\u0001y",
        "slash-slash": "//",
    }
    matrix = {}
    for name, p in cases.items():
        matrix[name] = (c.create(p).err, c.create(p, flags=PERSISTENT_SEQUENTIAL).err,
                        c.exists(p).err, c.get_data(p).err, c.delete(p).err)
    env.rec("matrix", matrix)
    assert matrix["relative"] == ("BADARGUMENTS", "BADARGUMENTS", "NONODE", "NONODE", "BADARGUMENTS")
    assert matrix["trailing-missing-parent"][0] == "NONODE"
    assert matrix["trailing-existing-parent"][:2] == ("BADARGUMENTS", "OK")
    assert matrix["dot"][:2] == ("BADARGUMENTS", "OK")  # sequential: ".0000000001" is a fine name
    assert matrix["nul"][:3] == ("BADARGUMENTS", "BADARGUMENTS", "BADARGUMENTS")
    assert matrix["control-char"][0] == "BADARGUMENTS"
    assert matrix["empty"] == ("BADARGUMENTS", "BADARGUMENTS", "OK", "OK", "BADARGUMENTS")
    # names that merely contain dots are fine
    assert env.rec("dots", c.create(env.path("..x"))).err == "OK"
    assert env.rec("dot-suffix", c.create(env.path("x."))).err == "OK"
    env.rec("children", sorted(c.get_children(env.base).value))


@scenario
def test_sequential_with_trailing_slash_is_allowed(env):
    """For sequential creates the path is validated after the suffix is appended, so 'parent/'
    creates 'parent/0000000000' (PathUtils.validatePath(path, isSequential))."""
    c = env.raw()
    c.create(env.path("p"))
    r = env.rec("seq", c.create(env.path("p") + "/", flags=PERSISTENT_SEQUENTIAL))
    assert r.err == "OK" and r.value == env.path("p", "0000000000")


@scenario
def test_root_and_system_nodes(env):
    """'/' cannot be created or deleted; /zookeeper cannot be deleted (BadArguments);
    /zookeeper/quota has zxid 0 stats; /zookeeper/config exists with aversion -1."""
    c = env.raw()
    assert env.rec("create-root", c.create("/")).err == "NODEEXISTS"
    assert env.rec("delete-root", c.delete("/")).err == "BADARGUMENTS"
    assert env.rec("delete-zookeeper", c.delete("/zookeeper")).err == "BADARGUMENTS"
    q = env.rec("quota", c.get_data("/zookeeper/quota"))
    assert q.err == "OK" and q.value[1].czxid == 0
    cfg = env.rec("config", c.get_data("/zookeeper/config"))
    assert cfg.err == "OK" and cfg.value[1].aversion == -1
    assert "quota" in c.get_children("/zookeeper").value


@scenario
def test_get_children_and_children2(env):
    """getChildren lists names only (order unspecified, so sorted here); getChildren2 adds the
    parent's Stat; NoNode for a missing parent."""
    c = env.raw()
    c.create(env.path("p"))
    for n in ("b", "a", "c"):
        c.create(env.path("p", n))
    r = c.get_children(env.path("p"))
    env.rec("children", r.err, sorted(r.value))
    r2 = c.get_children2(env.path("p"))
    env.rec("children2", r2.err, sorted(r2.value[0]), r2.value[1])
    assert r2.value[1].numChildren == 3
    assert env.rec("missing", c.get_children(env.path("nope"))).err == "NONODE"
    assert env.rec("missing2", c.get_children2(env.path("nope"))).err == "NONODE"
    assert env.rec("leaf", c.get_children(env.path("p", "a"))).value == []


@scenario
def test_get_all_children_number(env):
    """getAllChildrenNumber (104) counts all descendants, not the node itself."""
    c = env.raw()
    c.create(env.path("p"))
    c.create(env.path("p", "a"))
    c.create(env.path("p", "a", "x"))
    c.create(env.path("p", "a", "y"))
    c.create(env.path("p", "b"))
    assert env.rec("p", c.get_all_children_number(env.path("p"))).value == 4
    assert env.rec("leaf", c.get_all_children_number(env.path("p", "b"))).value == 0
    env.rec("missing", c.get_all_children_number(env.path("nope")))


@scenario
def test_get_ephemerals_with_prefix(env):
    """getEphemerals (103) lists this session's ephemerals whose path starts with the prefix
    (a string prefix, not a path prefix); other sessions' ephemerals are not listed."""
    c = env.raw()
    other = env.raw()
    c.create(env.path("e1"), flags=EPHEMERAL)
    c.create(env.path("e2"), flags=EPHEMERAL)
    c.create(env.path("p"))
    c.create(env.path("p", "e3"), flags=EPHEMERAL)
    other.create(env.path("o1"), flags=EPHEMERAL)
    r = c.get_ephemerals(env.base)
    env.rec("all", r.err, sorted(r.value))
    assert sorted(r.value) == [env.path("e1"), env.path("e2"), env.path("p", "e3")]
    r = c.get_ephemerals(env.path("e"))
    env.rec("prefix-e", r.err, sorted(r.value))
    assert sorted(r.value) == [env.path("e1"), env.path("e2")]
    r = c.get_ephemerals(env.path("p"))
    env.rec("prefix-p", r.err, sorted(r.value))
    r = c.get_ephemerals(env.path("zzz"))
    env.rec("none", r)
    assert r.value == []


@scenario
def test_sync_returns_path(env):
    c = env.raw()
    c.create(env.path("n"))
    r = env.rec("sync", c.sync(env.path("n")))
    assert r.err == "OK" and r.value == env.path("n")
    env.rec("sync-missing", c.sync(env.path("missing")))


@scenario
def test_kazoo_basic_crud(env):
    """The same operations through Kazoo's public API (what applications call)."""
    from kazoo.exceptions import NodeExistsError, NoNodeError, BadVersionError, NotEmptyError
    k = env.kazoo()
    env.rec("create", k.create(env.path("a"), b"v1"))
    env.rec("ensure", k.ensure_path(env.path("b", "c", "d")))
    data, st = k.get(env.path("a"))
    env.rec("get", data, st)
    env.rec("set", k.set(env.path("a"), b"v2", version=0))
    for name, fn, exc in [
        ("exists-create", lambda: k.create(env.path("a")), NodeExistsError),
        ("nonode-get", lambda: k.get(env.path("zz")), NoNodeError),
        ("badversion", lambda: k.set(env.path("a"), b"x", version=5), BadVersionError),
        ("notempty", lambda: k.delete(env.path("b")), NotEmptyError),
    ]:
        try:
            fn()
            raise AssertionError(name + " did not raise")
        except exc as e:
            env.rec(name, e)
    env.rec("children", sorted(k.get_children(env.base)))
    k.delete(env.path("b"), recursive=True)
    env.rec("after-delete", k.exists(env.path("b")))
    env.rec("seq", k.create(env.path("s-"), sequence=True), k.create(env.path("s-"), sequence=True))
    env.rec("eph", k.create(env.path("e"), ephemeral=True), k.exists(env.path("e")))
    env.rec("children-data", sorted((n for n in k.get_children(env.base))))


@scenario
def test_kazoo_chroot(env):
    """A Kazoo client with a chroot sees paths relative to it: create returns the chrooted path,
    events carry chrooted paths."""
    import threading
    k = env.kazoo(hosts="%s:%d%s" % (env.host, env.port, env.base))
    env.rec("create", k.create("/x", b"1"))
    env.rec("seq", k.create("/s-", sequence=True))
    got = threading.Event()
    seen = []
    k.get("/x", watch=lambda ev: (seen.append(ev), got.set()))
    env.admin.set_data(env.path("x"), b"2")
    assert got.wait(5)
    env.rec("event", seen[0])
    assert seen[0].path == "/x"
    env.rec("children", sorted(k.get_children("/")))
