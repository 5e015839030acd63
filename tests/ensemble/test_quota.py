"""Quotas in an ensemble: the stats nodes are changed as part of applying each transaction
(DataTree.updateQuotaStat), so every member holds the same zookeeper_stats text, a follower
restarted from its snapshot and log reads the same, and a hard limit is enforced (QuotaExceeded,
-125) for writes sent to any member when every member runs with -Dzookeeper.enforceQuota=true
(ZooKeeper's leader checks in PrepRequestProcessor; so does ringkeeper's).

The raw jute client of tests/compat is used because Kazoo has no exception for -125."""

import sys
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "compat"))
from rawclient import RawClient, op_create, op_delete  # noqa: E402

from .harness import wait_until  # noqa: E402

SERVE_TIMEOUT_S = 60.0
QUOTA = "/zookeeper/quota"
CALL_TIMEOUT_S = 10.0


def raw(e, sid):
    m = e.members[sid]
    return RawClient(m.host, m.client_port, call_timeout_s=CALL_TIMEOUT_S)


def multi_error(res):
    """A failed multi's error is among its per-op results (the header may say OK)."""
    for kind, value in res.value or []:
        if kind == "error" and value not in ("OK", "RUNTIMEINCONSISTENCY"):
            return value
    return res.err


def stats_on(e, sid, root):
    c = raw(e, sid)
    try:
        assert c.sync(root).err == "OK"
        res = c.get_data(QUOTA + root + "/zookeeper_stats")
        assert res.err == "OK", res
        return res.value[0].decode(), res.value[1].mzxid, res.value[1].dataLength
    finally:
        c.close()


def test_quota_stats_are_identical_on_every_member(kind, ensembles):
    e = ensembles(kind)
    for sid in e.ids:
        e.configure(sid, jvm_flags=["-Dzookeeper.enforceQuota=true"])
    e.start()
    e.wait_serving(SERVE_TIMEOUT_S)
    follower, other = e.followers()[:2]
    root = "/quota-%s" % uuid.uuid4().hex[:8]
    c = raw(e, follower)
    assert c.create(root, b"12345").err == "OK"
    for directory in (QUOTA + root,):
        assert c.create(directory).err == "OK"
    limits = b"count=-1,bytes=-1=;byteHardLimit=-1;countHardLimit=4"
    assert c.create(QUOTA + root + "/zookeeper_limits", limits).err == "OK"
    assert c.create(QUOTA + root + "/zookeeper_stats", b"count=0,bytes=0").err == "OK"
    assert c.create(root + "/a", b"1").err == "OK"
    assert c.set_data(root + "/a", b"123").err == "OK"
    assert multi_error(c.multi([op_create(root + "/b", b"22"), op_delete(root + "/a")])) == "OK"
    assert c.create(root + "/c").err == "OK"
    assert c.create(root + "/d", b"4444").err == "OK"
    # Sent to another member (forwarded to the leader): refused there.
    d = raw(e, other)
    assert d.create(root + "/e").err == "QUOTAEXCEEDED"
    assert multi_error(d.multi([op_create(root + "/f")])) == "QUOTAEXCEEDED"
    d.close()
    c.close()
    expected = "count=4,bytes=11"
    seen = {sid: stats_on(e, sid, root) for sid in e.ids}
    assert {s[0] for s in seen.values()} == {expected}, seen
    assert len(set(seen.values())) == 1, "stats nodes differ between members: %r" % seen

    # A follower restarted from its own snapshot and log reads the same and keeps counting.
    e.restart(follower)
    e.wait_serving(SERVE_TIMEOUT_S)
    assert stats_on(e, follower, root) == seen[follower]
    c = raw(e, other)
    assert c.delete(root + "/c").err == "OK"
    c.close()

    def all_moved():
        return {stats_on(e, sid, root)[0] for sid in e.ids} == {"count=3,bytes=11"}
    wait_until(all_moved, 20.0, "every member's stats after the delete")
