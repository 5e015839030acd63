"""Unchanged ZooKeeper clients against both servers (see java/README.md for what each covers).

* Curator (Java): `java/CuratorRecipes.java` runs seven recipes and exits with the number of
  failures. Not differential: every recipe must pass on each server.
* C client (`cli_mt`, c_client.py) and the Java shell (`zkCli.sh`, zkcli.py): differential. Their
  normalised observations (zxid ranks, session labels, sorted children; done by those modules)
  from ZooKeeper and ringkeeper must be equal, and the steps whose result ZooKeeper is known to
  give must give it (the modules' "problems" list; empty on ZooKeeper by construction).

Each is skipped with the reason when its client is not installed.
"""

import os
import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest

import c_client
import zkcli
from harness import scenario

HERE = Path(__file__).resolve().parent
CURATOR_TIMEOUT_S = 240.0
BUILD_TIMEOUT_S = 180.0


@pytest.fixture(scope="session")
def curator_build():
    """Compile CuratorRecipes once per test session; skip when no JDK or a jar is missing."""
    if shutil.which(os.environ.get("JAVAC", "javac")) is None:
        pytest.skip("javac not found (apt-get install default-jdk-headless)")
    build_dir = Path(tempfile.mkdtemp(prefix="ringkeeper-curator-compat-"))
    r = subprocess.run([str(HERE / "java" / "build.sh"), str(build_dir)], capture_output=True,
                       text=True, timeout=BUILD_TIMEOUT_S)
    if r.returncode != 0:
        if "missing" in r.stderr and "apt-get install" in r.stderr:
            pytest.skip("Curator jars missing: " + r.stderr.strip())
        pytest.fail("CuratorRecipes.java does not compile:\n%s%s" % (r.stdout, r.stderr))
    yield build_dir
    shutil.rmtree(build_dir, ignore_errors=True)


def test_curator_recipes(server, curator_build):
    """Curator 5.4 recipes (CRUD/Stat, transactions, LeaderLatch, InterProcessMutex,
    CuratorCache, PersistentNode, DistributedAtomicLong) all pass: exit code 0, one PASS line per
    recipe."""
    env = dict(os.environ, CURATOR_COMPAT_BUILD_DIR=str(curator_build))
    try:
        r = subprocess.run([str(HERE / "java" / "run.sh"), "%s:%d" % (server.host, server.port)],
                           capture_output=True, text=True, timeout=CURATOR_TIMEOUT_S, env=env)
    except subprocess.TimeoutExpired as e:
        pytest.fail("CuratorRecipes did not finish within %.0fs; output so far:\n%s\n%s"
                    % (CURATOR_TIMEOUT_S, e.stdout or "", e.stderr or ""))
    report = "exit %d\n--- stdout\n%s--- stderr (last 60 lines)\n%s" % (
        r.returncode, r.stdout, "\n".join(r.stderr.splitlines()[-60:]))
    assert r.returncode == 0, "Curator recipes failed on %s:\n%s" % (server.name, report)
    passed = [l for l in r.stdout.splitlines() if l.startswith("PASS ")]
    assert len(passed) == 7 and "FAIL" not in r.stdout, report


@scenario
def test_c_client_cli_mt(env):
    """The C client (cli_mt) scenario of c_client.py: per-request results, Stats, watch events
    and their order relative to replies, session close, 200 pipelined 64 KiB set/get pairs."""
    if not os.access(c_client.CLI_MT, os.X_OK):
        pytest.skip("%s not found (apt-get install zookeeper-bin)" % c_client.CLI_MT)
    observations, problems = c_client.run_c_client_checked("%s:%d" % (env.host, env.port))
    env.rec("observations", observations)
    env.rec("problems", problems)
    # On ringkeeper a problem also shows in the transcript diff, which is the better report.
    if env.server.name == "zookeeper":
        assert problems == [], "\n".join(problems)


@scenario
def test_zkcli_shell(env):
    """The zkCli.sh batch of zkcli.py: versioned writes, full Stat, ACL denial, whoami,
    getAllChildrenNumber, getEphemerals, a persistent recursive watch."""
    if not os.access(zkcli.ZKCLI, os.X_OK) or shutil.which("java") is None:
        pytest.skip("%s or java not found (apt-get install zookeeper)" % zkcli.ZKCLI)
    observations, problems = zkcli.run_zkcli_checked("%s:%d" % (env.host, env.port))
    env.rec("observations", observations)
    env.rec("problems", problems)
    # On ringkeeper a problem also shows in the transcript diff, which is the better report.
    if env.server.name == "zookeeper":
        assert problems == [], "\n".join(problems)
