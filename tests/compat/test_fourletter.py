"""Four-letter words: compare the SHAPE of each answer (the set of lines / keys and the type of
each value), not the values, which depend on the process (ports, memory, uptime, counters).
Where the scenario controls the state (its own watches and ephemerals), wchc / wchp / dump are
compared on the lines that concern the scenario's session and namespace.

The reference is ZooKeeper 3.8.0 while ringkeeper implements 3.9: the version string is reduced
to "<version>" (3.8 prints "3.8.0-<git>, built on <date>"), so only its presence and position
are compared. Reference: ZooKeeper 3.8 org.apache.zookeeper.server.command.*, ServerStats,
ZooKeeperServer.dumpConf, NIOServerCnxn.dumpConnectionInfo."""

import re

from harness import scenario, Session
from rawclient import EPHEMERAL, ADD_WATCH_PERSISTENT

INT = re.compile(r"^-?\d+$")
FLOAT = re.compile(r"^-?\d+\.\d+(E-?\d+)?$")


def vtype(v):
    v = v.strip()
    if INT.match(v):
        return "int"
    if FLOAT.match(v):
        return "float"
    return "str"


def shape_kv(text, sep):
    """{key: value type} for 'key<sep>value' lines."""
    out = {}
    for line in text.splitlines():
        if sep in line:
            k, v = line.split(sep, 1)
            out[k.strip()] = "version" if "version" in k.lower() else vtype(v)
        elif line.strip():
            out[line.strip()] = "line"
    return out


def shape_stat_lines(text):
    """srvr / stat: keys and value types; client lines reduced to their field names."""
    out = []
    for line in text.splitlines():
        if line.startswith(" /"):
            out.append(("client", tuple(re.findall(r"([a-z]+)=", line))))
        elif ":" in line:
            k, v = line.split(":", 1)
            if k == "Zookeeper version":
                out.append((k, "<version>"))
            elif k == "Latency min/avg/max":
                out.append((k, tuple(vtype(x) for x in v.strip().split("/"))))
            elif k == "Zxid":
                out.append((k, "hex" if re.match(r"^\s*0x[0-9a-f]+$", v) else v))
            elif k == "Mode":
                out.append((k, v.strip()))
            else:
                out.append((k, vtype(v)))
        else:
            out.append(("line", line.strip()))
    return out


@scenario
def test_ruok(env):
    assert env.rec("ruok", env.four("ruok")) == "imok"


@scenario
def test_srvr_shape(env):
    s = env.rec("srvr", shape_stat_lines(env.four("srvr")))
    assert ("Mode", "standalone") in s
    assert s[0] == ("Zookeeper version", "<version>")


@scenario
def test_stat_shape(env):
    """stat = version, 'Clients:' and one line per connection, then the srvr lines."""
    c = env.raw()
    c.exists(env.base)
    s = shape_stat_lines(env.four("stat"))
    # the number of client lines depends on other open connections: keep distinct shapes
    clients = sorted(set(x for x in s if x[0] == "client"))
    rest = [x for x in s if x[0] != "client"]
    env.rec("stat", rest, clients)
    assert ("line", "Clients:") in rest or ("Clients", "str") in rest


DOCUMENTED_MNTR_KEYS = {
    "zk_version", "zk_avg_latency", "zk_max_latency", "zk_min_latency", "zk_packets_received",
    "zk_packets_sent", "zk_num_alive_connections", "zk_outstanding_requests", "zk_server_state",
    "zk_znode_count", "zk_watch_count", "zk_ephemerals_count", "zk_approximate_data_size",
    "zk_open_file_descriptor_count", "zk_max_file_descriptor_count", "zk_global_sessions",
    "zk_local_sessions", "zk_uptime",
}


@scenario
def test_mntr_shape(env):
    """mntr: tab-separated key/value lines; compared as {key: value type}."""
    s = shape_kv(env.four("mntr"), "\t")
    # 3.8 reports per-namespace latency metrics for every top-level znode
    # (zk_<stat>_<namespace>_<read|write>_per_namespace); the namespaces differ by run.
    collapsed = {re.sub(r"^(zk_[a-z]+)_.+_(read|write)_per_namespace$",
                        r"\1_<ns>_\2_per_namespace", k): v for k, v in s.items()}
    # Compared: the keys ZooKeeper's documentation lists for mntr (what monitoring reads).
    # The hundreds of internal JVM and processor metrics of the Java server are not compared.
    env.rec("mntr", sorted((k, v) for k, v in collapsed.items() if k in DOCUMENTED_MNTR_KEYS))
    for k in ("zk_version", "zk_server_state", "zk_znode_count", "zk_watch_count",
              "zk_ephemerals_count", "zk_num_alive_connections", "zk_avg_latency"):
        assert k in s, k
    assert s["zk_znode_count"] == "int"


@scenario
def test_mntr_client_response_sizes(env):
    """zk_last/min/max_client_response_size: the reply header and body of each frame sent,
    without the length prefix (ServerCnxn.serialize); srst resets them to -1."""
    c = env.raw()
    path = env.path("sized")
    assert c.create(path, b"x" * 100).err == "OK"
    env.four("srst")

    def sizes():
        kv = dict(line.split("\t", 1) for line in env.four("mntr").splitlines() if "\t" in line)
        return tuple(int(kv["zk_%s_client_response_size" % k]) for k in ("last", "min", "max"))

    env.rec("after srst", sizes())
    assert c.get_data(path).err == "OK"  # header 16 + data 4 + 100 + Stat 68
    assert c.exists(path).err == "OK"  # header 16 + Stat 68
    got = sizes()
    env.rec("after getData and exists", got)
    assert got == (84, 84, 188), got


def word_with_argument(env, word, argument=b""):
    import socket
    with socket.create_connection((env.host, env.port), timeout=5.0) as s:
        s.sendall(word + argument)
        s.shutdown(socket.SHUT_WR)
        out = b""
        while True:
            chunk = s.recv(4096)
            if not chunk:
                return out.decode()
            out += chunk


@scenario
def test_gtmk_and_stmk(env):
    """gtmk answers ZooTrace's mask (306 by default) in decimal; stmk takes the new mask as an
    8-byte big-endian long after the word and answers it."""
    import struct
    answers = [word_with_argument(env, b"gtmk"),
               word_with_argument(env, b"stmk", struct.pack(">q", 2)),
               word_with_argument(env, b"gtmk"),
               word_with_argument(env, b"stmk", struct.pack(">q", 306))]
    env.rec("gtmk, stmk 2, gtmk, stmk 306", answers)
    assert answers == ["306", "2", "2", "306"], answers


@scenario
def test_conf_shape(env):
    s = shape_kv(env.four("conf"), "=")
    env.rec("conf", sorted(s.items()))
    assert s["tickTime"] == "int" and s["minSessionTimeout"] == "int"


@scenario
def test_conf_values_from_zoo_cfg(env):
    """The values conf derives from zoo.cfg settings."""
    kv = dict(l.split("=", 1) for l in env.four("conf").splitlines() if "=" in l)
    vals = {k: kv.get(k) for k in ("tickTime", "minSessionTimeout", "maxSessionTimeout",
                                   "maxClientCnxns", "secureClientPort", "serverId")}
    env.rec("conf", vals)
    assert vals["tickTime"] == "2000" and vals["minSessionTimeout"] == "4000"
    assert vals["maxSessionTimeout"] == "40000"
    assert int(kv["clientPort"]) == env.port


@scenario
def test_cons_shape(env):
    """cons: one line per connection; a line with a session lists these fields."""
    c = env.raw()
    c.exists(env.base)
    text = env.four("cons")
    sid = "0x%x" % c.session_id
    mine = [l for l in text.splitlines() if "sid=%s," % sid in l]
    assert len(mine) == 1, text
    fields = re.findall(r"([a-z]+)=", mine[0])
    env.rec("cons-fields", fields)
    assert fields[:4] == ["queued", "recved", "sent", "sid"]
    env.rec("lop", re.search(r"lop=(\w+)", mine[0]).group(1))


@scenario
def test_envi_shape(env):
    s = shape_kv(env.four("envi"), "=")
    # java.* and os.memory.* describe the Java virtual machine; ringkeeper has none.
    env.rec("envi", sorted(k for k in s if not k.startswith(("java.", "os.memory.", "ringkeeper."))))
    assert "Environment:" in s and "zookeeper.version" in s


@scenario
def test_wchs_shape(env):
    text = env.four("wchs")
    shape = re.sub(r"\d+", "N", text)
    env.rec("wchs", shape)
    assert shape == "N connections watching N paths\nTotal watches:N\n"


@scenario
def test_wchc_lists_this_sessions_watches(env):
    """wchc: per session (0x<hex>), a tab-indented list of watched paths."""
    c = env.raw()
    c.create(env.path("a"))
    c.get_data(env.path("a"), watch=True)
    c.get_children(env.base, watch=True)
    c.exists(env.path("missing"), watch=True)
    text = env.four("wchc")
    sid = "0x%x" % c.session_id
    blocks, cur = {}, None
    for line in text.splitlines():
        if line.startswith("0x"):
            cur = line.strip()
            blocks[cur] = []
        elif line.startswith("\t") and cur:
            blocks[cur].append(line.strip())
    assert sid in blocks, text
    env.rec("paths", sorted(blocks[sid]), Session(c.session_id))
    # Observed on 3.8.0: wchc lists the data and exist watches only; the child watch on the
    # namespace does not appear (ServerCnxnFactory dumps the data WatchManager).
    assert sorted(blocks[sid]) == sorted([env.path("a"), env.path("missing")])


@scenario
def test_wchp_lists_watchers_by_path(env):
    c = env.raw()
    c.create(env.path("a"))
    c.get_data(env.path("a"), watch=True)
    c.add_watch(env.path("p"), ADD_WATCH_PERSISTENT)
    text = env.four("wchp")
    blocks, cur = {}, None
    for line in text.splitlines():
        if line.startswith("/"):
            cur = line.strip()
            blocks[cur] = []
        elif line.startswith("\t") and cur:
            blocks[cur].append(line.strip())
    mine = {p: [Session(int(s, 16)) for s in v] for p, v in blocks.items()
            if p.startswith(env.base)}
    env.rec("wchp", sorted(mine.items()))
    assert set(mine) == {env.path("a"), env.path("p")}


@scenario
def test_dump_lists_ephemerals_by_session(env):
    """dump: session sets, then 'Sessions with Ephemerals (N):' with each session (0x<hex>:) and
    its ephemeral paths tab-indented."""
    c = env.raw()
    c.create(env.path("e1"), flags=EPHEMERAL)
    c.create(env.path("e2"), flags=EPHEMERAL)
    text = env.four("dump")
    sid = "0x%x" % c.session_id
    lines = text.splitlines()
    heads = [re.sub(r"\d+", "N", l) for l in lines if not l.startswith("\t")
             and not l.startswith("0x") and "expire at" not in l and "ip:" not in l]
    env.rec("headings", sorted(set(heads)))
    assert any(l.startswith("Sessions with Ephemerals") for l in lines), text
    i = lines.index(sid + ":")
    paths = []
    for l in lines[i + 1:]:
        if not l.startswith("\t"):
            break
        paths.append(l.strip())
    env.rec("ephemerals", sorted(paths))
    assert sorted(paths) == [env.path("e1"), env.path("e2")]


@scenario
def test_dirs_isro_crst_srst(env):
    d = shape_kv(env.four("dirs"), ":")
    env.rec("dirs", sorted(d.items()))
    assert d == {"datadir_size": "int", "logdir_size": "int"}
    assert env.rec("isro", env.four("isro")) == "rw"
    assert env.rec("crst", env.four("crst")) == "Connection stats reset.\n"
    assert env.rec("srst", env.four("srst")) == "Server stats reset.\n"


@scenario
def test_srst_resets_counters(env):
    """After srst, srvr's Received/Sent counters restart (small values) and latency min/max
    are 0."""
    env.four("srst")
    kv = dict(l.split(":", 1) for l in env.four("srvr").splitlines() if ":" in l)
    assert int(kv["Received"]) < 10, kv
    env.rec("latency", kv["Latency min/avg/max"].strip().split("/")[0])


@scenario
def test_unknown_four_letter_word(env):
    """An unknown 4-letter word is read as a frame length and the connection is closed with no
    answer."""
    assert env.rec("xxxx", env.four("xxxx")) == ""
