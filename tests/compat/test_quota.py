"""Quotas (ZooKeeper's Quotas / StatsTrack / DataTree.updateQuotaStat / ZooKeeperServer.checkQuota):
`/zookeeper/quota/<path>/zookeeper_limits` and `zookeeper_stats` in StatsTrack's text format, the
stats kept current by every create, delete and setData below the deepest quota root, and
QuotaExceeded (-125) on hard limits when `zookeeper.enforceQuota` is on.

Two server configurations, compared with Apache ZooKeeper configured the same way:

* enforcement off: the session's shared servers (`@scenario`, differential by the harness);
* enforcement on: a pair of servers of this module, started with -Dzookeeper.enforceQuota=true
  (ZooKeeper's JVM; ringkeeper's SERVER_JVMFLAGS) and snapCount=10, so that a restart loads a
  snapshot that holds quota nodes and replays the log after it. Each test runs the same steps on
  both and compares the normalised transcripts (harness.normalise), as `@scenario` does.

zkCli's setquota / listquota / delquota are run unchanged (zkCli.sh, one JVM per server).
"""

import difflib
import os
import pprint
import shutil
import subprocess
import tempfile
import time
import uuid
from pathlib import Path

import pytest

import harness
import zkcli
from conftest import Server
from harness import Env, expect_event, normalise, scenario
from rawclient import EPHEMERAL, op_create, op_delete, op_set_data

QUOTA = "/zookeeper/quota"
ENFORCE_FLAGS = "-Dzookeeper.enforceQuota=true"
EXPIRY_TIMEOUT_S = 15.0
LOG_TIMEOUT_S = 10.0


def set_quota(client, path, limits):
    """What zkCli's SetQuotaCommand.createQuota does for a new quota: the directories under
    /zookeeper/quota, the limits node, then a stats node of count=0,bytes=0 (which the server
    overwrites with the subtree's real count)."""
    directory = QUOTA
    for name in path.split("/")[1:]:
        directory += "/" + name
        res = client.create(directory)
        assert res.err in ("OK", "NODEEXISTS"), res
    for node, data in (("zookeeper_limits", limits), ("zookeeper_stats", b"count=0,bytes=0")):
        res = client.create(directory + "/" + node, data)
        assert res.err == "OK", (node, res)


def drop_quotas(client, base):
    """Deletes everything this test put under /zookeeper/quota<base> (deepest first), so the
    shared servers keep a clean quota tree."""
    top = QUOTA + base
    paths, stack = [], [top]
    while stack:
        path = stack.pop()
        res = client.get_children(path)
        if res.err != "OK":
            continue
        paths.append(path)
        stack.extend(path + "/" + child for child in res.value)
    for path in sorted(paths, key=lambda p: -p.count("/")):
        client.delete(path)


def stats(env, label, client, path):
    """Records and returns the stats node's text; its Stat is recorded as well (mzxid and
    version do not move when the server updates the data, dataLength does)."""
    res = client.get_data(QUOTA + path + "/zookeeper_stats")
    assert res.err == "OK", res
    text = res.value[0].decode()
    env.rec(label, text.replace(env.base, "/T"), res.value[1])
    return text


def multi_error(res):
    """The error of a multi: a failed multi's reply header may say OK, with the failing op's
    error among the per-op results (the others RUNTIMEINCONSISTENCY or OK, rolled back)."""
    for kind, value in res.value or []:
        if kind == "error" and value not in ("OK", "RUNTIMEINCONSISTENCY"):
            return value
    return res.err


def create(env, label, client, path, data=b"", flags=0):
    res = client.create(path, data, flags=flags)
    env.rec(label, res.err)
    return res.err


@scenario
def test_quota_stats_follow_creates_deletes_set_data_and_multis(env):
    """With enforcement off (the default), the stats node counts the root and everything below
    it: counted when the stats node is created, then changed by every create, delete, setData,
    successful multi op and closed session's ephemerals, while a failed multi changes nothing;
    a hard limit is only a number. A nested root takes the changes below it (only the deepest
    root is updated); a root whose node does not exist yet counts 0; a deleted limits node ends
    the quota."""
    c = env.raw()
    q = env.path("q")
    create(env, "create q", c, q, b"12345")
    create(env, "create q/a", c, q + "/a", b"x")
    set_quota(c, q, b"count=-1,bytes=-1=;byteHardLimit=-1;countHardLimit=2")
    assert stats(env, "after setquota", c, q) == "count=2,bytes=6"
    env.rec("limits", c.get_data(QUOTA + q + "/zookeeper_limits"))
    assert create(env, "create over hard limit (not enforced)", c, q + "/b", b"abc") == "OK"
    assert stats(env, "after create", c, q) == "count=3,bytes=9"
    env.rec("set q/a", c.set_data(q + "/a", b"xyz12").err)
    assert stats(env, "after setData", c, q) == "count=3,bytes=13"
    env.rec("delete q/b", c.delete(q + "/b").err)
    assert stats(env, "after delete", c, q) == "count=2,bytes=10"
    ok = c.multi([op_create(q + "/m", b"11"), op_set_data(q + "/m", b"2222"),
                  op_delete(q + "/a")])
    env.rec("multi", ok)
    assert multi_error(ok) == "OK"
    assert stats(env, "after multi", c, q) == "count=2,bytes=9"
    failed = c.multi([op_create(q + "/n", b"1"), op_create(q + "/missing/x", b"1")])
    env.rec("failed multi", failed)
    assert multi_error(failed) == "NONODE"
    assert stats(env, "after failed multi", c, q) == "count=2,bytes=9"
    owner = env.raw()
    create(env, "ephemeral", owner, q + "/e", b"eph", flags=EPHEMERAL)
    assert stats(env, "with ephemeral", c, q) == "count=3,bytes=12"
    owner.close()
    assert stats(env, "after close", c, q) == "count=2,bytes=9"
    # Nested: /q/in gets its own root; its changes no longer reach /q's stats.
    create(env, "create q/in", c, q + "/in", b"1")
    create(env, "create q/in/x", c, q + "/in/x", b"22")
    assert stats(env, "outer before nesting", c, q) == "count=4,bytes=12"
    set_quota(c, q + "/in", b"count=10,bytes=-1")
    assert stats(env, "inner", c, q + "/in") == "count=2,bytes=3"
    create(env, "create q/in/y", c, q + "/in/y", b"333")
    assert stats(env, "inner after create", c, q + "/in") == "count=3,bytes=6"
    assert stats(env, "outer after inner create", c, q) == "count=4,bytes=12"
    # A quota on a path that does not exist yet counts from zero.
    later = env.path("later")
    set_quota(c, later, b"count=1,bytes=-1")
    assert stats(env, "absent root", c, later) == "count=0,bytes=0"
    create(env, "create later", c, later, b"ab")
    assert stats(env, "root created", c, later) == "count=1,bytes=2"
    # Deleting the limits node ends the quota: the stats node stays and no longer moves.
    env.rec("delete limits", c.delete(QUOTA + later + "/zookeeper_limits").err)
    create(env, "create below ended quota", c, later + "/z", b"z")
    assert stats(env, "ended quota", c, later) == "count=1,bytes=2"
    drop_quotas(c, env.base)


# ---------------------------------------------------------------- enforcement on


@pytest.fixture(scope="module")
def enforced():
    """Apache ZooKeeper and ringkeeper with zookeeper.enforceQuota=true as a JVM flag."""
    tmp = Path(tempfile.mkdtemp(prefix="ringkeeper-quota-"))
    servers = {}
    try:
        for name in harness.TARGETS:
            s = Server(name, tmp / name, extra_cfg=["snapCount=10"], jvm_flags=ENFORCE_FLAGS)
            s.start()
            servers[name] = s
        yield servers
    finally:
        for s in servers.values():
            s.stop()
        if not os.environ.get("COMPAT_KEEP_LOGS"):
            shutil.rmtree(tmp, ignore_errors=True)


def differential(servers, steps):
    """Runs `steps(env, server)` on the reference, then on ringkeeper, and asserts that the
    normalised transcripts are equal. Returns the two envs' bases."""
    transcripts, bases = {}, {}
    for name in harness.TARGETS:
        server = servers.get(name)
        if server is None or not server.available:
            pytest.skip("%s not available" % name)
        env = Env(server)
        try:
            steps(env, server)
        finally:
            env.close()
        transcripts[name] = normalise(env.transcript, env.base)
        bases[name] = env.base
    want, got = transcripts["zookeeper"], transcripts["ringkeeper"]
    if want != got:
        a = pprint.pformat(want, width=100).splitlines()
        b = pprint.pformat(got, width=100).splitlines()
        pytest.fail("transcripts differ (normalised):\n" + "\n".join(
            difflib.unified_diff(a, b, "zookeeper", "ringkeeper", lineterm="", n=3)), pytrace=False)
    return bases


def wait_for_log(server, text):
    deadline = time.monotonic() + LOG_TIMEOUT_S
    while time.monotonic() < deadline:
        if text in server.log.read_text(errors="replace"):
            return True
        time.sleep(0.1)  # a log file has no event to await
    return False


def test_hard_limits_refuse_creates_and_set_data_when_enforced(enforced):
    """checkQuota: a create past countHardLimit and a setData past byteHardLimit fail with
    QuotaExceeded and change nothing; a multi with such an op fails as a whole (the op's error,
    the others rolled back). The ops of a multi are checked against the stats before the multi,
    so three creates that each fit pass together. A soft limit is only logged ("Quota exceeded:
    <root> [current count=.., softCountLimit=..]")."""
    soft_roots = {}

    def steps(env, server):
        c = env.raw()
        h = env.path("h")
        create(env, "create h", c, h)
        set_quota(c, h, b"count=-1,bytes=-1=;byteHardLimit=8;countHardLimit=3")
        assert create(env, "h/a", c, h + "/a", b"1234") == "OK"
        assert create(env, "h/b", c, h + "/b") == "OK"
        assert create(env, "h/c over count", c, h + "/c") == "QUOTAEXCEEDED"
        assert stats(env, "after refused create", c, h) == "count=3,bytes=4"
        assert env.rec("setData within", c.set_data(h + "/b", b"1234").err) == "OK"
        assert env.rec("setData over bytes", c.set_data(h + "/b", b"12345").err) == "QUOTAEXCEEDED"
        # Same length: bytesDiff 0, not checked.
        assert env.rec("setData same length", c.set_data(h + "/b", b"abcd").err) == "OK"
        # Shrinking while at the limit is a change too, checked and within.
        assert env.rec("setData shrink", c.set_data(h + "/b", b"ab").err) == "OK"
        res = env.rec("multi over bytes", c.multi([op_set_data(h + "/a", b"1"),
                                                   op_set_data(h + "/b", b"1234567")]))
        assert multi_error(res) == "QUOTAEXCEEDED"
        res = env.rec("multi over count", c.multi([op_delete(h + "/b"),
                                                   op_create(h + "/x")]))
        assert multi_error(res) == "QUOTAEXCEEDED", "the delete before it does not count"
        assert stats(env, "after refused multis", c, h) == "count=3,bytes=6"
        m = env.path("m")
        create(env, "create m", c, m)
        set_quota(c, m, b"count=-1,bytes=-1=;byteHardLimit=-1;countHardLimit=3")
        res = env.rec("multi of creates that each fit",
                      c.multi([op_create(m + "/1"), op_create(m + "/2"), op_create(m + "/3")]))
        assert multi_error(res) == "OK"
        assert stats(env, "past the hard limit by a multi", c, m) == "count=4,bytes=0"
        s = env.path("s")
        create(env, "create s", c, s)
        set_quota(c, s, b"count=1,bytes=-1")
        assert create(env, "over soft limit", c, s + "/a") == "OK"
        assert stats(env, "soft", c, s) == "count=2,bytes=0"
        soft_roots[server.name] = (server, "Quota exceeded: %s [current count=2, softCountLimit=1]" % s)
        drop_quotas(c, env.base)

    differential(enforced, steps)
    for name, (server, line) in soft_roots.items():
        assert wait_for_log(server, line), "%s did not log %r (log %s)" % (name, line, server.log)


def test_expired_sessions_ephemerals_and_a_restart_keep_stats(enforced):
    """The ephemerals of a session that expires are deleted through the same path as a delete
    and leave the stats; after a restart (snapshot + log replay; snapCount=10 makes snapshots
    hold the quota nodes) the stats read the same as before it and keep counting, and hard
    limits are still enforced."""
    before = {}

    def steps(env, server):
        c = env.raw()
        e = env.path("e")
        create(env, "create e", c, e, b"1")
        set_quota(c, e, b"count=-1,bytes=-1=;byteHardLimit=-1;countHardLimit=4")
        silent = env.raw(timeout_ms=4000, ping=False)
        create(env, "ephemeral", silent, e + "/eph", b"abc", flags=EPHEMERAL)
        assert stats(env, "with ephemeral", c, e) == "count=2,bytes=4"
        env.rec("watch", c.exists(e + "/eph", watch=True).err)
        ev = expect_event(c, EXPIRY_TIMEOUT_S)
        assert (ev.type, ev.path) == ("NodeDeleted", e + "/eph")
        assert stats(env, "after expiry", c, e) == "count=1,bytes=1"
        for i in range(12):  # more than snapCount: a snapshot with the quota in it
            create(env, "filler", c, env.path("f%d" % i), b"f")
        create(env, "e/1", c, e + "/1", b"22")
        create(env, "e/2", c, e + "/2", b"333")
        before[server.name] = stats(env, "before restart", c, e)
        c.close()
        server.stop()
        server.start()
        c = env.raw()
        after = stats(env, "after restart", c, e)
        assert after == before[server.name] == "count=3,bytes=6"
        create(env, "e/3 after restart", c, e + "/3", b"4444")
        assert create(env, "e/4 over hard limit", c, e + "/4") == "QUOTAEXCEEDED"
        assert stats(env, "counting on", c, e) == "count=4,bytes=10"
        drop_quotas(c, env.base)

    differential(enforced, steps)


def run_zkcli(host_port, commands):
    """One zkCli.sh process running `commands`; returns one normalised output per command
    (zkcli.py's marker protocol)."""
    if not os.access(zkcli.ZKCLI, os.X_OK):
        pytest.skip("%s not installed" % zkcli.ZKCLI)
    marker = zkcli.MARKER_COMMAND
    script = marker + "\n" + "".join("%s\n%s\n" % (c, marker) for c in commands) + "quit\n"
    done = subprocess.run([zkcli.ZKCLI, "-server", host_port], input=script.encode(),
                          stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                          timeout=zkcli.ZKCLI_TIMEOUT_S)
    segments, current = [], None
    for line in done.stdout.decode("utf-8", "backslashreplace").splitlines():
        if zkcli.EVENT_RE.match(line) or line in ("WATCHER::", "") or line.startswith("SLF4J:"):
            continue
        if line == zkcli.MARKER_LINE:
            if current is not None:
                segments.append(current)
            current = []
        elif current is not None:
            current.append(line)
    assert len(segments) >= len(commands), "zkCli.sh output: %r" % done.stdout[-2000:]
    return segments[:len(commands)]


def test_zkcli_setquota_listquota_delquota(enforced):
    """zkCli's quota commands, unchanged, against both servers with enforcement on: setquota
    -n / -b (soft) and -N / -B (hard), listquota's "Output quota for ..." and "Output stat
    for ..." lines, delquota of one limit (-n, -B) and of the whole quota, and the hard limit
    refusing a create ("Quota has exceeded")."""
    steps = [
        "create {r} 12345",
        "create {r}/c ab",
        "setquota -n 5 {r}",
        "listquota {r}",
        "setquota -b 100 {r}",
        "setquota -N 3 {r}",
        "setquota -B 20 {r}",
        "listquota {r}",
        "create {r}/d 1234",
        "create {r}/e",
        "listquota {r}",
        "delquota -n {r}",
        "delquota -B {r}",
        "listquota {r}",
        "create {r}/e 0123456789",
        "delquota {r}",
        "listquota {r}",
        "create {r}/e",
        "setquota -n 1 /zookeeper/quota/x",
        "deleteall {r}",
    ]
    outputs = {}
    for name in harness.TARGETS:
        server = enforced.get(name)
        if server is None or not server.available:
            pytest.skip("%s not available" % name)
        root = "/zq-%s" % uuid.uuid4().hex[:10]
        segments = run_zkcli("127.0.0.1:%d" % server.port, [s.format(r=root) for s in steps])
        outputs[name] = ["%s -> %s" % (step, zkcli.normalise_segment(seg, root))
                         for step, seg in zip(steps, segments)]
        c = Env(server)
        try:
            drop_quotas(c.admin, root)
        finally:
            c.close()
    want, got = outputs["zookeeper"], outputs["ringkeeper"]
    if os.environ.get("QUOTA_PRINT_ZKCLI"):
        print("\n".join(got))
    assert got == want, "\n".join(difflib.unified_diff(want, got, "zookeeper", "ringkeeper",
                                                        lineterm=""))
    text = "\n".join(want)
    assert "Output quota for {r} count=5,bytes=-1".format(r="<root>") in text, text
    assert "Quota has exceeded" in text or "QuotaExceeded" in text, text
