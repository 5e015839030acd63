"""The Go client go-zookeeper (go/gozk.go, built by go_client.py) and its older fork
github.com/ngaut/go-zookeeper (go/ngaut/gozk_ngaut.go) against each server.

go-zookeeper sends an auth packet with an ordinary xid and waits for the reply carrying that
xid; ZooKeeperServer.processPacket answers every auth packet with the request's xid (the Java,
C and Python clients send -4 and so get -4). A server that always answers -4 leaves AddAuth,
and the re-submission of credentials after a reconnect, waiting forever: the program reports
that as a step that did not finish within its deadline. Not differential: every step must pass
on each server. Skipped with the reason when Go or the package is not installed.

The ngaut fork keeps no record of its credentials and so does not re-submit them after a
reconnect; its reauth scenario checks what ZooKeeper does then (the new connection is
unauthenticated: authentication belongs to the connection) and that AddAuth on the resumed
session works.
"""

import uuid

import pytest

import go_client


@pytest.fixture(scope="session")
def gozk():
    try:
        return go_client.build()
    except go_client.Unavailable as reason:
        pytest.skip(str(reason))


@pytest.fixture(scope="session")
def gozk_ngaut():
    try:
        return go_client.build("ngaut")
    except go_client.Unavailable as reason:
        pytest.skip(str(reason))


def run_scenario(scenario, server, program="samuel"):
    root = "/gozk-%s-%s" % (scenario, uuid.uuid4().hex[:8])
    status, lines, stderr = go_client.run(scenario, root, "%s:%d" % (server.host, server.port),
                                          program)
    failed = [line for line in lines if not line.startswith("ok ")]
    assert status == 0 and not failed, (
        "go-zookeeper (%s) %s scenario on %s:\n%s\n-- client log --\n%s"
        % (program, scenario, server.name, "\n".join(lines), stderr[-3000:]))
    return lines


def test_go_addauth_and_digest_acl(server, gozk):
    """AddAuth("digest") returns; a digest-ACL'd node reads with the credential and is
    NoAuth without it; AddAuth with a scheme that has no provider returns AuthFailed (the
    reply carries the request's xid too) and the session carries on after the server closed
    that connection."""
    lines = run_scenario("auth", server)
    assert "ok addauth with an unknown scheme fails" in lines


def test_go_credentials_resubmitted_after_reconnect(server, gozk):
    """The connection is cut under the client; it reconnects with its session and first
    re-submits its credentials (waiting for each reply by xid), then reads the ACL'd node."""
    lines = run_scenario("reauth", server)
    assert "ok get with re-submitted credential" in lines


def test_ngaut_addauth_and_digest_acl(server, gozk_ngaut):
    """The ngaut fork: AddAuth("digest") returns (its auth packet too has an ordinary xid),
    the digest ACL holds, an unknown scheme is AuthFailed and the session carries on."""
    lines = run_scenario("auth", server, "ngaut")
    assert "ok addauth with an unknown scheme fails" in lines


def test_ngaut_addauth_again_after_reconnect(server, gozk_ngaut):
    """The ngaut fork after a cut connection: the resumed session's new connection has no
    authentication (the client does not re-submit it), and AddAuth on it works."""
    lines = run_scenario("reauth", server, "ngaut")
    assert "ok get with the credential submitted again" in lines
