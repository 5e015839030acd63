#!/usr/bin/env python3
"""A client in its own process, for what a test cannot do from its own process: a session whose
process dies without closing it (kill -9), and a client inside a network namespace
(`ip netns exec NS python3 nsclient.py ...`). Each command prints one JSON line.

    nsclient.py hold-ephemeral HOSTS PATH TIMEOUT_S   connect, create an ephemeral PATH, print
                                                      {"session": id, "timeout_ms": negotiated},
                                                      then wait for stdin to close (or a kill)
    nsclient.py write HOSTS PATH TIMEOUT_S            one create attempt bounded by TIMEOUT_S:
                                                      {"ok": true} or {"ok": false, "error": ...}
    nsclient.py mode HOST PORT                        srvr's Mode, or null: {"mode": ...}
"""

import json
import socket
import sys
import time
import threading


def out(obj):
    sys.stdout.write(json.dumps(obj) + "\n")
    sys.stdout.flush()


def mode(host, port):
    try:
        with socket.create_connection((host, int(port)), timeout=1.0) as s:
            s.sendall(b"srvr")
            chunks, deadline = [], time.monotonic() + 1.0
            while time.monotonic() < deadline:
                b = s.recv(65536)
                if not b:
                    break
                chunks.append(b)
        for line in b"".join(chunks).decode("utf-8", "replace").splitlines():
            if line.startswith("Mode: "):
                return line[6:].strip()
    except OSError:
        pass
    return None


def main(argv):
    cmd = argv[1]
    if cmd == "mode":
        out({"mode": mode(argv[2], argv[3])})
        return 0
    from kazoo.client import KazooClient
    from kazoo.retry import KazooRetry
    hosts, path, timeout_s = argv[2], argv[3], float(argv[4])
    if cmd == "hold-ephemeral":
        c = KazooClient(hosts=hosts, timeout=timeout_s,
                        connection_retry=KazooRetry(max_tries=-1, delay=0.05, max_delay=0.5))
        c.start(timeout=20)
        c.create(path, b"held", ephemeral=True)
        out({"session": c.client_id[0], "timeout_ms": c._session_timeout})
        sys.stdin.read()  # until the test closes our stdin or kills us
        return 0
    if cmd == "write":
        deadline = time.monotonic() + timeout_s
        c = KazooClient(hosts=hosts, timeout=timeout_s,
                        connection_retry=KazooRetry(max_tries=1, delay=0.05))
        result = {}

        def attempt():
            try:
                c.start(timeout=max(0.1, deadline - time.monotonic()))
                c.create_async(path, b"x").get(timeout=max(0.1, deadline - time.monotonic()))
                result["ok"] = True
            except Exception as e:
                result["ok"], result["error"] = False, repr(e)
        t = threading.Thread(target=attempt, daemon=True)
        t.start()
        t.join(timeout_s + 1.0)
        if "ok" not in result:
            result = {"ok": False, "error": "no answer within %.1fs" % timeout_s}
        out(result)
        try:
            c.stop()
        except Exception:
            pass
        return 0
    raise SystemExit("unknown command %r" % cmd)


if __name__ == "__main__":
    sys.exit(main(sys.argv))
