"""Helpers the project's scripts share for talking to a server on 127.0.0.1: a free port, and a
four-letter word with a bounded wait (the server closes the connection after answering)."""

import os
import random
import socket
import time


def free_port():
    """A port free on 127.0.0.1 now. The kernel's pick from its ephemeral range, unless
    RK_TEST_PORT_RANGE=<low>-<high> names a range to pick from: scripts/test.sh gives the
    ensemble suite one below the ephemeral range while the compatibility suite runs beside it,
    so the two never pick the same port (nor does any outgoing connection's source port)."""
    wanted = os.environ.get("RK_TEST_PORT_RANGE")
    if not wanted:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            return s.getsockname()[1]
    low, high = (int(part) for part in wanted.split("-", 1))
    for _ in range(1000):
        port = random.randint(low, high)
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    raise RuntimeError("no free port in RK_TEST_PORT_RANGE=%s" % wanted)


def four_letter(port, word, timeout_s=2.0, host="127.0.0.1"):
    with socket.create_connection((host, port), timeout=timeout_s) as s:
        s.sendall(word.encode())
        chunks = []
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            b = s.recv(65536)
            if not b:
                break
            chunks.append(b)
    return b"".join(chunks).decode("utf-8", "replace")
