"""Builds and runs the Go client programs, each driven through one scenario (see each
program's comment): go/gozk.go on go-zookeeper (Debian golang-github-samuel-go-zookeeper-dev)
and go/ngaut/gozk_ngaut.go on its older fork (golang-github-ngaut-go-zookeeper-dev).

Built once per process, offline: GOPATH is Debian's /usr/share/gocode, GO111MODULE=off (the
packaged sources, no module proxy), GOCACHE in a temp dir. `build()` returns the binary, or
raises Unavailable with the reason (and the package to install) so a test can skip.
"""

import os
import shutil
import subprocess
import tempfile
from pathlib import Path

GO_DIR = Path(__file__).resolve().parent / "go"
GOPATH = Path(os.environ.get("GOZK_GOPATH", "/usr/share/gocode"))
# program -> (source, package directory in GOPATH, Debian package)
PROGRAMS = {
    "samuel": (GO_DIR / "gozk.go", "github.com/samuel/go-zookeeper/zk",
               "golang-github-samuel-go-zookeeper-dev"),
    "ngaut": (GO_DIR / "ngaut" / "gozk_ngaut.go", "github.com/ngaut/go-zookeeper/zk",
              "golang-github-ngaut-go-zookeeper-dev"),
}
BUILD_TIMEOUT_S = 300.0
# Longer than the program's own step deadline (20 s) times its steps: the program reports a
# hang as a failed step; this only catches a program that hangs outside a step.
RUN_TIMEOUT_S = 180.0

_built = {}


class Unavailable(Exception):
    pass


def build(program="samuel"):
    if program in _built:
        return _built[program]
    source, package, debian = PROGRAMS[program]
    go = shutil.which(os.environ.get("GO", "go"))
    if go is None:
        raise Unavailable("go not found (apt-get install golang-go)")
    if not (GOPATH / "src" / package).is_dir():
        raise Unavailable("%s missing (apt-get install %s)" % (GOPATH / "src" / package, debian))
    out = Path(tempfile.mkdtemp(prefix="ringkeeper-gozk-"))
    env = dict(os.environ, GOPATH=str(GOPATH), GO111MODULE="off", GOFLAGS="",
               GOCACHE=str(out / "cache"), CGO_ENABLED="0")
    binary = out / source.stem
    r = subprocess.run([go, "build", "-o", str(binary), str(source)], capture_output=True,
                       text=True, timeout=BUILD_TIMEOUT_S, env=env, cwd=str(out))
    if r.returncode != 0:
        raise AssertionError("%s does not build:\n%s%s" % (source.name, r.stdout, r.stderr))
    _built[program] = binary
    return binary


def run(scenario, root, servers, program="samuel"):
    """Runs a scenario to its end; returns (exit status, stdout lines, stderr)."""
    r = subprocess.run([str(build(program)), scenario, root, servers], capture_output=True,
                       text=True,
                       timeout=RUN_TIMEOUT_S, stdin=subprocess.DEVNULL)
    return r.returncode, r.stdout.splitlines(), r.stderr
