"""Ensembles of real servers for the ensemble tests and bench/ensemble_bench.py.

An `Ensemble` is N servers of one kind started side by side on this machine, each with its own
directory holding `zoo.cfg`, `data/myid`, the data, and its log:

    <tmpdir>/<kind>-<n>/s<id>/zoo.cfg         the server's own zoo.cfg (shared server.N lines)
    <tmpdir>/<kind>-<n>/s<id>/data/myid       ZooKeeper's myid file: the server's id, one line
    <tmpdir>/<kind>-<n>/s<id>/server.log      stdout and stderr of the process

Kinds:

* `zookeeper`: Apache ZooKeeper 3.8 from Debian (`/usr/share/java`), started as
  `java ... org.apache.zookeeper.server.quorum.QuorumPeerMain zoo.cfg` with the classpath and
  JVM profiles of scripts/reference-zk.sh (`test`: small heap, serial GC, C1 only; `server`:
  zkServer.sh's defaults, for benchmarks).
* `ringkeeper`: `$RINGKEEPER_BIN --config zoo.cfg` (default `<repo>/target/release/ringkeeper`).

The servers are numbered by their id (myid) 1..N; observers take the last ids. Every method that
takes a server takes its id. All waits poll with a bounded deadline: a server's role is awaited
by asking `srvr` until it reports `Mode: ...` (ZooKeeper answers "This ZooKeeper instance is not
currently serving requests" instead while it has no quorum; see FourLetterCommands / StatCommand).
"""

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
JAVA_DIR = Path(os.environ.get("JAVA_DIR", "/usr/share/java"))
KINDS = ("zookeeper", "ringkeeper")

# scripts/reference-zk.sh's classpath: zookeeper.jar names most dependencies in its manifest;
# these are the rest (jute, an slf4j binding, log4j 1.2, netty, ...), where installed.
ZK_JARS = ("zookeeper", "zookeeper-jute", "slf4j-api", "slf4j-log4j12", "log4j-1.2",
           "netty-buffer", "netty-codec", "netty-common", "netty-handler", "netty-resolver",
           "netty-transport", "netty-transport-native-epoll",
           "netty-transport-native-unix-common", "commons-cli", "commons-io",
           "jackson-annotations", "jackson-core", "jackson-databind", "metrics-core",
           "snappy-java", "jline")
# scripts/reference-zk.sh's profiles. `test`: the reference only needs to be correct, and a small
# C1-only JVM starts faster (and five of them fit on a 2-core CI machine). `server`: what
# benchmarks must use (a hobbled reference would flatter ringkeeper).
JVM_PROFILES = {
    "test": ["-Xms32m", "-Xmx256m", "-XX:+UseSerialGC", "-XX:TieredStopAtLevel=1"],
    "server": ["-Xmx%dm" % int(os.environ.get("ZK_HEAP_MB", "1000"))],
}
LOG4J_PROPERTIES = """log4j.rootLogger=INFO, CONSOLE
log4j.appender.CONSOLE=org.apache.log4j.ConsoleAppender
log4j.appender.CONSOLE.layout=org.apache.log4j.PatternLayout
log4j.appender.CONSOLE.layout.ConversionPattern=%d{ISO8601} - %-5p [%t:%C{1}@%L] - %m%n
"""

# Timing for tests: tickTime 200 ms makes ZooKeeper notice a dead peer within syncLimit ticks
# (1 s) and elect within a few hundred ms (FastLeaderElection's finalizeWait is 200 ms);
# initLimit 10 ticks (2 s) is enough for a follower to sync a small tree on loopback.
# Session timeouts are clamped to [minSessionTimeout, maxSessionTimeout]; the default max
# (20 ticks = 4 s) is raised so that test clients ride out a leader election without expiring.
TEST_CFG = {
    "tickTime": 200,
    "initLimit": 10,
    "syncLimit": 5,
    "minSessionTimeout": 400,
    "maxSessionTimeout": 15000,
}
STOP_TIMEOUT_S = 10.0
FOUR_LETTER_TIMEOUT_S = 1.0
MODE_RE = re.compile(r"^Mode: (\w+)", re.M)
ZXID_RE = re.compile(r"^Zxid: (0x[0-9a-fA-F]+)", re.M)


sys.path.insert(0, str(REPO / "scripts"))
import loopback  # noqa: E402  scripts/loopback.py


def free_ports(count, host="127.0.0.1"):
    """`count` distinct free ports (scripts/loopback.py's free_port, deduplicated: the kernel may
    hand out a port again once the probing socket is closed)."""
    ports = []
    deadline = time.monotonic() + 10.0
    while len(ports) < count:
        assert time.monotonic() < deadline, "could not find %d distinct free ports" % count
        p = loopback.free_port()
        if p not in ports:
            ports.append(p)
    return ports


def four_letter(host, port, word, timeout_s=FOUR_LETTER_TIMEOUT_S):
    """Send a four-letter word and read until the server closes (bounded)."""
    return loopback.four_letter(port, word, timeout_s, host=host)


def digest_figures(e, sid):
    """(zk_digest_mismatches_count, ringkeeper_digests_compared or None) from server `sid`'s
    `mntr` (the second is ringkeeper's own row: how many of the leader's txn digests it
    compared, so that no mismatch means something; ZooKeeper has no such row)."""
    m = e.members[sid]
    rows = dict(line.split("\t", 1) for line in
                four_letter(m.host, m.client_port, "mntr").splitlines() if "\t" in line)
    compared = rows.get("ringkeeper_digests_compared")
    return int(rows["zk_digest_mismatches_count"]), None if compared is None else int(compared)


def ringkeeper_binary():
    return Path(os.environ.get("RINGKEEPER_BIN", REPO / "target" / "release" / "ringkeeper"))


class ServerExited(AssertionError):
    """A server the test did not kill or stop has exited: no use waiting any longer."""


def wait_until(predicate, timeout_s, what, interval_s=0.05):
    """Poll `predicate` until it returns a true value (returned) or the deadline passes
    (AssertionError naming `what`). The interval only paces the polling."""
    deadline = time.monotonic() + timeout_s
    last_error = None
    while True:
        try:
            v = predicate()
            if v:
                return v
        except ServerExited:
            raise
        except Exception as e:  # a poll that fails is a poll that is not satisfied yet
            last_error = e
        if time.monotonic() >= deadline:
            raise AssertionError("timed out after %.1fs waiting for %s%s" % (
                timeout_s, what, " (last error: %r)" % last_error if last_error else ""))
        time.sleep(interval_s)


class Member:
    """One server of an ensemble."""

    def __init__(self, sid, directory, host, client_port, quorum_port, election_port,
                 observer, netns):
        self.sid = sid
        self.dir = directory
        self.data = directory / "data"
        self.host = host
        self.client_port = client_port
        self.quorum_port = quorum_port
        self.election_port = election_port
        self.observer = observer
        self.netns = netns  # network namespace to run in (`ip netns exec`), or None
        self.log = directory / "server.log"
        self.proc = None
        self.starts = 0
        self.expected_running = False  # started and not since killed or stopped by the test
        # `-D` JVM flags as zkServer.sh deployments pass them (SERVER_JVMFLAGS): given to
        # ZooKeeper's java, and written to conf/java.env (zkEnv.sh's file) for ringkeeper.
        self.jvm_flags = []

    def server_line(self, bare_client_port=False):
        """ZooKeeper's `server.N=host:quorumPort:electionPort[:observer];clientHost:clientPort`
        (ZooKeeper Administrator's Guide, "Cluster Options"; QuorumServer). The client part
        names the host because ZooKeeper 3.8 refuses a bare `;clientPort` (client address
        0.0.0.0) together with clientPortAddress=127.0.0.1 ("client address for this server ...
        in static config file is /127.0.0.1:P is different from client address found in
        dynamic file: /0.0.0.0:P"), and every server must listen on its own address only.
        `bare_client_port` writes `;clientPort` instead (ENSEMBLE_BARE_CLIENT_PORT=1, for a
        ringkeeper whose parser takes only that form; ZooKeeper cannot run with it)."""
        client = ("%d" % self.client_port if bare_client_port
                  else "%s:%d" % (self.host, self.client_port))
        return "server.%d=%s:%d:%d%s;%s" % (
            self.sid, self.host, self.quorum_port, self.election_port,
            ":observer" if self.observer else "", client)

    def running(self):
        return self.proc is not None and self.proc.poll() is None


class Ensemble:
    """N servers of one kind. `Ensemble(kind, tmpdir, participants=3, observers=0, **cfg)`:
    `cfg` keys override TEST_CFG (tickTime, initLimit, ...); `extra_cfg` is a dict for keys
    that are not Python names (e.g. {"4lw.commands.whitelist": "*"}).

    `hosts` (one address per server, default all 127.0.0.1) and `netns` (one namespace name per
    server, default none) place the servers for the partition test."""

    def __init__(self, kind, tmpdir, participants=3, observers=0, hosts=None, netns=None,
                 jvm_profile="test", extra_cfg=None, **cfg):
        assert kind in KINDS, "unknown kind %r (one of %s)" % (kind, ", ".join(KINDS))
        assert participants >= 1 and observers >= 0
        self.kind = kind
        n = participants + observers
        self.jvm_profile = jvm_profile
        base = Path(tmpdir)
        suffix = 0
        while (base / ("%s-%d" % (kind, suffix))).exists():
            suffix += 1
        self.dir = base / ("%s-%d" % (kind, suffix))
        hosts = list(hosts or ["127.0.0.1"] * n)
        netns = list(netns or [None] * n)
        assert len(hosts) == n and len(netns) == n
        ports = free_ports(3 * n)
        self.members = {}
        for i in range(n):
            sid = i + 1
            self.members[sid] = Member(sid, self.dir / ("s%d" % sid), hosts[i], ports[3 * i],
                                       ports[3 * i + 1], ports[3 * i + 2],
                                       observer=i >= participants, netns=netns[i])
        self.cfg = dict(TEST_CFG)
        self.cfg.update(cfg)
        self.extra_cfg = dict(extra_cfg or {})
        for m in self.members.values():
            self._write_config(m)

    # ------------------------------------------------------------------ configuration

    def _write_config(self, m):
        m.data.mkdir(parents=True, exist_ok=True)
        # myid: ZooKeeper's QuorumPeerConfig reads the server's id from dataDir/myid.
        (m.data / "myid").write_text("%d\n" % m.sid)
        lines = ["%s=%s" % (k, v) for k, v in self.cfg.items()]
        lines += [
            "dataDir=%s" % m.data,
            "clientPort=%d" % m.client_port,
            "clientPortAddress=%s" % m.host,
            "maxClientCnxns=0",
            "4lw.commands.whitelist=*",
            "admin.enableServer=false",
        ]
        if m.observer:
            # ZooKeeper needs both the `:observer` suffix on the server line and peerType in
            # the observer's own config (QuorumPeerConfig: peerType must agree with its line).
            lines.append("peerType=observer")
        lines += ["%s=%s" % (k, v) for k, v in self.extra_cfg.items()]
        bare = self.kind == "ringkeeper" and os.environ.get("ENSEMBLE_BARE_CLIENT_PORT") == "1"
        lines += [o.server_line(bare) for o in self.members.values()]
        lines += getattr(m, "extra_lines", [])
        (m.dir / "zoo.cfg").write_text("\n".join(lines) + "\n")
        if self.kind == "ringkeeper" and m.jvm_flags:
            (m.dir / "java.env").write_text('SERVER_JVMFLAGS="%s"\n' % " ".join(m.jvm_flags))
        if self.kind == "zookeeper":
            (m.dir / "log4j.properties").write_text(LOG4J_PROPERTIES)

    def _command(self, m):
        if self.kind == "zookeeper":
            jars = [str(JAVA_DIR / (j + ".jar")) for j in ZK_JARS
                    if (JAVA_DIR / (j + ".jar")).exists()]
            cmd = (["java"] + JVM_PROFILES[self.jvm_profile] + m.jvm_flags + [
                "-Dlog4j.configuration=file:%s" % (m.dir / "log4j.properties"),
                "-Dzookeeper.admin.enableServer=false",
                "-Dzookeeper.jmx.log4j.disable=true",
                "-cp", ":".join([str(m.dir)] + jars),
                "org.apache.zookeeper.server.quorum.QuorumPeerMain", str(m.dir / "zoo.cfg")])
        else:
            cmd = [str(ringkeeper_binary()), "--config", str(m.dir / "zoo.cfg")]
        if m.netns:
            # `ip netns exec` execs the command after setns, so the pid is the server's.
            cmd = ["ip", "netns", "exec", m.netns] + cmd
        return cmd

    def configure(self, sid, extra_lines=None, jvm_flags=None):
        """Rewrites server `sid`'s configuration with its own zoo.cfg lines after the shared
        ones (java.util.Properties: a later line wins) and its own JVM flags."""
        m = self.members[sid]
        if extra_lines is not None:
            m.extra_lines = list(extra_lines)
        if jvm_flags is not None:
            m.jvm_flags = list(jvm_flags)
        self._write_config(m)

    # ------------------------------------------------------------------ lifecycle

    @property
    def ids(self):
        return sorted(self.members)

    @property
    def participant_ids(self):
        return [s for s in self.ids if not self.members[s].observer]

    def start(self, sids=None):
        for sid in (sids or self.ids):
            self.start_server(sid)
        return self

    def start_server(self, sid):
        m = self.members[sid]
        assert not m.running(), "server %d is already running" % sid
        logf = open(m.log, "ab")
        m.starts += 1
        logf.write(("==== start %d of server %d: %s\n" % (m.starts, sid, " ".join(
            self._command(m)))).encode())
        logf.flush()
        m.proc = subprocess.Popen(self._command(m), stdout=logf, stderr=subprocess.STDOUT,
                                  stdin=subprocess.DEVNULL, cwd=str(m.dir))
        m.expected_running = True
        logf.close()

    def kill(self, sid):
        """SIGKILL (kill -9) and reap."""
        m = self.members[sid]
        m.expected_running = False
        if m.running():
            m.proc.send_signal(signal.SIGKILL)
            m.proc.wait(timeout=STOP_TIMEOUT_S)

    def stop(self, sid):
        """SIGTERM, then SIGKILL after STOP_TIMEOUT_S."""
        m = self.members[sid]
        m.expected_running = False
        if not m.running():
            return
        m.proc.send_signal(signal.SIGTERM)
        try:
            m.proc.wait(timeout=STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            m.proc.kill()
            m.proc.wait(timeout=STOP_TIMEOUT_S)

    def restart(self, sid):
        self.stop(sid)
        self.start_server(sid)

    def close(self):
        """Stop every server (SIGKILL: the tests are done with their data)."""
        for sid in self.ids:
            try:
                self.kill(sid)
            except Exception:
                pass

    def running_ids(self):
        return [s for s in self.ids if self.members[s].running()]

    # ------------------------------------------------------------------ roles

    def srvr(self, sid):
        m = self.members[sid]
        return four_letter(m.host, m.client_port, "srvr")

    def mode(self, sid):
        """The server's Mode from srvr (leader, follower, observer, standalone), or None while
        it is not serving (no quorum, still starting) or does not answer."""
        if not self.members[sid].running():
            return None
        try:
            found = MODE_RE.search(self.srvr(sid))
        except OSError:
            return None
        return found.group(1) if found else None

    def zxid(self, sid):
        try:
            found = ZXID_RE.search(self.srvr(sid))
        except OSError:
            return None
        return int(found.group(1), 16) if found else None

    def modes(self):
        return {sid: self.mode(sid) for sid in self.running_ids()}

    def _check_alive(self, sids=None):
        """AssertionError (with the log tail) if a server the test has not killed or stopped
        has exited."""
        for sid in (sids or self.ids):
            m = self.members[sid]
            if m.expected_running and m.proc is not None and m.proc.poll() is not None:
                raise ServerExited("server %d exited with status %s; log %s:\n%s" % (
                    sid, m.proc.returncode, m.log, self.log_tail(sid, 40)))

    def wait_serving(self, timeout_s=60.0, sids=None):
        """Every running server (or `sids`) reports a Mode, and exactly one server is leader.
        Returns {sid: mode}."""
        def ready():
            self._check_alive()
            want = sids or self.running_ids()
            modes = {sid: self.mode(sid) for sid in want}
            if any(v is None for v in modes.values()):
                return None
            leaders = [s for s, v in self.modes().items() if v == "leader"]
            return modes if len(leaders) == 1 else None
        return wait_until(ready, timeout_s, "%s servers %s to serve with one leader" % (
            self.kind, sids or self.running_ids()), interval_s=0.1)

    def leader(self):
        """The id of the one running server that reports Mode: leader (AssertionError if not
        exactly one)."""
        leaders = [s for s, v in self.modes().items() if v == "leader"]
        assert len(leaders) == 1, "expected one leader, modes %s" % self.modes()
        return leaders[0]

    def wait_leader(self, timeout_s=30.0, exclude=()):
        """Poll until exactly one running server says leader and it is not in `exclude`."""
        def one():
            self._check_alive()
            leaders = [s for s, v in self.modes().items() if v == "leader"]
            return leaders[0] if len(leaders) == 1 and leaders[0] not in exclude else None
        return wait_until(one, timeout_s, "a leader other than %s" % (list(exclude),),
                          interval_s=0.1)

    def followers(self):
        return [s for s, v in self.modes().items() if v == "follower"]

    def observers(self):
        return [s for s, v in self.modes().items() if v == "observer"]

    # ------------------------------------------------------------------ clients

    def address(self, sid):
        m = self.members[sid]
        return "%s:%d" % (m.host, m.client_port)

    def connect_string(self, sids=None):
        return ",".join(self.address(s) for s in (sids or self.ids))

    def client(self, sid=None, hosts=None, start=True, timeout=10.0, **kw):
        """A Kazoo client to one server (`sid`), to `hosts`, or to the whole ensemble.
        Reconnects forever (bounded per try); commands are retried on ConnectionLoss up to a
        deadline by `client.retry(...)`. The caller stops it (see the `ensembles` fixture's
        `clients` list for automatic cleanup)."""
        from kazoo.client import KazooClient
        from kazoo.retry import KazooRetry
        if hosts is None:
            hosts = self.address(sid) if sid is not None else self.connect_string()
        kw.setdefault("connection_retry", KazooRetry(max_tries=-1, delay=0.05, max_delay=0.5))
        kw.setdefault("command_retry", KazooRetry(max_tries=-1, delay=0.05, max_delay=0.5,
                                                  deadline=30.0))
        c = KazooClient(hosts=hosts, timeout=timeout, **kw)
        if start:
            c.start(timeout=20)
        return c

    # ------------------------------------------------------------------ diagnostics

    def log_tail(self, sid, lines=60):
        try:
            text = self.members[sid].log.read_text(errors="replace").splitlines()
        except OSError:
            return "(no log)"
        # ZooKeeper logs every four-letter word; the harness polls srvr, so leave those out.
        text = [t for t in text if "Processing srvr command" not in t]
        return "\n".join(text[-lines:])

    def describe(self, tail_lines=60):
        out = ["%s ensemble in %s" % (self.kind, self.dir)]
        for sid in self.ids:
            m = self.members[sid]
            state = ("running (pid %d)" % m.proc.pid if m.running()
                     else "exited %s" % (m.proc.returncode if m.proc else "never started"))
            out.append("-- server %d %s%s, %s, log %s" % (
                sid, m.server_line(), " in netns %s" % m.netns if m.netns else "", state, m.log))
            out.append(self.log_tail(sid, tail_lines))
        return "\n".join(out)


def tree(client, root):
    """{path: data} of `root` and everything under it, read through `client` after a sync (so a
    follower or observer has caught up with the leader first: ZooKeeper's sync contract)."""
    client.sync(root)
    out = {}
    stack = [root]
    while stack:
        path = stack.pop()
        data, _stat = client.get(path)
        out[path] = data
        for child in client.get_children(path):
            stack.append(path.rstrip("/") + "/" + child)
    return out


class Writers:
    """A write load: `threads` Kazoo clients (each to `hosts`, default the whole ensemble)
    creating `ROOT/w<thread>-<n>` one after another. A create is retried on ConnectionLoss
    (KazooRetry) until it is acknowledged; NodeExists on a retry means an earlier attempt of the
    same create was applied (the path is unique), so it counts as acknowledged too. Only
    acknowledged paths are recorded, with the time of their acknowledgement."""

    def __init__(self, ensemble, root, threads=3, hosts=None, retry_deadline_s=30.0):
        import threading
        self.ensemble = ensemble
        self.root = root
        self.hosts = hosts or ensemble.connect_string()
        self.threads_n = threads
        self.retry_deadline_s = retry_deadline_s
        self.stopping = threading.Event()
        self.lock = threading.Lock()
        self.acked = []  # (monotonic time, path)
        self.errors = []
        self.threads = []
        self.clients = []

    def start(self):
        import threading
        for t in range(self.threads_n):
            c = self.ensemble.client(hosts=self.hosts)
            self.clients.append(c)
            th = threading.Thread(target=self._run, args=(t, c), daemon=True)
            self.threads.append(th)
        for th in self.threads:
            th.start()
        return self

    def _run(self, t, client):
        from kazoo.exceptions import NodeExistsError
        from kazoo.retry import KazooRetry
        n = 0
        while not self.stopping.is_set():
            path = "%s/w%d-%06d" % (self.root, t, n)
            retry = KazooRetry(max_tries=-1, delay=0.05, max_delay=0.5,
                               deadline=self.retry_deadline_s)
            first = [True]

            def create():
                try:
                    client.create(path, b"%d" % n)
                except NodeExistsError:
                    if first[0]:
                        raise
                finally:
                    first[0] = False
            try:
                retry(create)
            except Exception as e:  # recorded; the test asserts there are none
                with self.lock:
                    self.errors.append((path, repr(e)))
                return
            with self.lock:
                self.acked.append((time.monotonic(), path))
            n += 1

    def count(self):
        with self.lock:
            return len(self.acked)

    def acked_after(self, t):
        with self.lock:
            return sum(1 for at, _ in self.acked if at > t)

    def paths(self):
        with self.lock:
            return set(p for _, p in self.acked)

    def stop(self, timeout_s=40.0):
        self.stopping.set()
        for th in self.threads:
            th.join(timeout_s)
        alive = [th for th in self.threads if th.is_alive()]
        for c in self.clients:
            try:
                c.stop()
                c.close()
            except Exception:
                pass
        assert not alive, "%d writer threads did not stop within %.0fs" % (len(alive), timeout_s)


def children(ensemble, sid, path, register=None):
    """getChildren of `path` read through a client connected to server `sid` only, after sync."""
    c = ensemble.client(sid)
    try:
        c.sync(path)
        return set(c.get_children(path))
    finally:
        c.stop()
        c.close()


def tree_on(ensemble, sid, root):
    c = ensemble.client(sid)
    try:
        return tree(c, root)
    finally:
        c.stop()
        c.close()
