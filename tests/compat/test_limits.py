"""Per-connection limits from zoo.cfg: maxClientCnxns and jute.maxbuffer.

Own servers (not the session ones, whose limits are off): started from the conftest zoo.cfg plus
`maxClientCnxns=5` and `jute.maxbuffer=4096`, on their own temp dir and free port.

* maxClientCnxns (both servers; ZooKeeper's behaviour is the spec): NIOServerCnxnFactory counts
  the connections per client IP when it accepts one and closes the 6th at once ("Too many
  connections from /127.0.0.1 - max is 5"), before reading anything: no ConnectResponse. The
  first five keep working, and a slot freed by a closed connection can be used again.
* jute.maxbuffer (ringkeeper only): ZooKeeper reads that limit only from the `jute.maxbuffer`
  system property (a zoo.cfg key becomes `zookeeper.jute.maxbuffer`), ringkeeper from zoo.cfg.
  A request frame longer than the limit closes that connection; others are untouched.
"""

import shutil
import socket
import struct
import tempfile
import time
from pathlib import Path

import pytest

from conftest import Server
from rawclient import OP, ConnectionClosed, RawClient, Writer

MAX_CONNECTIONS = 5
FRAME_BYTES_MAX = 4096
IO_TIMEOUT_S = 5.0
LIMITS_CFG = ("maxClientCnxns=%d" % MAX_CONNECTIONS, "jute.maxbuffer=%d" % FRAME_BYTES_MAX)


@pytest.fixture(scope="module", params=["zookeeper", "ringkeeper"])
def limited(request, servers):
    """A server of the given kind with the limits above (skipped like the session ones)."""
    if not servers[request.param].available:
        pytest.skip(servers[request.param].skip_reason)
    tmp = Path(tempfile.mkdtemp(prefix="ringkeeper-limits-"))
    s = Server(request.param, tmp / request.param, extra_cfg=LIMITS_CFG)
    s.start()
    if not s.available:
        pytest.skip(s.skip_reason)
    yield s
    s.stop()
    if not request.node.session.testsfailed:
        shutil.rmtree(tmp, ignore_errors=True)


def connect_request():
    return Writer().int(0).long(0).int(10000).long(0).buffer(b"\x00" * 16).bool(False).bytes()


def refused_without_connect_response(server):
    """Open a connection, send a ConnectRequest, and return the bytes the server sent before it
    closed the connection (b'' when refused); fails if it neither answers nor closes in time."""
    try:
        s = socket.create_connection((server.host, server.port), timeout=IO_TIMEOUT_S)
    except (BrokenPipeError, ConnectionResetError):
        # Closed so fast that connect itself saw it (observed with ZooKeeper): refused.
        return b""
    got = b""
    try:
        try:
            body = connect_request()
            s.sendall(struct.pack(">i", len(body)) + body)
        except (BrokenPipeError, ConnectionResetError):
            return b""
        while True:
            try:
                b = s.recv(4096)
            except ConnectionResetError:
                return got
            except socket.timeout:
                raise AssertionError("the connection over the limit was neither answered nor "
                                     "closed within %.0fs (got %r)" % (IO_TIMEOUT_S, got))
            if not b:
                return got
            got += b
            if len(got) >= 4 + 36:
                return got  # a ConnectResponse: the server accepted it
    finally:
        s.close()


def test_sixth_connection_from_one_ip_is_closed(limited):
    """With maxClientCnxns=5 the 6th concurrent connection from 127.0.0.1 is closed without a
    ConnectResponse while the first five keep working; closing one frees its slot."""
    clients = [RawClient(limited.host, limited.port, call_timeout_s=IO_TIMEOUT_S)
               for _ in range(MAX_CONNECTIONS)]
    try:
        got = refused_without_connect_response(limited)
        assert got == b"", "6th connection was answered: %r" % got[:64]
        for i, c in enumerate(clients):
            assert c.create("/limit-%d" % i).err == "OK", "connection %d stopped working" % i
            assert c.exists("/limit-%d" % i).err == "OK"
        # Free one slot: closeSession, then wait until the server itself has closed the socket
        # (it counts the connection until then).
        first = clients.pop(0)
        assert first.call((OP["closeSession"], b"", lambda r: None)).err == "OK"
        assert first.closed.wait(IO_TIMEOUT_S), "server did not close after closeSession"
        first.drop()
        # ringkeeper frees the slot before it closes the socket, so the next connection is
        # admitted at once. ZooKeeper may still count the closed connection for a moment
        # (seen as a refused connection now and then): it gets a bounded retry.
        deadline = time.monotonic() + (IO_TIMEOUT_S if limited.name == "zookeeper" else 0)
        while True:
            try:
                again = RawClient(limited.host, limited.port, call_timeout_s=IO_TIMEOUT_S)
                break
            except (OSError, ConnectionClosed):
                if time.monotonic() >= deadline:
                    raise
                time.sleep(0.05)
        clients.append(again)
        assert not again.expired and again.exists("/").err == "OK"
    finally:
        for c in clients:
            c.close()


def test_frame_over_jute_maxbuffer_closes_only_that_connection(limited):
    """jute.maxbuffer=4096 (ringkeeper reads it from zoo.cfg): a setData with 5000 bytes closes
    the sender's connection; another connection keeps working; 4000 bytes work."""
    if limited.name == "zookeeper":
        pytest.skip("ZooKeeper takes jute.maxbuffer only as a JVM system property, not from zoo.cfg")
    big, other = (RawClient(limited.host, limited.port, call_timeout_s=IO_TIMEOUT_S)
                  for _ in range(2))
    try:
        assert big.create("/frame").err == "OK"
        res = big.set_data("/frame", b"x" * 4000)
        assert res.err == "OK" and res.value.dataLength == 4000, res
        res = big.set_data("/frame", b"y" * 5000)
        assert res.err == "CONNECTIONLOSS", "a %d-byte frame was accepted: %s" % (5000, res)
        assert big.closed.wait(IO_TIMEOUT_S)
        res = other.get_data("/frame")
        assert res.err == "OK" and res.value[0] == b"x" * 4000, "the oversized write applied"
        assert other.set_data("/frame", b"z" * 4000).err == "OK"
    finally:
        big.drop()
        other.close()
