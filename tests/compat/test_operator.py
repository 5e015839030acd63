"""The operator's surface (issue 12, items 4-6): the AdminServer's JSON compared with Apache
ZooKeeper's AdminServer (Jetty, ZooKeeper 3.8) for the same commands, keys and value types;
the Prometheus endpoint scraped by the real Prometheus server (Debian's `prometheus`) started
here on loopback, queried through its HTTP API, and checked with `promtool check metrics`; the
command line (--version, --help, a bad argument) and the inspection subcommands on a data
directory with real content.

Each test module gets its own ZooKeeper / ringkeeper pair (the session pair has the AdminServer
off) on free loopback ports. Reference: ZooKeeper 3.9.3 org.apache.zookeeper.server.admin
(Commands, CommandResponse, JettyAdminServer), PrometheusMetricsProvider."""

import json
import os
import shutil
import signal
import subprocess
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from kazoo.client import KazooClient

from conftest import REPO, SUPER_PASSWORD, Server, free_port

HTTP_TIMEOUT_S = 10.0
PROMETHEUS_WAIT_S = 60.0


def http(url, headers=None, method="GET"):
    """(status, body text) of one request."""
    request = urllib.request.Request(url, headers=headers or {}, method=method)
    try:
        with urllib.request.urlopen(request, timeout=HTTP_TIMEOUT_S) as reply:
            return reply.status, reply.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode()


def binary():
    return Path(os.environ.get("RINGKEEPER_BIN", REPO / "target" / "release" / "ringkeeper"))


@pytest.fixture(scope="module")
def pair():
    if not binary().exists():
        pytest.skip("ringkeeper binary %s does not exist" % binary())
    tmp = Path(tempfile.mkdtemp(prefix="ringkeeper-operator-"))
    servers = {}
    try:
        for name in ("zookeeper", "ringkeeper"):
            admin_port = free_port()
            extra = ["admin.enableServer=true", "admin.serverAddress=127.0.0.1",
                     "admin.serverPort=%d" % admin_port]
            if name == "ringkeeper":
                metrics_port = free_port()
                extra += ["metricsProvider.className="
                          "org.apache.zookeeper.metrics.prometheus.PrometheusMetricsProvider",
                          "metricsProvider.httpHost=127.0.0.1",
                          "metricsProvider.httpPort=%d" % metrics_port]
            server = Server(name, tmp / name, extra_cfg=extra,
                            jvm_flags="-Dzookeeper.admin.enableServer=true")
            server.admin = "http://127.0.0.1:%d/commands" % admin_port
            if name == "ringkeeper":
                server.metrics = "http://127.0.0.1:%d/metrics" % metrics_port
            server.start()
            if not server.available:
                pytest.skip(server.skip_reason)
            servers[name] = server
        # The same state on both: a session with an ephemeral, a data watch and a child watch.
        clients = {}
        for name, server in servers.items():
            client = KazooClient(hosts="127.0.0.1:%d" % server.port, timeout=10)
            client.start(timeout=10)
            client.create("/operator-eph", b"x", ephemeral=True)
            client.create("/operator", b"y")
            client.get("/operator", watch=lambda event: None)
            client.get_children("/", watch=lambda event: None)
            clients[name] = client
        yield servers, clients
        for client in clients.values():
            client.stop()
            client.close()
    finally:
        for server in servers.values():
            server.stop()
        shutil.rmtree(tmp, ignore_errors=True)


def command(server, name, headers=None, method="GET"):
    status, body = http("%s/%s" % (server.admin, name), headers, method)
    return status, json.loads(body)


def shape(value):
    """The JSON type tree of a value: dict keys kept, list items merged, scalars by type."""
    if isinstance(value, dict):
        return {key: shape(item) for key, item in value.items()}
    if isinstance(value, list):
        shapes = {json.dumps(shape(item), sort_keys=True) for item in value}
        return ["list", sorted(shapes)]
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int):
        return "int"
    if isinstance(value, float):
        return "float"
    if value is None:
        return "null"
    return "str"


# Commands whose whole answer has the same keys and value types on both servers.
SAME_SHAPE = [
    "ruok", "server_stats", "srvr", "stats", "stat", "connections", "cons", "dump",
    "watches", "wchc", "watches_by_path", "wchp", "watch_summary", "wchs", "configuration",
    "conf", "config", "dirs", "is_read_only", "isro", "last_snapshot", "lsnp", "leader", "lead",
    "observers", "obsr", "observer_connection_stat_reset", "orst", "stat_reset", "srst",
    "connection_stat_reset", "crst", "voting_view", "zabstate", "initial_configuration", "icfg",
    "nosuch",
]


def normalised(answer):
    """Keys that name sessions or deadlines (dump, watches) are replaced by a placeholder;
    the version string is ringkeeper's (3.9.3-ringkeeper-...) beside 3.8.0-<git>."""
    out = {}
    for key, value in answer.items():
        if key in ("expiry_time_to_session_ids", "session_id_to_ephemeral_paths",
                   "session_id_to_watched_paths") and isinstance(value, dict):
            value = {"<id>": item for item in value.values()} if value else value
        out[key] = value
    return out


@pytest.mark.parametrize("name", SAME_SHAPE)
def test_admin_command_has_zookeepers_keys_and_types(pair, name):
    servers, _ = pair
    zk_status, zk_answer = command(servers["zookeeper"], name)
    rk_status, rk_answer = command(servers["ringkeeper"], name)
    assert rk_status == zk_status
    if name == "dump":
        # Session sets are refreshed about once a second: compare the ephemerals part always,
        # the expiry map's shape once both have one.
        zk_answer.pop("expiry_time_to_session_ids")
        expiry = rk_answer.pop("expiry_time_to_session_ids")
        assert isinstance(expiry, dict)
    assert shape(normalised(rk_answer)) == shape(normalised(zk_answer)), (rk_answer, zk_answer)
    assert rk_answer["command"] == zk_answer["command"]
    assert rk_answer["error"] == zk_answer["error"]


def test_admin_monitor_and_environment_keys_are_zookeepers_with_their_types(pair):
    servers, _ = pair
    _, zk_monitor = command(servers["zookeeper"], "monitor")
    _, rk_monitor = command(servers["ringkeeper"], "mntr")
    own = {"admission_queue", "last_zxid"}
    for key, value in rk_monitor.items():
        if key.startswith("ringkeeper_") or key in own:
            continue
        assert key in zk_monitor, key
        assert shape(value) == shape(zk_monitor[key]) or key == "version", key
    for key in ("znode_count", "watch_count", "ephemerals_count", "num_alive_connections",
                "outstanding_requests", "avg_latency", "packets_received", "server_state"):
        assert key in rk_monitor, key
    assert rk_monitor["ephemerals_count"] == zk_monitor["ephemerals_count"] == 1
    assert rk_monitor["znode_count"] == zk_monitor["znode_count"]
    _, zk_env = command(servers["zookeeper"], "environment")
    _, rk_env = command(servers["ringkeeper"], "envi")
    for key, value in rk_env.items():
        if key != "ringkeeper.version":
            assert shape(value) == shape(zk_env[key]), key
    # ZooKeeper's keys that are not about its JVM are all there.
    for key in zk_env:
        if not key.startswith("java.") and not key.startswith("os.memory"):
            assert key in rk_env, key


def test_admin_index_and_unknown_paths(pair):
    servers, _ = pair
    rk = servers["ringkeeper"]
    status, page = http(rk.admin)
    assert status == 200
    for name in ("monitor", "stats", "snapshot", "restore", "watch_summary"):
        assert '<a href="/commands/%s">%s</a>' % (name, name) in page
    status, _ = http(rk.admin.replace("/commands", "/elsewhere"))
    assert status == 404


def test_admin_snapshot_needs_auth_as_zookeeper_3_9(pair):
    """Commands.runCommand: no Authorization -> 401 'Auth info is missing for the command';
    an unknown scheme -> 401 'Not authenticated'; ids without ALL on / -> 403 'Not
    authorized'. (ZooKeeper 3.8 has no snapshot command to compare with.)"""
    servers, clients = pair
    rk = servers["ringkeeper"]
    status, answer = command(rk, "snapshot")
    assert (status, answer["error"]) == (401, "Auth info is missing for the command")
    status, answer = command(rk, "snap", {"Authorization": "kerberos x"})
    assert (status, answer["error"]) == (401, "Not authenticated")
    status, answer = command(rk, "snapshot?streaming=false",
                             {"Authorization": "digest super:%s" % SUPER_PASSWORD})
    assert status == 200 and answer == {"command": "snapshot", "error": None}, answer
    # ip auth passes (127.0.0.1 against world:anyone ALL on /); an empty body is no snapshot:
    # 500, as ZooKeeper's RestoreCommand answers its failed deserialization.
    status, answer = command(rk, "restore", {"Authorization": "ip"}, method="POST")
    assert status == 500 and answer["command"] == "restore", answer
    client = clients["ringkeeper"]
    from kazoo.security import make_digest_acl, OPEN_ACL_UNSAFE
    client.set_acls("/", [make_digest_acl("admin", "pw", all=True)])
    try:
        status, answer = command(rk, "snapshot", {"Authorization": "digest other:pw"})
        assert (status, answer["error"]) == (403, "Not authorized")
        status, answer = command(rk, "snapshot?streaming=false",
                                 {"Authorization": "digest admin:pw"})
        # Authorised: the snapshot, or the rate limit (one per 300 ms) right after the first.
        assert status in (200, 429), (status, answer)
    finally:
        client.add_auth("digest", "admin:pw")
        client.set_acls("/", OPEN_ACL_UNSAFE)


# ZooKeeper's own metric names that promtool's linter flags (a "_count" suffix on a gauge):
# kept, since ZooKeeper dashboards query them by these names.
ZOOKEEPER_COUNT_GAUGES = {
    "znode_count", "watch_count", "ephemerals_count", "open_file_descriptor_count",
    "max_file_descriptor_count", "auth_failed_count", "digest_mismatches_count",
}


def test_metrics_pass_promtool_apart_from_zookeepers_own_names(pair):
    servers, _ = pair
    status, text = http(servers["ringkeeper"].metrics)
    assert status == 200
    for line in ("# TYPE znode_count gauge", "# TYPE readlatency histogram",
                 "# TYPE ringkeeper_txnlog_batch_records histogram",
                 'ringkeeper_core_connections{core="0"}'):
        assert line in text, line
    checked = subprocess.run(["promtool", "check", "metrics"], input=text, text=True,
                             capture_output=True, timeout=30)
    problems = [line for line in (checked.stdout + checked.stderr).splitlines() if line.strip()]
    assert checked.returncode in (0, 3), problems  # 3: lint findings only, no parse error
    for problem in problems:
        name = problem.split()[0]
        assert name in ZOOKEEPER_COUNT_GAUGES and '"_count" suffix' in problem, problem


def test_real_prometheus_scrapes_ringkeeper_and_answers_promql(pair, tmp_path):
    if shutil.which("prometheus") is None:
        pytest.skip("prometheus not installed (scripts/install-test-deps.sh)")
    servers, _ = pair
    target = servers["ringkeeper"].metrics.split("//")[1].split("/")[0]
    port = free_port()
    config = tmp_path / "prometheus.yml"
    config.write_text("global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\n"
                      "scrape_configs:\n  - job_name: ringkeeper\n"
                      "    static_configs:\n      - targets: ['%s']\n" % target)
    log = open(tmp_path / "prometheus.log", "wb")
    proc = subprocess.Popen(["prometheus", "--config.file=%s" % config,
                             "--storage.tsdb.path=%s" % (tmp_path / "tsdb"),
                             "--web.listen-address=127.0.0.1:%d" % port],
                            stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    try:
        api = "http://127.0.0.1:%d/api/v1/query?query=" % port
        deadline = time.monotonic() + PROMETHEUS_WAIT_S
        result = []
        while time.monotonic() < deadline and proc.poll() is None:
            try:
                status, body = http(api + "znode_count%7Bjob%3D%22ringkeeper%22%7D")
                if status == 200:
                    result = json.loads(body)["data"]["result"]
                    if result:
                        break
            except OSError:
                pass
            time.sleep(0.5)  # Prometheus scrapes on its own clock; nothing to await
        assert result, "no znode_count series within %.0fs (log %s)" % (
            PROMETHEUS_WAIT_S, tmp_path / "prometheus.log")
        assert result[0]["metric"]["instance"] == target
        assert float(result[0]["value"][1]) >= 5
        status, body = http(api + "sum(ringkeeper_core_connections)")
        assert status == 200 and float(json.loads(body)["data"]["result"][0]["value"][1]) >= 1
        status, body = http(api + "updatelatency_count")
        assert status == 200 and float(json.loads(body)["data"]["result"][0]["value"][1]) >= 2
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)
        log.close()


def test_a_healthy_start_logs_no_error_and_no_colour(pair):
    servers, _ = pair
    text = servers["ringkeeper"].log.read_text()
    assert "Started AdminServer" in text
    assert " ERROR " not in text, text
    assert "\x1b[" not in text


def run_cli(*args, timeout=60):
    return subprocess.run([str(binary())] + [str(arg) for arg in args], capture_output=True,
                          text=True, timeout=timeout, stdin=subprocess.DEVNULL)


def test_command_line_version_help_and_bad_arguments():
    if not binary().exists():
        pytest.skip("ringkeeper binary missing")
    version = run_cli("--version")
    assert version.returncode == 0 and "ZooKeeper 3.9.3" in version.stdout
    help_text = run_cli("--help")
    for word in ("--config", "--port", "--bind", "--data-dir", "--cores", "dump-log",
                 "dump-snapshot", "check"):
        assert word in help_text.stdout, word
    bad = run_cli("--port", "http")
    assert bad.returncode == 2 and "--port" in bad.stderr and "\x1b[" not in bad.stderr
    unknown = run_cli("--prot", "1")
    assert unknown.returncode == 2 and "--prot" in unknown.stderr


def test_dump_and_check_subcommands_on_a_data_directory_with_content(tmp_path):
    """A server writes a log and a snapshot (kill -USR1) with known content; the tools read
    them back; `check` recovers the directory without changing it."""
    if not binary().exists():
        pytest.skip("ringkeeper binary missing")
    server = Server("ringkeeper", tmp_path / "rk", extra_cfg=[
        "admin.enableServer=true", "admin.serverAddress=127.0.0.1",
        "admin.serverPort=%d" % free_port()])
    server.start()
    admin = "http://127.0.0.1:%s/commands" % server.dir.joinpath("zoo.cfg").read_text() \
        .split("admin.serverPort=")[1].split()[0]
    try:
        client = KazooClient(hosts="127.0.0.1:%d" % server.port, timeout=10)
        client.start(timeout=10)
        for index in range(20):
            client.create("/tools/node-%02d" % index, b"value-%d" % index, makepath=True)
        client.set("/tools/node-03", b"changed")
        client.delete("/tools/node-19")
        # The delete's zxid is /tools's pzxid: the snapshot SIGUSR1 asks for must cover it (a
        # snapshot taken at startup may already be reported, so "any snapshot" is not enough).
        last_write = client.exists("/tools").pzxid
        server.proc.send_signal(signal.SIGUSR1)
        deadline = time.monotonic() + 30
        snapshot_zxid = -1
        while time.monotonic() < deadline and snapshot_zxid < last_write:
            _, body = http(admin + "/last_snapshot")
            reported = json.loads(body)["zxid"]
            # Long.toHexString, as ZooKeeper's LastSnapshotCommand: none is ffffffffffffffff.
            snapshot_zxid = int(reported, 16)
            snapshot_zxid = -1 if snapshot_zxid >= 1 << 63 else snapshot_zxid
            if snapshot_zxid < last_write:
                time.sleep(0.1)  # the snapshot is written in the background; polled via lsnp
        assert snapshot_zxid >= last_write, "no snapshot of zxid %#x within 30 s" % last_write
        client.create("/tools/after-snapshot", b"late")
        client.stop()
        client.close()
    finally:
        server.stop()
    data = server.dir / "data"
    before = {p.name: p.stat().st_size for p in data.iterdir()}
    log = run_cli("dump-log", data, "--data")
    assert log.returncode == 0, log.stderr
    assert "create '/tools/node-07'" in log.stdout and '"value-7"' in log.stdout
    assert "setData '/tools/node-03'" in log.stdout and "delete '/tools/node-19'" in log.stdout
    assert "createSession" in log.stdout and "end of segment" in log.stdout
    snapshots = sorted(data.glob("snapshot.*"))
    assert snapshots, list(data.iterdir())
    snap = run_cli("dump-snapshot", snapshots[-1], "--data")
    assert snap.returncode == 0, snap.stderr
    assert "/tools/node-03\n" in snap.stdout and '"changed"' in snap.stdout
    assert "/tools/node-19\n" not in snap.stdout and "checksum verified" in snap.stdout
    check = run_cli("check", data)
    assert check.returncode == 0, check.stdout + check.stderr
    assert "OK" in check.stdout and "recovered zxid" in check.stdout
    assert {p.name: p.stat().st_size for p in data.iterdir()} == before, "check changed files"
    # A damaged snapshot is reported, not fatal (an older one or the log is used).
    broken = run_cli("dump-snapshot", server.dir / "zoo.cfg")
    assert broken.returncode != 0 and "zoo.cfg" in broken.stderr
