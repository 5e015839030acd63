"""ZooKeeper's tree digest in an ensemble (issue 12): every member digests its own tree as it
applies the transactions it is sent, so the same transactions give every member the same
`hash` history, and each member's newest entry is the digest of the tree it serves
(DataTree.logZxidDigest runs on every member's processTxn)."""

import sys
from pathlib import Path

from .harness import digest_figures, wait_until

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "compat"))

from test_digest import INTERVAL, hash_entries, served_digest  # noqa: E402

SERVE_TIMEOUT_S = 60.0
SETTLE_TIMEOUT_S = 30.0
WRITES = 300


def test_every_member_keeps_the_same_digest_history(kind, ensembles):
    e = ensembles(kind).start()
    e.wait_serving(SERVE_TIMEOUT_S)
    leader = e.leader()
    # One client per member first: their createSession txns are part of the history.
    clients = {sid: ensembles.client(e, sid) for sid in e.ids}
    writer = clients[leader]
    writer.create("/digest", b"")
    index = 0
    boundaries = 0
    while boundaries < 2:
        index += 1
        if index % 3 == 0:
            writer.set("/digest", b"%d" % index)
        else:
            writer.create("/digest/n%04d" % index, b"data %d" % index)
        zxid = e.zxid(leader)
        if zxid % INTERVAL != 0:
            continue
        boundaries += 1
        for sid, client in clients.items():
            # Each member has applied up to `zxid` once its own served zxid says so.
            client.sync("/")
            wait_until(lambda: e.zxid(sid) == zxid, SETTLE_TIMEOUT_S,
                       "server %d at zxid %#x" % (sid, zxid))
            entries = hash_entries(e.members[sid].client_port)
            assert entries and entries[-1] == (zxid, served_digest(client)), (
                kind, sid, zxid, entries[-3:])
    histories = {sid: hash_entries(e.members[sid].client_port) for sid in e.ids}
    first = histories[leader]
    assert len(first) >= 2, first
    assert all(history == first for history in histories.values()), histories


def test_learners_compare_the_leaders_digests_under_a_write_load(kind, ensembles):
    """DataTree.compareDigest on every learner: the leader's tree digest after each txn comes
    with its proposal, and each follower compares it with its own after applying the commit.
    Under a mixed write load through every member (creates, setData, deletes, multi,
    ephemerals and their sessions' close), no member counts a mismatch; on ringkeeper the
    followers show the comparisons were made (ringkeeper_digests_compared), one per txn they
    were sent a digest for, and the leader, which compares nothing, shows 0."""
    e = ensembles(kind).start()
    e.wait_serving(SERVE_TIMEOUT_S)
    leader = e.leader()
    clients = {sid: ensembles.client(e, sid) for sid in e.ids}
    clients[leader].create("/load", b"")
    pending = []
    for index in range(WRITES):
        client = clients[e.ids[index % len(e.ids)]]
        path = "/load/n%04d" % index
        pending.append(client.create_async(path, b"v%d" % index))
        if index % 5 == 4:
            pending.append(client.set_async("/load", b"%d" % index))
    for result in pending:
        result.get(timeout=SETTLE_TIMEOUT_S)
    for index in range(0, WRITES, 7):
        clients[leader].delete("/load/n%04d" % index)
    tx = clients[e.ids[-1]].transaction()
    tx.create("/load/multi", b"m")
    tx.set_data("/load", b"multi")
    results = tx.commit()
    assert results[0] == "/load/multi" and results[1].version > 0, results
    ephemeral = ensembles.client(e, e.ids[0])
    ephemeral.create("/load/eph", b"e", ephemeral=True)
    ephemeral.stop()
    ephemeral.close()
    last = e.zxid(leader)
    for sid in e.ids:
        wait_until(lambda: e.zxid(sid) >= last, SETTLE_TIMEOUT_S,
                   "server %d at zxid %#x" % (sid, last))
    for sid in e.ids:
        mismatches, compared = digest_figures(e, sid)
        assert mismatches == 0, (kind, sid, mismatches)
        if kind != "ringkeeper":
            continue
        if sid == leader:
            assert compared == 0, (sid, compared)
        else:
            # Every txn of this test was proposed with its digest; the creates alone are
            # WRITES of them.
            assert compared >= WRITES, (sid, compared)
