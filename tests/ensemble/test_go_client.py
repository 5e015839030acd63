"""go-zookeeper through a member restart (its own TestDNSHostProviderReconnect): the client's
member is stopped (SIGTERM) or killed (SIGKILL) and started again, and the client's next Create
must get through.

The client is given the two followers (a restarted leader means an election, during which
go-zookeeper fails requests with ErrNoServer on ZooKeeper too). The program (tests/compat/go/
gozk.go, `restart`) prints the member it is connected to and waits; the test stops and starts
that member and at once lets the program go on, as the Go test does (Stop, Start, Create).

ringkeeper used to keep the stopped member's client connections open for 5-11 ms after the
process was reaped (io_uring teardown), so the Create went into a dead connection and failed
with "zk: connection closed"; ZooKeeper's connections are closed when its process is gone.
SIGTERM was fixed first by closing every connection before exit; after SIGKILL nothing runs,
so the client port's sockets now carry no io_uring request at all (src/net/readiness.rs) and
close as the process exits, connections and listener alike (a client that reconnected in that
window reached the dead process's listener and lost its request the same way).
"""

import subprocess
import sys
import uuid
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "compat"))
import go_client  # noqa: E402  tests/compat/go_client.py

SERVE_TIMEOUT_S = 60.0


@pytest.fixture(scope="module")
def gozk():
    try:
        return go_client.build()
    except go_client.Unavailable as reason:
        pytest.skip(str(reason))


@pytest.mark.parametrize("stop", ["sigterm", "sigkill"])
def test_go_create_after_its_member_restarts(kind, ensembles, gozk, stop):
    e = ensembles(kind).start()
    e.wait_serving(SERVE_TIMEOUT_S)
    followers = e.followers()[:2]
    root = "/gozk-restart-%s" % uuid.uuid4().hex[:8]
    program = subprocess.Popen([str(gozk), "restart", root, e.connect_string(followers)],
                               stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True)
    try:
        lines = []
        while True:
            line = program.stdout.readline()  # bounded by the test's SIGALRM (conftest)
            assert line, "gozk ended before connecting: %s %s" % (lines, program.stderr.read())
            lines.append(line.strip())
            if line.startswith("connected "):
                break
        port = int(lines[-1].rsplit(":", 1)[1])
        member = [sid for sid in followers if e.members[sid].client_port == port]
        assert member, "connected to %s, not to one of the followers %s" % (lines[-1], followers)
        if stop == "sigkill":
            e.kill(member[0])  # SIGKILL and reap, as kill -9 by a supervisor
        else:
            e.stop(member[0])
        e.start_server(member[0])
        program.stdin.write("go\n")
        program.stdin.flush()
        out, err = program.communicate(timeout=go_client.RUN_TIMEOUT_S)
    finally:
        if program.poll() is None:
            program.kill()
            program.wait()
    lines += out.splitlines()
    failed = [line for line in lines if line.startswith("FAIL")]
    assert program.returncode == 0 and not failed, (
        "%s and restart of member %d under go-zookeeper:\n%s\n-- client log --\n%s"
        % (stop, member[0], "\n".join(lines), err[-3000:]))
    e.wait_serving(SERVE_TIMEOUT_S)
