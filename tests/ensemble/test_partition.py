"""Network partitions with Linux network namespaces: a server cut off from its peers stops
accepting writes (it cannot gather a quorum), the majority elects a leader if needed and goes on,
and after the partition heals everyone agrees (Zab: a new epoch's leader has every committed
transaction; the minority's unacknowledged proposals are truncated).

Layout, made by the test and removed even on failure: a bridge `rk<tag>br` in the root namespace
with address 10.A.B.254/24; namespace `rk<tag>-<i>` per server, joined to the bridge by a veth
pair (`rk<tag>h<i>` on the bridge, `rk<tag>n<i>` inside with 10.A.B.<i>/24). The test's own
clients reach the servers from the root namespace through the bridge; a client inside a server's
namespace (`ip netns exec`, nsclient.py) reaches its server while that server is cut off.
Cutting = `ip link set rk<tag>h<i> down` (the bridge port), healing = up again.

Needs root and `ip netns` (iproute2); skipped with the reason otherwise.
"""

import ipaddress
import json
import os
import random
import shutil
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

from .harness import tree_on, wait_until

SERVE_TIMEOUT_S = 60.0
CMD_TIMEOUT_S = 20.0
NSCLIENT = Path(__file__).resolve().parent / "nsclient.py"


def ip(*args, check=True):
    return subprocess.run(["ip"] + list(args), capture_output=True, text=True,
                          timeout=CMD_TIMEOUT_S, check=check)


def netns_unavailable():
    if os.geteuid() != 0:
        return "needs root to create network namespaces"
    if shutil.which("ip") is None:
        return "no `ip` command (apt-get install iproute2)"
    probe = "rkprobe%d" % os.getpid()
    r = subprocess.run(["ip", "netns", "add", probe], capture_output=True, text=True,
                       timeout=CMD_TIMEOUT_S)
    if r.returncode != 0:
        return "`ip netns add` failed: %s" % r.stderr.strip()
    subprocess.run(["ip", "netns", "del", probe], capture_output=True, timeout=CMD_TIMEOUT_S)
    return None


class NetLab:
    """Namespaces, veths and a bridge for `n` servers; `close()` removes all of them."""

    def __init__(self, n):
        self.tag = uuid.uuid4().hex[:5]
        self.n = n
        self.bridge = "rk%sbr" % self.tag
        self.namespaces = ["rk%s-%d" % (self.tag, i) for i in range(1, n + 1)]
        used = ip("-o", "-4", "addr").stdout
        while True:
            net = ipaddress.ip_network("10.%d.%d.0/24" % (random.randint(64, 250),
                                                         random.randint(1, 250)))
            if str(net.network_address)[:-1] not in used:
                break
        self.prefix = str(net.network_address)[:-2]  # "10.A.B"
        self.hosts = ["%s.%d" % (self.prefix, i) for i in range(1, n + 1)]

    def host_port(self, i):
        return "rk%sh%d" % (self.tag, i)

    def setup(self):
        ip("link", "add", self.bridge, "type", "bridge")
        ip("addr", "add", "%s.254/24" % self.prefix, "dev", self.bridge)
        ip("link", "set", self.bridge, "up")
        for i, ns in enumerate(self.namespaces, start=1):
            ip("netns", "add", ns)
            inner = "rk%sn%d" % (self.tag, i)
            ip("link", "add", self.host_port(i), "type", "veth", "peer", "name", inner,
               "netns", ns)
            ip("link", "set", self.host_port(i), "master", self.bridge)
            ip("link", "set", self.host_port(i), "up")
            ip("-n", ns, "link", "set", "lo", "up")
            ip("-n", ns, "addr", "add", "%s/24" % self.hosts[i - 1], "dev", inner)
            ip("-n", ns, "link", "set", inner, "up")

    def cut(self, i):
        ip("link", "set", self.host_port(i), "down")

    def heal(self, i):
        ip("link", "set", self.host_port(i), "up")

    def in_ns(self, i, *args, timeout_s=30.0):
        """Run nsclient.py inside server i's namespace; its JSON answer."""
        r = subprocess.run(["ip", "netns", "exec", self.namespaces[i - 1], sys.executable,
                            str(NSCLIENT)] + [str(a) for a in args],
                           capture_output=True, text=True, timeout=timeout_s)
        assert r.returncode == 0, "nsclient %s failed: %s" % (args, r.stderr[-2000:])
        return json.loads(r.stdout.strip().splitlines()[-1])

    def close(self):
        for ns in self.namespaces:
            subprocess.run(["ip", "netns", "del", ns], capture_output=True, timeout=CMD_TIMEOUT_S)
        for i in range(1, self.n + 1):
            subprocess.run(["ip", "link", "del", self.host_port(i)], capture_output=True,
                           timeout=CMD_TIMEOUT_S)
        subprocess.run(["ip", "link", "del", self.bridge], capture_output=True,
                       timeout=CMD_TIMEOUT_S)


@pytest.fixture
def netlab():
    reason = netns_unavailable()
    if reason:
        pytest.skip(reason)
    lab = NetLab(3)
    try:
        lab.setup()
        yield lab
    finally:
        lab.close()


def test_partitioned_leader_stops_writes_majority_goes_on_and_heal_agrees(kind, netlab,
                                                                         ensembles):
    # netlab before ensembles: fixtures are torn down in reverse order, so the servers and
    # clients stop while their network still exists (the other way round, stopping each client
    # waits out its connection to a vanished address: seconds per client).
    e = ensembles(kind, hosts=netlab.hosts, netns=netlab.namespaces).start()
    e.wait_serving(SERVE_TIMEOUT_S)
    root = "/part-%s" % uuid.uuid4().hex[:8]
    c = ensembles.client(e)
    c.create(root)
    c.create(root + "/before")
    # closed before the cut: a client whose server vanishes mid-connection spends seconds in
    # connect timeouts when stopped
    c.stop()

    # Cut the leader off: the harder case, since the majority must elect a new one.
    old = e.leader()
    majority = [s for s in e.ids if s != old]
    member = e.members[old]
    netlab.cut(old)

    # Minority: from inside its namespace, the cut-off server stops serving (no quorum) and a
    # write through it is never acknowledged.
    wait_until(lambda: netlab.in_ns(old, "mode", member.host, member.client_port)["mode"] is None,
               30, "the cut-off server %d to stop serving" % old, interval_s=0.2)
    minority_write = netlab.in_ns(old, "write", e.address(old), root + "/minority", 5.0)
    assert minority_write["ok"] is False, "the minority acknowledged a write"

    # Majority: a new leader among the two, and writes through them are acknowledged.
    new = e.wait_leader(30, exclude=[old])
    assert new in majority
    m = ensembles.client(e, hosts=e.connect_string(majority))
    for i in range(20):
        m.create("%s/majority-%02d" % (root, i))

    # Heal: the old leader rejoins as a follower of the new epoch and everyone agrees.
    netlab.heal(old)
    modes = e.wait_serving(SERVE_TIMEOUT_S)
    assert modes[old] == "follower", modes
    assert e.leader() == new
    trees = {sid: tree_on(e, sid, root) for sid in e.ids}
    assert trees[old] == trees[new] == trees[majority[0] if majority[0] != new else majority[1]]
    names = {p.rsplit("/", 1)[1] for p in trees[new] if p != root}
    assert {"majority-%02d" % i for i in range(20)} | {"before"} == names, names
