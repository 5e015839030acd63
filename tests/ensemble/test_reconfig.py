"""Dynamic reconfiguration (ZooKeeper Dynamic Reconfiguration guide; PrepRequestProcessor's
reconfig case, QuorumMaj.toString, QuorumPeerConfig's dynamic config file), run the same way on a
ZooKeeper 3.8 ensemble and a ringkeeper ensemble, both with reconfigEnabled=true and a super
digest given as -Dzookeeper.DigestAuthenticationProvider.superDigest (java.env for ringkeeper).

* `/zookeeper/config` on every member from startup: the `server.N=...` lines and
  `version=<hex>`, the version being the first epoch's NEWLEADER zxid (0x100000000), with mzxid
  = version, version -1, aversion -1 and a world READ ACL.
* The errors and their order: NoAuth (no super), BadVersion (fromConfig), BadArguments
  (malformed joiner, too few voters, bad new members), MarshallingError (non-numeric leaving
  id), NewConfigNoQuorum (the new voters' majority is not synced).
* A reconfig that keeps the membership (non-incremental, and a joiner that restates its own
  line): the reply carries the new config and its Stat, every member shows it, a data watch on
  /zookeeper/config fires, zoo.cfg points at zoo.cfg.dynamic.<version>, and it survives a
  restart of the whole ensemble. zkCli's `reconfig` and Curator's EnsembleTracker follow it.
* Membership changes, on both servers: an observer and a participant join (each started with
  a configuration listing the members and itself, before the reconfig that adds it), a role
  changes both ways, a participant and an observer leave; after each change a write through
  every member is read back from every member, and `/zookeeper/config` is the same on every
  member; a restarted member keeps the new configuration.
* A member's client port moves (QuorumPeer.processReconfig -> ServerCnxnFactory.reconfigure),
  incremental for a follower, non-incremental for the leader and for a member that was down
  during the reconfig: the member accepts clients on the new port and refuses them on the old
  one, a connection made before the move stays up, every member shows the new line, and the
  follower restarted serves on the new port.
"""

import atexit
import base64
import hashlib
import os
import shutil
import socket
import subprocess
import tempfile
import threading
from pathlib import Path

import pytest
from kazoo.exceptions import (BadArgumentsError, BadVersionError, MarshallingError,
                              NewConfigNoQuorumError, NoAuthError, UnimplementedError)

from .harness import JAVA_DIR, Ensemble, four_letter, free_ports, wait_until

SERVE_TIMEOUT_S = 60.0
SUPER_PASSWORD = "reconfig-test"
ZKCLI = os.environ.get("RINGKEEPER_ZKCLI", "/usr/share/zookeeper/bin/zkCli.sh")
JAVA_TIMEOUT_S = 90.0
HERE = Path(__file__).resolve().parent


def super_digest():
    digest = hashlib.sha1(("super:" + SUPER_PASSWORD).encode()).digest()
    return "super:" + base64.b64encode(digest).decode()


def reconfig_ensemble(ensembles, kind):
    e = ensembles(kind, participants=3, extra_cfg={"reconfigEnabled": "true"})
    for sid in e.ids:
        e.configure(sid, jvm_flags=[
            "-Dzookeeper.DigestAuthenticationProvider.superDigest=" + super_digest()])
    e.start()
    e.wait_serving(SERVE_TIMEOUT_S)
    return e


def server_lines(e):
    """The members as QuorumMaj.toString writes them (the harness's lines name the client
    host, and every member is a participant)."""
    return ["server.%d=%s:%d:%d:participant;%s:%d" % (
        m.sid, m.host, m.quorum_port, m.election_port, m.host, m.client_port)
        for m in (e.members[s] for s in e.ids)]


def config_text(e, version):
    return "\n".join(server_lines(e)) + "\nversion=%x" % version


def read_config(e, sid):
    c = e.client(sid)
    try:
        c.sync("/zookeeper/config")
        return c.get("/zookeeper/config")
    finally:
        c.stop()
        c.close()


def test_config_node_from_startup_and_reconfig_errors(kind, ensembles):
    e = reconfig_ensemble(ensembles, kind)
    for sid in e.ids:
        data, stat = read_config(e, sid)
        assert data.decode() == config_text(e, 0x100000000), (sid, data)
        assert (stat.mzxid, stat.version, stat.aversion, stat.czxid) == (
            0x100000000, -1, -1, 0), (sid, stat)
    c = ensembles.client(e, e.leader())
    acl, _ = c.get_acls("/zookeeper/config")
    assert [(a.perms, a.id.scheme, a.id.id) for a in acl] == [(1, "world", "anyone")]

    # Without super: every other check passes, the ACL of /zookeeper/config (READ) refuses.
    with pytest.raises(NoAuthError):
        c.reconfig(joining=None, leaving="3", new_members=None)
    c.add_auth("digest", "super:" + SUPER_PASSWORD)
    with pytest.raises(BadVersionError):
        c.reconfig(joining=None, leaving="3", new_members=None, from_config=0x5)
    with pytest.raises(BadArgumentsError):  # "Wrong format of server string"
        c.reconfig(joining="server.5=foo", leaving=None, new_members=None)
    with pytest.raises(BadArgumentsError):  # no client port: "3 ports specified"
        c.reconfig(joining="server.5=127.0.0.1:1:2", leaving=None, new_members=None)
    with pytest.raises(MarshallingError):  # Long.parseLong outside the ConfigException catch
        c.reconfig(joining=None, leaving="x", new_members=None)
    with pytest.raises(BadArgumentsError):  # "must include at least 2 followers"
        c.reconfig(joining=None, leaving="2,3", new_members=None)
    with pytest.raises(BadArgumentsError):
        c.reconfig(joining=None, leaving=None, new_members="server.1=garbage")

    # NewConfigNoQuorum: with one follower down, a new configuration whose voters are the
    # leader, the dead follower and a server that does not run has no synced majority.
    leader = e.leader()
    dead = [s for s in e.participant_ids if s != leader][0]
    e.kill(dead)
    lines = [l for l in server_lines(e)
             if l.startswith("server.%d=" % leader) or l.startswith("server.%d=" % dead)]
    lines.append("server.9=127.0.0.2:1111:1112:participant;127.0.0.2:1113")
    # The leader counts the follower synced until its link closes (at once on kill -9).
    m = e.members[leader]
    wait_until(lambda: "zk_synced_followers\t1" in four_letter(m.host, m.client_port, "mntr"),
               20.0, "the leader to count one synced follower", interval_s=0.1)
    c.retry(c.exists, "/")  # the client may have been on the killed server
    with pytest.raises(NewConfigNoQuorumError):
        c.reconfig(joining=None, leaving=None, new_members=",".join(lines))

    # Moving a member's quorum port: ringkeeper answers Unimplemented (README: "Dynamic
    # reconfig"); ZooKeeper carries it out (not run here: it restarts leader election).
    if kind == "ringkeeper":
        other = [s for s in e.participant_ids if s not in (leader, dead)][0]
        m = e.members[other]
        moved = "server.%d=%s:%d:%d:participant;%s:%d" % (
            other, m.host, free_ports(1)[0], m.election_port, m.host, m.client_port)
        with pytest.raises(UnimplementedError):
            c.reconfig(joining=moved, leaving=None, new_members=None)
        assert read_config(e, leader)[0].decode() == config_text(e, 0x100000000)
    # A membership change (the dead follower leaves; the other two are synced): the smaller
    # configuration commits.
    data, stat = c.reconfig(joining=None, leaving=str(dead), new_members=None)
    expected = [l for l in server_lines(e) if not l.startswith("server.%d=" % dead)]
    assert data.decode() == "\n".join(expected) + "\nversion=%x" % stat.mzxid


def test_reconfig_keeping_the_membership_is_committed_everywhere_and_survives_a_restart(
        kind, ensembles):
    """Kazoo (both forms), then zkCli's `reconfig -members` and Curator's EnsembleTracker
    (each skipped when not installed), then the files on disk and a restart of every member."""
    e = reconfig_ensemble(ensembles, kind)
    c = ensembles.client(e, 1)
    c.add_auth("digest", "super:" + SUPER_PASSWORD)
    fired = threading.Event()
    _, before = c.get("/zookeeper/config", watch=lambda event: fired.set())

    data, stat = c.reconfig(joining=None, leaving=None, new_members=",".join(server_lines(e)),
                            from_config=before.mzxid)
    assert stat.mzxid > before.mzxid and (stat.version, stat.aversion) == (-1, -1)
    assert data.decode() == config_text(e, stat.mzxid)
    assert fired.wait(10.0), "no NodeDataChanged on /zookeeper/config"

    # The incremental form: member 2 restating its own line.
    own = server_lines(e)[1]
    data2, stat2 = c.reconfig(joining=own, leaving=None, new_members=None,
                              from_config=stat.mzxid)
    assert data2.decode() == config_text(e, stat2.mzxid) and stat2.mzxid > stat.mzxid
    for sid in e.ids:
        assert read_config(e, sid)[0] == data2, sid

    versions = zkcli_reconfig(e)
    if versions is not None:
        assert versions[0] == stat2.mzxid and versions[-1] > stat2.mzxid, versions
        stat2 = read_config(e, 2)[1]
        assert stat2.mzxid == versions[-1]
    tracked = curator_tracker(e, 3)
    if tracked is not None:
        before_version, after_version, connect, report = tracked
        assert before_version == stat2.mzxid and after_version > stat2.mzxid, report
        # The tracker made Curator's connection string from the config's client addresses.
        assert sorted(connect.split(",")) == sorted(e.address(s) for s in e.ids), report
        data2, stat2 = read_config(e, 1)
        assert stat2.mzxid == after_version and data2.decode() == config_text(e, after_version)

    # On disk, as ZooKeeper keeps it: zoo.cfg names zoo.cfg.dynamic.<version>.
    for sid in e.ids:
        d = e.members[sid].dir
        cfg = (d / "zoo.cfg").read_text()
        dynamic = d / ("zoo.cfg.dynamic.%x" % stat2.mzxid)
        assert "dynamicConfigFile=%s" % dynamic.resolve() in cfg, (sid, cfg)
        assert "server." not in cfg, cfg
        assert dynamic.read_text().strip() == "\n".join(server_lines(e)), sid

    for sid in e.ids:
        e.stop(sid)
    e.start()
    e.wait_serving(SERVE_TIMEOUT_S)
    for sid in e.ids:
        data3, stat3 = read_config(e, sid)
        assert data3 == data2 and stat3.mzxid == stat2.mzxid, (sid, data3, stat3)


def refuses_connections(host, port):
    try:
        socket.create_connection((host, port), timeout=2.0).close()
    except ConnectionRefusedError:
        return True
    return False


def check_client_port_moved(e, sid, old_port, data):
    """Member `sid` (whose `client_port` the test has set to the new port) accepts clients
    there and refuses them on `old_port`; every member shows `data` in /zookeeper/config."""
    m = e.members[sid]
    wait_until(lambda: refuses_connections(m.host, old_port), 20.0,
               "server %d to stop listening on its old client port %d" % (sid, old_port),
               interval_s=0.1)
    for s in e.ids:
        got = wait_until(lambda: (lambda r: r if r[0] == data else None)(read_config(e, s)),
                         20.0, "server %d to show the moved client port" % s, interval_s=0.2)
        assert got[0] == data, (s, got)


def test_client_port_change_moves_the_members_listener_and_survives_its_restart(
        kind, ensembles):
    e = reconfig_ensemble(ensembles, kind)
    leader = e.leader()
    sid = [s for s in e.participant_ids if s != leader][0]
    m = e.members[sid]
    old_port, new_port, leader_new_port = m.client_port, *free_ports(2)
    admin = ensembles.client(e, leader)
    admin.add_auth("digest", "super:" + SUPER_PASSWORD)
    # A session on the old port before the move: NIOServerCnxnFactory.reconfigure closes
    # only the listening socket, so the connection stays.
    kept = ensembles.client(e, sid)
    states = []
    kept.add_listener(states.append)

    # Incremental: the follower's own line with another client port.
    moved = "server.%d=%s:%d:%d:participant;%s:%d" % (
        sid, m.host, m.quorum_port, m.election_port, m.host, new_port)
    data, stat = admin.reconfig(joining=moved, leaving=None, new_members=None)
    m.client_port = new_port
    assert data.decode() == config_text(e, stat.mzxid), data
    check_client_port_moved(e, sid, old_port, data)
    c = ensembles.client(e, sid)  # on the new port
    c.create("/moved", b"via the new port")
    assert admin.retry(admin.get, "/moved")[0] == b"via the new port"
    assert kept.get("/zookeeper/config")[0] == data
    assert states == [], states  # never suspended or lost
    # `conf` names the port it listens on (ZooKeeperServer.getClientPort: the factory's).
    assert "clientPort=%d\n" % new_port in four_letter(m.host, new_port, "conf")

    # After a restart the member binds the port of its dynamic file.
    d = m.dir
    cfg = (d / "zoo.cfg").read_text()
    assert "clientPort" not in cfg, cfg
    assert moved in (d / ("zoo.cfg.dynamic.%x" % stat.mzxid)).read_text()
    e.stop(sid)
    e.start_server(sid)
    e.wait_serving(SERVE_TIMEOUT_S)
    assert refuses_connections(m.host, old_port)
    assert read_config(e, sid)[0] == data

    # Non-incremental: the leader's client port moves, through a client of the leader.
    lm = e.members[leader]
    leader_old_port = lm.client_port
    lm.client_port = leader_new_port
    data2, stat2 = admin.retry(admin.reconfig, joining=None, leaving=None,
                               new_members=",".join(server_lines(e)))
    assert data2.decode() == config_text(e, stat2.mzxid), data2
    check_client_port_moved(e, leader, leader_old_port, data2)
    c2 = ensembles.client(e, leader)
    assert c2.get("/moved")[0] == b"via the new port"

    # A member that was down while its client port moved starts on the old port (its files
    # predate the move) and moves when it syncs with the leader (ZooKeeper: processReconfig
    # as the learner takes the leader's configuration).
    other = [s for s in e.ids if s not in (sid, leader)][0]
    om = e.members[other]
    e.stop(other)
    other_old_port = om.client_port
    om.client_port = free_ports(1)[0]
    data4, _ = admin.retry(admin.reconfig, joining=None, leaving=None,
                           new_members=",".join(server_lines(e)))
    e.start_server(other)
    # read_config reaches `other` on its new port only: it has moved once this returns.
    check_client_port_moved(e, other, other_old_port, data4)
    assert refuses_connections(om.host, other_old_port)
    e.wait_serving(SERVE_TIMEOUT_S)

    # ringkeeper only: a port the member cannot bind (another socket listens there). The
    # reconfig commits; the member logs it and keeps accepting on the port it has (ZooKeeper's
    # NIOServerCnxnFactory.reconfigure has closed that one first and stays without a client
    # port: README "Dynamic reconfig").
    if kind == "ringkeeper":
        holder = socket.socket()
        holder.bind((m.host, 0))
        holder.listen(1)
        try:
            taken = "server.%d=%s:%d:%d:participant;%s:%d" % (
                sid, m.host, m.quorum_port, m.election_port, m.host, holder.getsockname()[1])
            data3, _ = admin.retry(admin.reconfig, joining=taken, leaving=None,
                                   new_members=None)
            assert taken in data3.decode(), data3
            wait_until(lambda: "cannot listen there" in m.log.read_text(), 20.0,
                       "server %d to log the failed bind" % sid, interval_s=0.1)
            c3 = ensembles.client(e, sid)  # still on new_port
            assert c3.get("/zookeeper/config")[0] == data3
            # Not retried (nor logged again) on every later commit.
            for i in range(3):
                c3.create("/after-failed-move-%d" % i)
            c3.sync("/")
            assert m.log.read_text().count("cannot listen there") == 1
            assert e.mode(sid) in ("follower", "leader"), e.modes()
        finally:
            holder.close()


def zkcli_reconfig(e):
    """zkCli's `config` and `reconfig -members`, as an operator runs them. Returns the
    versions zkCli printed (None when zkCli is not installed)."""
    if not os.access(ZKCLI, os.X_OK):
        return None
    members = ",".join(server_lines(e))
    script = "addauth digest super:%s\nconfig\nreconfig -members %s\nconfig\nquit\n" % (
        SUPER_PASSWORD, members)
    r = subprocess.run([ZKCLI, "-server", e.address(1)], input=script, capture_output=True,
                       text=True, timeout=JAVA_TIMEOUT_S)
    out = r.stdout + r.stderr
    versions = [int(l.split("=", 1)[1], 16) for l in out.splitlines()
                if l.startswith("version=")]
    assert len(versions) >= 3, out
    return versions


_TRACKER_BUILD = {}


def tracker_build():
    """Compiles java/EnsembleTrackerCheck.java once per session: (build dir, classpath), or
    None when no JDK or jar is installed."""
    if "result" in _TRACKER_BUILD:
        return _TRACKER_BUILD["result"]
    result = None
    javac = shutil.which("javac")
    jars = ["curator-framework", "curator-client", "zookeeper", "zookeeper-jute", "guava",
            "slf4j-api", "slf4j-simple"]
    if javac is not None and all((JAVA_DIR / (j + ".jar")).exists() for j in jars):
        classpath = ":".join(str(JAVA_DIR / (j + ".jar")) for j in jars)
        build = Path(tempfile.mkdtemp(prefix="ringkeeper-ensemble-tracker-"))
        atexit.register(shutil.rmtree, build, True)
        r = subprocess.run([javac, "-d", str(build), "-cp", classpath,
                            str(HERE / "java" / "EnsembleTrackerCheck.java")],
                           capture_output=True, text=True, timeout=JAVA_TIMEOUT_S)
        assert r.returncode == 0, r.stdout + r.stderr
        result = (build, classpath)
    _TRACKER_BUILD["result"] = result
    return result


def curator_tracker(e, sid):
    """Curator's EnsembleTracker (java/EnsembleTrackerCheck.java) through server `sid`: the
    versions it saw before and after a reconfig it made, and its connection string (None when
    no JDK or jar is installed)."""
    built = tracker_build()
    if built is None:
        return None
    build, classpath = built
    r = subprocess.run(["java", "-Xshare:auto", "-XX:TieredStopAtLevel=1", "-cp",
                        "%s:%s" % (build, classpath), "EnsembleTrackerCheck", e.address(sid),
                        "super:" + SUPER_PASSWORD],
                       capture_output=True, text=True, timeout=JAVA_TIMEOUT_S)
    report = r.stdout + "\n".join(r.stderr.splitlines()[-30:])
    assert r.returncode == 0, report
    lines = dict(l.split(" ", 1) for l in r.stdout.splitlines() if " " in l)
    return int(lines["BEFORE"], 16), int(lines["AFTER"], 16), lines["CONNECT"], report


# ---------------------------------------------------------------- membership changes

def joiner_ensemble(ensembles, kind, listed):
    """Five servers, 1-3 participants started as the ensemble, 4 a participant and 5 an
    observer that are not members yet: server N's zoo.cfg lists the servers `listed[N]`
    (ZooKeeper Dynamic Reconfiguration, "Adding servers": a joiner starts with the members and
    itself)."""

    class Joiners(Ensemble):
        def _write_config(self, m):
            members = self.members
            self.members = {s: members[s] for s in listed.get(m.sid, members)}
            try:
                super()._write_config(m)
            finally:
                self.members = members

    e = ensembles(kind, cls=Joiners, participants=4, observers=1,
                  extra_cfg={"reconfigEnabled": "true"})
    for sid in e.ids:
        e.configure(sid, jvm_flags=[
            "-Dzookeeper.DigestAuthenticationProvider.superDigest=" + super_digest()])
    return e


def member_line(e, sid, role):
    m = e.members[sid]
    return "server.%d=%s:%d:%d:%s;%s:%d" % (
        sid, m.host, m.quorum_port, m.election_port, role, m.host, m.client_port)


def expected_config(e, roles, version):
    return "\n".join(member_line(e, s, roles[s]) for s in sorted(roles)) + "\nversion=%x" % version


def check_members(ensembles, e, roles, tag):
    """Every member of `roles` ({sid: role}) shows the same /zookeeper/config with exactly these
    lines, and a write through each member is read back from every member."""
    configs = {}
    for sid in sorted(roles):
        data, stat = wait_until(
            lambda: (lambda r: r if all(l in r[0].decode() for l in
                                        [member_line(e, s, roles[s]) for s in roles])
                     and r[0].decode().count("server.") == len(roles) else None)(
                read_config(e, sid)),
            30.0, "server %d to show %s" % (sid, sorted(roles.items())), interval_s=0.2)
        configs[sid] = (data, stat.mzxid)
    assert len(set(configs.values())) == 1, configs
    data, version = next(iter(configs.values()))
    assert data.decode() == expected_config(e, roles, version), data
    clients = {sid: ensembles.client(e, sid) for sid in sorted(roles)}
    for sid, c in clients.items():
        c.retry(c.create, "/%s-%d" % (tag, sid), b"via %d" % sid, makepath=True)
    for sid, c in clients.items():
        c.retry(c.sync, "/")
        for writer in roles:
            value, _ = c.retry(c.get, "/%s-%d" % (tag, writer))
            assert value == b"via %d" % writer, (sid, writer, value)
    return version


def wait_mode(e, sid, modes, timeout_s=SERVE_TIMEOUT_S):
    return wait_until(lambda: e.mode(sid) in modes and e.mode(sid), timeout_s,
                      "server %d to be %s (srvr: %s)" % (sid, modes, e.mode(sid)),
                      interval_s=0.1)


def test_membership_changes_take_effect_everywhere_and_survive_a_restart(kind, ensembles):
    """Add an observer, add a participant (3 -> 4 voters), change roles both ways, remove a
    participant and an observer; then restart a member (ZooKeeper's ReconfigTest and the
    Dynamic Reconfiguration guide's incremental mode)."""
    core = [1, 2, 3]
    e = joiner_ensemble(ensembles, kind, {1: core, 2: core, 3: core, 4: core + [4],
                                          5: core + [5]})
    e.start(core)
    e.wait_serving(SERVE_TIMEOUT_S, sids=core)
    admin = ensembles.client(e, hosts=e.connect_string(core))
    admin.add_auth("digest", "super:" + SUPER_PASSWORD)
    roles = {1: "participant", 2: "participant", 3: "participant"}

    # An observer joins: it syncs before the reconfig lists it, then the reconfig adds it.
    # (ZooKeeper 3.8's joiner takes the leader's configuration, which does not list it, and
    # syncs as a non-voting follower: srvr says follower until the reconfig makes it observe.)
    e.start([5])
    wait_mode(e, 5, ("observer", "follower"))
    admin.retry(admin.reconfig, joining=member_line(e, 5, "observer"), leaving=None,
                new_members=None)
    roles[5] = "observer"
    wait_mode(e, 5, ("observer",))
    check_members(ensembles, e, roles, "observer-joined")

    # A participant joins: 4 voters, quorum 3.
    e.start([4])
    wait_mode(e, 4, ("follower",))
    admin.retry(admin.reconfig, joining=member_line(e, 4, "participant"), leaving=None,
                new_members=None)
    roles[4] = "participant"
    check_members(ensembles, e, roles, "participant-joined")
    for sid in (1, 2, 3, 4):
        assert e.mode(sid) in ("leader", "follower"), (sid, e.modes())

    # Roles change: the observer votes, then the new participant observes.
    admin.retry(admin.reconfig, joining=member_line(e, 5, "participant"), leaving=None,
                new_members=None)
    roles[5] = "participant"
    wait_mode(e, 5, ("leader", "follower"))
    check_members(ensembles, e, roles, "observer-votes")
    admin.retry(admin.reconfig, joining=member_line(e, 4, "observer"), leaving=None,
                new_members=None)
    roles[4] = "observer"
    wait_mode(e, 4, ("observer",))
    check_members(ensembles, e, roles, "participant-observes")

    # A participant leaves, then an observer.
    admin.retry(admin.reconfig, joining=None, leaving="5", new_members=None)
    del roles[5]
    check_members(ensembles, e, roles, "participant-left")
    admin.retry(admin.reconfig, joining=None, leaving="4", new_members=None)
    del roles[4]
    version = check_members(ensembles, e, roles, "observer-left")
    if kind == "ringkeeper":
        # A removed server takes no part: it serves no client as a member.
        for sid in (4, 5):
            wait_until(lambda: e.mode(sid) is None, 30.0,
                       "removed server %d to stop serving" % sid, interval_s=0.1)

    # A member restarted after the changes runs the configuration in force.
    e.stop(1)
    e.start([1])
    e.wait_serving(SERVE_TIMEOUT_S, sids=core)
    data, stat = read_config(e, 1)
    assert stat.mzxid == version and data.decode() == expected_config(e, roles, version), data
    check_members(ensembles, e, roles, "after-restart")
