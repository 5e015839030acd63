"""Bad input on the client port: the server closes the offending connection and nobody else notices.

Run against both servers (not differential). During every test of this module a well-behaved
Kazoo client (the canary) keeps doing create / get / set / delete round trips on its own
session; each one must succeed within CANARY_OP_TIMEOUT_S and the session must never be
suspended or lost. After each test the server still answers `ruok` with `imok` and `srvr` with a
Mode line.

What ZooKeeper does (NIOServerCnxn.readLength / readConnectRequest, 3.8), which is what is checked:
* a frame length < 0 or > jute.maxbuffer (default 0xfffff) closes the connection ("Len error");
* a ConnectRequest that ends early closes the connection without a ConnectResponse;
* a ConnectRequest without the trailing readOnly byte (clients before 3.3) is accepted and answered
  without the readOnly byte;
* an unknown opcode is answered with err UNIMPLEMENTED (-6), zxid -1, and the connection is closed
  (UnimplementedRequestProcessor);
* a connection closed by the peer (EOF) is closed by the server, mid-frame or not; a truncated
  request is never executed.

Every socket operation is bounded by IO_TIMEOUT_S; random input comes from fixed seeds.
"""

import random
import socket
import struct
import threading
import time
import uuid

import pytest

import harness
from harness import four_letter
from rawclient import OP, RawClient, Reader, Writer, op_create, op_exists

IO_TIMEOUT_S = 5.0
CANARY_OP_TIMEOUT_S = 5.0
FLOOD_CONNECTIONS = 3000
FLOOD_BATCH = 100
SEED = 20240611


# ---------------------------------------------------------------------------------------------
# helpers

def connect_request(timeout_ms=10000, session_id=0, passwd=b"\x00" * 16, read_only=True):
    w = Writer().int(0).long(0).int(timeout_ms).long(session_id).buffer(passwd)
    if read_only is not None:
        w.bool(False)
    return w.bytes()


def frame(body):
    return struct.pack(">i", len(body)) + body


def open_socket(server):
    s = socket.create_connection((server.host, server.port), timeout=IO_TIMEOUT_S)
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return s


def recv_exact(s, n):
    chunks = []
    while n:
        b = s.recv(n)
        if not b:
            raise EOFError("closed by the server")
        chunks.append(b)
        n -= len(b)
    return b"".join(chunks)


def recv_frame(s):
    (n,) = struct.unpack(">i", recv_exact(s, 4))
    assert 0 <= n <= 16 << 20, "bad frame length from the server: %d" % n
    return recv_exact(s, n)


def handshake(server):
    """A connected socket with a fresh session (ConnectResponse read)."""
    s = open_socket(server)
    s.sendall(frame(connect_request()))
    r = Reader(recv_frame(s))
    r.int()
    assert r.int() > 0, "session refused"
    return s


def read_until_closed(s, timeout_s=IO_TIMEOUT_S):
    """Everything the server sends until it closes the connection; fails if it does not close
    within timeout_s. A reset counts as a close."""
    s.settimeout(timeout_s)
    deadline = time.monotonic() + timeout_s
    got = []
    try:
        while True:
            if time.monotonic() > deadline:
                raise AssertionError("server did not close the connection within %.1fs" % timeout_s)
            b = s.recv(65536)
            if not b:
                break
            got.append(b)
    except socket.timeout:
        raise AssertionError("server did not close the connection within %.1fs" % timeout_s)
    except (ConnectionResetError, BrokenPipeError):
        pass
    finally:
        s.close()
    return b"".join(got)


def send_ignoring_reset(s, data):
    try:
        s.sendall(data)
    except (ConnectionResetError, BrokenPipeError):
        pass  # the server may close while we are still sending: that is the expected outcome


class Canary:
    """A well-behaved Kazoo client doing round trips in a thread; every failure is recorded."""

    def __init__(self, server):
        from kazoo.client import KazooClient
        self.server = server
        self.base = "/canary-%s" % uuid.uuid4().hex[:12]
        self.client = KazooClient(hosts="%s:%d" % (server.host, server.port), timeout=10.0)
        self.errors = []
        self.states = []
        self.round_trips = 0
        self.progress = threading.Condition()
        self.stop_event = threading.Event()
        self.client.add_listener(self._state)
        self.client.start(timeout=15)
        self.client.create(self.base)
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _state(self, state):
        self.states.append(state)
        if state != "CONNECTED":
            self.errors.append("session state changed to %s" % state)

    def _run(self):
        i = 0
        while not self.stop_event.is_set():
            path = "%s/n%d" % (self.base, i)
            try:
                c = self.client
                assert c.create_async(path, b"v0").get(timeout=CANARY_OP_TIMEOUT_S) == path
                data, st = c.get_async(path).get(timeout=CANARY_OP_TIMEOUT_S)
                assert data == b"v0" and st.version == 0, (data, st)
                st = c.set_async(path, b"v1", 0).get(timeout=CANARY_OP_TIMEOUT_S)
                assert st.version == 1, st
                c.delete_async(path, 1).get(timeout=CANARY_OP_TIMEOUT_S)
            except Exception as e:  # any failure of the well-behaved client is a test failure
                self.errors.append("round trip %d: %r" % (i, e))
                if len(self.errors) > 20:
                    return
            with self.progress:
                self.round_trips += 1
                self.progress.notify_all()
            i += 1
            self.stop_event.wait(0.01)  # pacing only: leave CPU to the attack

    def await_round_trips(self, n, timeout_s=2 * CANARY_OP_TIMEOUT_S):
        """Wait until n more round trips have completed (shows the canary ran meanwhile)."""
        with self.progress:
            target = self.round_trips + n
            ok = self.progress.wait_for(lambda: self.round_trips >= target or self.errors,
                                        timeout=timeout_s)
        assert ok and not self.errors, "canary stalled or failed: %s" % self.errors[:5]

    def stop(self):
        self.stop_event.set()
        self.thread.join(timeout=4 * CANARY_OP_TIMEOUT_S)
        try:
            self.client.stop()
            self.client.close()
        except Exception:
            pass


@pytest.fixture(scope="module", params=harness.TARGETS)
def target(request, servers):
    s = servers[request.param]
    if not s.available:
        pytest.skip(s.skip_reason)
    canary = Canary(s)
    s.canary = canary
    yield s
    canary.stop()
    s.canary = None


@pytest.fixture(autouse=True)
def healthy_afterwards(target):
    start = target.canary.round_trips
    yield
    target.canary.await_round_trips(3)
    assert target.canary.errors == [], target.canary.errors[:10]
    assert target.canary.round_trips > start
    assert four_letter(target.host, target.port, "ruok") == "imok"
    assert "Mode: standalone" in four_letter(target.host, target.port, "srvr")


def raw(target, **kw):
    kw.setdefault("call_timeout_s", IO_TIMEOUT_S * 2)
    return RawClient(target.host, target.port, **kw)


# ---------------------------------------------------------------------------------------------
# tests

def test_random_bytes_instead_of_a_connect_request(target):
    """60 connections whose first bytes are random (1..600 bytes, seeded), then EOF: the server
    closes each one within a bound and keeps serving everybody else."""
    rng = random.Random(SEED)
    for i in range(60):
        s = open_socket(target)
        payload = bytes(rng.getrandbits(8) for _ in range(rng.randint(1, 600)))
        if payload[:4] in (b"ruok", b"srvr", b"stat", b"mntr", b"conf", b"cons", b"dump",
                           b"envi", b"wchs", b"wchc", b"wchp", b"dirs", b"isro", b"crst",
                           b"srst", b"kill", b"gtmk", b"stmk"):
            payload = b"\xff" + payload[1:]
        send_ignoring_reset(s, payload)
        try:
            s.shutdown(socket.SHUT_WR)
        except OSError:
            pass
        read_until_closed(s)


def test_random_bytes_after_a_valid_handshake(target):
    """After a ConnectResponse: (a) raw random bytes, (b) well-framed requests with a known
    opcode and a random body. Then EOF; the server closes, and stays healthy."""
    rng = random.Random(SEED + 1)
    # Opcodes that cannot touch other sessions' data with a random body (no closeSession: it is
    # harmless but ends the test connection early, which is fine too, so it is included).
    opcodes = [OP[k] for k in ("create", "delete", "exists", "getData", "setData", "getACL",
                               "setACL", "getChildren", "sync", "getChildren2", "check", "multi",
                               "create2", "checkWatches", "removeWatches", "createContainer",
                               "createTTL", "multiRead", "setWatches", "getEphemerals",
                               "getAllChildrenNumber", "setWatches2", "addWatch", "whoAmI",
                               "closeSession")]
    for i in range(30):
        s = handshake(target)
        send_ignoring_reset(s, bytes(rng.getrandbits(8) for _ in range(rng.randint(1, 2000))))
        try:
            s.shutdown(socket.SHUT_WR)
        except OSError:
            pass
        read_until_closed(s)
    for i in range(60):
        s = handshake(target)
        for _ in range(rng.randint(1, 5)):
            body = bytes(rng.getrandbits(8) for _ in range(rng.randint(0, 64)))
            hdr = Writer().int(rng.randint(1, 1 << 20)).int(rng.choice(opcodes)).bytes()
            send_ignoring_reset(s, frame(hdr + body))
        try:
            s.shutdown(socket.SHUT_WR)
        except OSError:
            pass
        read_until_closed(s)


def test_truncated_frames_are_never_executed(target):
    """A create whose frame is cut short (in the length prefix, in the header, in the body) and
    whose connection is then closed is not executed; the session survives the drop (it was not
    closed) and the same is true before the handshake completes."""
    checker = raw(target)
    try:
        for cut in (2, 4, 6, 12, 20, -1):
            path = "/trunc-%s" % uuid.uuid4().hex[:12]
            s = handshake(target)
            req = frame(Writer().int(1).int(OP["create"]).bytes() + op_create(path, b"d")[1])
            send_ignoring_reset(s, req[:cut])
            s.close()
            res = checker.exists(path)
            assert res.err == "NONODE", "a truncated create (%d of %d bytes) executed: %s" % (
                cut if cut >= 0 else len(req) - 1, len(req), res)
        for cut in (1, 3, 4, 10, 30, 48):
            s = open_socket(target)
            send_ignoring_reset(s, frame(connect_request())[:cut])
            s.close()
    finally:
        checker.close()


@pytest.mark.parametrize("length", [0x7FFFFFFF, 2 << 20, -1, -0x80000000, -4])
@pytest.mark.parametrize("when", ["first-frame", "after-handshake"])
def test_bad_frame_length_closes_the_connection(target, length, when):
    """A frame length above jute.maxbuffer (1 MiB - 1 by default) or below zero: the server
    closes the connection without answering (ZooKeeper: IOException "Len error")."""
    s = handshake(target) if when == "after-handshake" else open_socket(target)
    send_ignoring_reset(s, struct.pack(">i", length) + b"\x00" * 64)
    got = read_until_closed(s)
    assert got == b"", "the server answered a frame of length %d: %r" % (length, got[:64])


def test_short_connect_request_is_refused(target):
    """ConnectRequests that end early (a frame of 10 bytes; one without the password) are closed
    without a ConnectResponse."""
    full = connect_request()
    for body in (full[:10], full[:28], b""):
        s = open_socket(target)
        send_ignoring_reset(s, frame(body))
        got = read_until_closed(s)
        assert got == b"", "ConnectResponse to a %d-byte ConnectRequest: %r" % (len(body), got[:64])


def test_connect_request_without_read_only_flag(target):
    """A ConnectRequest without the trailing readOnly byte (pre-3.3 clients) is accepted; the
    ConnectResponse then has no readOnly byte either (ZooKeeperServer.processConnectRequest /
    finishSessionInit, `isOldClient`), and the session works."""
    s = open_socket(target)
    try:
        s.sendall(frame(connect_request(read_only=None)))
        body = recv_frame(s)
        assert len(body) == 36, "ConnectResponse of %d bytes to an old client" % len(body)
        r = Reader(body)
        r.int()
        assert r.int() > 0 and r.long() != 0
        s.sendall(frame(Writer().int(1).int(OP["exists"]).bytes() + op_exists("/")[1]))
        r = Reader(recv_frame(s))
        assert (r.int(), r.long() > 0, r.int()) == (1, True, 0)
    finally:
        s.close()


@pytest.mark.parametrize("opcode", [999, 50, 10, -100])
def test_unknown_opcode_answered_unimplemented_then_closed(target, opcode):
    """An unknown request type: reply header (xid, zxid -1, err UNIMPLEMENTED -6), no body, then
    the server closes the connection (UnimplementedRequestProcessor + sendCloseSession)."""
    s = handshake(target)
    s.sendall(frame(Writer().int(7).int(opcode).bytes() + b"\x00" * 8))
    rest = read_until_closed(s)
    assert len(rest) >= 4, "no answer to opcode %d before the close" % opcode
    r = Reader(rest)
    n = r.int()
    assert n == 16, "reply frame of %d bytes (expected a bare ReplyHeader): %r" % (n, rest[:64])
    assert (r.int(), r.long(), r.int()) == (7, -1, -6)
    assert r.remaining() == 0, "more frames after the UNIMPLEMENTED reply: %r" % rest[20:84]


def test_invalid_paths_are_errors_not_disconnects(target):
    """Paths that are not valid znode paths are answered with an error code on a connection that
    stays usable, and create nothing: relative, empty, trailing slash, empty component, `.` and
    `..` components, control characters, characters ZooKeeper rejects (U+FFFF, U+0085) and bytes
    that are not UTF-8 (decoded as U+FFFD by Java, which PathUtils rejects)."""
    c = raw(target)
    base = "/badpath-%s" % uuid.uuid4().hex[:12]
    try:
        assert c.create(base).err == "OK"
        bad = ["rel", "", base + "/", base + "//x", base + "/./x", base + "/../x", base + "/.",
               base + "/a\x01b", base + "/a\x7fb", base + "/a\u0085b", base + "/a\uffffb",
               base + "/a\x00b"]
        for p in bad:
            res = c.create(p, b"x")
            assert res.err in ("BADARGUMENTS", "NONODE", "NODEEXISTS"), (p, res)
            if p.startswith(base + "/a"):
                assert res.err == "BADARGUMENTS", (p, res)
        # Invalid UTF-8 in the path (raw bytes in the ustring). Java decodes them as U+FFFD:
        # create answers BADARGUMENTS (PathUtils), exists NONODE, and the connection stays
        # (observed on 3.8.0).
        for raw_path in (base.encode() + b"/a\xff\xfeb", base.encode() + b"/\xc3", b"\x80"):
            body = Writer().buffer(raw_path).buffer(b"x").acls([(31, "world", "anyone")]).int(0).bytes()
            res = c.call((OP["create"], body, lambda r: r.ustring()))
            assert res.err == "BADARGUMENTS", ("create", raw_path, res)
            body = Writer().buffer(raw_path).bool(False).bytes()
            res = c.call((OP["exists"], body, lambda r: r.stat()))
            assert res.err == "NONODE", ("exists", raw_path, res)
        # Reads with bad paths answer too and keep the connection.
        for p in bad[:7]:
            assert c.get_data(p).err != "CONNECTIONLOSS", p
        children = c.get_children(base)
        assert children.err == "OK" and children.value == [], children
    finally:
        c.delete(base)
        c.close()


def test_connection_flood_some_mid_handshake(target):
    """3000 connections in batches of 100 open at once: a quarter closed at once, a quarter after
    half a ConnectRequest, a quarter right after a full ConnectRequest without reading the
    answer, a quarter after reading the ConnectResponse. The server answers every complete
    handshake, keeps serving the canary, and its connection count returns to what it was."""
    connections_before = connection_count(target)
    partial = frame(connect_request(timeout_ms=4000))
    for batch_start in range(0, FLOOD_CONNECTIONS, FLOOD_BATCH):
        socks = []
        for i in range(batch_start, batch_start + FLOOD_BATCH):
            s = open_socket(target)
            socks.append((i % 4, s))
            if i % 4 == 1:
                send_ignoring_reset(s, partial[:len(partial) // 2])
            elif i % 4 in (2, 3):
                send_ignoring_reset(s, partial)
        for kind, s in socks:
            if kind == 3:
                body = recv_frame(s)
                assert len(body) >= 36 and struct.unpack(">i", body[4:8])[0] > 0
            s.close()
    # No event says "the server has closed its side of 3000 sockets": poll srvr with a deadline.
    deadline = time.monotonic() + 15.0
    while True:
        now = connection_count(target)
        if now <= connections_before:
            break
        assert time.monotonic() < deadline, (
            "connections did not drain: %d before the flood, %d now" % (connections_before, now))
        time.sleep(0.2)


def connection_count(target):
    out = four_letter(target.host, target.port, "srvr")
    for line in out.splitlines():
        if line.startswith("Connections:"):
            return int(line.split(":")[1])
    raise AssertionError("srvr has no Connections line: %r" % out)
