"""Session fixtures: start Apache ZooKeeper (reference) and ringkeeper once per test session on
free 127.0.0.1 ports, from zoo.cfg files with identical settings, and stop both at the end.

ringkeeper is `$RINGKEEPER_BIN --config <dir>/zoo.cfg` (default `<repo>/target/release/ringkeeper`);
when the binary does not exist its side of every test is skipped with the reason, and the
reference side still runs. On a failure the report names both servers' log files.
"""

import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path

import pytest

import harness
from harness import Compat, digest_id, four_letter

REPO = Path(__file__).resolve().parents[2]
START_TIMEOUT_S = 30.0
STOP_TIMEOUT_S = 10.0
TICK_TIME_MS = 2000
SUPER_PASSWORD = "test"


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# ZooKeeper's ContainerManager reaps empty containers and expired TTL nodes every
# `znode.container.checkIntervalMs` (default 60 s). ZooKeeper reads it only as a plain JVM system
# property (ZooKeeperServerMain: Integer.getInteger), which a zoo.cfg key cannot set (unknown keys
# become `zookeeper.`-prefixed properties), so the reference gets it through ZK_JVM_FLAGS and
# ringkeeper through the zoo.cfg key of the same name.
CONTAINER_CHECK_INTERVAL_MS = 1000
ZK_JVM_FLAGS = "-Dznode.container.checkIntervalMs=%d" % CONTAINER_CHECK_INTERVAL_MS


def write_zoo_cfg(directory, port, extra=()):
    """The same settings for both servers. Unknown keys (extendedTypesEnabled,
    DigestAuthenticationProvider.superDigest) become `zookeeper.`-prefixed system properties in
    ZooKeeper (QuorumPeerConfig.parseProperties); ringkeeper reads the same keys. `extra` lines
    come last, so they override (the last occurrence of a key wins in both servers)."""
    (directory / "data").mkdir(parents=True, exist_ok=True)
    cfg = directory / "zoo.cfg"
    cfg.write_text("\n".join([
        "tickTime=%d" % TICK_TIME_MS,
        "dataDir=%s" % (directory / "data"),
        "clientPort=%d" % port,
        "clientPortAddress=127.0.0.1",
        "maxClientCnxns=0",
        "4lw.commands.whitelist=*",
        "extendedTypesEnabled=true",
        "admin.enableServer=false",
        "DigestAuthenticationProvider.superDigest=%s" % digest_id("super", SUPER_PASSWORD),
        "znode.container.checkIntervalMs=%d" % CONTAINER_CHECK_INTERVAL_MS,
    ] + list(extra) + [""]))
    return cfg


def wait_imok(port, proc_alive, timeout_s):
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if not proc_alive():
            return False
        try:
            # ZooKeeper answers imok before it serves sessions; srvr shows a Mode once it does.
            if (four_letter("127.0.0.1", port, "ruok", timeout_s=1.0) == "imok"
                    and "Mode:" in four_letter("127.0.0.1", port, "srvr", timeout_s=1.0)):
                return True
        except OSError:
            pass
        time.sleep(0.1)  # polling a port that is not listening yet; nothing to await
    return False


class Server:
    def __init__(self, name, directory, extra_cfg=(), jvm_flags="", env=None):
        """`jvm_flags`: -D options as a deployment passes them: to ZooKeeper's JVM (after
        ZK_JVM_FLAGS), and to ringkeeper in SERVER_JVMFLAGS, where it reads them. `env`: extra
        environment for both (KRB5_CONFIG, ...)."""
        self.jvm_flags = jvm_flags
        self.env = dict(env or {})
        self.name = name
        self.dir = directory
        self.host = "127.0.0.1"
        self.port = free_port()
        self.log = directory / ("zk.log" if name == "zookeeper" else "ringkeeper.log")
        self.available = False
        self.skip_reason = ""
        self.proc = None
        write_zoo_cfg(directory, self.port, extra_cfg)

    def start(self):
        if self.name == "zookeeper":
            script = REPO / "scripts" / "reference-zk.sh"
            if not Path("/usr/share/java/zookeeper.jar").exists():
                self.skip_reason = "Apache ZooKeeper not installed (apt-get install zookeeper)"
                return
            env = dict(os.environ, ZK_JVM_FLAGS=(ZK_JVM_FLAGS + " " + self.jvm_flags).strip(),
                       **self.env)
            r = subprocess.run([str(script), "start", str(self.dir)], capture_output=True,
                               text=True, timeout=START_TIMEOUT_S + 10, env=env)
            if r.returncode != 0:
                raise RuntimeError("reference ZooKeeper failed to start: %s%s (log %s)"
                                   % (r.stdout, r.stderr, self.log))
            self.available = True
            return
        binary = Path(os.environ.get("RINGKEEPER_BIN", REPO / "target" / "release" / "ringkeeper"))
        if not binary.exists():
            self.skip_reason = ("ringkeeper binary %s does not exist (build it with "
                                "`cargo build --release` or set RINGKEEPER_BIN)" % binary)
            return
        logf = open(self.log, "wb")
        env = dict(os.environ, **self.env)
        if self.jvm_flags:
            env["SERVER_JVMFLAGS"] = self.jvm_flags
        self.proc = subprocess.Popen([str(binary), "--config", str(self.dir / "zoo.cfg")],
                                     stdout=logf, stderr=subprocess.STDOUT,
                                     stdin=subprocess.DEVNULL, cwd=str(self.dir), env=env)
        logf.close()
        if not wait_imok(self.port, lambda: self.proc.poll() is None, START_TIMEOUT_S):
            self.stop()
            raise RuntimeError("ringkeeper did not answer ruok with imok within %.0fs; log %s"
                               % (START_TIMEOUT_S, self.log))
        self.available = True

    def stop(self):
        if self.name == "zookeeper":
            subprocess.run([str(REPO / "scripts" / "reference-zk.sh"), "stop", str(self.dir)],
                           capture_output=True, timeout=STOP_TIMEOUT_S + 10)
            return
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout=STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(timeout=STOP_TIMEOUT_S)


SERVERS = {}


def pytest_configure(config):
    # Debian's Kazoo 2.8 recipes call threading.Event.isSet(); not our concern here.
    config.addinivalue_line("filterwarnings", "ignore:isSet:DeprecationWarning")
FAILED = []  # any failed test keeps the temp dir (and so the logs it names)


@pytest.fixture(scope="session")
def servers():
    keep = os.environ.get("COMPAT_KEEP_LOGS")
    tmp = Path(tempfile.mkdtemp(prefix="ringkeeper-compat-"))
    started = []
    try:
        for name in harness.TARGETS:
            s = Server(name, tmp / name)
            SERVERS[name] = s
            s.start()
            started.append(s)
        yield SERVERS
    finally:
        for s in started:
            s.stop()
        if not keep and not FAILED:
            shutil.rmtree(tmp, ignore_errors=True)


@pytest.fixture(scope="session")
def compat(servers):
    c = Compat(servers)
    harness.COMPAT = c
    return c


@pytest.fixture(params=harness.TARGETS)
def server(request, servers):
    """For non-differential tests (recipes): one server per parameter, skipped if absent."""
    s = servers[request.param]
    if not s.available:
        pytest.skip(s.skip_reason)
    return s


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    report = outcome.get_result()
    if report.failed and SERVERS:
        # Keep the temp dir so the logs named here still exist after the session.
        FAILED.append(item.nodeid)
        lines = ["%s: %s (127.0.0.1:%d)" % (n, s.log, s.port) for n, s in SERVERS.items()
                 if s.available]
        report.sections.append(("server logs", "\n".join(lines)))
