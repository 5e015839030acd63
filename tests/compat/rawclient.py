"""A small raw ZooKeeper (jute) client for the compatibility suite.

Kazoo 2.8 (Debian's python3-kazoo) has no API for createTTL, createContainer with a Stat,
getEphemerals, getAllChildrenNumber, checkWatches/removeWatches, addWatch, multiRead or whoAmI,
always sends b'' instead of null data, and hides the reply header (zxid, error code) and the
order in which frames arrive. This client speaks the wire protocol directly so the scenarios can
observe all of that.

Wire format (zookeeper.jute, ClientCnxn / NIOServerCnxn): every frame is an int32 big-endian
length followed by the record. A request is RequestHeader(xid int, type int) + body; a reply is
ReplyHeader(xid int, zxid long, err int) + body (body present only when err == 0, except for
multi / multiRead whose body carries per-op results). Special xids: -1 watch notification
(WatcherEvent body), -2 ping, -4 auth, -8 setWatches.

Every blocking operation is bounded (`call_timeout_s`); nothing here sleeps to synchronise.
"""

import collections
import queue
import socket
import struct
import threading

OP = dict(
    notification=0, create=1, delete=2, exists=3, getData=4, setData=5, getACL=6, setACL=7,
    getChildren=8, sync=9, ping=11, getChildren2=12, check=13, multi=14, create2=15,
    reconfig=16, checkWatches=17, removeWatches=18, createContainer=19, deleteContainer=20,
    createTTL=21, multiRead=22, auth=100, setWatches=101, sasl=102, getEphemerals=103,
    getAllChildrenNumber=104, setWatches2=105, addWatch=106, whoAmI=107,
    createSession=-10, closeSession=-11, error=-1,
)

# KeeperException.Code
ERRORS = {
    0: "OK", -1: "SYSTEMERROR", -2: "RUNTIMEINCONSISTENCY", -3: "DATAINCONSISTENCY",
    -4: "CONNECTIONLOSS", -5: "MARSHALLINGERROR", -6: "UNIMPLEMENTED", -7: "OPERATIONTIMEOUT",
    -8: "BADARGUMENTS", -13: "NEWCONFIGNOQUORUM", -14: "RECONFIGINPROGRESS",
    -15: "UNKNOWNSESSION", -100: "APIERROR", -101: "NONODE", -102: "NOAUTH",
    -103: "BADVERSION", -108: "NOCHILDRENFOREPHEMERALS", -110: "NODEEXISTS", -111: "NOTEMPTY",
    -112: "SESSIONEXPIRED", -113: "INVALIDCALLBACK", -114: "INVALIDACL", -115: "AUTHFAILED",
    -118: "SESSIONMOVED", -119: "NOTREADONLY", -120: "EPHEMERALONLOCALSESSION",
    -121: "NOWATCHER", -122: "REQUESTTIMEOUT", -123: "RECONFIGDISABLED",
    -124: "SESSIONCLOSEDREQUIRESASLAUTH", -125: "QUOTAEXCEEDED", -127: "THROTTLEDOP",
}

EVENT_TYPES = {
    -1: "None", 1: "NodeCreated", 2: "NodeDeleted", 3: "NodeDataChanged",
    4: "NodeChildrenChanged", 5: "DataWatchRemoved", 6: "ChildWatchRemoved",
    7: "PersistentWatchRemoved",
}
KEEPER_STATES = {
    -1: "Unknown", 0: "Disconnected", 3: "SyncConnected", 4: "AuthFailed",
    5: "ConnectedReadOnly", 6: "SaslAuthenticated", -112: "Expired", 7: "Closed",
}

# CreateMode flags (CreateMode.java)
PERSISTENT, EPHEMERAL, PERSISTENT_SEQUENTIAL, EPHEMERAL_SEQUENTIAL = 0, 1, 2, 3
CONTAINER, PERSISTENT_WITH_TTL, PERSISTENT_SEQUENTIAL_WITH_TTL = 4, 5, 6
# ZooDefs.Perms
READ, WRITE, CREATE, DELETE, ADMIN, ALL = 1, 2, 4, 8, 16, 31
# WatcherType (checkWatches / removeWatches)
WATCH_CHILDREN, WATCH_DATA, WATCH_ANY = 1, 2, 3
# AddWatchMode
ADD_WATCH_PERSISTENT, ADD_WATCH_PERSISTENT_RECURSIVE = 0, 1

OPEN_ACL_UNSAFE = [(ALL, "world", "anyone")]

Stat = collections.namedtuple(
    "Stat",
    "czxid mzxid ctime mtime version cversion aversion ephemeralOwner dataLength numChildren pzxid",
)
Event = collections.namedtuple("Event", "type state path")
Result = collections.namedtuple("Result", "err value zxid")
MAX_FRAME_BYTES = 16 * 1024 * 1024


class Writer:
    def __init__(self):
        self.parts = []

    def int(self, v):
        self.parts.append(struct.pack(">i", v))
        return self

    def long(self, v):
        self.parts.append(struct.pack(">q", v))
        return self

    def bool(self, v):
        self.parts.append(b"\x01" if v else b"\x00")
        return self

    def buffer(self, v):
        if v is None:
            return self.int(-1)
        self.int(len(v))
        self.parts.append(bytes(v))
        return self

    def ustring(self, v):
        return self.buffer(None if v is None else v.encode("utf-8"))

    def strings(self, vs):
        self.int(len(vs))
        for v in vs:
            self.ustring(v)
        return self

    def acls(self, acls):
        if acls is None:
            return self.int(-1)
        self.int(len(acls))
        for perms, scheme, ident in acls:
            self.int(perms).ustring(scheme).ustring(ident)
        return self

    def bytes(self):
        return b"".join(self.parts)


class Reader:
    def __init__(self, data):
        self.data = data
        self.pos = 0

    def _take(self, n):
        if self.pos + n > len(self.data):
            raise ValueError("short record: need %d bytes at %d of %d" % (n, self.pos, len(self.data)))
        b = self.data[self.pos:self.pos + n]
        self.pos += n
        return b

    def int(self):
        return struct.unpack(">i", self._take(4))[0]

    def long(self):
        return struct.unpack(">q", self._take(8))[0]

    def bool(self):
        return self._take(1) != b"\x00"

    def buffer(self):
        n = self.int()
        return None if n < 0 else self._take(n)

    def ustring(self):
        b = self.buffer()
        return None if b is None else b.decode("utf-8")

    def strings(self):
        n = self.int()
        return None if n < 0 else [self.ustring() for _ in range(n)]

    def stat(self):
        return Stat(self.long(), self.long(), self.long(), self.long(), self.int(), self.int(),
                    self.int(), self.long(), self.int(), self.int(), self.long())

    def acls(self):
        n = self.int()
        return None if n < 0 else [(self.int(), self.ustring(), self.ustring()) for _ in range(n)]

    def remaining(self):
        return len(self.data) - self.pos


# ---- request bodies: each returns (opcode, body bytes, decode(reader) -> value) ----

def _none(_r):
    return None


def op_create(path, data=b"", acl=OPEN_ACL_UNSAFE, flags=PERSISTENT):
    return OP["create"], Writer().ustring(path).buffer(data).acls(acl).int(flags).bytes(), lambda r: r.ustring()


def op_create2(path, data=b"", acl=OPEN_ACL_UNSAFE, flags=PERSISTENT):
    return OP["create2"], Writer().ustring(path).buffer(data).acls(acl).int(flags).bytes(), lambda r: (r.ustring(), r.stat())


def op_create_container(path, data=b"", acl=OPEN_ACL_UNSAFE, flags=CONTAINER):
    return OP["createContainer"], Writer().ustring(path).buffer(data).acls(acl).int(flags).bytes(), lambda r: (r.ustring(), r.stat())


def op_create_ttl(path, data=b"", acl=OPEN_ACL_UNSAFE, flags=PERSISTENT_WITH_TTL, ttl=1000):
    return OP["createTTL"], Writer().ustring(path).buffer(data).acls(acl).int(flags).long(ttl).bytes(), lambda r: (r.ustring(), r.stat())


def op_delete(path, version=-1):
    return OP["delete"], Writer().ustring(path).int(version).bytes(), _none


def op_exists(path, watch=False):
    return OP["exists"], Writer().ustring(path).bool(watch).bytes(), lambda r: r.stat()


def op_get_data(path, watch=False):
    return OP["getData"], Writer().ustring(path).bool(watch).bytes(), lambda r: (r.buffer(), r.stat())


def op_set_data(path, data, version=-1):
    return OP["setData"], Writer().ustring(path).buffer(data).int(version).bytes(), lambda r: r.stat()


def op_get_acl(path):
    return OP["getACL"], Writer().ustring(path).bytes(), lambda r: (r.acls(), r.stat())


def op_set_acl(path, acl, version=-1):
    return OP["setACL"], Writer().ustring(path).acls(acl).int(version).bytes(), lambda r: r.stat()


def op_get_children(path, watch=False):
    return OP["getChildren"], Writer().ustring(path).bool(watch).bytes(), lambda r: r.strings()


def op_get_children2(path, watch=False):
    return OP["getChildren2"], Writer().ustring(path).bool(watch).bytes(), lambda r: (r.strings(), r.stat())


def op_sync(path):
    return OP["sync"], Writer().ustring(path).bytes(), lambda r: r.ustring()


def op_check(path, version):
    return OP["check"], Writer().ustring(path).int(version).bytes(), _none


def op_check_watches(path, watcher_type):
    return OP["checkWatches"], Writer().ustring(path).int(watcher_type).bytes(), _none


def op_remove_watches(path, watcher_type):
    return OP["removeWatches"], Writer().ustring(path).int(watcher_type).bytes(), _none


def op_get_ephemerals(prefix):
    return OP["getEphemerals"], Writer().ustring(prefix).bytes(), lambda r: r.strings()


def op_get_all_children_number(path):
    return OP["getAllChildrenNumber"], Writer().ustring(path).bytes(), lambda r: r.int()


def op_add_watch(path, mode):
    return OP["addWatch"], Writer().ustring(path).int(mode).bytes(), _none


def op_reconfig(joining=None, leaving=None, new_members=None, from_config=-1):
    """ReconfigRequest; the reply is a GetDataResponse (the new config and its Stat)."""
    body = Writer().ustring(joining).ustring(leaving).ustring(new_members).long(from_config)
    return OP["reconfig"], body.bytes(), lambda r: (r.buffer(), r.stat())


def op_who_am_i():
    return OP["whoAmI"], b"", lambda r: [(r.ustring(), r.ustring()) for _ in range(r.int())]


# Results of ops inside multi / multiRead, by the opcode in the MultiHeader of the reply.
_MULTI_RESULT = {
    OP["create"]: lambda r: r.ustring(),
    OP["create2"]: lambda r: (r.ustring(), r.stat()),
    OP["createContainer"]: lambda r: (r.ustring(), r.stat()),
    OP["createTTL"]: lambda r: (r.ustring(), r.stat()),
    OP["delete"]: _none,
    OP["setData"]: lambda r: r.stat(),
    OP["check"]: _none,
    OP["getChildren"]: lambda r: r.strings(),
    OP["getData"]: lambda r: (r.buffer(), r.stat()),
}
_OPNAME = {v: k for k, v in OP.items()}


def _multi(opcode, ops):
    w = Writer()
    for op, body, _dec in ops:
        w.int(op).bool(False).int(-1)
        w.parts.append(body)
    w.int(-1).bool(True).int(-1)

    def decode(r):
        out = []
        while True:
            typ, done, err = r.int(), r.bool(), r.int()
            if done:
                break
            if typ == -1:
                out.append(("error", ERRORS.get(r.int(), err)))
            else:
                out.append((_OPNAME.get(typ, typ), _MULTI_RESULT[typ](r)))
        return out

    return opcode, w.bytes(), decode


def op_multi(ops):
    """ops: list of op_* tuples (create, create2, delete, setData, check, ...)."""
    return _multi(OP["multi"], ops)


def op_multi_read(ops):
    """ops: list of op_get_children / op_get_data tuples."""
    return _multi(OP["multiRead"], ops)


class ConnectionClosed(Exception):
    pass


class RawClient:
    """One TCP connection, one session. Replies are matched by xid; watch events go to
    `events` (a queue); every incoming frame is appended to `frames` in arrival order as
    ('event', type, path) or ('reply', xid, err)."""

    def __init__(self, host, port, timeout_ms=10000, session_id=0, passwd=b"\x00" * 16,
                 last_zxid=0, read_only=False, call_timeout_s=10.0, ping=True):
        self.host, self.port = host, port
        self.call_timeout_s = call_timeout_s
        self.sock = socket.create_connection((host, port), timeout=call_timeout_s)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        body = (Writer().int(0).long(last_zxid).int(timeout_ms).long(session_id)
                .buffer(passwd).bool(read_only).bytes())
        self._send_frame(body)
        r = Reader(self._recv_frame())
        self.protocol_version = r.int()
        self.negotiated_timeout_ms = r.int()
        self.session_id = r.long()
        self.passwd = r.buffer()
        self.read_only = r.bool() if r.remaining() else None
        # The server answers an expired / unknown session with timeout 0 and session id 0,
        # then closes the connection (ZooKeeperServer.finishSessionInit).
        self.expired = self.negotiated_timeout_ms <= 0
        self.sock.settimeout(None)
        self.events = queue.Queue()
        self.frames = []
        self._lock = threading.Lock()
        self._send_lock = threading.Lock()
        self._pending = {}
        self._xid = 0
        self.closed = threading.Event()
        self._reader = threading.Thread(target=self._read_loop, daemon=True)
        self._reader.start()
        self._pinger = None
        if ping and not self.expired:
            self._pinger = threading.Thread(target=self._ping_loop, daemon=True)
            self._pinger.start()

    # ---- framing ----
    def _send_frame(self, body):
        with getattr(self, "_send_lock", threading.Lock()):
            self.sock.sendall(struct.pack(">i", len(body)) + body)

    def _recv_exact(self, n):
        chunks = []
        while n:
            b = self.sock.recv(n)
            if not b:
                raise ConnectionClosed("connection closed by server")
            chunks.append(b)
            n -= len(b)
        return b"".join(chunks)

    def _recv_frame(self):
        (n,) = struct.unpack(">i", self._recv_exact(4))
        if n < 0 or n > MAX_FRAME_BYTES:
            raise ConnectionClosed("bad frame length %d" % n)
        return self._recv_exact(n)

    def _read_loop(self):
        try:
            while True:
                r = Reader(self._recv_frame())
                xid, zxid, err = r.int(), r.long(), r.int()
                if xid == -1:
                    ev = Event(EVENT_TYPES.get(r.int()), KEEPER_STATES.get(r.int()), r.ustring())
                    with self._lock:
                        self.frames.append(("event", ev.type, ev.path))
                    self.events.put(ev)
                    continue
                if xid == -2:
                    continue
                with self._lock:
                    self.frames.append(("reply", xid, ERRORS.get(err, err)))
                    q = self._pending.pop(xid, None)
                if q is not None:
                    q.put((zxid, err, r))
        except (ConnectionClosed, OSError, ValueError):
            pass
        finally:
            self.closed.set()
            with self._lock:
                pending, self._pending = self._pending, {}
            for q in pending.values():
                q.put(None)

    def _ping_loop(self):
        interval = max(self.negotiated_timeout_ms / 3000.0, 0.5)
        while not self.closed.wait(interval):
            try:
                self._send_frame(Writer().int(-2).int(OP["ping"]).bytes())
            except OSError:
                return

    # ---- requests ----
    def send(self, op, xid=None):
        """Send a request without waiting; returns a handle for wait()."""
        opcode, body, decode = op
        q = queue.Queue(maxsize=1)
        with self._lock:
            if xid is None:
                self._xid += 1
                xid = self._xid
            if self.closed.is_set():
                q.put(None)
            else:
                self._pending[xid] = q
        if not self.closed.is_set():
            try:
                self._send_frame(Writer().int(xid).int(opcode).bytes() + body)
            except OSError:
                pass
        return xid, q, decode

    def wait(self, handle):
        xid, q, decode = handle
        try:
            got = q.get(timeout=self.call_timeout_s)
        except queue.Empty:
            raise TimeoutError("no reply to xid %d within %.1fs" % (xid, self.call_timeout_s))
        if got is None:
            return Result("CONNECTIONLOSS", None, None)
        zxid, err, r = got
        name = ERRORS.get(err, err)
        # multi/multiRead carry per-op results even when err != 0
        if err == 0 or (r.remaining() and decode is not _none and name != "OK" and _is_multi(decode)):
            return Result(name, decode(r), zxid)
        return Result(name, None, zxid)

    def call(self, op, xid=None):
        return self.wait(self.send(op, xid))

    # convenience wrappers
    def create(self, path, data=b"", acl=OPEN_ACL_UNSAFE, flags=PERSISTENT):
        return self.call(op_create(path, data, acl, flags))

    def create2(self, path, data=b"", acl=OPEN_ACL_UNSAFE, flags=PERSISTENT):
        return self.call(op_create2(path, data, acl, flags))

    def create_container(self, path, data=b"", acl=OPEN_ACL_UNSAFE):
        return self.call(op_create_container(path, data, acl))

    def create_ttl(self, path, ttl, data=b"", acl=OPEN_ACL_UNSAFE, flags=PERSISTENT_WITH_TTL):
        return self.call(op_create_ttl(path, data, acl, flags, ttl))

    def delete(self, path, version=-1):
        return self.call(op_delete(path, version))

    def exists(self, path, watch=False):
        return self.call(op_exists(path, watch))

    def get_data(self, path, watch=False):
        return self.call(op_get_data(path, watch))

    def set_data(self, path, data, version=-1):
        return self.call(op_set_data(path, data, version))

    def get_acl(self, path):
        return self.call(op_get_acl(path))

    def set_acl(self, path, acl, version=-1):
        return self.call(op_set_acl(path, acl, version))

    def get_children(self, path, watch=False):
        return self.call(op_get_children(path, watch))

    def get_children2(self, path, watch=False):
        return self.call(op_get_children2(path, watch))

    def sync(self, path):
        return self.call(op_sync(path))

    def multi(self, ops):
        return self.call(op_multi(ops))

    def multi_read(self, ops):
        return self.call(op_multi_read(ops))

    def check_watches(self, path, watcher_type):
        return self.call(op_check_watches(path, watcher_type))

    def remove_watches(self, path, watcher_type):
        return self.call(op_remove_watches(path, watcher_type))

    def get_ephemerals(self, prefix="/"):
        return self.call(op_get_ephemerals(prefix))

    def get_all_children_number(self, path):
        return self.call(op_get_all_children_number(path))

    def add_watch(self, path, mode):
        return self.call(op_add_watch(path, mode))

    def who_am_i(self):
        return self.call(op_who_am_i())

    def add_auth(self, scheme, auth):
        """AuthPacket(type 0, scheme, auth) with xid -4; the server answers with xid -4."""
        body = Writer().int(0).ustring(scheme).buffer(auth).bytes()
        return self.call((OP["auth"], body, _none), xid=-4)

    def set_watches(self, relative_zxid, data=(), exist=(), child=()):
        body = (Writer().long(relative_zxid).strings(list(data)).strings(list(exist))
                .strings(list(child)).bytes())
        return self.call((OP["setWatches"], body, _none), xid=-8)

    def set_watches2(self, relative_zxid, data=(), exist=(), child=(), persistent=(), recursive=()):
        body = (Writer().long(relative_zxid).strings(list(data)).strings(list(exist))
                .strings(list(child)).strings(list(persistent)).strings(list(recursive)).bytes())
        return self.call((OP["setWatches2"], body, _none), xid=-8)

    def next_event(self, timeout_s=5.0):
        """The next watch event, or None if none arrives within the bound."""
        try:
            return self.events.get(timeout=timeout_s)
        except queue.Empty:
            return None

    def events_after_barrier(self):
        """All events caused by transactions that committed before now. A round trip on this
        connection is the barrier: the server sends a watch event before the reply to any
        request it processes after the transaction that triggered it (events are ordered
        before responses), so once the reply is here every such event is already queued.
        No quiet window, no sleep."""
        res = self.call(op_exists("/"))
        if res.err == "CONNECTIONLOSS":
            raise ConnectionClosed("connection closed during barrier")
        out = []
        while True:
            try:
                out.append(self.events.get_nowait())
            except queue.Empty:
                return out

    def drain_events(self, quiet_s=0.3):
        """Events that arrive until the stream has been quiet for quiet_s (used only to assert
        that no further event arrives: absence can only be observed over a bounded window)."""
        out = []
        while True:
            ev = self.next_event(quiet_s)
            if ev is None:
                return out
            out.append(ev)

    def close(self):
        """closeSession, then close the socket (what a client's close() does)."""
        if not self.closed.is_set():
            try:
                res = self.call((OP["closeSession"], b"", _none))
            except TimeoutError:
                res = None
        else:
            res = None
        self.drop()
        return res

    def drop(self):
        """Close the TCP connection without closing the session (a network failure)."""
        try:
            self.sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self.sock.close()
        self.closed.wait(self.call_timeout_s)


def _is_multi(decode):
    return getattr(decode, "__qualname__", "").startswith("_multi.")
