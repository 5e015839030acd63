"""Reconfig (opcode 16) on a standalone server, compared with Apache ZooKeeper 3.8 configured the
same way (PrepRequestProcessor's reconfig case): without `reconfigEnabled` every caller gets
ReconfigDisabled (-123); with it every caller, super user or not, gets Unimplemented (a
standalone server is no LeaderZooKeeperServer; ZooKeeper answers so before any ACL check). The
ensemble forms are in tests/ensemble/test_reconfig.py.

The calls go through the raw client: Kazoo 2.8 has no exception class for -123, and its
connection loop dies on it (RuntimeError: Invalid error code), against either server. Each side
runs the same calls and the outcomes are compared; the servers of this module have
reconfigEnabled=true, the session's shared servers the default (false).
"""

import shutil
import tempfile
from pathlib import Path

import pytest

import harness
from conftest import SUPER_PASSWORD, Server
from rawclient import RawClient, op_reconfig

CALL_TIMEOUT_S = 10.0
CALLS = [
    ("joining", dict(joining="server.2=127.0.0.1:2888:3888;127.0.0.1:2182")),
    ("leaving", dict(leaving="1")),
    ("new_members", dict(new_members="server.1=127.0.0.1:2888:3888;127.0.0.1:2181")),
    ("bad version", dict(leaving="1", from_config=12345)),
    ("nothing", dict()),
]


def outcomes(port, as_super):
    client = RawClient("127.0.0.1", port, call_timeout_s=CALL_TIMEOUT_S)
    try:
        if as_super:
            assert client.add_auth("digest", b"super:" + SUPER_PASSWORD.encode()).err == "OK"
        seen = [(name, client.call(op_reconfig(**kwargs)).err) for name, kwargs in CALLS]
        # The session is still good after the refusals.
        assert client.exists("/zookeeper/config").err == "OK"
        return seen
    finally:
        client.close()


@pytest.fixture(scope="module")
def reconfig_servers():
    tmp = Path(tempfile.mkdtemp(prefix="ringkeeper-reconfig-"))
    started = {}
    try:
        for name in harness.TARGETS:
            server = Server(name, tmp / name, extra_cfg=["reconfigEnabled=true"])
            server.start()
            started[name] = server
        yield started
    finally:
        for server in started.values():
            server.stop()
        shutil.rmtree(tmp, ignore_errors=True)


def both(per_server):
    available = {n: s for n, s in per_server.items() if s.available}
    if len(available) < 2:
        pytest.skip("; ".join(s.skip_reason for s in per_server.values() if not s.available))
    return available


@pytest.mark.parametrize("as_super", [False, True], ids=["anyone", "super"])
def test_reconfig_enabled_standalone(reconfig_servers, as_super):
    seen = {name: outcomes(s.port, as_super) for name, s in both(reconfig_servers).items()}
    assert seen["ringkeeper"] == seen["zookeeper"], seen
    assert {err for _, err in seen["zookeeper"]} == {"UNIMPLEMENTED"}, seen


@pytest.mark.parametrize("as_super", [False, True], ids=["anyone", "super"])
def test_reconfig_disabled_standalone(servers, as_super):
    seen = {name: outcomes(s.port, as_super) for name, s in both(servers).items()}
    assert seen["ringkeeper"] == seen["zookeeper"], seen
    assert {err for _, err in seen["zookeeper"]} == {"RECONFIGDISABLED"}, seen
