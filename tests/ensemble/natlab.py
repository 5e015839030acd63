"""An ensemble whose members' zoo.cfg files spell the ensemble differently, as behind NAT, in
containers or in Kubernetes: each member lists itself as `0.0.0.0` and reaches every other
member through a TCP proxy port of its own, at an address only it uses.

Layout (all inside one network namespace that has only `lo`, made by the test and removed even
on failure, so nothing a server binds on 0.0.0.0 is reachable from outside the namespace, and
all traffic stays on 127.0.0.0/8):

    server i binds                0.0.0.0:Q_i (quorum) 0.0.0.0:E_i (election) 0.0.0.0:C_i (client)
    member j's line for server i  server.i=127.j.i.1:PQ_ji:PE_ji;127.0.0.1:C_i     (i != j)
    member j's line for itself    server.j=0.0.0.0:Q_j:E_j;0.0.0.0:C_j
    proxy (j -> i)                127.j.i.1:PQ_ji -> 127.0.0.1:Q_i, 127.j.i.1:PE_ji -> 127.0.0.1:E_i

So no two members agree on any server's host or ports. Clients connect to 127.0.0.1:C_i
directly, or through a `Proxy` the test re-targets to move a session from member to member.

The test process itself enters the namespace (`setns(2)` of its main thread, through ctypes:
Python 3.11 has no os.setns) for the duration of a test: the servers it starts, the proxies'
threads and Kazoo's threads are created from that thread and inherit its namespace. `NetNs`
goes back to the original namespace on exit.
"""

import ctypes
import os
import select
import shutil
import socket
import subprocess
import threading
import uuid

from . import harness

CMD_TIMEOUT_S = 20.0
CLONE_NEWNET = 0x40000000
PUMP_BUFFER_BYTES = 65536
PROXY_POLL_S = 0.2  # how often an idle pump looks at its connection's flags


def netns_unavailable():
    if os.geteuid() != 0:
        return "needs root to create a network namespace"
    if shutil.which("ip") is None:
        return "no `ip` command (apt-get install iproute2)"
    return None


def _setns(fd):
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.setns(fd, CLONE_NEWNET) != 0:
        errno = ctypes.get_errno()
        raise OSError(errno, "setns: %s" % os.strerror(errno))


class NetNs:
    """A fresh network namespace with `lo` up, entered by the calling thread; `close()` goes
    back and deletes it."""

    def __init__(self):
        self.name = "rkn%s" % uuid.uuid4().hex[:8]
        self.original = None

    def enter(self):
        subprocess.run(["ip", "netns", "add", self.name], check=True, capture_output=True,
                       timeout=CMD_TIMEOUT_S)
        subprocess.run(["ip", "-n", self.name, "link", "set", "lo", "up"], check=True,
                       capture_output=True, timeout=CMD_TIMEOUT_S)
        # /proc/thread-self: setns changes the calling thread only, so that is what to restore.
        self.original = os.open("/proc/thread-self/ns/net", os.O_RDONLY)
        fd = os.open("/run/netns/%s" % self.name, os.O_RDONLY)
        try:
            _setns(fd)
        finally:
            os.close(fd)
        return self

    def close(self):
        if self.original is not None:
            _setns(self.original)
            os.close(self.original)
            self.original = None
        subprocess.run(["ip", "netns", "del", self.name], capture_output=True,
                       timeout=CMD_TIMEOUT_S)


class Proxy:
    """A TCP forwarder from `listen` to `target` ((host, port) pairs), one thread per direction
    of each connection. `cut()` is a partition: bytes in both directions are dropped (the
    connections stay open, as a real partition leaves them, so the ends notice only by their
    timeouts), new connections are accepted and silenced too; `heal()` closes the connections
    that lost bytes and forwards new ones again. `retarget(target)` closes every connection and
    sends new ones to `target` (a client behind it reconnects to another server)."""

    def __init__(self, listen, target):
        self.target = target
        self.lock = threading.Lock()
        self.cut_now = False
        self.conns = []  # [client socket, upstream socket or None, poisoned]
        self.closed = False
        self.listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.listener.bind(listen)
        self.listener.listen(64)
        self.listener.settimeout(PROXY_POLL_S)
        self.address = self.listener.getsockname()
        self.thread = threading.Thread(target=self._accept, daemon=True)
        self.thread.start()

    def _accept(self):
        while not self.closed:
            try:
                client, _ = self.listener.accept()
            except socket.timeout:
                continue
            except OSError:
                return
            with self.lock:
                target, poisoned = self.target, self.cut_now
            upstream = None
            if not poisoned:
                try:
                    upstream = socket.create_connection(target, timeout=2.0)
                except OSError:
                    client.close()
                    continue
            entry = [client, upstream, poisoned]
            with self.lock:
                self.conns.append(entry)
            if upstream is not None:
                for a, b in ((client, upstream), (upstream, client)):
                    threading.Thread(target=self._pump, args=(entry, a, b), daemon=True).start()

    def _pump(self, entry, source, sink):
        try:
            while not self.closed:
                ready, _, _ = select.select([source], [], [], PROXY_POLL_S)
                if not ready:
                    continue
                data = source.recv(PUMP_BUFFER_BYTES)
                if not data:
                    break
                if entry[2]:
                    continue  # cut: the bytes are lost, as on a partitioned link
                sink.sendall(data)
        except (OSError, ValueError):  # ValueError: the other pump closed the socket
            pass
        self._drop(entry)

    def _drop(self, entry):
        with self.lock:
            if entry in self.conns:
                self.conns.remove(entry)
        for s in entry[:2]:
            if s is not None:
                try:
                    s.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
                s.close()

    def cut(self):
        with self.lock:
            self.cut_now = True
            for entry in self.conns:
                entry[2] = True

    def heal(self):
        with self.lock:
            self.cut_now = False
            lossy = [e for e in self.conns if e[2]]
        for entry in lossy:
            self._drop(entry)

    def retarget(self, target):
        with self.lock:
            self.target = target
            every = list(self.conns)
        for entry in every:
            self._drop(entry)

    def close(self):
        self.closed = True
        try:
            self.listener.close()
        except OSError:
            pass
        with self.lock:
            every = list(self.conns)
        for entry in every:
            self._drop(entry)


class DivergentEnsemble(harness.Ensemble):
    """An Ensemble (harness.py) in the layout of the module doc. Must be made inside the
    namespace (NetNs.enter); `close()` also closes the proxies."""

    def __init__(self, kind, tmpdir, participants=3, **cfg):
        self.proxies = {}  # (viewer j, target i, "quorum" | "election") -> Proxy
        self.client_proxies = []  # made by a test, closed with the ensemble
        super().__init__(kind, tmpdir, participants=participants, **cfg)

    def _peer_proxy(self, viewer, target, which):
        key = (viewer, target, which)
        if key not in self.proxies:
            t = self.members[target]
            port = t.quorum_port if which == "quorum" else t.election_port
            host = "127.%d.%d.1" % (viewer, target)
            # port 0: the kernel picks a free port on this member's own address for the peer
            self.proxies[key] = Proxy((host, 0), ("127.0.0.1", port))
        return self.proxies[key]

    def _write_config(self, m):
        m.data.mkdir(parents=True, exist_ok=True)
        (m.data / "myid").write_text("%d\n" % m.sid)
        lines = ["%s=%s" % (k, v) for k, v in self.cfg.items()]
        lines += [
            "dataDir=%s" % m.data,
            "clientPort=%d" % m.client_port,
            "clientPortAddress=0.0.0.0",
            "maxClientCnxns=0",
            "4lw.commands.whitelist=*",
            "admin.enableServer=false",
        ]
        lines += ["%s=%s" % (k, v) for k, v in self.extra_cfg.items()]
        for o in self.members.values():
            if o.sid == m.sid:
                lines.append("server.%d=0.0.0.0:%d:%d;0.0.0.0:%d" % (
                    o.sid, o.quorum_port, o.election_port, o.client_port))
            else:
                q = self._peer_proxy(m.sid, o.sid, "quorum").address
                e = self._peer_proxy(m.sid, o.sid, "election").address
                assert q[0] == e[0]
                lines.append("server.%d=%s:%d:%d;127.0.0.1:%d" % (
                    o.sid, q[0], q[1], e[1], o.client_port))
        (m.dir / "zoo.cfg").write_text("\n".join(lines) + "\n")
        if self.kind == "zookeeper":
            (m.dir / "log4j.properties").write_text(harness.LOG4J_PROPERTIES)

    def cut(self, sid):
        """Partition server `sid` from its peers (both directions); its clients still reach it."""
        for (viewer, target, _), proxy in self.proxies.items():
            if sid in (viewer, target):
                proxy.cut()

    def heal(self, sid):
        for (viewer, target, _), proxy in self.proxies.items():
            if sid in (viewer, target):
                proxy.heal()

    def close(self):
        super().close()
        for proxy in list(self.proxies.values()) + self.client_proxies:
            proxy.close()
