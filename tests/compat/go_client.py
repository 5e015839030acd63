"""Builds and runs go/gozk.go: the Go client go-zookeeper (Debian golang-go and
golang-github-samuel-go-zookeeper-dev) driven through one scenario (see the program's comment).

Built once per process, offline: GOPATH is Debian's /usr/share/gocode, GO111MODULE=off (the
packaged sources, no module proxy), GOCACHE in a temp dir. `build()` returns the binary, or
raises Unavailable with the reason (and the package to install) so a test can skip.
"""

import os
import shutil
import subprocess
import tempfile
from pathlib import Path

SOURCE = Path(__file__).resolve().parent / "go" / "gozk.go"
GOPATH = Path(os.environ.get("GOZK_GOPATH", "/usr/share/gocode"))
PACKAGE_DIR = GOPATH / "src" / "github.com" / "samuel" / "go-zookeeper" / "zk"
BUILD_TIMEOUT_S = 300.0
# Longer than the program's own step deadline (20 s) times its steps: the program reports a
# hang as a failed step; this only catches a program that hangs outside a step.
RUN_TIMEOUT_S = 180.0

_built = {}


class Unavailable(Exception):
    pass


def build():
    if "binary" in _built:
        return _built["binary"]
    go = shutil.which(os.environ.get("GO", "go"))
    if go is None:
        raise Unavailable("go not found (apt-get install golang-go)")
    if not PACKAGE_DIR.is_dir():
        raise Unavailable("%s missing (apt-get install golang-github-samuel-go-zookeeper-dev)"
                          % PACKAGE_DIR)
    out = Path(tempfile.mkdtemp(prefix="ringkeeper-gozk-"))
    env = dict(os.environ, GOPATH=str(GOPATH), GO111MODULE="off", GOFLAGS="",
               GOCACHE=str(out / "cache"), CGO_ENABLED="0")
    binary = out / "gozk"
    r = subprocess.run([go, "build", "-o", str(binary), str(SOURCE)], capture_output=True,
                       text=True, timeout=BUILD_TIMEOUT_S, env=env, cwd=str(out))
    if r.returncode != 0:
        raise AssertionError("gozk.go does not build:\n%s%s" % (r.stdout, r.stderr))
    _built["binary"] = binary
    return binary


def run(scenario, root, servers):
    """Runs a scenario to its end; returns (exit status, stdout lines, stderr)."""
    r = subprocess.run([str(build()), scenario, root, servers], capture_output=True, text=True,
                       timeout=RUN_TIMEOUT_S, stdin=subprocess.DEVNULL)
    return r.returncode, r.stdout.splitlines(), r.stderr
