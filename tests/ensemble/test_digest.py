"""ZooKeeper's tree digest in an ensemble (issue 12): every member digests its own tree as it
applies the transactions it is sent, so the same transactions give every member the same
`hash` history, and each member's newest entry is the digest of the tree it serves
(DataTree.logZxidDigest runs on every member's processTxn)."""

import sys
from pathlib import Path

from .harness import wait_until

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "compat"))

from test_digest import INTERVAL, hash_entries, served_digest  # noqa: E402

SERVE_TIMEOUT_S = 60.0
SETTLE_TIMEOUT_S = 30.0


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
