#!/usr/bin/env python3
"""How long a server's client port lives on after `kill -9`, measured from the moment the
process has been reaped (what a supervisor or a test sees as "it is gone").

    scripts/sigkill-linger.py [--runs 20] [--server ringkeeper|zookeeper] [--bin PATH]

Each run starts a standalone server on a free 127.0.0.1 port, opens `--idle` client
connections that complete the ZooKeeper handshake (sessions the server holds), SIGKILLs the
server, reaps it, and then, in a tight loop for up to 100 ms:

* connects to the port again (a client reconnecting): a connect that succeeds reached a
  listening socket of the dead process (nobody will ever read what is sent on it);
* looks at the idle connections: when each of them sees its end (EOF or reset).

It prints, per run and summed up, the number of connects that still succeeded and the time of
the last one, and when the last idle connection saw its end (0 = at once, before the first
look). With Apache ZooKeeper both are 0: the kernel closes every socket of a process as it
exits. Nothing here sleeps to synchronise: the server's readiness is awaited by polling `srvr`
with a deadline; the loop after the kill is paced by the connects themselves.
"""

import argparse
import os
import select
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "scripts"))
import loopback  # noqa: E402

WINDOW_S = 0.1
START_TIMEOUT_S = 30.0


def start(kind, binary, port, directory):
    if kind == "ringkeeper":
        cmd = [binary, "--port", str(port), "--bind", "127.0.0.1", "--data-dir",
               str(directory / "data")]
    else:
        # As tests/ensemble/harness.py starts it, standalone: ZooKeeperServerMain PORT DIR.
        sys.path.insert(0, str(REPO / "tests" / "ensemble"))
        import harness
        jars = [str(harness.JAVA_DIR / (j + ".jar")) for j in harness.ZK_JARS
                if (harness.JAVA_DIR / (j + ".jar")).exists()]
        cmd = (["java"] + harness.JVM_PROFILES["test"] + [
            "-Dzookeeper.admin.enableServer=false", "-Dzookeeper.4lw.commands.whitelist=*",
            "-Dzookeeper.clientPortAddress=127.0.0.1", "-cp", ":".join(jars),
            "org.apache.zookeeper.server.ZooKeeperServerMain", str(port),
            str(directory / "data")])
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            stdin=subprocess.DEVNULL)
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit("%s exited with %s" % (cmd, proc.returncode))
        try:
            if loopback.four_letter(port, "srvr", 0.5).startswith("Zookeeper version"):
                return proc
        except OSError:
            pass
        time.sleep(0.02)  # pacing the readiness poll only
    proc.kill()
    raise SystemExit("server did not answer srvr within %.0f s" % START_TIMEOUT_S)


def handshake(port):
    """A connected session: ConnectRequest, wait for the ConnectResponse."""
    s = socket.create_connection(("127.0.0.1", port), timeout=2.0)
    body = struct.pack(">iqiq", 0, 0, 10000, 0) + struct.pack(">i", 16) + b"\0" * 16
    s.sendall(struct.pack(">i", len(body)) + body)
    head = s.recv(4)
    assert len(head) == 4, "no ConnectResponse"
    (length,) = struct.unpack(">i", head)
    got = 0
    while got < length:
        chunk = s.recv(length - got)
        assert chunk, "short ConnectResponse"
        got += len(chunk)
    s.setblocking(False)
    return s


def one_run(kind, binary, idle):
    port = loopback.free_port()
    with tempfile.TemporaryDirectory(prefix="sigkill-linger-") as d:
        proc = start(kind, binary, port, Path(d))
        conns = [handshake(port) for _ in range(idle)]
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        reaped = time.monotonic()
        accepted, last_accept, ended = 0, None, {}
        while time.monotonic() - reaped < WINDOW_S:
            for i, c in enumerate(conns):
                if i in ended:
                    continue
                readable, _, _ = select.select([c], [], [], 0)
                if readable:
                    try:
                        data = c.recv(1)
                    except (ConnectionResetError, BlockingIOError):
                        data = b""
                    if not data:
                        ended[i] = time.monotonic() - reaped
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=0.05):
                    accepted += 1
                    last_accept = time.monotonic() - reaped
            except OSError:
                if len(ended) == len(conns):
                    break
        for c in conns:
            c.close()
        open_left = len(conns) - len(ended)
        return accepted, last_accept, (max(ended.values()) if ended else None), open_left


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--runs", type=int, default=20)
    p.add_argument("--idle", type=int, default=4, help="sessions open when the kill comes")
    p.add_argument("--server", choices=("ringkeeper", "zookeeper"), default="ringkeeper")
    p.add_argument("--bin", default=os.environ.get(
        "RINGKEEPER_BIN", str(REPO / "target" / "release" / "ringkeeper")))
    a = p.parse_args()
    total_accepted, runs_accepting, worst_accept, worst_end, left = 0, 0, 0.0, 0.0, 0
    for run in range(a.runs):
        accepted, last_accept, last_end, open_left = one_run(a.server, a.bin, a.idle)
        total_accepted += accepted
        runs_accepting += accepted > 0
        worst_accept = max(worst_accept, last_accept or 0.0)
        worst_end = max(worst_end, last_end or 0.0)
        left += open_left
        print("run %2d: %3d connects accepted after the reap (last at %5.1f ms); idle "
              "connections ended by %5.1f ms; %d still open after %.0f ms"
              % (run, accepted, 1000 * (last_accept or 0), 1000 * (last_end or 0), open_left,
                 1000 * WINDOW_S), flush=True)
    print("%s: %d runs; %d with connects accepted after the reap (%d connects, last at "
          "%.1f ms); idle connections ended by %.1f ms at worst; %d never ended within %.0f ms"
          % (a.server, a.runs, runs_accepting, total_accepted, 1000 * worst_accept,
             1000 * worst_end, left, 1000 * WINDOW_S))


if __name__ == "__main__":
    main()
