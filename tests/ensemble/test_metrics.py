"""The Prometheus endpoint of an ensemble's members: the quorum metrics ZooKeeper 3.9's
PrometheusMetricsProvider exports from a leader (ServerMetrics and the leader's gauges:
quorum_size, learners, synced_followers, proposal_latency, election_time) and from a follower.

ringkeeper only: Debian's ZooKeeper ships without the zookeeper-prometheus-metrics jar, so there
is no reference endpoint to compare with; the names and types are those of ZooKeeper's
ServerMetrics and Leader/Follower gauge sets."""

import subprocess
import shutil
import urllib.request
import uuid

from .harness import free_ports, wait_until

SERVE_TIMEOUT_S = 60.0
HTTP_TIMEOUT_S = 5.0
PROVIDER = "org.apache.zookeeper.metrics.prometheus.PrometheusMetricsProvider"


def scrape(port):
    with urllib.request.urlopen("http://127.0.0.1:%d/metrics" % port,
                                timeout=HTTP_TIMEOUT_S) as response:
        assert response.status == 200
        return response.read().decode()


def series(text):
    """{name: value} of the unlabelled samples, and {name: type} from the TYPE lines."""
    values, types = {}, {}
    for line in text.splitlines():
        if line.startswith("# TYPE "):
            _, _, name, kind = line.split(" ", 3)
            types[name] = kind
        elif line and not line.startswith("#") and "{" not in line:
            name, value = line.rsplit(" ", 1)
            values[name] = float(value)
    return values, types


def test_leader_and_follower_export_zookeepers_quorum_metrics(ensembles):
    e = ensembles("ringkeeper")
    ports = dict(zip(e.ids, free_ports(len(e.ids))))
    for sid, port in ports.items():
        e.configure(sid, extra_lines=[
            "metricsProvider.className=%s" % PROVIDER,
            "metricsProvider.httpHost=127.0.0.1",
            "metricsProvider.httpPort=%d" % port,
        ])
    e.start()
    e.wait_serving(SERVE_TIMEOUT_S)
    leader = e.leader()
    client = ensembles.client(e, leader)
    root = "/metrics-%s" % uuid.uuid4().hex[:8]
    client.create(root)
    for i in range(20):
        client.create("%s/n%d" % (root, i), b"x")

    def leader_counted_proposals():
        values, _ = series(scrape(ports[leader]))
        return values.get("proposal_latency_count", 0) >= 21

    wait_until(leader_counted_proposals, 10, "the leader's proposal_latency to count 21 commits")
    text = scrape(ports[leader])
    values, types = series(text)
    assert types.get("proposal_latency") == "histogram", types.get("proposal_latency")
    assert types.get("election_time") == "histogram"
    assert values["quorum_size"] == 3
    assert values["learners"] == 2
    assert values["synced_followers"] == 2
    assert values["election_time_count"] >= 1
    assert values["znode_count"] >= 25

    follower = next(s for s in e.ids if s != leader)
    values, _ = series(scrape(ports[follower]))
    # Leader-only figures are absent on a follower, as in ZooKeeper's mntr.
    assert "learners" not in values and "synced_followers" not in values
    assert values.get("proposal_latency_count", 0) == 0
    assert values["znode_count"] >= 25

    if shutil.which("promtool"):
        checked = subprocess.run(["promtool", "check", "metrics"], input=text, text=True,
                                 capture_output=True, timeout=30)
        assert checked.returncode in (0, 3), checked.stdout + checked.stderr  # 3: lint only
        # The only findings allowed are ZooKeeper's own gauge names with a "_count" suffix
        # (znode_count, watch_count, ...), kept since dashboards query them by these names.
        for problem in (checked.stdout + checked.stderr).splitlines():
            if problem.strip():
                assert '"_count" suffix' in problem, problem
