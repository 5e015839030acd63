"""HTTPS on the AdminServer, as ZooKeeper's JettyAdminServer serves it (issue 12, item 4).

The admin server takes its key and trust stores from the `ssl.quorum.*` keys (JettyAdminServer
reads them through QuorumX509Util), here a keytool PKCS12 key store and a JKS trust store made by
test_tls's helper. Three settings, each on its own servers:

* `admin.forceHttps=true`: HTTPS only; a plain HTTP request gets no answer (both servers);
* `admin.portUnification=true`: HTTPS and plain HTTP on the one port, a first byte 0x16 being
  TLS (Jetty's UnifiedConnectionFactory; both servers);
* `admin.needClientAuth=true` with forceHttps (ZooKeeper 3.9; the reference here is 3.8, which
  has no such key and asks for no certificate, so ringkeeper only): a client without a
  certificate, or with one from an untrusted CA, is refused; a trusted one gets the answer; and
  the `Authorization: x509` scheme of the commands that need auth (`snapshot`: ALL on `/`) takes
  the connection's certificate subject, checked against the ACL of `/` (Commands.runCommand:
  401 "Not authenticated" without an identity, 403 "Not authorized" without the permission).
  X509AuthenticationProvider checks the chain against the client port's `ssl.trustStore.*`, so
  that is set too.

Every wait is bounded; the only sleep is for the snapshot rate limiter's wall-clock interval.
"""

import http.client
import json
import shutil
import socket
import ssl
import tempfile
import time
from pathlib import Path

import pytest

import test_tls
import test_zk_migration as migration
from conftest import SUPER_PASSWORD, Server, free_port

from kazoo.security import ACL, Id

TIMEOUT_S = 10.0
PASSWORD = test_tls.STORE_PASSWORD
ALICE, BOB, ADMIN = test_tls.ALICE, test_tls.BOB, test_tls.ADMIN


@pytest.fixture(scope="module")
def certs():
    tmp = Path(tempfile.mkdtemp(prefix="ringkeeper-admin-https-certs-"))
    yield test_tls.make_certificates(tmp)
    shutil.rmtree(tmp, ignore_errors=True)


def admin_cfg(certs, admin_port, settings):
    lines = [
        "admin.enableServer=true", "admin.serverAddress=127.0.0.1",
        "admin.serverPort=%d" % admin_port,
        "ssl.quorum.keyStore.location=%s" % (certs / "server.p12"),
        "ssl.quorum.keyStore.type=PKCS12",
        "ssl.quorum.keyStore.password=" + PASSWORD,
        "ssl.quorum.trustStore.location=%s" % (certs / "truststore.jks"),
        "ssl.quorum.trustStore.type=JKS",
        "ssl.quorum.trustStore.password=" + PASSWORD,
        # X509AuthenticationProvider's own trust store (ClientX509Util's keys).
        "ssl.trustStore.location=%s" % (certs / "truststore.jks"),
        "ssl.trustStore.type=JKS",
        "ssl.trustStore.password=" + PASSWORD,
        "X509AuthenticationProvider.superUser=" + ADMIN,
    ]
    return lines + ["admin.%s=true" % key for key in settings]


def wait_listening(port):
    deadline = time.monotonic() + 30.0
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1.0).close()
            return
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.05)  # polling a port that is not listening yet


def start(kind, certs, settings):
    tmp = Path(tempfile.mkdtemp(prefix="ringkeeper-admin-https-"))
    admin_port = free_port()
    # ZooKeeper's standalone server reads the admin keys as system properties.
    flags = " ".join(["-Dzookeeper.admin.enableServer=true"]
                     + ["-Dzookeeper.admin.%s=true" % key for key in settings])
    server = Server(kind, tmp / kind, extra_cfg=admin_cfg(certs, admin_port, settings),
                    jvm_flags=flags)
    server.start()
    if not server.available:
        shutil.rmtree(tmp, ignore_errors=True)
        pytest.skip(server.skip_reason)
    server.admin_port = admin_port
    server.tmp = tmp
    wait_listening(admin_port)
    return server


def stop(server, request):
    server.stop()
    if not request.node.session.testsfailed:
        shutil.rmtree(server.tmp, ignore_errors=True)


def tls_context(certs, who=None):
    context = ssl.create_default_context(cafile=str(certs / "ca.pem"))
    if who is not None:
        context.load_cert_chain(str(certs / (who + ".pem")), str(certs / (who + ".key")))
    return context


def get(port, path, context=None, authorization=None):
    """(status, headers, body) of one GET, over HTTPS when `context` is given."""
    if context is None:
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=TIMEOUT_S)
    else:
        connection = http.client.HTTPSConnection("127.0.0.1", port, timeout=TIMEOUT_S,
                                                 context=context)
    try:
        headers = {"Authorization": authorization} if authorization else {}
        connection.request("GET", path, headers=headers)
        reply = connection.getresponse()
        return reply.status, dict(reply.getheaders()), reply.read()
    finally:
        connection.close()


def refused(port, path, context=None):
    """True when the request gets no HTTP answer at all (the connection is closed or reset,
    or the TLS handshake fails)."""
    try:
        get(port, path, context)
    except (http.client.HTTPException, OSError):
        return True
    return False


def assert_commands_answer(port, context):
    status, headers, body = get(port, "/commands/ruok", context)
    assert status == 200, body
    answer = json.loads(body)
    assert answer["command"] == "ruok" and answer["error"] is None, answer
    status, _, body = get(port, "/commands/srvr", context)
    assert status == 200, body
    answer = json.loads(body)
    assert answer["command"] == "server_stats" and answer["error"] is None, answer
    assert "server_stats" in answer and "node_count" in answer, answer
    return headers


@pytest.fixture(scope="module", params=["zookeeper", "ringkeeper"])
def force_https(request, servers, certs):
    if not servers[request.param].available:
        pytest.skip(servers[request.param].skip_reason)
    server = start(request.param, certs, ["forceHttps"])
    yield server
    stop(server, request)


@pytest.fixture(scope="module", params=["zookeeper", "ringkeeper"])
def unified(request, servers, certs):
    if not servers[request.param].available:
        pytest.skip(servers[request.param].skip_reason)
    server = start(request.param, certs, ["portUnification"])
    yield server
    stop(server, request)


@pytest.fixture(scope="module")
def need_client_auth(servers, certs, request):
    if not servers["ringkeeper"].available:
        pytest.skip(servers["ringkeeper"].skip_reason)
    server = start("ringkeeper", certs, ["forceHttps", "needClientAuth"])
    yield server
    stop(server, request)


def test_force_https_serves_https_and_refuses_plain_http(force_https, certs):
    headers = assert_commands_answer(force_https.admin_port, tls_context(certs))
    # JettyAdminServer's SecureRequestCustomizer: HSTS for a day, subdomains included.
    hsts = {key.lower(): value for key, value in headers.items()}.get(
        "strict-transport-security", "")
    assert "max-age=86400" in hsts, headers
    assert refused(force_https.admin_port, "/commands/ruok")
    # Still serving HTTPS after the plain attempt.
    assert_commands_answer(force_https.admin_port, tls_context(certs))


def test_port_unification_serves_https_and_http_on_one_port(unified, certs):
    assert_commands_answer(unified.admin_port, tls_context(certs))
    assert_commands_answer(unified.admin_port, None)
    # A client that does not trust the server's CA fails its own handshake; the port goes on.
    stranger = ssl.create_default_context(cafile=str(certs / "rogue-ca.pem"))
    assert refused(unified.admin_port, "/commands/ruok", stranger)
    assert_commands_answer(unified.admin_port, None)


def test_need_client_auth_refuses_clients_without_a_trusted_certificate(need_client_auth, certs):
    port = need_client_auth.admin_port
    assert refused(port, "/commands/ruok", tls_context(certs))
    assert refused(port, "/commands/ruok", tls_context(certs, "untrusted"))
    assert refused(port, "/commands/ruok", tls_context(certs, "expired"))
    assert refused(port, "/commands/ruok")
    assert_commands_answer(port, tls_context(certs, "alice"))


def snapshot_when_allowed(port, context):
    """The first answer that is not 429 (the limiter allows one snapshot per 300 ms)."""
    deadline = time.monotonic() + 30.0
    while True:
        status, headers, body = get(port, "/commands/snapshot?streaming=false", context,
                                    "x509")
        if status != 429 or time.monotonic() > deadline:
            return status, headers, body
        time.sleep(0.05)  # the rate limiter's interval is wall-clock time; nothing to await


def test_x509_authorization_checks_the_certificate_identity_against_the_acl(
        need_client_auth, certs):
    port = need_client_auth.admin_port
    status, _, body = get(port, "/commands/snapshot", tls_context(certs, "alice"))
    assert status == 401, body
    assert json.loads(body)["error"] == "Auth info is missing for the command"
    zk = migration.kazoo(need_client_auth.port, auth=[("digest", "super:%s" % SUPER_PASSWORD)])
    try:
        zk.set_acls("/", [ACL(31, Id("x509", ALICE))])
        status, _, body = snapshot_when_allowed(port, tls_context(certs, "alice"))
        assert status == 200, body
        assert json.loads(body)["error"] is None, body
        status, _, body = get(port, "/commands/snapshot", tls_context(certs, "bob"), "x509")
        assert status == 403, body
        assert json.loads(body)["error"] == "Not authorized"
        # X509AuthenticationProvider.superUser: the admin certificate is super.
        status, _, body = snapshot_when_allowed(port, tls_context(certs, "admin"))
        assert status == 200, body
        # Another scheme's credential does not borrow the certificate's identity.
        status, _, body = get(port, "/commands/snapshot", tls_context(certs, "alice"),
                              "digest bob:secret")
        assert status == 403, body
    finally:
        zk.set_acls("/", [ACL(31, Id("world", "anyone"))])
        zk.stop()
        zk.close()


def test_x509_authorization_without_a_certificate_is_not_authenticated(unified, certs):
    """On a port that asks for no certificate (no needClientAuth) the x509 scheme has no
    identity to give: 401, as Commands.handleAuthentication answers an empty id list."""
    if unified.name != "ringkeeper":
        pytest.skip("ZooKeeper 3.8 has no command that needs auth")
    status, _, body = get(unified.admin_port, "/commands/snapshot", tls_context(certs, "alice"),
                          "x509")
    assert status == 401, body
    assert json.loads(body)["error"] == "Not authenticated"
