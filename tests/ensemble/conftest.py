"""Fixtures of the ensemble tests.

Every test is parametrised by server kind (`kind`: zookeeper, ringkeeper). ENSEMBLE_KINDS
(comma-separated, default `zookeeper,ringkeeper`) selects the kinds, as the compat suite runs
both servers. A kind is skipped with its reason when it cannot run an ensemble:

* zookeeper: /usr/share/java/zookeeper.jar missing (apt-get install zookeeper);
* ringkeeper: RINGKEEPER_BIN is unset and target/release/ringkeeper does not exist. Anything
  else (a named binary missing, a binary without ensemble mode) fails the tests, with the logs.

`ensembles(kind, ...)` makes an Ensemble (harness.py) in the test's temp dir; every ensemble and
every client a test made through the fixtures is stopped at the end of the test. On a failure the
report has a section with each server's state and the tail of its log, and the temp dir (pytest's
tmp_path, kept for the last three sessions) still holds the full logs.
"""

import os
import signal

import pytest

from . import harness

ENSEMBLE_KINDS = [k.strip() for k in os.environ.get(
    "ENSEMBLE_KINDS", "zookeeper,ringkeeper").split(",") if k.strip()]
for _k in ENSEMBLE_KINDS:
    assert _k in harness.KINDS, "ENSEMBLE_KINDS: unknown kind %r" % _k

# Every test is bounded as a whole: Kazoo's synchronous calls wait for their reply without a
# timeout, so a server that accepts a request and never answers would otherwise hang the suite.
TEST_TIMEOUT_S = float(os.environ.get("ENSEMBLE_TEST_TIMEOUT_S", "180"))
_probe = {}


def pytest_configure(config):
    # Debian's Kazoo recipes call threading.Event.isSet(); not our concern here.
    config.addinivalue_line("filterwarnings", "ignore:isSet:DeprecationWarning")


def pytest_generate_tests(metafunc):
    if "kind" in metafunc.fixturenames:
        metafunc.parametrize("kind", ENSEMBLE_KINDS)


def skip_reason(kind):
    """None if `kind` can run ensembles here, else why not (cached for the session)."""
    if kind in _probe:
        return _probe[kind]
    reason = None
    if kind == "zookeeper":
        if not (harness.JAVA_DIR / "zookeeper.jar").exists():
            reason = "Apache ZooKeeper not installed (apt-get install zookeeper)"
    else:
        # ringkeeper runs ensembles: a binary that reports Mode: standalone for a server.N
        # config fails the tests (no probe, no skip). Only a missing binary, when none was
        # named, is a skip; a named one that is missing fails.
        binary = harness.ringkeeper_binary()
        if not binary.exists() and not os.environ.get("RINGKEEPER_BIN"):
            reason = ("ringkeeper binary %s does not exist (cargo build --release, or set "
                      "RINGKEEPER_BIN)" % binary)
    _probe[kind] = reason
    return reason


class Ensembles:
    """Factory and janitor of the ensembles and clients of one test."""

    def __init__(self, tmp_path):
        self.tmp_path = tmp_path
        self.made = []
        self.clients = []

    def __call__(self, kind, cls=harness.Ensemble, **kw):
        reason = skip_reason(kind)
        if reason:
            pytest.skip(reason)
        e = cls(kind, self.tmp_path, **kw)
        self.made.append(e)
        return e

    def client(self, ensemble, sid=None, **kw):
        c = ensemble.client(sid, **kw)
        self.clients.append(c)
        return c

    def close(self):
        for c in self.clients:
            try:
                c.stop()
                c.close()
            except Exception:
                pass
        for e in self.made:
            e.close()


class TestTimeout(Exception):
    pass


@pytest.fixture(autouse=True)
def bounded_test():
    """SIGALRM after TEST_TIMEOUT_S raises TestTimeout in the test's (main) thread; waits on
    locks and sockets are interrupted by it. The fixtures' teardown still stops the servers."""
    def expired(signum, frame):
        raise TestTimeout("test still running after %.0fs (ENSEMBLE_TEST_TIMEOUT_S)"
                          % TEST_TIMEOUT_S)
    previous = signal.signal(signal.SIGALRM, expired)
    signal.setitimer(signal.ITIMER_REAL, TEST_TIMEOUT_S)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


@pytest.fixture
def ensembles(request, tmp_path):
    made = Ensembles(tmp_path)
    request.node._ensembles = made
    try:
        yield made
    finally:
        made.close()


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    report = outcome.get_result()
    made = getattr(item, "_ensembles", None)
    if report.failed and made is not None and made.made:
        report.sections.append(("ensemble servers and log tails",
                                "\n\n".join(e.describe() for e in made.made)))
