"""Helpers the project's scripts share for talking to a server on 127.0.0.1: a free port, and a
four-letter word with a bounded wait (the server closes the connection after answering)."""

import socket
import time


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


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
