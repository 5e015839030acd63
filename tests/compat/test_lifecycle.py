"""ringkeeper's process lifecycle: started from a standard zoo.cfg, stopped cleanly by SIGTERM
(exit status 0, nothing acknowledged lost), restarted on the same data with every znode, ACL
and open session intact, and the version it reports for the ZooKeeper behaviour it implements.
ringkeeper-specific (the reference server's lifecycle is not under test)."""

import os
import signal
import subprocess
import tempfile
import time
from pathlib import Path

import pytest
from kazoo.client import KazooClient
from kazoo.retry import KazooRetry

from conftest import REPO, free_port, wait_imok
from harness import four_letter

BINARY = Path(os.environ.get("RINGKEEPER_BIN", REPO / "target" / "release" / "ringkeeper"))
STOP_TIMEOUT_S = 15


@pytest.fixture
def server_dir():
    if not BINARY.exists():
        pytest.skip("ringkeeper binary %s does not exist" % BINARY)
    with tempfile.TemporaryDirectory(prefix="ringkeeper-lifecycle-") as d:
        directory = Path(d)
        port = free_port()
        (directory / "zoo.cfg").write_text(
            "tickTime=2000\ndataDir=%s\nclientPort=%d\nclientPortAddress=127.0.0.1\n"
            "4lw.commands.whitelist=*\n" % (directory / "data", port))
        yield directory, port


def start(directory, port):
    log = open(directory / "server.log", "ab")
    proc = subprocess.Popen([str(BINARY), "--config", str(directory / "zoo.cfg")],
                            stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    log.close()
    assert wait_imok(port, lambda: proc.poll() is None, 30), (
        (directory / "server.log").read_text()[-2000:])
    return proc


def stop(proc):
    proc.send_signal(signal.SIGTERM)
    return proc.wait(timeout=STOP_TIMEOUT_S)


def client(port, **kw):
    c = KazooClient(hosts="127.0.0.1:%d" % port, timeout=10.0,
                    connection_retry=KazooRetry(max_tries=-1, delay=0.05, max_delay=0.5), **kw)
    c.start(timeout=15)
    return c


def test_sigterm_stops_cleanly_and_restart_keeps_everything(server_dir):
    directory, port = server_dir
    proc = start(directory, port)
    k = client(port)
    k.create("/keep", b"value")
    k.create("/keep/child", b"")
    k.set("/keep", b"value2")
    k.add_auth("digest", "u:p")
    k.create("/private", b"s", acl=[_digest_acl("u", "p")])
    k.create("/eph", b"", ephemeral=True)
    session_id, password = k.client_id
    # The client stays connected while the server stops, like a real deployment's clients.
    k.stop()  # closes the Kazoo session cleanly: its ephemeral must then be gone
    k.close()
    holder = client(port)
    holder.create("/held", b"", ephemeral=True)
    held_session, held_password = holder.client_id
    assert stop(proc) == 0, "SIGTERM must stop the server with status 0"
    log = (directory / "server.log").read_text()
    assert "stopped" in log

    proc = start(directory, port)
    try:
        k = client(port)
        assert k.get("/keep")[0] == b"value2"
        assert k.get("/keep")[1].version == 1
        assert k.get_children("/keep") == ["child"]
        assert k.exists("/eph") is None, "a closed session's ephemeral stays deleted"
        with pytest.raises(Exception):
            k.get_acls("/private")  # the ACL survived: a stranger may not read it
        k.add_auth("digest", "u:p")
        acl, _ = k.get_acls("/private")
        assert [(a.id.scheme, a.perms) for a in acl] == [("digest", 31)]
        # The open session survived the restart: resuming it with its id and password keeps
        # its ephemeral.
        resumed = KazooClient(hosts="127.0.0.1:%d" % port, timeout=10.0,
                              client_id=(held_session, held_password))
        resumed.start(timeout=15)
        assert resumed.client_id[0] == held_session
        assert resumed.exists("/held") is not None
        resumed.stop()
        resumed.close()
        k.stop()
        k.close()
    finally:
        holder.stop()
        holder.close()
        assert stop(proc) == 0


def test_srvr_and_envi_report_the_zookeeper_release_implemented(server_dir):
    directory, port = server_dir
    proc = start(directory, port)
    try:
        srvr = four_letter("127.0.0.1", port, "srvr")
        envi = four_letter("127.0.0.1", port, "envi")
        assert srvr.startswith("Zookeeper version: 3.9."), srvr
        assert "-ringkeeper-" in srvr.splitlines()[0]
        assert "zookeeper.version=3.9." in envi
        assert "Mode: standalone" in srvr
    finally:
        assert stop(proc) == 0


def _digest_acl(user, password):
    from kazoo.security import make_digest_acl
    return make_digest_acl(user, password, all=True)
