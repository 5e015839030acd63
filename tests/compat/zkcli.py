#!/usr/bin/python3
"""Real-client compatibility: drive ZooKeeper's Java shell (zkCli.sh) against a server.

`run_zkcli_scenario(host_port)` feeds a fixed batch of commands to one zkCli.sh process on stdin
(its JVM is slow to start, so the whole batch runs in one invocation, bounded by
ZKCLI_TIMEOUT_S) and returns normalised observations, one per command, comparable between
Apache ZooKeeper and ringkeeper. It covers what cli_mt cannot: versioned set/delete/setAcl, full
Stat (pzxid, cversion, dataLength, numChildren), ACL denial, getAllChildrenNumber,
getEphemerals, whoami (opcode 107) and a persistent recursive watch (addWatch).

How output is split: with stdin not a terminal zkCli runs each command synchronously and prints
its result before reading the next line, on stdout or stderr (both sent to one pipe). Between two
commands the scenario runs `printwatches`, which prints `printwatches is on` without touching the
server; that line separates the commands' outputs. Watch notifications are printed by zkCli's
event thread at any point, so they are taken out of the stream and reported at the end as a
sorted multiset.

Normalisation: the random root path becomes `<root>`; zxids become their rank among the run's
zxids (`z1`, ...); ephemeralOwner becomes `none` or `session`; ctime/mtime are dropped; `ls`
children and `ls -R`/`getEphemerals` listings are sorted.

zkCli.sh: /usr/share/zookeeper/bin/zkCli.sh (package zookeeper); override with $RINGKEEPER_ZKCLI.
Usage: /usr/bin/python3 tests/compat/zkcli.py HOST:PORT [--golden FILE] [--write-golden FILE]
Exit status 0 when every command's output contains what ZooKeeper prints for it (and the
observations match --golden, if given); 1 otherwise, with the reason on stderr.
"""

from __future__ import annotations

import argparse
import difflib
import os
import re
import subprocess
import sys
import uuid

ZKCLI = os.environ.get("RINGKEEPER_ZKCLI", "/usr/share/zookeeper/bin/zkCli.sh")
ZKCLI_TIMEOUT_S = 60.0
MARKER_COMMAND = "printwatches"
MARKER_LINE = "printwatches is on"
STAT_KEYS = (
    "cZxid", "ctime", "mZxid", "mtime", "pZxid", "cversion", "dataVersion", "aclVersion",
    "ephemeralOwner", "dataLength", "numChildren",
)
STAT_LINE_RE = re.compile(r"^(" + "|".join(STAT_KEYS) + r") = (.*)$")
EVENT_RE = re.compile(r"^WatchedEvent state:(\w+) type:(\w+) path:(.*)$")
ZXID_TOKEN_RE = re.compile(r"\{zxid:(0x[0-9a-f]+)\}")
LIST_RE = re.compile(r"^\[(.*)\]$")


class ZkCliError(Exception):
    """zkCli.sh could not be run to the end (missing, timed out, or output not understood)."""


# (command, text that ZooKeeper's zkCli prints for it, checked as a substring of the normalised
# observation; None when there is nothing distinctive). {root} is the run's root path.
def scenario_steps() -> list[tuple[str, str | None]]:
    return [
        ("create {root} rootdata", "Created <root>"),
        ("create {root}/a a0", "Created <root>/a"),
        ("get -s {root}/a", "a0 | stat(czxid=z2 mzxid=z2 pzxid=z2 cversion=0 dataVersion=0 aclVersion=0"),
        ("set -s -v 0 {root}/a a1", "dataVersion=1"),
        ("set -v 0 {root}/a a2", "version No is not valid : <root>/a"),  # BADVERSION
        ("delete -v 7 {root}/a", "version No is not valid : <root>/a"),
        ("stat {root}/a", "dataVersion=1"),
        ("create -e {root}/e", "Created <root>/e"),
        ("create {root}/e/child", "Ephemerals cannot have children: <root>/e/child"),
        ("create -s {root}/s- s", "Created <root>/s-0000000002"),  # suffix = creates under the parent
        ("create -e -s {root}/es- es", "Created <root>/es-0000000003"),
        ("create -c {root}/c", "Created <root>/c"),
        ("create -t 600000 {root}/t t", "Created <root>/t"),  # needs extendedTypesEnabled=true
        ("create {root}/a again", "Node already exists: <root>/a"),
        ("create {root}/x/y", "Node does not exist: <root>/x/y"),
        ("ls -s {root}", "[a, c, e, es-0000000003, s-0000000002, t] | stat("),
        ("ls -R {root}", None),
        ("getAllChildrenNumber {root}", "6"),
        ("getEphemerals {root}", "[<root>/e, <root>/es-0000000003]"),
        ("getAcl {root}/a", "'world,'anyone | : cdrwa"),
        ("setAcl -v 5 {root}/a world:anyone:cdrwa", "version No is not valid : <root>/a"),
        ("setAcl -s -v 0 {root}/a world:anyone:r", "aclVersion=1"),
        ("set {root}/a denied", "Insufficient permission : <root>/a"),  # NOAUTH: no WRITE
        ("getAcl -s {root}/a", "'world,'anyone | : r | stat("),
        # setAcl needs ADMIN on the node; ZooKeeper checks it before the version: NOAUTH, not BADVERSION.
        ("setAcl -v 7 {root}/a world:anyone:cdrwa", "Insufficient permission : <root>/a"),
        # delete needs DELETE on the parent, not on the node: succeeds despite the node's read-only ACL.
        ("delete -v 1 {root}/a", None),
        ("stat {root}/a", "Node does not exist: <root>/a"),
        ("delete {root}", "Node not empty: <root>"),
        ("sync {root}", "Sync is OK"),
        ("stat {root}/nope", "Node does not exist: <root>/nope"),
        ("get {root}/nope", "Node does not exist: <root>/nope"),
        ("whoami", "Auth scheme: User | ip: 127.0.0.1"),
        ("addWatch {root}", None),  # PERSISTENT_RECURSIVE by default
        ("create {root}/w w0", "Created <root>/w"),
        ("set {root}/w w1", None),
        ("delete {root}/w", None),
        ("deleteall {root}", None),
        ("stat {root}", "Node does not exist: <root>"),
    ]


def normalise_segment(lines: list[str], root: str) -> str:
    """One command's output as a single ' | '-joined line."""
    parts = []
    stat: dict[str, str] = {}
    for line in lines:
        line = line.replace(root, "<root>")
        match = STAT_LINE_RE.match(line)
        if match:
            stat[match.group(1)] = match.group(2)
            if match.group(1) == "numChildren":
                parts.append(format_stat(stat))
                stat = {}
            continue
        match = LIST_RE.match(line)
        if match:
            items = [item for item in match.group(1).split(", ") if item]
            parts.append("[" + ", ".join(sorted(items)) + "]")
            continue
        parts.append(line)
    if stat:
        parts.append(f"partial-stat {stat}")
    return " | ".join(parts)


def format_stat(stat: dict[str, str]) -> str:
    owner = "none" if int(stat.get("ephemeralOwner", "0x0"), 16) == 0 else "session"
    return (
        f"stat(czxid={{zxid:{stat.get('cZxid')}}} mzxid={{zxid:{stat.get('mZxid')}}} "
        f"pzxid={{zxid:{stat.get('pZxid')}}} cversion={stat.get('cversion')} "
        f"dataVersion={stat.get('dataVersion')} aclVersion={stat.get('aclVersion')} owner={owner} "
        f"dataLength={stat.get('dataLength')} numChildren={stat.get('numChildren')})"
    )


def rank_zxids(observations: list[str]) -> list[str]:
    values = sorted({int(text, 16) for text in ZXID_TOKEN_RE.findall("\n".join(observations))} - {0})
    rank = {value: f"z{position + 1}" for position, value in enumerate(values)}

    def replace(match: re.Match[str]) -> str:
        value = int(match.group(1), 16)
        return "0" if value == 0 else rank[value]

    return [ZXID_TOKEN_RE.sub(replace, observation) for observation in observations]


def run_zkcli_checked(host_port: str) -> tuple[list[str], list[str]]:
    """Run the batch; return (observations, problems). Raises ZkCliError if it cannot finish."""
    if not os.access(ZKCLI, os.X_OK):
        raise ZkCliError(f"{ZKCLI} not found or not executable (apt-get install zookeeper)")
    root = f"/rk-zkcli-compat-{uuid.uuid4().hex[:12]}"
    steps = scenario_steps()
    commands = [command.replace("{root}", root) for command, _expected in steps]
    script = MARKER_COMMAND + "\n" + "".join(f"{command}\n{MARKER_COMMAND}\n" for command in commands) + "quit\n"
    try:
        completed = subprocess.run(
            [ZKCLI, "-server", host_port],
            input=script.encode(),
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            timeout=ZKCLI_TIMEOUT_S,
        )
    except subprocess.TimeoutExpired:
        raise ZkCliError(f"zkCli.sh did not finish the batch within {ZKCLI_TIMEOUT_S:.0f} s") from None
    lines = completed.stdout.decode("utf-8", "backslashreplace").splitlines()

    events = []
    segments: list[list[str]] = []
    current: list[str] | None = None  # None until the first marker: zkCli's banner
    for line in lines:
        match = EVENT_RE.match(line)
        if match:
            state, event_type, path = match.groups()
            # The connect and close notifications are the client's own; keep the rest.
            if event_type != "None":
                events.append(f"event {event_type} {path.replace(root, '<root>')} state={state}")
            continue
        if line in ("WATCHER::", "") or line.startswith("SLF4J:"):
            continue
        if line == MARKER_LINE:
            if current is not None:
                segments.append(current)
            current = []
            continue
        if current is not None:
            current.append(line)
    if current:
        segments.append(current)  # output after the last marker (quit): normally empty
    if len(segments) < len(commands):
        raise ZkCliError(
            f"zkCli.sh (exit {completed.returncode}) produced output for {len(segments)} of "
            f"{len(commands)} commands; last lines: {lines[-10:]}"
        )
    observations = []
    for (template, _expected), segment in zip(steps, segments):
        command = template.replace("{root}", "<root>")
        observations.append(f"{command} -> {normalise_segment(segment, root)}")
    for extra in segments[len(commands):]:
        observations.append(f"(after quit) -> {normalise_segment(extra, root)}")
    observations.append("watch events (sorted): " + "; ".join(sorted(events)))
    observations = rank_zxids(observations)

    problems = []
    for (template, expected), observation in zip(steps, observations):
        if expected is not None and expected not in observation:
            problems.append(f"'{template}': expected output containing {expected!r}, got {observation!r}")
    exception = first_exception(observations)
    if exception:
        problems.append("zkCli printed an exception: " + exception)
    return observations, problems


def first_exception(observations: list[str]) -> str:
    for observation in observations:
        if "Exception" in observation:
            return observation
    return ""


def run_zkcli_scenario(host_port: str) -> list[str]:
    """Normalised observations of the zkCli.sh batch against host_port (raises ZkCliError)."""
    observations, _problems = run_zkcli_checked(host_port)
    return observations


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("host_port", help="connect string, e.g. 127.0.0.1:2181")
    parser.add_argument("--golden", help="compare the observations with this file")
    parser.add_argument("--write-golden", help="write the observations to this file")
    arguments = parser.parse_args()
    try:
        observations, problems = run_zkcli_checked(arguments.host_port)
    except ZkCliError as error:
        print(f"FAIL zkcli: {error}", file=sys.stderr)
        return 1
    for observation in observations:
        print(observation)
    if arguments.write_golden:
        with open(arguments.write_golden, "w", encoding="utf-8") as golden:
            golden.write("\n".join(observations) + "\n")
    if arguments.golden:
        with open(arguments.golden, encoding="utf-8") as golden:
            expected = golden.read().splitlines()
        if expected != observations:
            problems.append("observations differ from " + arguments.golden + ":\n" + "\n".join(
                difflib.unified_diff(expected, observations, "golden", "observed", lineterm="")))
    for problem in problems:
        print(f"FAIL zkcli: {problem}", file=sys.stderr)
    if not problems:
        print(f"PASS zkcli ({len(observations)} observations)", file=sys.stderr)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
