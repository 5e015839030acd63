"""TLS on the client port and x509 identities, against Apache ZooKeeper and ringkeeper configured
the same way (issue 11, items 1 and 2).

Own servers, one of each kind, from the conftest zoo.cfg plus:

* `secureClientPort` on 127.0.0.1 (NettyServerCnxnFactory for ZooKeeper, which needs it for TLS),
* `client.portUnification=true`, so the plaintext client port also takes TLS (DualModeSslHandler),
* a PKCS12 key store and a JKS trust store, both written by keytool, `ssl.clientAuth=need`,
* `X509AuthenticationProvider.superUser` naming the admin certificate's subject, and
  `authProvider.x509` (ZooKeeper needs it to register the x509 scheme; ringkeeper accepts it).

ringkeeper takes the key store password from `ssl.keyStore.passwordPath` and the trust store
password from `conf/java.env` (`SERVER_JVMFLAGS="-Dzookeeper.ssl.trustStore.password=..."`), as
zkServer.sh deployments pass it; ZooKeeper 3.8 gets both as plain zoo.cfg keys.

Certificates are made here with the `openssl` command: a CA, a server certificate for 127.0.0.1
and localhost, client certificates for alice, bob and admin, an expired one and one from a CA the
servers do not trust. Every wait is bounded; nothing sleeps for synchronisation.
"""

import shutil
import socket
import ssl
import subprocess
import tempfile
from pathlib import Path

import pytest

from conftest import Server, free_port
from harness import four_letter

STORE_PASSWORD = "store-pass"
ALICE = "CN=alice,O=ringkeeper-test"
BOB = "CN=bob,O=ringkeeper-test"
ADMIN = "CN=admin,O=ringkeeper-test"
IO_TIMEOUT_S = 10.0
JAVA_DIR = Path("/usr/share/java")


def run(*args, cwd):
    subprocess.run(list(args), cwd=cwd, check=True, capture_output=True, timeout=120)


def make_certificates(d):
    """The CA, server and client material under `d` (PEM files named <who>.key / <who>.pem)."""
    if shutil.which("openssl") is None or shutil.which("keytool") is None:
        pytest.skip("openssl and keytool are needed (scripts/install-test-deps.sh)")
    d.mkdir(parents=True, exist_ok=True)
    run("openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "ca.key",
        "-out", "ca.pem", "-days", "30", "-subj", "/CN=ringkeeper test CA", cwd=d)
    run("openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "rogue-ca.key",
        "-out", "rogue-ca.pem", "-days", "30", "-subj", "/CN=rogue CA", cwd=d)
    (d / "server.ext").write_text("subjectAltName=IP:127.0.0.1,DNS:localhost\n"
                                  "extendedKeyUsage=serverAuth,clientAuth\n")
    (d / "client.ext").write_text("extendedKeyUsage=clientAuth\n")

    def issue(who, subject, ext, ca="ca"):
        run("openssl", "req", "-newkey", "rsa:2048", "-nodes", "-keyout", who + ".key",
            "-out", who + ".csr", "-subj", subject, cwd=d)
        run("openssl", "x509", "-req", "-in", who + ".csr", "-CA", ca + ".pem", "-CAkey",
            ca + ".key", "-CAcreateserial", "-out", who + ".pem", "-days", "30", "-extfile", ext,
            cwd=d)

    issue("server", "/CN=localhost", "server.ext")
    issue("alice", "/O=ringkeeper-test/CN=alice", "client.ext")
    issue("bob", "/O=ringkeeper-test/CN=bob", "client.ext")
    issue("admin", "/O=ringkeeper-test/CN=admin", "client.ext")
    issue("untrusted", "/O=ringkeeper-test/CN=mallory", "client.ext", ca="rogue-ca")
    # An expired certificate: `openssl ca` takes explicit validity dates.
    (d / "index.txt").write_text("")
    (d / "serial").write_text("1000\n")
    (d / "ca.cnf").write_text("\n".join([
        "[ca]", "default_ca=test", "[test]", "database=index.txt", "new_certs_dir=.",
        "serial=serial", "default_md=sha256", "policy=anything", "x509_extensions=ext",
        "[anything]", "commonName=supplied", "organizationName=optional",
        "[ext]", "extendedKeyUsage=clientAuth", ""]))
    run("openssl", "req", "-newkey", "rsa:2048", "-nodes", "-keyout", "expired.key", "-out",
        "expired.csr", "-subj", "/O=ringkeeper-test/CN=expired", cwd=d)
    run("openssl", "ca", "-batch", "-config", "ca.cnf", "-cert", "ca.pem", "-keyfile", "ca.key",
        "-in", "expired.csr", "-out", "expired.pem", "-notext", "-startdate", "20200101000000Z",
        "-enddate", "20200201000000Z", cwd=d)
    # keytool stores: the server's key as PKCS12, the CA as a JKS trust store; alice's key as
    # PKCS12 and JKS for the Java client, the CA as a PKCS12 trust store too.
    for who in ("server", "alice"):
        run("openssl", "pkcs12", "-export", "-inkey", who + ".key", "-in", who + ".pem",
            "-name", who, "-out", who + "-openssl.p12", "-passout", "pass:" + STORE_PASSWORD,
            cwd=d)
        for kind, ext in (("PKCS12", "p12"), ("JKS", "jks")):
            run("keytool", "-importkeystore", "-srckeystore", who + "-openssl.p12",
                "-srcstoretype", "PKCS12", "-srcstorepass", STORE_PASSWORD, "-destkeystore",
                "%s.%s" % (who, ext), "-deststoretype", kind, "-deststorepass", STORE_PASSWORD,
                "-destkeypass", STORE_PASSWORD, "-noprompt", cwd=d)
    for kind, ext in (("PKCS12", "p12"), ("JKS", "jks")):
        run("keytool", "-importcert", "-alias", "ca", "-file", "ca.pem", "-keystore",
            "truststore." + ext, "-storetype", kind, "-storepass", STORE_PASSWORD, "-noprompt",
            cwd=d)
    (d / "keystore-password").write_text(STORE_PASSWORD + "\n")
    return d


def tls_cfg(d, secure_port, kind):
    lines = [
        "secureClientPort=%d" % secure_port,
        "secureClientPortAddress=127.0.0.1",
        "client.portUnification=true",
        "serverCnxnFactory=org.apache.zookeeper.server.NettyServerCnxnFactory",
        "authProvider.x509=org.apache.zookeeper.server.auth.X509AuthenticationProvider",
        "X509AuthenticationProvider.superUser=" + ADMIN,
        "ssl.clientAuth=need",
        "ssl.keyStore.location=%s" % (d / "server.p12"),
        "ssl.keyStore.type=PKCS12",
        "ssl.trustStore.location=%s" % (d / "truststore.jks"),
        "ssl.trustStore.type=JKS",
    ]
    if kind == "ringkeeper":
        lines.append("zookeeper.ssl.keyStore.passwordPath=%s" % (d / "keystore-password"))
    else:
        lines.append("ssl.keyStore.password=" + STORE_PASSWORD)
        lines.append("ssl.trustStore.password=" + STORE_PASSWORD)
    return lines


@pytest.fixture(scope="module")
def certs():
    tmp = Path(tempfile.mkdtemp(prefix="ringkeeper-tls-certs-"))
    yield make_certificates(tmp)
    shutil.rmtree(tmp, ignore_errors=True)


@pytest.fixture(scope="module", params=["zookeeper", "ringkeeper"])
def tls_server(request, servers, certs):
    if not servers[request.param].available:
        pytest.skip(servers[request.param].skip_reason)
    tmp = Path(tempfile.mkdtemp(prefix="ringkeeper-tls-"))
    secure_port = free_port()
    directory = tmp / request.param
    s = Server(request.param, directory, extra_cfg=tls_cfg(certs, secure_port, request.param))
    if request.param == "ringkeeper":
        # zkEnv.sh sources conf/java.env; ringkeeper reads its -D settings.
        (directory / "java.env").write_text(
            'SERVER_JVMFLAGS="-Dzookeeper.ssl.trustStore.password=%s $SERVER_JVMFLAGS"\n'
            % STORE_PASSWORD)
    s.start()
    if not s.available:
        pytest.skip(s.skip_reason)
    s.secure_port = secure_port
    s.certs = certs
    yield s
    s.stop()
    if not request.node.session.testsfailed:
        shutil.rmtree(tmp, ignore_errors=True)


def kazoo(port, certs, who, start_timeout=IO_TIMEOUT_S, use_ssl=True):
    from kazoo.client import KazooClient
    from kazoo.retry import KazooRetry
    kw = {}
    if use_ssl:
        kw = dict(use_ssl=True, verify_certs=True, ca=str(certs / "ca.pem"))
        if who is not None:
            kw.update(certfile=str(certs / (who + ".pem")), keyfile=str(certs / (who + ".key")))
    c = KazooClient(hosts="127.0.0.1:%d" % port, timeout=10.0,
                    connection_retry=KazooRetry(max_tries=-1, delay=0.05, max_delay=0.5), **kw)
    c.start(timeout=start_timeout)
    return c


def refused(port, certs, who, use_ssl=True):
    """True when a Kazoo client cannot open a session within a few seconds."""
    from kazoo.handlers.threading import KazooTimeoutError
    from kazoo.client import KazooClient
    from kazoo.retry import KazooRetry
    kw = {}
    if use_ssl:
        kw = dict(use_ssl=True, verify_certs=True, ca=str(certs / "ca.pem"))
        if who is not None:
            kw.update(certfile=str(certs / (who + ".pem")), keyfile=str(certs / (who + ".key")))
    c = KazooClient(hosts="127.0.0.1:%d" % port, timeout=10.0,
                    connection_retry=KazooRetry(max_tries=2, delay=0.1, max_delay=0.2), **kw)
    try:
        c.start(timeout=4.0)
    except KazooTimeoutError:
        return True
    finally:
        c.stop()
        c.close()
    return False


def x509_acl(dn, perms=None):
    from kazoo.security import ACL, Id, Permissions
    return [ACL(Permissions.ALL if perms is None else perms, Id("x509", dn))]


def test_kazoo_over_tls_with_x509_acls_and_super(tls_server):
    from kazoo.exceptions import NoAuthError
    from kazoo.security import ACL, Id, Permissions
    s = tls_server
    alice = kazoo(s.secure_port, s.certs, "alice")
    bob = kazoo(s.secure_port, s.certs, "bob")
    admin = kazoo(s.secure_port, s.certs, "admin")
    try:
        path = "/tls-acl-" + s.name
        alice.create(path, b"alice's", acl=x509_acl(ALICE))
        assert alice.get(path)[0] == b"alice's"
        with pytest.raises(NoAuthError):
            bob.get(path)
        # The super user's certificate (X509AuthenticationProvider.superUser) reads anything.
        assert admin.get(path)[0] == b"alice's"
        acl, _ = alice.get_acls(path)
        assert [(a.id.scheme, a.id.id) for a in acl] == [("x509", ALICE)]
        # The auth scheme expands to the caller's x509 id (and not to its ip).
        alice.create(path + "-auth", b"", acl=[ACL(Permissions.ALL, Id("auth", ""))])
        acl, _ = alice.get_acls(path + "-auth")
        assert [(a.id.scheme, a.id.id) for a in acl] == [("x509", ALICE)]
        with pytest.raises(NoAuthError):
            bob.set(path + "-auth", b"x")
        admin.delete(path + "-auth")
        admin.delete(path)
    finally:
        for c in (alice, bob, admin):
            c.stop()
            c.close()


def test_port_unification_serves_tls_plaintext_and_four_letter_words(tls_server):
    s = tls_server
    tls_client = kazoo(s.port, s.certs, "alice")
    plain = kazoo(s.port, s.certs, None, use_ssl=False)
    try:
        path = "/tls-unified-" + s.name
        tls_client.create(path, b"unified", acl=x509_acl(ALICE))
        assert tls_client.get(path)[0] == b"unified"
        from kazoo.exceptions import NoAuthError
        with pytest.raises(NoAuthError):
            plain.get(path)
        plain.create(path + "-plain", b"plaintext")
        assert tls_client.get(path + "-plain")[0] == b"plaintext"
        plain.delete(path + "-plain")
        assert four_letter("127.0.0.1", s.port, "ruok") == "imok"
        tls_client.delete(path)
    finally:
        for c in (tls_client, plain):
            c.stop()
            c.close()


def garbage_is_closed(port):
    """Garbage on a TLS port: the server closes that connection (an alert, then EOF, or a
    reset) within the timeout."""
    with socket.create_connection(("127.0.0.1", port), timeout=IO_TIMEOUT_S) as raw:
        raw.sendall(b"\x16\x03\x01\x00\x05hello, this is not TLS at all" * 4)
        try:
            while raw.recv(4096):
                pass
        except ConnectionResetError:
            pass
        except socket.timeout:
            return False
    return True


def auth_failed_count(s):
    """mntr's zk_auth_failed_count: failed client TLS handshakes (NettyServerCnxnFactory)."""
    from harness import four_letter
    for line in four_letter("127.0.0.1", s.port, "mntr").splitlines():
        if line.startswith("zk_auth_failed_count\t"):
            return int(line.split("\t", 1)[1])
    raise AssertionError("no zk_auth_failed_count in mntr")


def test_bad_certificates_and_garbage_are_refused_without_disturbing_others(tls_server):
    s = tls_server
    alice = kazoo(s.secure_port, s.certs, "alice")
    failed_before = auth_failed_count(s)
    try:
        path = "/tls-undisturbed-" + s.name
        alice.create(path, b"still here")
        for who in (None, "expired", "untrusted"):
            assert refused(s.secure_port, s.certs, who), "%s was let in" % who
            assert alice.get(path)[0] == b"still here"
        assert garbage_is_closed(s.secure_port)
        assert alice.get(path)[0] == b"still here"
        # A plaintext client on the TLS-only port does not get a session either.
        assert refused(s.secure_port, s.certs, None, use_ssl=False)
        assert alice.get(path)[0] == b"still here"
        # Each refused handshake counts (Kazoo retries, so at least one per refusal above).
        assert auth_failed_count(s) >= failed_before + 4
        alice.delete(path)
    finally:
        alice.stop()
        alice.close()


def test_tls_client_on_a_plaintext_port_is_refused(server, certs):
    """The session servers have no TLS: a TLS client there is closed (ZooKeeper reads the
    ClientHello as an oversized length), and plaintext clients carry on."""
    plain = kazoo(server.port, certs, None, use_ssl=False)
    try:
        assert refused(server.port, certs, "alice")
        assert plain.exists("/") is not None
        assert four_letter("127.0.0.1", server.port, "ruok") == "imok"
    finally:
        plain.stop()
        plain.close()


def java_classpath():
    jars = ["zookeeper", "zookeeper-jute", "slf4j-api", "netty-buffer", "netty-codec",
            "netty-common", "netty-handler", "netty-resolver", "netty-transport",
            "netty-transport-native-epoll", "netty-transport-native-unix-common"]
    return ":".join(str(JAVA_DIR / (jar + ".jar")) for jar in jars
                    if (JAVA_DIR / (jar + ".jar")).exists())


@pytest.mark.parametrize("store", ["PKCS12", "JKS"])
def test_java_client_over_tls_with_keytool_stores(tls_server, store):
    """ZooKeeper's Java client (Debian's jars) over TLS with ClientCnxnSocketNetty and
    keytool's key and trust stores, reading a node only its x509 identity may read."""
    if not (JAVA_DIR / "zookeeper.jar").exists() or shutil.which("java") is None:
        pytest.skip("the ZooKeeper Java client is not installed (apt-get install zookeeper)")
    s = tls_server
    ext = "p12" if store == "PKCS12" else "jks"
    path = "/tls-java-%s-%s" % (s.name, ext)
    alice = kazoo(s.secure_port, s.certs, "alice")
    try:
        alice.create(path, b"seen-by-java", acl=x509_acl(ALICE))
        flags = [
            "-Dzookeeper.client.secure=true",
            "-Dzookeeper.clientCnxnSocket=org.apache.zookeeper.ClientCnxnSocketNetty",
            "-Dzookeeper.ssl.keyStore.location=%s" % (s.certs / ("alice." + ext)),
            "-Dzookeeper.ssl.keyStore.password=" + STORE_PASSWORD,
            "-Dzookeeper.ssl.keyStore.type=" + store,
            "-Dzookeeper.ssl.trustStore.location=%s" % (s.certs / ("truststore." + ext)),
            "-Dzookeeper.ssl.trustStore.password=" + STORE_PASSWORD,
            "-Dzookeeper.ssl.trustStore.type=" + store,
        ]
        program = Path(__file__).resolve().parent / "java" / "TlsGet.java"
        done = subprocess.run(
            ["java", "-Xshare:auto", "-XX:TieredStopAtLevel=1"] + flags
            + ["-cp", java_classpath(), str(program), "127.0.0.1:%d" % s.secure_port, path],
            capture_output=True, text=True, timeout=120, stdin=subprocess.DEVNULL)
        output = done.stdout + done.stderr
        assert done.returncode == 0 and "data: seen-by-java" in output, output[-3000:]
        alice.delete(path)
    finally:
        alice.stop()
        alice.close()


def test_python_ssl_sees_the_server_certificate_for_127_0_0_1(tls_server):
    """The handshake itself, without a ZooKeeper client: hostname and chain verify, and the
    negotiated protocol is ssl.protocol's default with enabledProtocols unset: TLSv1.3 in
    ZooKeeper 3.9 (X509Util.defaultTlsProtocol on a JVM that has it), which ringkeeper follows;
    the reference 3.8 still defaults to TLSv1.2."""
    s = tls_server
    context = ssl.create_default_context(cafile=str(s.certs / "ca.pem"))
    context.load_cert_chain(str(s.certs / "alice.pem"), str(s.certs / "alice.key"))
    with socket.create_connection(("127.0.0.1", s.secure_port), timeout=IO_TIMEOUT_S) as raw:
        with context.wrap_socket(raw, server_hostname="127.0.0.1") as tls:
            assert tls.version() == ("TLSv1.2" if s.name == "zookeeper" else "TLSv1.3")
