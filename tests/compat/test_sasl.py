"""SASL on the client port (opcode 102): DIGEST-MD5 and Kerberos (GSSAPI), against Apache
ZooKeeper 3.8 and ringkeeper configured the same way: a JAAS file named by
`-Djava.security.auth.login.config` (ZooKeeper's JVM; ringkeeper reads it from
SERVER_JVMFLAGS), `authProvider.1=...SASLAuthenticationProvider` and `superUser` in zoo.cfg.

Every test runs on both servers and asserts what ZooKeeper does (ZooKeeperServer.processSasl,
SaslServerCallbackHandler, AuthenticationHelper, SASLAuthenticationProvider):
- Kazoo with `sasl_options` DIGEST-MD5 and with the legacy `auth_data=[("sasl", "u:p")]`;
  a wrong password is AuthFailedError; `sasl:` ACLs are enforced; superUser is super.
- The Java client with a JAAS `Client` section (DIGEST-MD5), as Kafka brokers log in.
- A server without SASL answers a SASL request OK with a null token and zxid 0.
- `sessionRequireClientSASLAuth=true`: a session without SASL gets
  SessionClosedRequireSaslAuth on its first request.
- A token flood and an oversized token on one connection end that connection only.
- Kerberos: an MIT KDC started here on loopback, keytabs from kadmin.local, the Java client
  logging in with Krb5LoginModule; `sasl:` ACLs on the short name (removeHost/RealmFromPrincipal).
"""

import os
import shutil
import socket
import subprocess
import tempfile
import threading
import time
from pathlib import Path

import pytest

import conftest
import rawclient
from harness import digest_id
from rawclient import RawClient, Writer, READ, ALL

SASL_PROVIDER = "authProvider.1=org.apache.zookeeper.server.auth.SASLAuthenticationProvider"
SERVER_JAAS = """Server {
    org.apache.zookeeper.server.auth.DigestLoginModule required
    user_admin="adminsecret"
    user_bob="bobsecret";
};
"""
JAVA_JARS = ["zookeeper.jar", "zookeeper-jute.jar", "slf4j-api.jar", "slf4j-simple.jar"]
JAVA_TIMEOUT_S = 60
TARGETS = ["zookeeper", "ringkeeper"]


def start_pair(tmp, name, extra_cfg, jvm_flags, env=None):
    """One ZooKeeper and one ringkeeper with the same settings; skips a side that is absent."""
    servers = {}
    for target in TARGETS:
        server = conftest.Server(target, tmp / name / target, extra_cfg=extra_cfg,
                                 jvm_flags=jvm_flags, env=env)
        server.start()
        servers[target] = server
    return servers


def stop_pair(servers):
    for server in servers.values():
        server.stop()


@pytest.fixture(scope="module")
def workdir():
    tmp = Path(tempfile.mkdtemp(prefix="ringkeeper-sasl-"))
    yield tmp
    if not os.environ.get("COMPAT_KEEP_LOGS") and not conftest.FAILED:
        shutil.rmtree(tmp, ignore_errors=True)


@pytest.fixture(scope="module")
def digest_servers(workdir):
    jaas = workdir / "server.jaas"
    jaas.write_text(SERVER_JAAS)
    servers = start_pair(workdir, "digest", [SASL_PROVIDER, "superUser=admin"],
                         "-Djava.security.auth.login.config=%s" % jaas)
    yield servers
    stop_pair(servers)


@pytest.fixture(scope="module")
def required_servers(workdir):
    jaas = workdir / "server.jaas"
    jaas.write_text(SERVER_JAAS)
    servers = start_pair(workdir, "required", [SASL_PROVIDER, "sessionRequireClientSASLAuth=true"],
                         "-Djava.security.auth.login.config=%s" % jaas)
    yield servers
    stop_pair(servers)


def pick(servers, target):
    server = servers[target]
    if not server.available:
        pytest.skip(server.skip_reason)
    return server


def kazoo(server, **kw):
    from kazoo.client import KazooClient
    from kazoo.retry import KazooRetry
    client = KazooClient(hosts="%s:%d" % (server.host, server.port), timeout=10.0,
                         connection_retry=KazooRetry(max_tries=1, delay=0.1), **kw)
    return client


def digest_options(user, password):
    return {"mechanism": "DIGEST-MD5", "username": user, "password": password}


def sasl_op(token):
    return 102, Writer().buffer(token).bytes(), lambda r: r.buffer()


@pytest.mark.parametrize("target", TARGETS)
def test_kazoo_digest_md5_sasl_options_and_sasl_acl(digest_servers, target):
    """A `sasl:bob` ACL admits bob (sasl_options) and nobody else; whoAmI shows sasl:bob."""
    server = pick(digest_servers, target)
    path = "/sasl-acl-%s" % os.urandom(4).hex()
    bob = kazoo(server, sasl_options=digest_options("bob", "bobsecret"))
    bob.start(timeout=15)
    try:
        from kazoo.security import make_acl
        bob.create(path, b"secret", acl=[make_acl("sasl", "bob", all=True)])
        assert bob.get(path)[0] == b"secret"
        acl, _ = bob.get_acls(path)
        assert [(a.perms, a.id.scheme, a.id.id) for a in acl] == [(ALL, "sasl", "bob")]
        raw = RawClient(server.host, server.port)
        assert raw.get_data(path).err == "NOAUTH"
        raw.close()
        # The `auth` scheme expands to the sasl id (SASLAuthenticationProvider.isAuthenticated).
        bob.create(path + "/auth", b"", acl=[make_acl("auth", "", read=True)])
        acl, _ = bob.get_acls(path + "/auth")
        assert [(a.perms, a.id.scheme, a.id.id) for a in acl] == [(READ, "sasl", "bob")]
    finally:
        bob.stop()
        bob.close()


@pytest.mark.parametrize("target", TARGETS)
def test_kazoo_legacy_sasl_auth_data_and_super_user(digest_servers, target):
    """auth_data=[("sasl", "admin:adminsecret")] logs in with DIGEST-MD5; admin is the
    zookeeper.superUser, so it passes every ACL."""
    server = pick(digest_servers, target)
    path = "/sasl-super-%s" % os.urandom(4).hex()
    setup = RawClient(server.host, server.port)
    assert setup.create(path, b"x", acl=[(ALL, "sasl", "nobody")]).err == "OK"
    setup.close()
    admin = kazoo(server, auth_data=[("sasl", "admin:adminsecret")])
    admin.start(timeout=15)
    try:
        assert admin.get(path)[0] == b"x"
    finally:
        admin.stop()
        admin.close()


@pytest.mark.parametrize("target", TARGETS)
def test_kazoo_wrong_password_is_auth_failed(digest_servers, target):
    from kazoo.protocol.states import KeeperState
    server = pick(digest_servers, target)
    for options in (digest_options("bob", "wrong"), digest_options("nobody", "x")):
        raw = RawClient(server.host, server.port, ping=False)
        challenge = raw.call(sasl_op(b""))
        assert challenge.err == "OK" and challenge.zxid == 0
        assert b'realm="zk-sasl-md5"' in challenge.value
        raw.close()
        client = kazoo(server, sasl_options=options)
        # Kazoo connects (CONNECTED), fails the SASL exchange, and moves to AUTH_FAILED
        # (state LOST). start() itself races the two: it raises a time-out when AUTH_FAILED
        # comes before it looks at the state, and a request after it fails with
        # AuthFailedError or ConnectionClosedError depending on the same race, so the test
        # waits for the LOST transition and checks the session state it reached.
        lost = threading.Event()
        states = []

        def listener(state):
            # The session state that caused the transition (set before listeners run).
            states.append((state, client.client_state))
            if state == "LOST":
                lost.set()
        client.add_listener(listener)
        client.start_async()
        assert lost.wait(15), "no AUTH_FAILED within 15 s: states %r" % states
        assert ("LOST", KeeperState.AUTH_FAILED) in states, states
        client.stop()
        client.close()
    # The same refusal seen on the wire: AuthFailed with the request's xid and zxid 0, then
    # the connection closes.
    raw = RawClient(server.host, server.port, ping=False)
    raw.call(sasl_op(b""))
    bad = raw.call(sasl_op(b'username="bob",realm="zk-sasl-md5",nonce="x",cnonce="y",'
                           b'nc=00000001,qop=auth,digest-uri="zookeeper/zk-sasl-md5",'
                           b'response=00000000000000000000000000000000'), xid=77)
    assert (bad.err, bad.zxid) == ("AUTHFAILED", 0)
    assert raw.closed.wait(10)
    assert ("reply", 77, "AUTHFAILED") in raw.frames


@pytest.mark.parametrize("target", TARGETS)
def test_no_sasl_configured_answers_ok_with_null_token(servers, target):
    """processSasl without a SASL server: OK, zxid 0, the request's xid, null token."""
    server = servers[target]
    if not server.available:
        pytest.skip(server.skip_reason)
    raw = RawClient(server.host, server.port)
    reply = raw.call(sasl_op(b"anything"), xid=4242)
    assert (reply.err, reply.zxid, reply.value) == ("OK", 0, None)
    assert raw.exists("/").err == "OK"
    raw.close()


@pytest.mark.parametrize("target", TARGETS)
def test_session_require_client_sasl_auth(required_servers, target):
    """sessionRequireClientSASLAuth=true: the first non-SASL request of an unauthenticated
    connection is answered SessionClosedRequireSaslAuth (xid echoed, zxid 0) and the connection
    closes; a SASL-authenticated Kazoo client works."""
    server = pick(required_servers, target)
    raw = RawClient(server.host, server.port, ping=False)
    reply = raw.call(rawclient.op_exists("/"), xid=9)
    assert (reply.err, reply.zxid) == ("SESSIONCLOSEDREQUIRESASLAUTH", 0)
    assert raw.closed.wait(10)
    bob = kazoo(server, sasl_options=digest_options("bob", "bobsecret"))
    bob.start(timeout=15)
    try:
        assert bob.exists("/") is not None
    finally:
        bob.stop()
        bob.close()


@pytest.mark.parametrize("target", TARGETS)
def test_sasl_token_flood_and_oversized_token_end_only_that_connection(digest_servers, target):
    server = pick(digest_servers, target)
    bystander = RawClient(server.host, server.port)
    flooder = RawClient(server.host, server.port, ping=False)
    handles = [flooder.send(sasl_op(b"x" * 100)) for _ in range(200)]
    first = flooder.wait(handles[0])
    second = flooder.wait(handles[1])
    assert first.err == "OK"
    assert second.err == "AUTHFAILED"
    assert flooder.closed.wait(10)
    big = RawClient(server.host, server.port, ping=False)
    big.call(sasl_op(b""))
    assert big.call(sasl_op(b"a" * 100000)).err == "AUTHFAILED"
    assert big.closed.wait(10)
    assert bystander.exists("/").err == "OK"
    bystander.close()


def java_classpath():
    jars = [Path("/usr/share/java") / jar for jar in JAVA_JARS]
    missing = [str(jar) for jar in jars if not jar.exists()]
    if missing or not shutil.which("javac"):
        pytest.skip("Java client not available: %s" % (missing or "javac"))
    return ":".join(str(jar) for jar in jars)


@pytest.fixture(scope="module")
def java_client(workdir):
    classpath = java_classpath()
    out = workdir / "java"
    out.mkdir(exist_ok=True)
    source = Path(__file__).resolve().parent / "java" / "SaslClient.java"
    subprocess.run(["javac", "-Xlint:-path", "-d", str(out), "-cp", classpath, str(source)],
                   check=True, timeout=JAVA_TIMEOUT_S)

    def run(server, jaas_text, paths, extra_flags=()):
        jaas = workdir / ("client-%s.jaas" % os.urandom(4).hex())
        jaas.write_text(jaas_text)
        command = ["java", "-Djava.security.auth.login.config=%s" % jaas,
                   "-Dorg.slf4j.simpleLogger.defaultLogLevel=error", *extra_flags,
                   "-cp", "%s:%s" % (out, classpath), "SaslClient",
                   "%s:%d" % (server.host, server.port), *paths]
        done = subprocess.run(command, capture_output=True, text=True, timeout=JAVA_TIMEOUT_S)
        assert done.returncode == 0, done.stderr
        # ZooKeeper keeps a connection's ids in a hash set: whoAmI's order is not meaningful.
        return [" ".join(["whoami"] + sorted(line.split()[1:])) if line.startswith("whoami ")
                else line for line in done.stdout.splitlines()]
    return run


CLIENT_JAAS = """Client {
    org.apache.zookeeper.server.auth.DigestLoginModule required
    username="%s"
    password="%s";
};
"""


@pytest.mark.parametrize("target", TARGETS)
def test_java_client_digest_md5_from_jaas_client_section(digest_servers, java_client, target):
    server = pick(digest_servers, target)
    path = "/sasl-java-%s" % os.urandom(4).hex()
    setup = RawClient(server.host, server.port)
    assert setup.create(path, b"for-bob", acl=[(READ, "sasl", "bob")]).err == "OK"
    setup.close()
    assert java_client(server, CLIENT_JAAS % ("bob", "bobsecret"), [path]) == [
        "event SaslAuthenticated",
        "whoami ip:127.0.0.1 sasl:bob",
        "get %s OK for-bob" % path,
    ]
    assert java_client(server, CLIENT_JAAS % ("bob", "nope"), [path]) == ["event AuthFailed"]


# ---- Kerberos ----

REALM = "EXAMPLE.COM"


def kdc_tools():
    tools = {name: shutil.which(name) or ("/usr/sbin/" + name)
             for name in ("krb5kdc", "kdb5_util", "kadmin.local")}
    missing = [name for name, path in tools.items() if not os.path.exists(path)]
    if missing:
        pytest.skip("MIT KDC not installed (apt-get install krb5-kdc): %s" % missing)
    return tools


@pytest.fixture(scope="module")
def kerberos(workdir):
    """An MIT KDC on a free loopback port with principals zookeeper/localhost, client and
    client/host; keytabs in the work dir."""
    tools = kdc_tools()
    kdir = workdir / "krb5"
    kdir.mkdir()
    port = conftest.free_port()
    krb5_conf = kdir / "krb5.conf"
    krb5_conf.write_text("""[libdefaults]
    default_realm = %(realm)s
    dns_lookup_kdc = false
    dns_lookup_realm = false
    rdns = false
    dns_canonicalize_hostname = false
    udp_preference_limit = 1
[realms]
    %(realm)s = {
        kdc = 127.0.0.1:%(port)d
    }
""" % {"realm": REALM, "port": port})
    kdc_conf = kdir / "kdc.conf"
    kdc_conf.write_text("""[kdcdefaults]
    kdc_listen = 127.0.0.1:%(port)d
    kdc_tcp_listen = 127.0.0.1:%(port)d
[realms]
    %(realm)s = {
        database_name = %(dir)s/principal
        key_stash_file = %(dir)s/stash
        acl_file = %(dir)s/kadm5.acl
        kdc_listen = 127.0.0.1:%(port)d
        kdc_tcp_listen = 127.0.0.1:%(port)d
    }
""" % {"realm": REALM, "port": port, "dir": kdir})
    env = dict(os.environ, KRB5_CONFIG=str(krb5_conf), KRB5_KDC_PROFILE=str(kdc_conf))
    subprocess.run([tools["kdb5_util"], "create", "-s", "-r", REALM, "-P", "masterpw"],
                   env=env, check=True, capture_output=True, timeout=60)
    keytabs = {}
    for principal, name in (("zookeeper/localhost", "server"), ("client", "client"),
                            ("client/host.example.com", "client-host")):
        keytab = kdir / ("%s.keytab" % name)
        for query in ("addprinc -randkey %s@%s" % (principal, REALM),
                      "ktadd -k %s %s@%s" % (keytab, principal, REALM)):
            subprocess.run([tools["kadmin.local"], "-r", REALM, "-q", query], env=env,
                           check=True, capture_output=True, timeout=60)
        keytabs[name] = keytab
    log = open(kdir / "kdc.log", "wb")
    kdc = subprocess.Popen([tools["krb5kdc"], "-n", "-r", REALM], env=env, stdout=log,
                           stderr=subprocess.STDOUT)
    log.close()
    deadline = time.monotonic() + 20
    while True:  # polling a port that is not listening yet; nothing to await
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            break
        except OSError:
            if kdc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("krb5kdc did not start; see %s" % (kdir / "kdc.log"))
            time.sleep(0.1)
    yield {"krb5_conf": krb5_conf, "keytabs": keytabs, "env": {"KRB5_CONFIG": str(krb5_conf)}}
    kdc.terminate()
    kdc.wait(timeout=10)


@pytest.fixture(scope="module")
def kerberos_servers(workdir, kerberos):
    jaas = workdir / "server-krb5.jaas"
    jaas.write_text("""Server {
    com.sun.security.auth.module.Krb5LoginModule required
    useKeyTab=true
    keyTab="%s"
    storeKey=true
    useTicketCache=false
    principal="zookeeper/localhost@%s";
};
""" % (kerberos["keytabs"]["server"], REALM))
    flags = ("-Djava.security.auth.login.config=%s -Djava.security.krb5.conf=%s"
             % (jaas, kerberos["krb5_conf"]))
    servers = start_pair(workdir, "kerberos",
                         [SASL_PROVIDER, "kerberos.removeHostFromPrincipal=true",
                          "kerberos.removeRealmFromPrincipal=true"],
                         flags, env=kerberos["env"])
    yield servers
    stop_pair(servers)


KRB5_CLIENT_JAAS = """Client {
    com.sun.security.auth.module.Krb5LoginModule required
    useKeyTab=true
    keyTab="%s"
    storeKey=true
    useTicketCache=false
    principal="%s@%s";
};
"""


@pytest.mark.parametrize("target", TARGETS)
def test_java_client_kerberos_sasl_acl_on_short_name(kerberos_servers, kerberos, java_client,
                                                     target):
    """Krb5LoginModule logins of client@REALM and client/host@REALM both become sasl:client
    with removeHostFromPrincipal and removeRealmFromPrincipal; a `sasl:client` ACL admits them."""
    server = pick(kerberos_servers, target)
    path = "/sasl-krb5-%s" % os.urandom(4).hex()
    setup = RawClient(server.host, server.port)
    assert setup.create(path, b"kerberos", acl=[(READ, "sasl", "client")]).err == "OK"
    setup.close()
    flags = ["-Djava.security.krb5.conf=%s" % kerberos["krb5_conf"]]
    for principal, keytab in (("client", "client"), ("client/host.example.com", "client-host")):
        lines = java_client(server, KRB5_CLIENT_JAAS % (kerberos["keytabs"][keytab], principal,
                                                        REALM), [path], flags)
        assert lines == ["event SaslAuthenticated", "whoami ip:127.0.0.1 sasl:client",
                         "get %s OK kerberos" % path], principal
