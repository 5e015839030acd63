#!/usr/bin/python3
"""Capture golden frames of Apache ZooKeeper 3.8's server-to-server protocol.

Starts a 3-server ZooKeeper ensemble from Debian's jars (tests/ensemble/harness.py) whose
zoo.cfg also lists a fourth server, an observer, and plays that observer itself, by hand, with
the Python standard library: the election-port handshake and notifications with every
participant (QuorumCnxManager, FastLeaderElection), then the learner protocol with the leader
(OBSERVERINFO, LEADERINFO, ACKEPOCH, DIFF or SNAP, NEWLEADER, ACK, UPTODATE, ACK), a session
created and a znode written through the leader with REQUEST, a Kazoo client writing on a Java
member (INFORM), and PINGs answered with session touches.

Every frame is written to `<out>/<scenario>.txt` in the format of tests/golden (read by
tests/zkquorum_golden.rs):
- `#` lines are comments;
- `O <hex>`: a frame the observer (us) sent; `Z <hex>`: a frame ZooKeeper sent.
Election frames are the bytes inside QuorumCnxManager's 4-byte length prefix (the handshake
is recorded as it goes on the wire: it has no length prefix). Quorum frames are one
QuorumPacket each as BinaryOutputArchive writes it (the quorum port has no length prefix);
the raw snapshot stream that follows a SNAP packet is recorded as `R <hex>`.

Usage: /usr/bin/python3 scripts/capture-zk-quorum.py [--out tests/golden/zkquorum]
"""

import argparse
import os
import socket
import struct
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
from tests.ensemble.harness import Ensemble, wait_until  # noqa: E402

PROTOCOL_VERSION_V1 = -65536
TYPES = {1: "REQUEST", 2: "PROPOSAL", 3: "ACK", 4: "COMMIT", 5: "PING", 6: "REVALIDATE",
         7: "SYNC", 8: "INFORM", 9: "COMMITANDACTIVATE", 10: "NEWLEADER", 11: "FOLLOWERINFO",
         12: "UPTODATE", 13: "DIFF", 14: "TRUNC", 15: "SNAP", 16: "OBSERVERINFO",
         17: "LEADERINFO", 18: "ACKEPOCH", 19: "INFORMANDACTIVATE"}


class Recorder:
    def __init__(self, path, comment):
        self.path = path
        self.lines = ["# " + line for line in comment.splitlines()]

    def add(self, direction, data, note=None):
        if note:
            self.lines.append("# " + note)
        self.lines.append("%s %s" % (direction, data.hex()))

    def save(self):
        self.path.write_text("\n".join(self.lines) + "\n")


class Stream:
    """A socket read exactly, with a bounded timeout, keeping what it read."""

    def __init__(self, sock):
        self.sock = sock
        self.taken = bytearray()

    def read(self, n):
        out = bytearray()
        while len(out) < n:
            chunk = self.sock.recv(n - len(out))
            if not chunk:
                raise EOFError("connection closed after %d of %d bytes" % (len(out), n))
            out += chunk
        self.taken += out
        return bytes(out)

    def take(self):
        data = bytes(self.taken)
        self.taken = bytearray()
        return data

    def i32(self):
        return struct.unpack(">i", self.read(4))[0]

    def i64(self):
        return struct.unpack(">q", self.read(8))[0]

    def buffer(self):
        n = self.i32()
        return None if n < 0 else self.read(n)

    def string(self):
        b = self.buffer()
        return None if b is None else b.decode()


def notification(state, leader, zxid, round_, epoch, config):
    return struct.pack(">iqqqqii", state, leader, zxid, round_, epoch, 2, len(config)) + config


def parse_notification(body):
    state, leader, zxid, round_, epoch = struct.unpack(">iqqqq", body[:36])
    version = struct.unpack(">i", body[36:40])[0] if len(body) >= 40 else 0
    config = b""
    if version > 1:
        n = struct.unpack(">i", body[40:44])[0]
        config = body[44:44 + n]
    return dict(state=state, leader=leader, zxid=zxid, round=round_, epoch=epoch,
                version=version, config=config)


def packet(type_, zxid, data=None, auth=None):
    out = struct.pack(">iq", type_, zxid)
    out += struct.pack(">i", -1) if data is None else struct.pack(">i", len(data)) + data
    if auth is None:
        out += struct.pack(">i", -1)
    else:
        out += struct.pack(">i", len(auth))
        for scheme, ident in auth:
            for s in (scheme, ident):
                b = s.encode()
                out += struct.pack(">i", len(b)) + b
    return out


def read_packet(stream):
    type_ = stream.i32()
    zxid = stream.i64()
    data = stream.buffer()
    n = stream.i32()
    auth = []
    for _ in range(max(n, 0)):
        auth.append((stream.string(), stream.string()))
    return type_, zxid, data, (None if n < 0 else auth)


def election(ensemble, my_sid, rec):
    """Handshake with every participant and one notification exchange; returns the notes."""
    me = ensemble.members[my_sid]
    answers = {}
    for sid in ensemble.participant_ids:
        m = ensemble.members[sid]
        sock = socket.create_connection((m.host, m.election_port), timeout=5)
        addr = ("%s:%d" % (me.host, me.election_port)).encode()
        hello = struct.pack(">qqi", PROTOCOL_VERSION_V1, my_sid, len(addr)) + addr
        sock.sendall(hello)
        rec.add("O", hello, "to server %d: handshake (protocol version, sid %d, address)" % (
            sid, my_sid))
        # An observer LOOKING for a leader: its vote for itself, round 1, epoch 0.
        body = notification(0, my_sid, 0, 1, 0, b"")
        sock.sendall(struct.pack(">i", len(body)) + body)
        rec.add("O", body, "to server %d: notification LOOKING, vote for %d" % (sid, my_sid))
        stream = Stream(sock)
        n = stream.i32()
        reply = stream.read(n)
        rec.add("Z", reply, "from server %d: its notification" % sid)
        answers[sid] = parse_notification(reply)
        sock.close()
    return answers


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", default=str(REPO / "tests" / "golden" / "zkquorum"))
    args = ap.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    tmp = tempfile.mkdtemp(prefix="zkquorum-capture-")
    # snapshotSizeFactor=-1: the leader never syncs a learner from its txn log files, so a
    # learner behind its committed log gets SNAP (as tests/ensemble/test_catchup.py does).
    ens = Ensemble("zookeeper", tmp, participants=3, observers=1,
                   extra_cfg={"snapshotSizeFactor": "-1"})
    try:
        ens.start(ens.participant_ids)
        ens.wait_serving(timeout_s=60, sids=ens.participant_ids)
        leader = ens.leader()
        kz = ens.client(1)
        kz.create("/golden", b"before the observer")
        for i in range(3):
            kz.create("/golden/n", b"%d" % i, sequence=True)
        obs = 4
        rec = Recorder(out / "election.txt",
                       "ZooKeeper 3.8.0 (Debian), 3 participants; server 4 (observer) played by\n"
                       "scripts/capture-zk-quorum.py. Election port, one connection per server.")
        answers = election(ens, obs, rec)
        rec.save()
        for sid, a in answers.items():
            print("server %d answers %s" % (sid, {k: v for k, v in a.items() if k != "config"}))
        print("config text: %r" % answers[leader]["config"].decode())
        assert answers[leader]["state"] == 2 and answers[leader]["leader"] == leader

        for scenario, snap in (("observer-diff", False), ("observer-snap", True)):
            learn(ens, leader, obs, out / (scenario + ".txt"), kz, snap)
        kz.stop()
    finally:
        ens.close()
        print("logs in", tmp)


def learn(ens, leader, obs, path, kz, snap):
    """One observer session with the leader. With `snap`, the observer says it has nothing
    (last zxid 0 after the tree moved past commitLogCount is not needed: ZooKeeper sends SNAP
    to a learner with zxid 0 whose history is not in its committed log)."""
    rec = Recorder(path, "ZooKeeper 3.8.0 (Debian) leader %d; observer 4 played by "
                         "scripts/capture-zk-quorum.py.\nQuorum port: QuorumPackets; R = the "
                         "raw snapshot stream after SNAP." % leader)
    m = ens.members[leader]
    sock = socket.create_connection((m.host, m.quorum_port), timeout=5)
    stream = Stream(sock)

    def send(type_, zxid, data=None, auth=None, note=None):
        p = packet(type_, zxid, data, auth)
        sock.sendall(p)
        rec.add("O", p, note or TYPES[type_])

    def recv(note=None):
        p = read_packet(stream)
        rec.add("Z", stream.take(), note or "%s zxid %#x" % (TYPES.get(p[0], p[0]), p[1]))
        return p

    # LearnerInfo: sid, protocol version 0x10000, config version.
    info = struct.pack(">qiq", obs, 0x10000, 0)
    send(16, 0, info, note="OBSERVERINFO accepted epoch 0, LearnerInfo(4, 0x10000, 0)")
    t, zxid, data, _ = recv()
    assert t == 17, t
    epoch = zxid >> 32
    print("LEADERINFO epoch", epoch, "data", data.hex())
    # SNAP: a learner with nothing (zxid 0 is below the leader's committed log). DIFF: a
    # learner whose last zxid is that of /golden's create, inside the committed log.
    last = 0 if snap else kz.exists("/golden").czxid
    send(18, last, struct.pack(">i", 0), note="ACKEPOCH last zxid %#x, current epoch 0" % last)
    t, zxid, data, _ = recv()
    kind = TYPES.get(t, t)
    print("sync:", kind, hex(zxid))
    if t == 15:
        # sessions, DataTree, "BenWasHere"
        count = stream.i32()
        for _ in range(count):
            stream.i64()
            stream.i32()
        acls = stream.i32()
        for _ in range(acls):
            stream.i64()
            n = stream.i32()
            for _ in range(n):
                stream.i32()
                stream.string()
                stream.string()
        while True:
            p = stream.string()
            if p == "/":
                break
            stream.buffer()
            stream.i64()
            stream.read(4 * 8 + 3 * 4 + 8 + 8)  # StatPersisted: 4 longs, 3 ints, 2 longs
        sig = stream.string()
        rec.add("R", stream.take(), "snapshot stream (sessions, DataTree, signature %r)" % sig)
        print("signature", sig)
    while True:
        t, z, data, _ = recv()
        if t == 10:
            print("NEWLEADER", hex(z), data)
            send(3, z, note="ACK of NEWLEADER")
        if t == 12:
            send(3, epoch << 32, note="ACK after UPTODATE (Learner.syncWithLeader)")
            break
    # A session through the leader, then a create, forwarded as REQUEST.
    session = (obs << 56) | 0x1234
    send(1, -1, struct.pack(">qii", session, 0, -10) + struct.pack(">i", 10000),
         note="REQUEST createSession 0x%x timeout 10000" % session)
    path = b"/golden/from-observer-%d" % (1 if snap else 0)
    create = (struct.pack(">i", len(path)) + path + struct.pack(">i", 3) + b"hey"
              + struct.pack(">i", 1) + struct.pack(">i", 31)
              + struct.pack(">i", 5) + b"world" + struct.pack(">i", 6) + b"anyone"
              + struct.pack(">i", 0))
    send(1, -1, struct.pack(">qii", session, 1, 1) + create,
         auth=[("ip", "127.0.0.1")], note="REQUEST create %s (cxid 1, auth ip)" % path.decode())
    kz.set("/golden", b"written on a Java member")
    seen = 0
    deadline = time.time() + 10
    pings = 0
    while time.time() < deadline and (seen < 3 or pings < 1):
        t, z, data, auth = recv()
        if t == 8:
            seen += 1
        if t == 5:
            pings += 1
            touch = struct.pack(">qi", session, 10000)
            send(5, z, touch, auth, note="PING reply with touch of 0x%x" % session)
    # A sync: REQUEST of type sync, answered by a SYNC packet.
    sync = struct.pack(">i", len(b"/golden")) + b"/golden"
    send(1, -1, struct.pack(">qii", session, 2, 9) + sync, note="REQUEST sync /golden")
    deadline = time.time() + 10
    while time.time() < deadline:
        t, z, data, auth = recv()
        if t == 7:
            break
        if t == 5:
            send(5, z, struct.pack(">qi", session, 10000), auth, note="PING reply")
    # REVALIDATE of our session.
    send(6, -1, struct.pack(">qi", session, 10000), note="REVALIDATE 0x%x" % session)
    deadline = time.time() + 10
    while time.time() < deadline:
        t, z, data, auth = recv()
        if t == 6:
            break
        if t == 5:
            send(5, z, struct.pack(">qi", session, 10000), auth, note="PING reply")
    # closeSession so the ensemble forgets it.
    send(1, -1, struct.pack(">qii", session, 3, -11), note="REQUEST closeSession")
    deadline = time.time() + 10
    while time.time() < deadline:
        t, z, data, auth = recv()
        if t == 8 and data and struct.unpack(">i", data[28:32])[0] == -11:
            break
    sock.close()
    rec.save()
    wait_until(lambda: True, 1, "nothing")


if __name__ == "__main__":
    main()
