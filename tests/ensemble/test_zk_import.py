"""Migration of a whole ensemble stopped at once (issue 13, item 1): a 3-server Apache ZooKeeper
3.8 ensemble writes a tree over several snapshots and log segments, with a client session that
holds ephemerals; every Java server is stopped, and ringkeeper starts on each member's own
zoo.cfg, myid and dataDir. Each member imports its own ZooKeeper files; the ringkeeper ensemble
serves the identical tree (data, every Stat field, ACLs) on every member; the client, never
restarted, reconnects by itself to the ringkeeper ensemble with the session ZooKeeper gave it,
and its ephemerals are still its own; writes go on.
"""

import re

import pytest
from kazoo.security import ACL, Id, make_digest_acl

from . import harness

SNAP_COUNT = 100
SESSION_TIMEOUT_S = 15.0  # the tests' maxSessionTimeout: the session outlives the switch
AUTH = [("digest", "alice:secret")]  # reads /acl/digest


def read_tree(client):
    """path -> (data, Stat fields, ACLs) of the whole tree but /zookeeper, which each server
    fills in itself (/zookeeper/config has the server's own view)."""
    client.sync("/")
    out = {}
    level = ["/"]
    while level:
        pending = [(path, client.get_async(path), client.get_acls_async(path),
                    client.get_children_async(path)) for path in level]
        level = []
        for path, got, got_acls, got_children in pending:
            data, stat = got.get(timeout=30)
            acls, _ = got_acls.get(timeout=30)
            out[path] = (data, (stat.czxid, stat.mzxid, stat.ctime, stat.mtime, stat.version,
                                stat.cversion, stat.aversion, stat.ephemeralOwner,
                                stat.dataLength, stat.numChildren, stat.pzxid),
                         sorted((a.perms, a.id.scheme, a.id.id) for a in acls))
            for child in got_children.get(timeout=30):
                if path == "/" and child == "zookeeper":
                    continue
                level.append(path.rstrip("/") + "/" + child)
    return out


def write_tree(client):
    client.create("/acl")
    client.create("/acl/digest", b"d", acl=[make_digest_acl("alice", "secret", all=True)])
    client.create("/acl/ip", b"i", acl=[ACL(31, Id("ip", "127.0.0.1"))])
    client.create("/seq")
    for _ in range(10):
        client.create("/seq/n-", b"s", sequence=True)
    client.create("/bulk")
    for d in range(4):
        client.create("/bulk/d%d" % d, b"dir")
        futures = [client.create_async("/bulk/d%d/n%03d" % (d, i), b"x" * (i % 40))
                   for i in range(100)]
        for future in futures:
            future.get(timeout=30)
        client.set("/bulk/d%d" % d, b"changed")
        client.delete("/bulk/d%d/n000" % d)
    t = client.transaction()
    t.create("/multi", b"m")
    t.set_data("/bulk", b"multi")
    t.commit()
    for i in range(5):  # a log tail after the last snapshot
        client.set("/seq", b"tail %d" % i)


def test_stopped_zookeeper_ensemble_restarts_as_ringkeeper(ensembles):
    e = ensembles("zookeeper", participants=3, snapCount=SNAP_COUNT,
                  extra_cfg={"autopurge.purgeInterval": "0"})
    if not harness.ringkeeper_binary().exists():
        pytest.skip("no ringkeeper binary at %s" % harness.ringkeeper_binary())
    e.start().wait_serving()
    writer = ensembles.client(e, timeout=SESSION_TIMEOUT_S, auth_data=AUTH)
    write_tree(writer)
    owner = ensembles.client(e, timeout=SESSION_TIMEOUT_S)
    owner.create("/eph", b"e", ephemeral=True)
    owner_session = owner.client_id[0]
    zk_tree = read_tree(writer)
    assert zk_tree["/eph"][1][7] == owner_session

    for sid in e.ids:
        e.stop(sid)
    for sid in e.ids:
        assert list((e.members[sid].data / "version-2").glob("snapshot.*")), sid
    e.kind = "ringkeeper"  # the same zoo.cfg, myid and dataDir, now ringkeeper's
    e.start().wait_serving()
    for sid in e.ids:
        log = e.members[sid].log.read_text(errors="replace")
        assert "imported Apache ZooKeeper's state" in log, e.log_tail(sid)
        checked = re.search(r"(\d+) digests checked", log)
        assert checked and int(checked.group(1)) > 0, e.log_tail(sid)

    # The clients were never restarted: they reconnect to the ringkeeper ensemble by
    # themselves, with the sessions ZooKeeper gave them.
    harness.wait_until(lambda: owner.exists("/eph") is not None and owner.connected,
                       30, "the ephemeral owner's session to resume on ringkeeper")
    assert owner.client_id[0] == owner_session
    for sid in e.ids:
        on_member = ensembles.client(e, sid, auth_data=AUTH)
        assert read_tree(on_member) == zk_tree, "member %d serves a different tree" % sid
    owner.create("/eph-after", b"a", ephemeral=True)
    writer.set("/multi", b"written on ringkeeper")
    for sid in e.ids:
        on_member = ensembles.client(e, sid)
        on_member.sync("/")
        assert on_member.get("/multi")[0] == b"written on ringkeeper"
        assert on_member.exists("/eph-after").ephemeralOwner == owner_session
