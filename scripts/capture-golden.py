#!/usr/bin/python3
"""Capture golden conversations between real ZooKeeper clients and Apache ZooKeeper.

Starts the reference server (Debian package `zookeeper`) on 127.0.0.1 with a fresh dataDir,
puts a recording TCP proxy in front of it, drives real clients (Kazoo, the C client `cli_mt`,
optionally the Java `zkCli.sh`) through the proxy, and writes each TCP connection as
`tests/golden/<client>-<scenario>.txt` (a second connection of the same scenario gets
`-conn2`, and so on).

File format, read by tests/codec_golden.rs:
- lines starting with `#` are comments (what produced the file, what the scenario does);
- every other line is one frame: `C ` (client to server) or `S ` (server to client) followed
  by the frame body in lower-case hex, without the 4-byte length prefix.
Frames are written in the order the proxy received them. Each frame is recorded before it is
forwarded, so a request always precedes its reply and a notification precedes whatever the
client sends after seeing it.

Usage: /usr/bin/python3 scripts/capture-golden.py [--out tests/golden] [--only kazoo,cli_mt,zkcli]
Python 3 standard library only, plus Debian's python3-kazoo for the Kazoo scenarios.
"""

import argparse
import glob
import re
import os
import shutil
import socket
import struct
import subprocess
import sys
import tempfile
import threading
import time

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
JAVA_DIR = "/usr/share/java"
CLI_MT = "/usr/lib/zookeeper/bin/cli_mt"
ZKCLI = "/usr/share/zookeeper/bin/zkCli.sh"
# A frame longer than this is not ZooKeeper traffic (jute.maxbuffer default is 0xfffff).
MAX_FRAME_BYTES = 0xFFFFF + 1024


def free_port():
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def four_letter_word(port, word, timeout_s=2.0):
    with socket.create_connection(("127.0.0.1", port), timeout=timeout_s) as conn:
        conn.sendall(word.encode())
        chunks = []
        while True:
            chunk = conn.recv(4096)
            if not chunk:
                break
            chunks.append(chunk)
        return b"".join(chunks).decode(errors="replace")


def java_classpath():
    jars = ["zookeeper.jar", "zookeeper-jute.jar", "slf4j-api.jar", "slf4j-simple.jar"]
    # The unversioned names only (each is a symlink to the versioned jar), so no class is
    # on the path twice; netty-all is an aggregate of the others.
    jars += sorted(
        os.path.basename(path)
        for path in glob.glob(os.path.join(JAVA_DIR, "netty-*.jar"))
        if not re.search(r"-\d[^/]*\.jar$", path) and not path.endswith("netty-all.jar")
    )
    return ":".join(os.path.join(JAVA_DIR, jar) for jar in jars)


def zookeeper_version():
    versioned = glob.glob(os.path.join(JAVA_DIR, "zookeeper-[0-9]*.jar"))
    if not versioned:
        return "(unknown version)"
    return os.path.basename(versioned[0])[len("zookeeper-"):-len(".jar")]


class ReferenceServer:
    """Apache ZooKeeper, standalone, bound to 127.0.0.1, in a throw-away dataDir."""

    def __init__(self):
        self.port = free_port()
        self.dir = tempfile.mkdtemp(prefix="ringkeeper-golden-zk-")
        self.process = None

    def start(self):
        config = os.path.join(self.dir, "zoo.cfg")
        with open(config, "w") as out:
            out.write(
                "tickTime=2000\n"
                f"dataDir={self.dir}/data\n"
                f"clientPort={self.port}\n"
                "clientPortAddress=127.0.0.1\n"
                "4lw.commands.whitelist=*\n"
                "extendedTypesEnabled=true\n"
                "admin.enableServer=false\n"
                "maxSessionTimeout=40000\n"
            )
        log = open(os.path.join(self.dir, "server.log"), "w")
        self.process = subprocess.Popen(
            [
                "java",
                "-Xmx256m",
                "-Dzookeeper.admin.enableServer=false",
                "-Dorg.slf4j.simpleLogger.defaultLogLevel=warn",
                "-cp",
                java_classpath(),
                "org.apache.zookeeper.server.ZooKeeperServerMain",
                config,
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        deadline = time.time() + 60
        while time.time() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"ZooKeeper exited; see {self.dir}/server.log")
            try:
                if four_letter_word(self.port, "ruok") == "imok" and self.session_handshake():
                    return
            except OSError:
                pass
            time.sleep(0.3)
        raise RuntimeError("ZooKeeper did not answer ruok within 60 s")

    def session_handshake(self):
        """Opens and closes one session directly (not through the proxy).

        `ruok` answers imok before the server is ready for sessions; until then it accepts a
        client connection and closes it without a ConnectResponse, which would put an
        unanswered handshake into the first golden file.
        """
        connect = struct.pack(">iqiqi", 0, 0, 30000, 0, 16) + bytes(16) + b"\x00"
        close = struct.pack(">ii", 1, -11)
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=5) as conn:
                for frame in (connect, close):
                    conn.sendall(struct.pack(">i", len(frame)) + frame)
                    length_bytes = conn.recv(4, socket.MSG_WAITALL)
                    if len(length_bytes) < 4:
                        return False
                    (length,) = struct.unpack(">i", length_bytes)
                    conn.recv(length, socket.MSG_WAITALL)
            return True
        except OSError:
            return False

    def stop(self):
        if self.process and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        shutil.rmtree(self.dir, ignore_errors=True)


class Conversation:
    """One proxied TCP connection: both directions split into frames, in arrival order."""

    def __init__(self, client_sock, server_port):
        self.client_sock = client_sock
        self.server_sock = socket.create_connection(("127.0.0.1", server_port))
        self.frames = []  # (direction, body bytes)
        self.lock = threading.Lock()
        self.done = threading.Event()
        self.pumps_left = 2
        self.closed_by = None  # which end closed first; recorded as a comment line
        threading.Thread(target=self.pump, args=("C", client_sock, self.server_sock), daemon=True).start()
        threading.Thread(target=self.pump, args=("S", self.server_sock, client_sock), daemon=True).start()

    def pump(self, direction, source, sink):
        pending = b""
        try:
            while True:
                chunk = source.recv(65536)
                if not chunk:
                    with self.lock:
                        if not self.closed_by:
                            self.closed_by = "client" if direction == "C" else "server"
                            self.frames.append(("#", f"{self.closed_by} closed the connection first".encode()))
                    break
                pending += chunk
                frames = []
                while len(pending) >= 4:
                    (length,) = struct.unpack(">i", pending[:4])
                    if length < 0 or length > MAX_FRAME_BYTES:
                        raise RuntimeError(f"{direction}: implausible frame length {length}")
                    if len(pending) < 4 + length:
                        break
                    frames.append(pending[4 : 4 + length])
                    pending = pending[4 + length :]
                # Record before forwarding: a reply can then never be recorded before its request.
                with self.lock:
                    self.frames.extend((direction, frame) for frame in frames)
                sink.sendall(chunk)
        except OSError:
            pass
        finally:
            if pending:
                with self.lock:
                    self.frames.append(("#", f"{direction} {len(pending)} bytes of a partial frame at close".encode()))
            for sock, how in ((sink, socket.SHUT_WR), (source, socket.SHUT_RD)):
                try:
                    sock.shutdown(how)
                except OSError:
                    pass
            with self.lock:
                self.pumps_left -= 1
                if self.pumps_left == 0:
                    self.done.set()

    def drop(self):
        """Cuts the connection both ways, as a network failure would."""
        with self.lock:
            if not self.closed_by:
                self.closed_by = "proxy"
                self.frames.append(("#", b"the proxy cut the connection"))
        for sock in (self.client_sock, self.server_sock):
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass


class RecordingProxy:
    def __init__(self, server_port):
        self.server_port = server_port
        self.port = free_port()
        self.listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.listener.bind(("127.0.0.1", self.port))
        self.listener.listen(16)
        self.conversations = []
        self.lock = threading.Lock()
        threading.Thread(target=self.accept_loop, daemon=True).start()

    def accept_loop(self):
        while True:
            try:
                client_sock, _ = self.listener.accept()
            except OSError:
                return
            conversation = Conversation(client_sock, self.server_port)
            with self.lock:
                self.conversations.append(conversation)

    def take(self):
        with self.lock:
            taken, self.conversations = self.conversations, []
        return taken

    def live(self):
        with self.lock:
            return list(self.conversations)


def write_golden(out_dir, name, description, conversations, client_version):
    written = []
    for index, conversation in enumerate(conversations):
        if not conversation.done.wait(timeout=15):
            conversation.drop()
            conversation.done.wait(timeout=5)
        suffix = "" if index == 0 else f"-conn{index + 1}"
        path = os.path.join(out_dir, f"{name}{suffix}.txt")
        with conversation.lock:
            frames = list(conversation.frames)
        with open(path, "w") as out:
            out.write(f"# {client_version} against Apache ZooKeeper {zookeeper_version()} (standalone)\n")
            for line in description.strip().splitlines():
                out.write(f"# {line.strip()}\n")
            if len(conversations) > 1:
                out.write(f"# connection {index + 1} of {len(conversations)}\n")
            for direction, body in frames:
                if direction == "#":
                    out.write(f"# {body.decode()}\n")
                else:
                    out.write(f"{direction} {body.hex()}\n")
        written.append(path)
        print(f"wrote {os.path.relpath(path, REPO_ROOT)}: {len(frames)} frames")
    if not conversations:
        print(f"warning: scenario {name} produced no connection", file=sys.stderr)
    return written


# ---------------------------------------------------------------------------------------
# Kazoo scenarios. Kazoo 2.8 has no API for createTTL, createContainer, addWatch, multiRead,
# getEphemerals, getAllChildrenNumber, whoAmI, checkWatches or removeWatches, so those are
# sent through Kazoo's own connection as raw requests (RawRequest below): the bytes are built
# here exactly as zookeeper.jute lays them out, and Kazoo assigns the xid as usual.


def jute_int(value):
    return struct.pack(">i", value)


def jute_long(value):
    return struct.pack(">q", value)


def jute_bool(value):
    return b"\x01" if value else b"\x00"


def jute_buffer(value):
    if value is None:
        return jute_int(-1)
    return jute_int(len(value)) + value


def jute_string(value):
    return jute_buffer(None if value is None else value.encode())


OPEN_ACL = jute_int(1) + jute_int(31) + jute_string("world") + jute_string("anyone")


def create_body(path, data, flags, ttl=None):
    body = jute_string(path) + jute_buffer(data) + OPEN_ACL + jute_int(flags)
    if ttl is not None:
        body += jute_long(ttl)
    return body


def multi_header(op_type, done=False, err=-1):
    return jute_int(op_type) + jute_bool(done) + jute_int(err)


class RawRequest:
    """A request Kazoo has no method for; the reply body is returned undecoded."""

    def __init__(self, op_type, body, path="/"):
        self.type = op_type
        self.body = body
        self.path = path

    def serialize(self):
        return self.body

    def deserialize(self, buffer, offset):
        return bytes(buffer[offset:])

    def __repr__(self):
        return f"RawRequest(type={self.type})"


def kazoo_raw(client, op_type, body, path="/"):
    result = client.handler.async_result()
    client._call(RawRequest(op_type, body, path), result)
    try:
        return result.get(timeout=10)
    except Exception as error:  # the golden file holds the reply; the exception is expected
        return error


def expect_error(call, *args, **kwargs):
    try:
        call(*args, **kwargs)
    except Exception as error:
        return error
    raise RuntimeError(f"{call.__name__}{args} was expected to fail")


def kazoo_scenarios():
    from kazoo.client import KazooClient
    from kazoo.security import make_digest_acl, ACL, Id
    import kazoo.version

    version = f"Kazoo {kazoo.version.__version__} (python3-kazoo)"

    def connect(hosts, **kwargs):
        client = KazooClient(hosts=hosts, timeout=10.0, **kwargs)
        client.start(timeout=15)
        return client

    def connect_close(hosts):
        client = connect(hosts)
        client.stop()
        client.close()

    def create_modes(hosts):
        client = connect(hosts)
        client.create("/golden", b"root data")
        client.create("/golden/persistent", b"p")
        client.create("/golden/empty-data", b"")
        # Kazoo sends a null buffer (length -1) for value=None.
        kazoo_raw(client, 1, create_body("/golden/null-data", None, 0))
        client.create("/golden/ephemeral", b"e", ephemeral=True)
        client.create("/golden/seq-", b"s", sequence=True)
        client.create("/golden/eseq-", b"es", ephemeral=True, sequence=True)
        client.create("/golden/with-stat", b"c2", include_data=True)  # create2
        kazoo_raw(client, 19, create_body("/golden/container", b"c", 4))  # createContainer
        kazoo_raw(client, 21, create_body("/golden/ttl", b"t", 5, ttl=60000))  # createTTL
        kazoo_raw(client, 21, create_body("/golden/ttlseq-", b"ts", 6, ttl=60000))
        kazoo_raw(client, 21, create_body("/golden/ttl-zero", b"t", 5, ttl=0))  # bad TTL
        kazoo_raw(client, 21, create_body("/golden/ttl-flag0", b"t", 0, ttl=60000))  # non-TTL mode
        expect_error(client.create, "/golden/persistent", b"again")  # NodeExists
        expect_error(client.create, "/golden/missing/child", b"")  # NoNode
        expect_error(client.create, "/golden/ephemeral/child", b"")  # NoChildrenForEphemerals
        kazoo_raw(client, 1, create_body("relative", b"", 0))  # BadArguments: invalid path
        kazoo_raw(client, 15, create_body("/golden/create2-exists", b"", 0))
        kazoo_raw(client, 15, create_body("/golden/create2-exists", b"", 0))  # NodeExists on create2
        client.stop()
        client.close()

    def read_write(hosts):
        client = connect(hosts)
        client.create("/rw", b"v0")
        client.create("/rw/a", b"a")
        client.create("/rw/b", b"b")
        client.get("/rw")
        client.set("/rw", b"v1")
        client.set("/rw", b"v2", version=1)
        expect_error(client.set, "/rw", b"v3", version=7)  # BadVersion
        client.exists("/rw")
        client.exists("/rw/missing")  # NoNode, no body
        expect_error(client.get, "/rw/missing")
        client.get_children("/rw")
        client.get_children("/rw", include_data=True)  # getChildren2
        expect_error(client.get_children, "/rw/missing")
        client.sync("/rw")
        expect_error(client.delete, "/rw")  # NotEmpty
        expect_error(client.delete, "/rw/a", version=5)  # BadVersion
        client.delete("/rw/a")
        client.delete("/rw/b", version=0)
        expect_error(client.delete, "/rw/b")  # NoNode
        client.set("/rw", None)  # null data on setData
        client.get("/rw")
        client.stop()
        client.close()

    def acl_auth(hosts):
        client = connect(hosts)
        client.add_auth("digest", "alice:secret")
        alice_acl = make_digest_acl("alice", "secret", all=True)
        bob_acl = make_digest_acl("bob", "secret", read=True)
        client.create("/acl", b"a", acl=[alice_acl])
        client.create("/acl-bob", b"b", acl=[bob_acl])
        client.create("/acl-auth", b"c", acl=[ACL(31, Id("auth", ""))])
        client.get_acls("/acl")
        client.get_acls("/acl-auth")
        client.set_acls("/acl", [alice_acl, ACL(1, Id("world", "anyone"))])
        expect_error(client.set_acls, "/acl", [alice_acl], version=9)  # BadVersion
        expect_error(client.get, "/acl-bob")  # NoAuth
        expect_error(client.set, "/acl-bob", b"x")  # NoAuth
        expect_error(client.create, "/acl-bad", b"", acl=[ACL(31, Id("digest", "no-colon"))])  # InvalidACL
        expect_error(client.create, "/acl-ip", b"", acl=[ACL(31, Id("ip", "not-an-ip"))])  # InvalidACL
        client.get_acls("/")
        client.stop()
        client.close()

    def auth_failed(hosts):
        client = connect(hosts)
        try:
            client.add_auth("nosuchscheme", "whatever")
        except Exception:
            pass
        time.sleep(1)
        try:
            client.stop()
            client.close()
        except Exception:
            pass

    def multi(hosts):
        client = connect(hosts)
        client.create("/multi", b"")
        tx = client.transaction()
        tx.create("/multi/a", b"a")
        tx.create("/multi/e", b"e", ephemeral=True)
        tx.set_data("/multi", b"m1")
        tx.check("/multi", 1)
        tx.delete("/multi/a")
        tx.commit()
        # Fails at its third op: the first two are rolled back.
        tx = client.transaction()
        tx.create("/multi/b", b"b")
        tx.set_data("/multi", b"m2")
        tx.check("/multi", 99)
        tx.delete("/multi/e")
        tx.commit()
        # Fails at its first op.
        tx = client.transaction()
        tx.delete("/multi/nonexistent")
        tx.create("/multi/c", b"c")
        tx.commit()
        # Empty multi.
        kazoo_raw(client, 14, multi_header(-1, True, -1))
        # create2, createContainer and createTTL inside a multi.
        body = (
            multi_header(15) + create_body("/multi/c2", b"x", 0)
            + multi_header(19) + create_body("/multi/container", b"", 4)
            + multi_header(21) + create_body("/multi/ttl", b"", 5, ttl=30000)
            + multi_header(-1, True, -1)
        )
        kazoo_raw(client, 14, body)
        # multiRead (22): getData and getChildren, one of them failing.
        body = (
            multi_header(4) + jute_string("/multi") + jute_bool(False)
            + multi_header(8) + jute_string("/multi") + jute_bool(False)
            + multi_header(4) + jute_string("/multi/nonexistent") + jute_bool(False)
            + multi_header(8) + jute_string("/multi/nonexistent") + jute_bool(False)
            + multi_header(-1, True, -1)
        )
        kazoo_raw(client, 22, body)
        client.stop()
        client.close()

    def watches(hosts):
        client = connect(hosts)
        fired = []
        client.exists("/w", watch=fired.append)
        client.create("/w", b"0")  # NodeCreated
        client.get("/w", watch=fired.append)
        client.set("/w", b"1")  # NodeDataChanged
        client.get_children("/w", watch=fired.append)
        client.create("/w/child", b"")  # NodeChildrenChanged
        client.get("/w/child", watch=fired.append)
        client.get_children("/w/child", watch=fired.append)
        client.delete("/w/child")  # NodeDeleted (data and child watch: one event)
        # addWatch (106): persistent on /w, persistent-recursive on /w.
        kazoo_raw(client, 106, jute_string("/w") + jute_int(0))
        kazoo_raw(client, 106, jute_string("/") + jute_int(1))
        client.create("/w/p", b"")
        client.set("/w/p", b"x")
        client.set("/w", b"2")
        client.delete("/w/p")
        # checkWatches (17) and removeWatches (18) with WatcherType.Persistent (4), Any (3).
        kazoo_raw(client, 17, jute_string("/w") + jute_int(4))
        kazoo_raw(client, 18, jute_string("/w") + jute_int(4))
        kazoo_raw(client, 18, jute_string("/w") + jute_int(4))  # NoWatcher
        client.exists("/w", watch=fired.append)
        kazoo_raw(client, 18, jute_string("/w") + jute_int(2))  # data watch removed event
        kazoo_raw(client, 18, jute_string("/") + jute_int(5))
        client.stop()
        client.close()

    def ping(hosts):
        # The shortest session ZooKeeper grants is 2 ticks (4 s); Kazoo pings well within it.
        client = KazooClient(hosts=hosts, timeout=4.0)
        client.start(timeout=15)
        time.sleep(6)
        client.stop()
        client.close()

    def extras(hosts):
        client = connect(hosts)
        client.create("/x", b"")
        client.create("/x/e1", b"", ephemeral=True)
        client.create("/x/p", b"")
        client.create("/x/p/e2", b"", ephemeral=True)
        kazoo_raw(client, 107, b"")  # whoAmI
        client.add_auth("digest", "carol:pw")
        kazoo_raw(client, 107, b"")
        kazoo_raw(client, 103, jute_string("/x"))  # getEphemerals with prefix
        kazoo_raw(client, 103, jute_string("/"))
        kazoo_raw(client, 104, jute_string("/x"))  # getAllChildrenNumber
        kazoo_raw(client, 104, jute_string("/nonexistent"))
        client.stop()
        client.close()

    def unknown_opcode(hosts):
        client = connect(hosts)
        kazoo_raw(client, 10, b"")  # 10 is unassigned in ZooDefs.OpCode
        time.sleep(0.5)
        try:
            client.stop()
            client.close()
        except Exception:
            pass

    def reconnect(hosts, proxy):
        client = connect(hosts)
        client.create("/rc", b"")
        client.get("/rc", watch=lambda event: None)
        client.exists("/rc-missing", watch=lambda event: None)
        client.get_children("/rc", watch=lambda event: None)
        for conversation in proxy.live():
            conversation.drop()
        deadline = time.time() + 20
        while time.time() < deadline and len(proxy.live()) < 2:
            time.sleep(0.1)
        time.sleep(1)
        client.get("/rc")
        client.stop()
        client.close()

    return version, [
        ("connect-close", "connect, then close the session", connect_close),
        ("create-modes", "create in every mode (persistent, ephemeral, sequential, create2, "
                         "container, TTL), null and empty data, and the create errors", create_modes),
        ("read-write", "getData, setData, exists, getChildren, getChildren2, sync, delete and "
                       "their errors", read_write),
        ("acl-auth", "addauth digest, ACLs with digest/auth ids, getACL, setACL, NoAuth, "
                     "InvalidACL", acl_auth),
        ("auth-failed", "addauth with an unknown scheme: AuthFailed", auth_failed),
        ("multi", "multi that succeeds, fails at op 3, fails at op 1, empty, with "
                  "create2/container/TTL ops; multiRead", multi),
        ("watches", "one-shot data/exist/child watches firing, addWatch persistent and "
                    "recursive, checkWatches, removeWatches", watches),
        ("ping", "idle session with a 4 s timeout: pings", ping),
        ("extras", "whoAmI before and after addauth, getEphemerals, getAllChildrenNumber", extras),
        ("unknown-opcode", "a request with the unassigned opcode 10", unknown_opcode),
        ("reconnect", "watches set, connection dropped by the proxy, session resumed with "
                      "SetWatches", reconnect),
    ]


def run_kazoo(proxy, out_dir):
    version, scenarios = kazoo_scenarios()
    hosts = f"127.0.0.1:{proxy.port}"
    written = []
    for name, description, scenario in scenarios:
        proxy.take()
        print(f"kazoo-{name} ...", flush=True)
        if scenario.__code__.co_argcount == 2:
            scenario(hosts, proxy)
        else:
            scenario(hosts)
        written += write_golden(out_dir, f"kazoo-{name}", description, proxy.take(), version)
    return written


# ---------------------------------------------------------------------------------------
# The C client: cli_mt reads commands from stdin; each is given time to complete.


def run_cli(command, proxy, lines, pause_s=0.4):
    process = subprocess.Popen(
        command,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    time.sleep(1.5)
    for line in lines:
        process.stdin.write(line + "\n")
        process.stdin.flush()
        time.sleep(pause_s)
    try:
        output, _ = process.communicate(timeout=20)
    except subprocess.TimeoutExpired:
        process.kill()
        output, _ = process.communicate()
    return output


def run_cli_mt(proxy, out_dir):
    version = "C client cli_mt (zookeeper-bin " + zookeeper_version() + ")"
    command = [CLI_MT, "-h", f"127.0.0.1:{proxy.port}"]
    scenarios = [
        ("basic", "create in every mode, get, set, ls, ls2, exists, wexists firing, sync, "
                  "delete, addauth, quit",
         [
             # cli_mt's create takes no data argument: it always writes "new".
             "create /c",
             "create +e /c/eph",
             "create +s /c/seq-",
             "create +es /c/eseq-",
             "create +c /c/container",
             "create +t=60000 /c/ttl",
             "create2 /c/two",
             "create2 +t=60000 /c/ttl2",
             "create /c",  # NodeExists
             "get /c",
             "set /c world",
             "get /c",
             "ls /c",
             "ls2 /c",
             "exists /c",
             "exists /c/none",
             "wexists /c/later",
             "create /c/later",
             "sync /c",
             "delete /c/later",
             "delete /c/none",
             "get /c/none",
             "addauth digest user:pw",
             "myid",
             "quit",
         ]),
    ]
    written = []
    for name, description, lines in scenarios:
        proxy.take()
        print(f"cli_mt-{name} ...", flush=True)
        output = run_cli(command, proxy, lines)
        written += write_golden(out_dir, f"cli_mt-{name}", description, proxy.take(), version)
        log_path = os.path.join(tempfile.gettempdir(), f"ringkeeper-golden-cli_mt-{name}.log")
        with open(log_path, "w") as log:
            log.write(output)
    return written


def run_zkcli(proxy, out_dir):
    version = "Java client zkCli.sh (zookeeper " + zookeeper_version() + ")"
    env = dict(os.environ, CLASSPATH=java_classpath(), JVMFLAGS="-Xmx128m")
    scenarios = [
        ("basic", "Java client: create modes incl. TTL and container, get -s, set, stat, "
                  "ls -s, getAcl, setAcl, addauth, addWatch, getEphemerals, "
                  "getAllChildrenNumber, whoami, sync, delete, deleteall, close",
         [
             "create /j data",
             "create -e /j/eph e",
             "create -s /j/seq- s",
             "create -c /j/container",
             "create -t 60000 /j/ttl t",
             "get -s /j",
             "set /j data2",
             "stat /j",
             "ls -s /j",
             "getAcl /j",
             "setAcl /j world:anyone:cdrwa",
             "addauth digest dave:pw",
             "whoami",
             "addWatch -m PERSISTENT_RECURSIVE /j",
             "create /j/w",
             "getEphemerals /j",
             "getAllChildrenNumber /j",
             "sync /j",
             "delete /j/w",
             "deleteall /j",
             "close",
             "quit",
         ]),
    ]
    written = []
    for name, description, lines in scenarios:
        proxy.take()
        print(f"zkcli-{name} ...", flush=True)
        process = subprocess.Popen(
            ["java", "-Xmx128m", "-cp", java_classpath(),
             "-Dorg.slf4j.simpleLogger.defaultLogLevel=warn",
             "org.apache.zookeeper.ZooKeeperMain", "-server", f"127.0.0.1:{proxy.port}"],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
            env=env,
        )
        time.sleep(4)
        for line in lines:
            process.stdin.write(line + "\n")
            process.stdin.flush()
            time.sleep(0.6)
        try:
            output, _ = process.communicate(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            output, _ = process.communicate()
        log_path = os.path.join(tempfile.gettempdir(), f"ringkeeper-golden-zkcli-{name}.log")
        with open(log_path, "w") as log:
            log.write(output)
        written += write_golden(out_dir, f"zkcli-{name}", description, proxy.take(), version)
    return written


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default=os.path.join(REPO_ROOT, "tests", "golden"))
    parser.add_argument("--only", default="kazoo,cli_mt,zkcli",
                        help="comma-separated clients to drive: kazoo, cli_mt, zkcli")
    args = parser.parse_args()
    os.makedirs(args.out, exist_ok=True)
    clients = set(args.only.split(","))
    server = ReferenceServer()
    try:
        server.start()
        print(f"reference server on 127.0.0.1:{server.port}", flush=True)
        written = []
        for name, runner in (("kazoo", run_kazoo), ("cli_mt", run_cli_mt), ("zkcli", run_zkcli)):
            if name in clients:
                # A fresh proxy per client so that stray reconnects cannot cross scenarios.
                proxy = RecordingProxy(server.port)
                written += runner(proxy, args.out)
                proxy.listener.close()
        print(f"{len(written)} golden files written to {args.out}")
    finally:
        server.stop()


if __name__ == "__main__":
    main()
