"""Differential harness: servers, per-scenario environment, transcript normalisation, diff.

A scenario is `def test_something(env): ...` decorated with `@scenario`. It drives real clients
(Kazoo, or the raw jute client in rawclient.py) against one server inside a fresh namespace
`env.base` (`/t-<uuid>`), records what it observes with `env.rec(...)` and asserts what Apache
ZooKeeper is known to do. `@scenario` turns it into one pytest test parametrised by target:

* `[zookeeper]`  runs it against the reference server (Apache ZooKeeper from Debian);
* `[ringkeeper]` runs it against ringkeeper and asserts that the normalised transcript equals the
  reference one (running the reference first if its transcript is not cached yet).

Normalisation keeps relations and drops only values that legitimately differ between servers:
  zxids (czxid, mzxid, pzxid, reply-header zxids, Zxid(...)) -> "Z<rank>" by rank among all zxids in
      the transcript, so equality and order ("mzxid > czxid", "pzxid == czxid of the last child")
      survive; 0 stays 0 (the /zookeeper nodes really have zxid 0).
  session ids (ephemeralOwner, Session(...)) -> "S1", "S2", ... in order of first appearance;
      0 stays 0, so "ephemeralOwner == this session's id" survives.
  ctime / mtime / Time(...) -> "<time>" when non-zero.
  the namespace path env.base -> "/T" inside every string.
"""

import difflib
import hashlib
import base64
import os
import pprint
import re
import socket
import time
import uuid

import pytest

import rawclient
from rawclient import RawClient

TARGETS = ["zookeeper", "ringkeeper"]
CALL_TIMEOUT_S = 10.0


class Zxid:
    def __init__(self, v):
        self.v = v


class Session:
    def __init__(self, v):
        self.v = v


class Time:
    def __init__(self, v):
        self.v = v


STAT_FIELDS = ("czxid", "mzxid", "ctime", "mtime", "version", "cversion", "aversion",
               "ephemeralOwner", "dataLength", "numChildren", "pzxid")


def digest_id(user, password):
    """DigestAuthenticationProvider.generateDigest: user:base64(sha1(user:password))."""
    raw = ("%s:%s" % (user, password)).encode()
    return "%s:%s" % (user, base64.b64encode(hashlib.sha1(raw).digest()).decode())


def is_stat(v):
    return hasattr(v, "_fields") and tuple(v._fields[:11]) == STAT_FIELDS


def stat_record(st):
    """A Stat (raw or Kazoo ZnodeStat) as a dict with the volatile values marked."""
    d = {}
    for f in STAT_FIELDS:
        v = getattr(st, f)
        if f in ("czxid", "mzxid", "pzxid"):
            v = Zxid(v)
        elif f in ("ctime", "mtime"):
            v = Time(v)
        elif f == "ephemeralOwner":
            v = Session(v)
        d[f] = v
    return d


def to_record(v):
    """Convert observations (Results, Stats, Events, Kazoo objects, exceptions) to plain data
    with markers, recursively."""
    if isinstance(v, (Zxid, Session, Time)):
        return v
    if isinstance(v, rawclient.Result):
        return (v.err, to_record(v.value))
    if is_stat(v):
        return stat_record(v)
    if isinstance(v, BaseException):
        return ("raises", type(v).__name__)
    if hasattr(v, "_fields"):  # namedtuples: Event, WatchedEvent, ACL, Id...
        return (type(v).__name__,) + tuple(to_record(getattr(v, f)) for f in v._fields)
    if isinstance(v, dict):
        return {k: to_record(x) for k, x in v.items()}
    if isinstance(v, (list, tuple)):
        return type(v)(to_record(x) for x in v)
    if isinstance(v, bytearray):
        return bytes(v)
    return v


def normalise(transcript, base):
    zxids, sessions = set(), []

    def collect(v):
        if isinstance(v, Zxid):
            if v.v:
                zxids.add(v.v)
        elif isinstance(v, Session):
            if v.v and v.v not in sessions:
                sessions.append(v.v)
        elif isinstance(v, dict):
            for x in v.values():
                collect(x)
        elif isinstance(v, (list, tuple)):
            for x in v:
                collect(x)

    collect(transcript)
    rank = {z: "Z%d" % (i + 1) for i, z in enumerate(sorted(zxids))}
    sname = {s: "S%d" % (i + 1) for i, s in enumerate(sessions)}

    def conv(v):
        if isinstance(v, Zxid):
            return rank.get(v.v, 0)
        if isinstance(v, Session):
            return sname.get(v.v, 0)
        if isinstance(v, Time):
            return "<time>" if v.v else 0
        if isinstance(v, str):
            return v.replace(base, "/T")
        if isinstance(v, dict):
            return {k: conv(x) for k, x in v.items()}
        if isinstance(v, (list, tuple)):
            return type(v)(conv(x) for x in v)
        return v

    return conv(transcript)


def four_letter(host, port, word, timeout_s=5.0):
    with socket.create_connection((host, port), timeout=timeout_s) as s:
        s.sendall(word.encode())
        chunks = []
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            b = s.recv(65536)
            if not b:
                break
            chunks.append(b)
        return b"".join(chunks).decode("utf-8", "replace")


class Env:
    """What a scenario sees: one server, a fresh namespace, client factories, a transcript."""

    def __init__(self, server):
        self.server = server
        self.host, self.port = server.host, server.port
        self.base = "/t-%s" % uuid.uuid4().hex[:12]
        self.transcript = []
        self._raws = []
        self._kazoos = []
        admin = self.raw()
        res = admin.create(self.base)
        assert res.err == "OK", "cannot create namespace %s: %s" % (self.base, res)
        self.admin = admin

    def path(self, *parts):
        return "/".join((self.base,) + parts)

    # ---- clients ----
    def raw(self, **kw):
        kw.setdefault("call_timeout_s", CALL_TIMEOUT_S)
        c = RawClient(self.host, self.port, **kw)
        self._raws.append(c)
        return c

    def kazoo(self, start=True, **kw):
        from kazoo.client import KazooClient
        from kazoo.retry import KazooRetry
        kw.setdefault("timeout", 10.0)
        kw.setdefault("connection_retry", KazooRetry(max_tries=-1, delay=0.05, max_delay=0.5))
        hosts = kw.pop("hosts", "%s:%d" % (self.host, self.port))
        c = KazooClient(hosts=hosts, **kw)
        self._kazoos.append(c)
        if start:
            c.start(timeout=15)
        return c

    def four(self, word):
        return four_letter(self.host, self.port, word)

    # ---- ZooKeeper 3.8 (the reference package) versus 3.9 (what ringkeeper implements) ----
    @property
    def version(self):
        """The ZooKeeper release whose semantics the server implements, from `srvr`."""
        if not hasattr(self, "_version"):
            m = re.search(r"Zookeeper version: (\d+)\.(\d+)", self.four("srvr"))
            assert m, "srvr did not report a version"
            self._version = (int(m.group(1)), int(m.group(2)))
        return self._version

    def versioned(self, label, observed, v38, v39):
        """A behaviour that ZooKeeper changed between 3.8 and 3.9 (each case cites the change).
        Asserts the value the server's own release specifies and records only that it did, so
        the transcripts of a 3.8 and a 3.9 server still compare equal."""
        expected = v39 if self.version >= (3, 9) else v38
        assert observed == expected, "%s: got %r, ZooKeeper %d.%d specifies %r" % (
            label, observed, self.version[0], self.version[1], expected)
        self.transcript.append((label, "<as specified for the server's release>"))
        return observed

    # ---- recording ----
    def rec(self, label, *values):
        """Record an observation; Results, Stats and Events are converted with their volatile
        fields marked for normalisation."""
        self.transcript.append((label,) + tuple(to_record(v) for v in values))
        return values[0] if len(values) == 1 else values

    def rec_zxid(self, label, *zxids):
        self.transcript.append((label,) + tuple(Zxid(z) for z in zxids))

    def close(self):
        for c in self._kazoos:
            try:
                c.stop()
                c.close()
            except Exception:
                pass
        for c in self._raws:
            try:
                if not c.closed.is_set():
                    c.close()
            except Exception:
                pass


def expect_event(client, timeout_s=5.0):
    ev = client.next_event(timeout_s)
    assert ev is not None, "no watch event within %.1fs" % timeout_s
    return ev


class Compat:
    """Session-wide state: the servers and the cached reference transcripts."""

    def __init__(self, servers):
        self.servers = servers  # name -> Server
        self.reference = {}

    def run_on(self, fn, target):
        server = self.servers[target]
        env = Env(server)
        try:
            fn(env)
        finally:
            env.close()
        return normalise(env.transcript, env.base)

    def run(self, fn, target):
        key = "%s.%s" % (fn.__module__, fn.__name__)
        server = self.servers[target]
        if not server.available:
            pytest.skip(server.skip_reason)
        if target == "zookeeper":
            self.reference[key] = self.run_on(fn, "zookeeper")
            return
        if key not in self.reference:
            zk = self.servers["zookeeper"]
            if not zk.available:
                pytest.skip("no reference transcript: " + zk.skip_reason)
            self.reference[key] = self.run_on(fn, "zookeeper")
        got = self.run_on(fn, target)
        want = self.reference[key]
        if got != want:
            a = pprint.pformat(want, width=100).splitlines()
            b = pprint.pformat(got, width=100).splitlines()
            diff = "\n".join(difflib.unified_diff(a, b, "zookeeper", target, lineterm="", n=3))
            pytest.fail("transcripts differ (normalised):\n" + diff, pytrace=False)


COMPAT = None  # set by conftest's session fixture


def scenario(fn):
    """Make a differential test out of a scenario function `fn(env)`."""

    @pytest.mark.parametrize("target", TARGETS)
    def test(target, compat):
        compat.run(fn, target)

    test.__name__ = fn.__name__
    test.__qualname__ = fn.__qualname__
    test.__doc__ = fn.__doc__
    test.__module__ = fn.__module__
    test.scenario = fn
    return test
