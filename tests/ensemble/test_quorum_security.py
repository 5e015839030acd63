"""Quorum security (issue 11, item 4): TLS between ensemble members (`sslQuorum`, `ssl.quorum.*`)
and SASL authentication of a member before it may vote or sync (`quorum.auth.*`, DIGEST-MD5 with
the JAAS `QuorumServer` / `QuorumLearner` sections), configured with the same keys for Apache
ZooKeeper and ringkeeper (ZooKeeper Administrator's Guide, "Quorum TLS" and "Quorum SASL";
QuorumPeerConfig, QuorumX509Util, SaslQuorumAuthServer / SaslQuorumAuthLearner).

Three participants and one observer line (server.4). The participants run with TLS on both quorum
ports (PEM key and trust stores made here with `openssl`; mutual TLS and hostname verification,
ZooKeeper's defaults) and with `learnerRequireSasl` and `serverRequireSasl` on. Server 4 is
started twice with something wrong, a wrong SASL password and then a certificate from a CA the
ensemble does not trust: each time it cannot join, the participants log the refusal, and the
ensemble keeps serving. Then the leader is killed: the other two elect a new one over TLS and
writes go on; and server 4 with the right credentials joins as an observer.

The JAAS file is passed as deployments pass it, `-Djava.security.auth.login.config=...` in
SERVER_JVMFLAGS (conf/java.env for ringkeeper, the java command line for ZooKeeper). Every wait is
bounded and polls for the event (a mode, a log line), never a fixed sleep.
"""

import re
import shutil
import subprocess
import uuid

import pytest

from .harness import wait_until

SERVE_TIMEOUT_S = 90.0
REFUSAL_TIMEOUT_S = 30.0
PASSWORD = "quorum-secret"

# What each kind logs on the accepting side when it refuses a member.
REFUSED_SASL = {
    "ringkeeper": re.compile(r"refusing a quorum connection: SASL authentication failed"),
    "zookeeper": re.compile(r"Failed to authenticate using SASL|failed to authenticate quorum"),
}
REFUSED_TLS = {
    "ringkeeper": re.compile(r"refusing a quorum connection: TLS"),
    # ZooKeeper 3.8's QuorumCnxManager: the handshake fails inside the first read of the
    # accepted socket ("Accepted TLS connection ... SSL_NULL_WITH_NULL_NULL", then this).
    "zookeeper": re.compile(r"Exception reading or writing challenge|SSLHandshakeException"),
}


def run(*args, cwd):
    subprocess.run(list(args), cwd=cwd, check=True, capture_output=True, timeout=120)


def make_certificates(d):
    """A CA and a member certificate (for 127.0.0.1 and localhost, server and client use), and a
    rogue CA with a member certificate of its own. Key stores are PEM files holding the key and
    the certificate; trust stores PEM files of the CA."""
    if shutil.which("openssl") is None:
        pytest.skip("openssl is needed (scripts/install-test-deps.sh)")
    d.mkdir(parents=True, exist_ok=True)
    (d / "member.ext").write_text("subjectAltName=IP:127.0.0.1,DNS:localhost\n"
                                  "extendedKeyUsage=serverAuth,clientAuth\n")
    for ca in ("ca", "rogue-ca"):
        run("openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", ca + ".key",
            "-out", ca + ".pem", "-days", "30", "-subj", "/CN=%s quorum test" % ca, cwd=d)
    for who, ca in (("member", "ca"), ("rogue", "rogue-ca")):
        run("openssl", "req", "-newkey", "rsa:2048", "-nodes", "-keyout", who + ".key",
            "-out", who + ".csr", "-subj", "/O=ringkeeper-test/CN=%s" % who, cwd=d)
        run("openssl", "x509", "-req", "-in", who + ".csr", "-CA", ca + ".pem", "-CAkey",
            ca + ".key", "-CAcreateserial", "-out", who + ".crt", "-days", "30",
            "-extfile", "member.ext", cwd=d)
        (d / (who + "-store.pem")).write_text(
            (d / (who + ".key")).read_text() + (d / (who + ".crt")).read_text())
    return d


def jaas(d, name, learner_password):
    path = d / name
    path.write_text(
        "QuorumServer {\n"
        "  org.apache.zookeeper.server.auth.DigestLoginModule required\n"
        "  user_member=\"%s\";\n"
        "};\n"
        "QuorumLearner {\n"
        "  org.apache.zookeeper.server.auth.DigestLoginModule required\n"
        "  username=\"member\"\n"
        "  password=\"%s\";\n"
        "};\n" % (PASSWORD, learner_password))
    return path


def tls_lines(d, store):
    return [
        "ssl.quorum.keyStore.location=%s" % (d / store),
        "ssl.quorum.keyStore.type=PEM",
        "ssl.quorum.trustStore.location=%s" % (d / "ca.pem"),
        "ssl.quorum.trustStore.type=PEM",
    ]


def refusals(e, sids, pattern):
    return sum(len(pattern.findall(e.members[s].log.read_text(errors="replace"))) for s in sids)


def test_quorum_tls_and_sasl_admit_members_only(kind, ensembles, tmp_path):
    d = make_certificates(tmp_path / "certs")
    good = jaas(d, "good.jaas", PASSWORD)
    bad = jaas(d, "bad.jaas", "not-the-password")
    cfg = {
        "sslQuorum": "true",
        "ssl.quorum.hostnameVerification": "true",
        "quorum.auth.enableSasl": "true",
        "quorum.auth.learnerRequireSasl": "true",
        "quorum.auth.serverRequireSasl": "true",
    }
    e = ensembles(kind, participants=3, observers=1, extra_cfg=cfg)
    for sid in e.ids:
        e.configure(sid, extra_lines=tls_lines(d, "member-store.pem"),
                    jvm_flags=["-Djava.security.auth.login.config=%s" % good])
    participants = e.participant_ids
    e.start(participants)
    modes = e.wait_serving(SERVE_TIMEOUT_S, sids=participants)
    assert sorted(modes.values()) == ["follower", "follower", "leader"], modes

    root = "/qsec-%s" % uuid.uuid4().hex[:8]
    writer = ensembles.client(e, participants[0])
    writer.create(root, b"over TLS")
    for sid in participants:
        reader = ensembles.client(e, sid)
        reader.sync(root)
        assert reader.get(root)[0] == b"over TLS"

    def cannot_join(pattern, why):
        before = refusals(e, participants, pattern)
        e.start_server(4)
        wait_until(lambda: refusals(e, participants, pattern) > before, REFUSAL_TIMEOUT_S,
                   "the participants to log the refusal of server 4 (%s)" % why)
        assert e.mode(4) is None, "server 4 (%s) serves as %s" % (why, e.mode(4))
        # The ensemble keeps serving while it is refused.
        path = "%s/%s" % (root, why.replace(" ", "-"))
        writer.create(path, b"x")
        reader = ensembles.client(e, participants[1])
        reader.sync(path)
        assert reader.exists(path)
        e.kill(4)

    # A wrong password: authenticated TLS, refused SASL.
    e.configure(4, jvm_flags=["-Djava.security.auth.login.config=%s" % bad])
    cannot_join(REFUSED_SASL[kind], "wrong password")
    # A certificate the quorum trust store does not vouch for, with the right password.
    e.configure(4, extra_lines=tls_lines(d, "rogue-store.pem"),
                jvm_flags=["-Djava.security.auth.login.config=%s" % good])
    cannot_join(REFUSED_TLS[kind], "untrusted certificate")

    # Failover under TLS and SASL: the two others elect a new leader and take writes.
    old = e.leader()
    e.kill(old)
    new = e.wait_leader(SERVE_TIMEOUT_S, exclude=[old])
    survivors = [s for s in participants if s != old]
    c = ensembles.client(e, hosts=e.connect_string(survivors))
    c.create(root + "/after-failover", b"y")
    for sid in survivors:
        reader = ensembles.client(e, sid)
        reader.sync(root)
        assert reader.exists(root + "/after-failover"), sid
    assert new in survivors

    # The right credentials: server 4 joins, as the observer it is, and has every write.
    e.configure(4, extra_lines=tls_lines(d, "member-store.pem"))
    e.start_server(4)
    wait_until(lambda: e.mode(4) == "observer", SERVE_TIMEOUT_S, "server 4 to observe")
    observer = ensembles.client(e, 4)
    observer.sync(root)
    assert set(observer.get_children(root)) >= {"wrong-password", "untrusted-certificate",
                                                "after-failover"}
