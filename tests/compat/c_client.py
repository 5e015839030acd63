#!/usr/bin/python3
"""Real-client compatibility: drive ZooKeeper's C client shell (cli_mt) against a server.

`run_c_client_scenario(host_port)` runs a fixed scenario through `cli_mt` (package zookeeper-bin,
/usr/lib/zookeeper/bin/cli_mt; override with $RINGKEEPER_CLI_MT) and returns normalised
observations: one string per result or watch event, free of session ids, zxids and times, so the
observations from Apache ZooKeeper and from ringkeeper can be compared line by line.

How cli_mt is driven. It reads commands from stdin and issues most of them asynchronously; the
results are printed to stderr by the C client's completion thread, in the order the server's
replies arrive. After every command this module sends `sync /` and reads stderr up to that sync's
completion (`[/]: rc = 0`): a session's replies and watch events arrive in order, so everything
printed before it belongs to the command (and to watch events the command triggered, which
ZooKeeper sends before the reply). `exists`/`wexists` are synchronous in cli_mt and print only on
error (`Error -101 for <path>`). Every read is bounded by a timeout; a hang is an error.

Normalisation:
- the scenario's random root path is replaced by `<root>`;
- zxids are replaced by their rank among all zxids observed in the run (`z1`, `z2`, ...; `0` stays
  `0`), which keeps equality and order (e.g. mzxid > czxid, a child's czxid vs. its parent) but not
  the absolute values;
- ephemeralOwner becomes `none`, or the label of the cli_mt session that owns it (`A`, `B`);
- ctime/mtime and the client's "time = N msec" lines are dropped;
- children lists are sorted (ZooKeeper does not order children);
- watch events caused by one transaction that the protocol does not order are sorted (marked).

cli_mt's stat dump has no dataLength, numChildren, cversion or pzxid: dataLength is observed as
the length of the value `get` returns. Versioned set/delete are not possible with cli_mt (it
always passes -1); see zkcli.py for those.

Usage: /usr/bin/python3 tests/compat/c_client.py HOST:PORT [--golden FILE] [--write-golden FILE]
Exit status 0 when the scenario ran and every step returned the result code ZooKeeper returns
(and the observations match --golden, if given); 1 otherwise, with the reason on stderr.
"""

from __future__ import annotations

import argparse
import os
import queue
import re
import subprocess
import sys
import threading
import time
import uuid

CLI_MT = os.environ.get("RINGKEEPER_CLI_MT", "/usr/lib/zookeeper/bin/cli_mt")
COMMAND_TIMEOUT_S = 10.0
# `od` sends 200 x 64 KiB setData + getData pairs: give it more room.
OVERDOSE_TIMEOUT_S = 60.0
CLOSE_TIMEOUT_S = 10.0

# zookeeper.h ZOO_ERRORS.
ERROR_NAMES = {
    0: "ZOK",
    -1: "ZSYSTEMERROR",
    -2: "ZRUNTIMEINCONSISTENCY",
    -3: "ZDATAINCONSISTENCY",
    -4: "ZCONNECTIONLOSS",
    -5: "ZMARSHALLINGERROR",
    -6: "ZUNIMPLEMENTED",
    -7: "ZOPERATIONTIMEOUT",
    -8: "ZBADARGUMENTS",
    -9: "ZINVALIDSTATE",
    -13: "ZNEWCONFIGNOQUORUM",
    -14: "ZRECONFIGINPROGRESS",
    -15: "ZSSLCONNECTIONERROR",
    -100: "ZAPIERROR",
    -101: "ZNONODE",
    -102: "ZNOAUTH",
    -103: "ZBADVERSION",
    -108: "ZNOCHILDRENFOREPHEMERALS",
    -110: "ZNODEEXISTS",
    -111: "ZNOTEMPTY",
    -112: "ZSESSIONEXPIRED",
    -113: "ZINVALIDCALLBACK",
    -114: "ZINVALIDACL",
    -115: "ZAUTHFAILED",
    -116: "ZCLOSING",
    -117: "ZNOTHING",
    -118: "ZSESSIONMOVED",
    -119: "ZNOTREADONLY",
    -120: "ZEPHEMERALONLOCALSESSION",
    -121: "ZNOWATCHER",
    -123: "ZRECONFIGDISABLED",
    -124: "ZSESSIONCLOSEDREQUIRERECONFIG",
    -127: "ZTHROTTLEDOP",
}

SENTINEL_COMMAND = "sync /"
SENTINEL_RE = re.compile(r"^\[/\]: rc = (-?\d+)$")
TIME_RE = re.compile(r"^time = -?\d+ msec$")
SESSION_ID_RE = re.compile(r"^Got a new session id: 0x([0-9a-f]+)$")
WATCH_RE = re.compile(r"^Watcher (\w+) state = (\w+)(?: for path (.*))?$")
STRING_RC_RE = re.compile(r"^\[(.*)\]: rc = (-?\d+)$")
STAT_RC_RE = re.compile(r"^(.*): rc = (-?\d+) Stat:$")
PLAIN_RC_RE = re.compile(r"^(.*): rc = (-?\d+)$")
SYNC_ERROR_RE = re.compile(r"^Error (-?\d+) for (.*)$")
CREATING_RE = re.compile(r"^Creating \[.*\] node(?: \(mode: \d+\))?$")
VALUE_LEN_RE = re.compile(r"^ value_len = (-?\d+)$")
ZXID_TOKEN_RE = re.compile(r"\{zxid:([0-9a-f]+)\}")


class CliMtError(Exception):
    """cli_mt could not be run to the end: missing binary, crash, or a bounded wait expired."""


def error_name(code: int) -> str:
    return ERROR_NAMES.get(code, f"rc={code}")


class CliMtSession:
    """One cli_mt process, i.e. one ZooKeeper session, driven command by command."""

    def __init__(self, host_port: str, label: str):
        if not os.access(CLI_MT, os.X_OK):
            raise CliMtError(f"{CLI_MT} not found or not executable (apt-get install zookeeper-bin)")
        self.label = label
        self.session_id: int | None = None
        self._lines: queue.Queue[str | None] = queue.Queue()
        self._process = subprocess.Popen(
            [CLI_MT, host_port],
            stdin=subprocess.PIPE,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            bufsize=0,
        )
        self._reader = threading.Thread(target=self._read_stderr, daemon=True)
        self._reader.start()

    def _read_stderr(self) -> None:
        assert self._process.stderr is not None
        for raw in iter(self._process.stderr.readline, b""):
            self._lines.put(raw.decode("utf-8", "backslashreplace").rstrip("\n"))
        self._lines.put(None)

    def _next_line(self, deadline: float, waiting_for: str) -> str:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise CliMtError(f"session {self.label}: timed out waiting for {waiting_for}")
        try:
            line = self._lines.get(timeout=remaining)
        except queue.Empty:
            raise CliMtError(f"session {self.label}: timed out waiting for {waiting_for}") from None
        if line is None:
            raise CliMtError(
                f"session {self.label}: cli_mt exited (status {self._process.poll()}) "
                f"while waiting for {waiting_for}"
            )
        return line

    def _send(self, command: str) -> None:
        assert "\n" not in command
        assert self._process.stdin is not None
        try:
            self._process.stdin.write(command.encode() + b"\n")
            self._process.stdin.flush()
        except BrokenPipeError:
            raise CliMtError(f"session {self.label}: cli_mt exited before '{command}'") from None

    def _collect_until_sentinel(self, deadline: float, waiting_for: str) -> list[str]:
        block = []
        while True:
            line = self._next_line(deadline, waiting_for)
            match = SENTINEL_RE.match(line)
            if match is None:
                block.append(line)
                continue
            rc = int(match.group(1))
            if rc != 0:
                raise CliMtError(f"session {self.label}: 'sync /' failed with {error_name(rc)}")
            name = self._next_line(deadline, "the name line of 'sync /'")
            if not name.startswith("\tname = "):
                raise CliMtError(f"session {self.label}: unexpected line after sync: {name!r}")
            return block

    def connect(self, timeout_s: float = COMMAND_TIMEOUT_S) -> None:
        """Wait until the session is established (the queued sync completes after connecting)."""
        self._send(SENTINEL_COMMAND)
        block = self._collect_until_sentinel(time.monotonic() + timeout_s, "the session to connect")
        for line in block:
            match = SESSION_ID_RE.match(line)
            if match:
                self.session_id = int(match.group(1), 16)
        if self.session_id is None:
            raise CliMtError(f"session {self.label}: connected without reporting a session id: {block}")

    def run(self, command: str, timeout_s: float = COMMAND_TIMEOUT_S) -> list[str]:
        """Send one command; return every stderr line it produced (bounded by timeout_s)."""
        self._send(command)
        self._send(SENTINEL_COMMAND)
        return self._collect_until_sentinel(time.monotonic() + timeout_s, f"'{command}'")

    def drain(self, timeout_s: float = COMMAND_TIMEOUT_S) -> list[str]:
        """Return every line printed so far, up to the reply of a fresh `sync /`."""
        self._send(SENTINEL_COMMAND)
        return self._collect_until_sentinel(time.monotonic() + timeout_s, "a sync after earlier output")

    def await_line(self, pattern: re.Pattern[str], timeout_s: float = COMMAND_TIMEOUT_S) -> list[str]:
        """Read lines until one matches pattern (an awaited event); return them all."""
        deadline = time.monotonic() + timeout_s
        block = []
        while True:
            line = self._next_line(deadline, f"a line matching {pattern.pattern!r}")
            block.append(line)
            if pattern.match(line):
                return block

    def quit(self) -> None:
        """Close the session (cli_mt's quit calls zookeeper_close) and wait for the exit."""
        try:
            self._send("quit")
            self._process.wait(timeout=CLOSE_TIMEOUT_S)
        except (CliMtError, subprocess.TimeoutExpired):
            pass
        finally:
            self.kill()

    def kill(self) -> None:
        if self._process.poll() is None:
            self._process.kill()
            self._process.wait(timeout=CLOSE_TIMEOUT_S)
        for stream in (self._process.stdin, self._process.stderr):
            if stream is not None:
                try:
                    stream.close()
                except OSError:
                    pass


class Normaliser:
    """Turns cli_mt output into stable observation strings."""

    def __init__(self, root: str):
        self.root = root
        self.sessions: dict[int, str] = {}

    def path(self, text: str) -> str:
        if text == self.root or text.startswith(self.root + "/"):
            return "<root>" + text[len(self.root):]
        return text

    def owner(self, hex_text: str) -> str:
        owner = int(hex_text, 16)
        if owner == 0:
            return "none"
        return self.sessions.get(owner, "unknown-session")

    def stat(self, lines: list[str], index: int) -> tuple[str, int]:
        """Parse dumpStat's six lines at index; return (text, next index)."""
        if index < len(lines) and lines[index] == "null":
            return "stat=null", index + 1
        try:
            ctime, czxid, mtime, mzxid, versions, owner = lines[index:index + 6]
            assert ctime.startswith("\tctime = ") and mtime.startswith("\tmtime=")
            czxid_hex = czxid.removeprefix("\tczxid=")
            mzxid_hex = mzxid.removeprefix("\tmzxid=")
            version_hex, aversion_hex = re.match(r"^\tversion=([0-9a-f]+)\taversion=([0-9a-f]+)$", versions).groups()
            owner_hex = re.match(r"^\tephemeralOwner = ([0-9a-f]+)$", owner).group(1)
            int(czxid_hex, 16), int(mzxid_hex, 16)
        except (ValueError, AssertionError, AttributeError):
            raise CliMtError(f"unparsable stat dump: {lines[index:index + 6]!r}") from None
        # cli_mt prints versions with %x of an unsigned cast: -1 is ffffffff.
        version = int(version_hex, 16)
        aversion = int(aversion_hex, 16)
        text = (
            f"stat(czxid={{zxid:{czxid_hex}}} mzxid={{zxid:{mzxid_hex}}} "
            f"version={to_signed32(version)} aversion={to_signed32(aversion)} owner={self.owner(owner_hex)})"
        )
        return text, index + 6

    def block(self, label: str, command: str, lines: list[str]) -> list[str]:
        """Observations for one command's output; unknown lines are kept verbatim (never dropped)."""
        kind = command.split(" ", 1)[0]
        prefix = f"{label}: {self.path_command(command)} ->"
        observations = []
        index = 0
        while index < len(lines):
            line = lines[index]
            index += 1
            if TIME_RE.match(line) or CREATING_RE.match(line) or SESSION_ID_RE.match(line):
                continue
            match = WATCH_RE.match(line)
            if match:
                event, state, path = match.groups()
                text = f"{label}: event {event}" + (f" {self.path(path)}" if path else "")
                if state != "CONNECTED_STATE":
                    text += f" state={state}"
                observations.append(text)
                continue
            match = STRING_RC_RE.match(line)
            if match:  # create, create2 (and a sync other than the sentinel)
                rc = int(match.group(2))
                text = f"{prefix} {error_name(rc)}"
                if rc == 0 and index < len(lines) and lines[index].startswith("\tname = "):
                    text += f" name={self.path(lines[index].removeprefix(chr(9) + 'name = '))}"
                    index += 1
                    if index < len(lines) and lines[index].startswith("\tctime = "):
                        stat, index = self.stat(lines, index)
                        text += " " + stat
                observations.append(text)
                continue
            match = STAT_RC_RE.match(line)
            if match:  # set
                stat, index = self.stat(lines, index)
                observations.append(f"{prefix} {error_name(int(match.group(2)))} {stat}")
                continue
            match = PLAIN_RC_RE.match(line)
            if match and kind in ("get", "config"):
                text, index = self.data_result(prefix, int(match.group(2)), lines, index)
                observations.append(text)
                continue
            if match and kind in ("ls", "ls2"):
                text, index = self.children_result(prefix, kind, int(match.group(2)), lines, index)
                observations.append(text)
                continue
            if match and kind == "delete":
                observations.append(f"{prefix} {error_name(int(match.group(2)))}")
                continue
            match = SYNC_ERROR_RE.match(line)
            if match:  # synchronous exists/wexists, or a request the client refused to send
                observations.append(f"{prefix} {error_name(int(match.group(1)))}")
                continue
            observations.append(f"{prefix} output {self.path(line)!r}")
        if kind in ("exists", "wexists") and not any(o.startswith(prefix) for o in observations):
            # cli_mt's synchronous exists prints nothing on success.
            observations.append(f"{prefix} ZOK")
        return observations

    def path_command(self, command: str) -> str:
        return " ".join(self.path(word) for word in command.split(" "))

    def data_result(self, prefix: str, rc: int, lines: list[str], index: int) -> tuple[str, int]:
        text = f"{prefix} {error_name(rc)}"
        value_lines = []
        value_len = None
        if index < len(lines) and VALUE_LEN_RE.match(lines[index]):
            value_len = int(VALUE_LEN_RE.match(lines[index]).group(1))
            index += 1
        # The value is written raw, followed by "\nStat:\n"; the scenario's values have no newlines.
        while index < len(lines) and lines[index] != "Stat:":
            value_lines.append(lines[index])
            index += 1
        if index >= len(lines):
            raise CliMtError(f"get output without 'Stat:': {lines!r}")
        index += 1
        if value_len is not None:
            value = "\n".join(value_lines)
            text += f" data={value!r} dataLength={value_len}"
        stat, index = self.stat(lines, index)
        return f"{text} {stat}", index

    def children_result(self, prefix: str, kind: str, rc: int, lines: list[str], index: int) -> tuple[str, int]:
        children = []
        while index < len(lines):
            line = lines[index]
            if TIME_RE.match(line):
                index += 1
                continue
            if not line.startswith("\t") or line.startswith("\tctime = "):
                break
            children.append(line[1:])
            index += 1
        text = f"{prefix} {error_name(rc)}"
        if rc == 0:
            text += f" children=[{', '.join(sorted(children))}]"
        if kind == "ls2":
            while index < len(lines) and TIME_RE.match(lines[index]):
                index += 1
            stat, index = self.stat(lines, index)
            text += " " + stat
        return text, index


def to_signed32(value: int) -> int:
    return value - (1 << 32) if value >= 1 << 31 else value


def rank_zxids(observations: list[str]) -> list[str]:
    """Replace {zxid:HEX} tokens by their rank among the run's distinct non-zero zxids."""
    values = sorted({int(hex_text, 16) for hex_text in ZXID_TOKEN_RE.findall("\n".join(observations))} - {0})
    rank = {value: f"z{position + 1}" for position, value in enumerate(values)}

    def replace(match: re.Match[str]) -> str:
        value = int(match.group(1), 16)
        return "0" if value == 0 else rank[value]

    return [ZXID_TOKEN_RE.sub(replace, observation) for observation in observations]


# Each step: (session, command, expected result code as ZooKeeper 3.8 returns it, or None when the
# step is handled specially). {root} is replaced by the run's root path.
def scenario_steps() -> list[tuple[str, str, str | None]]:
    return [
        ("A", "create {root}", "ZOK"),
        ("A", "create2 {root}/data", "ZOK"),
        ("A", "get {root}/data", "ZOK"),
        ("A", "set {root}/data hello", "ZOK"),  # fires the data watch `get` left
        ("A", "get {root}/data", "ZOK"),
        ("A", "set {root}/data ", "ZOK"),  # empty value, version 2
        ("A", "get {root}/data", "ZOK"),
        ("A", "exists {root}/data", "ZOK"),  # sets an exists watch on an existing node
        ("A", "set {root}/data world", "ZOK"),
        ("A", "create {root}/data", "ZNODEEXISTS"),
        ("A", "create {root}/missing/child", "ZNONODE"),
        ("A", "create +e {root}/eph", "ZOK"),
        ("A", "create {root}/eph/child", "ZNOCHILDRENFOREPHEMERALS"),
        ("A", "create2 +e {root}/eph2", "ZOK"),
        ("A", "create +s {root}/seq-", "ZOK"),
        ("A", "create +s {root}/seq-", "ZOK"),
        ("A", "create +es {root}/eseq-", "ZOK"),
        ("A", "create +c {root}/container", "ZOK"),
        ("A", "create +t=600000 {root}/ttl", "ZOK"),  # needs extendedTypesEnabled=true
        ("A", "ls {root}", "ZOK"),  # child watch on the root
        ("A", "create {root}/after", "ZOK"),  # fires it
        ("A", "ls2 {root}", "ZOK"),
        ("A", "exists {root}/later", "ZNONODE"),  # exists watch on a missing node
        ("A", "create {root}/later", "ZOK"),  # fires NodeCreated (and the root's child watch from ls2)
        ("A", "wexists {root}/never", "ZNONODE"),
        ("A", "get {root}/nope", "ZNONODE"),
        ("A", "ls {root}/nope", "ZNONODE"),
        ("A", "ls2 {root}/nope", "ZNONODE"),
        ("A", "set {root}/nope x", "ZNONODE"),
        ("A", "delete {root}/nope", "ZNONODE"),
        ("A", "delete {root}", "ZNOTEMPTY"),
        ("A", "sync {root}/nope", "ZOK"),  # ZooKeeper does not check that a sync path exists
        ("A", "get {root}/after", "ZOK"),
        ("A", "delete {root}/after", "ZOK"),  # data watch fires NodeDeleted
        ("A", "delete /", "ZBADARGUMENTS"),
        ("A", "delete /zookeeper", "ZBADARGUMENTS"),
        ("A", "get /zookeeper", "ZOK"),
        ("A", "ls /zookeeper", "ZOK"),
        ("A", "config", "ZOK"),  # getConfig: /zookeeper/config
        ("B", "get {root}/eph", "ZOK"),  # owner is session A
        ("B", "exists {root}/eph2", "ZOK"),
        ("B", "ls {root}", "ZOK"),
        ("A", "quit", None),  # closing A deletes its ephemerals; B's watches fire
        ("B", "ls {root}", "ZOK"),
        ("B", "create /od", None),  # `od` works on the fixed path /od: ZOK, or ZNODEEXISTS on reuse
        ("B", "od", None),
        ("B", "delete /od", "ZOK"),
    ]


def run_c_client_checked(host_port: str) -> tuple[list[str], list[str]]:
    """Run the scenario; return (observations, problems). Raises CliMtError if it cannot finish."""
    root = f"/rk-c-compat-{uuid.uuid4().hex[:12]}"
    normaliser = Normaliser(root)
    observations: list[str] = []
    problems: list[str] = []
    sessions: dict[str, CliMtSession] = {}
    try:
        for label in ("A", "B"):
            session = CliMtSession(host_port, label)
            sessions[label] = session
            session.connect()
            normaliser.sessions[session.session_id] = label
        for label, template, expected in scenario_steps():
            command = template.replace("{root}", root)
            session = sessions[label]
            if template == "quit":
                observations.extend(close_and_observe(sessions, normaliser, root))
                continue
            if template == "create /od":
                step = normaliser.block(label, command, session.run(command))
                ready = all(" ZOK" in line or " ZNODEEXISTS" in line for line in step)
                observations.append(f"{label}: create /od -> {'ready' if ready else step}")
                continue
            if template == "od":
                observations.extend(overdose(session, normaliser))
                continue
            step = normaliser.block(label, command, session.run(command))
            observations.extend(step)
            prefix = f"{label}: {normaliser.path_command(command)} -> "
            results = [line[len(prefix):].split(" ", 1)[0] for line in step if line.startswith(prefix)]
            if results != [expected]:
                problems.append(f"'{normaliser.path_command(command)}': expected {expected}, got {results or 'no result'}")
        cleanup(sessions["B"], normaliser, root, observations, problems)
    finally:
        for session in sessions.values():
            session.kill()
    return rank_zxids(observations), problems


def close_and_observe(sessions: dict[str, CliMtSession], normaliser: Normaliser, root: str) -> list[str]:
    """Quit session A, then wait on B for the watch its ephemerals' deletion fires."""
    sessions["A"].quit()
    observer = sessions["B"]
    # B holds a data watch on R/eph (get) and an exists watch on R/eph2, and a child watch on R.
    lines = observer.await_line(re.compile(rf"^Watcher DELETED_EVENT state = \w+ for path {re.escape(root)}/eph$"))
    lines += observer.drain()
    # Session close deletes the ephemerals in one transaction, in an order ZooKeeper does not
    # define (a hash set); the events it fires are therefore compared as a set.
    events = sorted(normaliser.block("B", "(session A closed)", lines))
    return [f"{event} [unordered]" for event in events]


def overdose(session: CliMtSession, normaliser: Normaliser) -> list[str]:
    """cli_mt's `od`: 200 pipelined setData(64 KiB)+getData(watch) pairs on /od."""
    lines = session.run("od", timeout_s=OVERDOSE_TIMEOUT_S)
    while not any(line.startswith("Recvd ") for line in lines):
        lines += session.await_line(re.compile(r"^Recvd \d+ responses for \d+ requests sent$"), OVERDOSE_TIMEOUT_S)
    completions: dict[str, int] = {}
    changed_events = 0
    other = []
    for line in lines:
        match = re.match(r"^Data completion /od rc = (-?\d+)$", line)
        if match:
            name = error_name(int(match.group(1)))
            completions[name] = completions.get(name, 0) + 1
        elif line == "Watcher CHANGED_EVENT state = CONNECTED_STATE for path /od":
            changed_events += 1
        elif line.startswith("od command response: rc = "):
            other.append(f"first set {error_name(int(line.rsplit(' ', 2)[1]))}")
        elif line.startswith("Recvd "):
            other.append(line)
        elif line in ("Overdosing...", "Stat:") or line.startswith("\t"):
            continue
        else:
            other.append(repr(line))
    summary = ", ".join(f"{name} x{count}" for name, count in sorted(completions.items()))
    return [
        f"{session.label}: od -> {'; '.join(other)}",
        f"{session.label}: od -> getData completions: {summary}",
        f"{session.label}: od -> CHANGED_EVENT /od x{changed_events}",
    ]


def cleanup(session: CliMtSession, normaliser: Normaliser, root: str, observations: list[str], problems: list[str]) -> None:
    """Delete what the scenario left (children first) and record it: deterministic too."""
    listing = session.run(f"ls {root}")
    observations.extend(normaliser.block(session.label, f"ls {root}", listing))
    children = sorted(line[1:] for line in listing if line.startswith("\t"))
    for child in children:
        command = f"delete {root}/{child}"
        observations.extend(normaliser.block(session.label, command, session.run(command)))
    command = f"delete {root}"
    step = normaliser.block(session.label, command, session.run(command))
    observations.extend(step)
    if not any(line.endswith("-> ZOK") for line in step):
        problems.append(f"could not delete the scenario root: {step}")
    session.quit()


def run_c_client_scenario(host_port: str) -> list[str]:
    """Normalised observations of the cli_mt scenario against host_port (raises CliMtError)."""
    observations, _problems = run_c_client_checked(host_port)
    return observations


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("host_port", help="connect string, e.g. 127.0.0.1:2181")
    parser.add_argument("--golden", help="compare the observations with this file")
    parser.add_argument("--write-golden", help="write the observations to this file")
    arguments = parser.parse_args()
    try:
        observations, problems = run_c_client_checked(arguments.host_port)
    except CliMtError as error:
        print(f"FAIL c_client: {error}", file=sys.stderr)
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
            import difflib

            problems.append("observations differ from " + arguments.golden + ":\n" + "\n".join(
                difflib.unified_diff(expected, observations, "golden", "observed", lineterm="")))
    for problem in problems:
        print(f"FAIL c_client: {problem}", file=sys.stderr)
    if not problems:
        print(f"PASS c_client ({len(observations)} observations)", file=sys.stderr)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
