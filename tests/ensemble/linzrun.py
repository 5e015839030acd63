"""Histories for the linearizability checker (linearizability.py): several client sessions doing
creates, plain sets, compare-and-set (setData with a version), deletes, sync + read and plain
reads against an ensemble while a nemesis kills servers (-9), pauses the leader (SIGSTOP longer
than syncLimit x tickTime) and partitions members (NetLab of test_partition.py: each server in
its own network namespace on a bridge; a cut is its bridge port down).

Used by test_linearizability.py (a short schedule) and scripts/linearizability-soak.py.

Clients are Kazoo without command retries: a request that times out or whose connection or
session is lost is recorded as indeterminate (possibly applied, no return event). Each worker
is one thread with one KazooClient; even workers are pinned to one server, odd ones have the
whole connect string (their sessions move between servers, which the session guarantees must
survive). Now and then a worker pipelines two compare-and-sets on one key (the second expects
the version the first makes) and a sync + read: FIFO order within the session is what makes the
second succeed.
"""

import logging
import os
import random
import signal
import threading
import time
import uuid

from . import linearizability as lin
from .harness import wait_until

OP_TIMEOUT_S = 5.0  # a request unanswered this long is indeterminate
SESSION_TIMEOUT_S = 6.0  # > the pause, so that a pause alone expires no session
SERVE_TIMEOUT_S = 45.0
QUIET_S = 0.5  # between faults: the ensemble serves, clients make progress

# Operation mix (weights).
MIX = (("read", 26), ("get", 14), ("cas", 24), ("set", 14), ("create", 8), ("delete", 4),
       ("pipeline", 10))


class History:
    def __init__(self):
        self.lock = threading.Lock()
        self.ops = []

    def add(self, op):
        with self.lock:
            self.ops.append(op)

    def snapshot(self):
        with self.lock:
            return list(self.ops)


def _outcome_of(exc):
    from kazoo.exceptions import BadVersionError, NodeExistsError, NoNodeError
    if isinstance(exc, NoNodeError):
        return lin.NO_NODE
    if isinstance(exc, NodeExistsError):
        return lin.NODE_EXISTS
    if isinstance(exc, BadVersionError):
        return lin.BAD_VERSION
    # ConnectionLoss, SessionExpired, ConnectionClosed, our timeout, ...: it may have been
    # applied.
    return lin.UNKNOWN


def _session(client):
    cid = client.client_id
    return cid[0] if cid else 0


class Worker(threading.Thread):
    def __init__(self, name, hosts, keys, history, seed, stopping):
        super().__init__(daemon=True, name="linz-" + name)
        self.name_ = name
        self.hosts = hosts
        self.keys = keys
        self.history = history
        self.rng = random.Random(seed)
        self.stopping = stopping
        self.seq = 0
        self.counter = 0
        self.versions = {}  # key -> last version seen (for cas guesses)
        self.connected = threading.Event()
        self.client = None
        self.sessions = set()
        self.errors = []

    def _listener(self, state):
        from kazoo.protocol.states import KazooState
        if state == KazooState.CONNECTED:
            self.connected.set()
        else:
            self.connected.clear()

    def run(self):
        from kazoo.client import KazooClient
        from kazoo.retry import KazooRetry
        try:
            self.client = KazooClient(
                hosts=self.hosts, timeout=SESSION_TIMEOUT_S,
                connection_retry=KazooRetry(max_tries=-1, delay=0.05, max_delay=0.5))
            self.client.add_listener(self._listener)
            while not self.stopping.is_set():
                try:
                    self.client.start(timeout=10)
                    break
                except Exception:
                    continue
            self.connected.set()
            weights = [w for _, w in MIX]
            names = [n for n, _ in MIX]
            while not self.stopping.is_set():
                if not self.connected.wait(1.0):
                    continue
                what = self.rng.choices(names, weights)[0]
                if what == "pipeline":
                    self._pipeline()
                else:
                    self._one(what, self.rng.choice(self.keys))
        except Exception as e:  # the test asserts there are none
            self.errors.append(repr(e))
        finally:
            if self.client is not None:
                try:
                    self.client.stop()
                    self.client.close()
                except Exception:
                    pass

    # ------------------------------------------------------------------ operations

    def _data(self):
        self.counter += 1
        return ("%s-%d" % (self.name_, self.counter)).encode()

    def _new_op(self, kind, key, **kw):
        op = lin.Op(process=self.name_, session=_session(self.client), kind=kind, key=key,
                    invoke=time.monotonic(), seq=self.seq, **kw)
        self.seq += 1
        return op

    def _submit(self, op):
        c = self.client
        if op.kind == "create":
            return [c.create_async(op.key, op.data, include_data=True)]
        if op.kind == "set":
            return [c.set_async(op.key, op.data, -1)]
        if op.kind == "cas":
            return [c.set_async(op.key, op.data, op.expected)]
        if op.kind == "delete":
            return [c.delete_async(op.key, -1)]
        if op.kind == "read":
            # sync then getData, pipelined: FIFO makes the read follow the sync.
            return [c.sync_async(op.key), c.get_async(op.key)]
        return [c.get_async(op.key)]

    def _finish(self, op, results, deadline):
        """Waits for `results` (of _submit) until `deadline` and records op's outcome."""
        value = None
        try:
            for r in results:
                value = r.get(timeout=max(0.0, deadline - time.monotonic()))
        except Exception as e:
            outcome = _outcome_of(e)
            op.outcome = outcome
            op.complete = None if outcome == lin.UNKNOWN else time.monotonic()
        else:
            op.complete = time.monotonic()
            op.outcome = lin.OK
            stat = None
            if op.kind == "create":
                stat = value[1]
            elif op.kind in ("set", "cas"):
                stat = value
            elif op.kind in ("read", "get"):
                op.result_data, stat = value[0], value[1]
            if stat is not None:
                op.result_version = stat.version
                op.zxid = stat.mzxid
                self.versions[op.key] = stat.version
        if op.outcome == lin.NO_NODE:
            self.versions.pop(op.key, None)
        # The session that answered: the op is in no session's guarantees when it changed.
        if op.outcome != lin.UNKNOWN and _session(self.client) != op.session:
            op.session = 0
        if op.session:
            self.sessions.add(op.session)
        self.history.add(op)

    def _expected(self, key):
        v = self.versions.get(key, 0)
        # Mostly the version last seen (often right), sometimes off by one (BadVersion).
        return max(0, v + self.rng.choice((0, 0, 0, 1, -1)))

    def _one(self, kind, key):
        kw = {}
        if kind in ("create", "set", "cas"):
            kw["data"] = self._data()
        if kind == "cas":
            kw["expected"] = self._expected(key)
        op = self._new_op(kind, key, **kw)
        try:
            results = self._submit(op)
        except Exception as e:
            results = e
        if isinstance(results, Exception):
            op.outcome, op.complete = lin.UNKNOWN, None
            self.history.add(op)
            return
        self._finish(op, results, op.invoke + OP_TIMEOUT_S)

    def _pipeline(self):
        """cas(v), cas(v + 1), sync + read on one key, all submitted before any answer."""
        key = self.rng.choice(self.keys)
        v = self.versions.get(key, 0)
        ops = [self._new_op("cas", key, data=self._data(), expected=v),
               None, None]
        pending = []
        try:
            pending.append(self._submit(ops[0]))
            ops[1] = self._new_op("cas", key, data=self._data(), expected=v + 1)
            pending.append(self._submit(ops[1]))
            ops[2] = self._new_op("read", key)
            pending.append(self._submit(ops[2]))
        except Exception:
            pass
        deadline = time.monotonic() + OP_TIMEOUT_S
        for i, op in enumerate(ops):
            if op is None:
                continue
            if i < len(pending):
                self._finish(op, pending[i], deadline)
            else:
                op.outcome, op.complete = lin.UNKNOWN, None
                self.history.add(op)


class Nemesis(threading.Thread):
    """Applies `faults` (names below) one after another, cycling, until `stopping`; between two
    faults it waits for the ensemble to serve with one leader and then QUIET_S. Every fault
    heals itself (restart, SIGCONT, link up) before the next, even when interrupted.

    kill        kill -9 of a member (the leader every other time), restarted once another
                leader serves (or after 1 s for a follower)
    kill2       kill -9 of the leader and one follower at once (5 servers), both restarted
    pause       SIGSTOP of the leader for `pause_s` (> syncLimit x tickTime), then SIGCONT
    partition   the leader's bridge port down until the others elect, then `hold_s`, then up
    partition-follower   a follower cut off for `hold_s`
    """

    def __init__(self, ensemble, lab, faults, seed, stopping, pause_s, hold_s=1.0):
        super().__init__(daemon=True, name="linz-nemesis")
        self.e = ensemble
        self.lab = lab
        self.faults = [f for f in faults if lab is not None or not f.startswith("partition")]
        self.skipped = sorted(set(faults) - set(self.faults))
        self.rng = random.Random(seed)
        self.stopping = stopping
        self.pause_s = pause_s
        self.hold_s = hold_s
        self.events = []  # (fault, targets, start, end)
        self.errors = []
        self.kills = 0

    def counts(self):
        out = {}
        for f, _, _, _ in self.events:
            out[f] = out.get(f, 0) + 1
        return out

    def run(self):
        i = 0
        try:
            while not self.stopping.is_set() and self.faults:
                self.e.wait_serving(SERVE_TIMEOUT_S)
                if self.stopping.wait(QUIET_S):
                    break
                fault = self.faults[i % len(self.faults)]
                i += 1
                start = time.monotonic()
                targets = getattr(self, "_" + fault.replace("-", "_"))()
                self.events.append((fault, targets, start, time.monotonic()))
        except Exception as e:
            self.errors.append(repr(e))

    def _participants(self):
        return self.e.participant_ids

    def _kill(self):
        leader = self.e.leader()
        sid = leader if self.kills % 2 == 0 else self.rng.choice(
            [s for s in self._participants() if s != leader])
        self.kills += 1
        self.e.kill(sid)
        try:
            if sid == leader:
                self.e.wait_leader(SERVE_TIMEOUT_S, exclude=[sid])
            else:
                self.stopping.wait(1.0)
        finally:
            self.e.start_server(sid)
        return [sid]

    def _kill2(self):
        leader = self.e.leader()
        other = self.rng.choice([s for s in self._participants() if s != leader])
        self.e.kill(leader)
        self.e.kill(other)
        try:
            self.e.wait_leader(SERVE_TIMEOUT_S, exclude=[leader, other])
        finally:
            self.e.start_server(leader)
            self.e.start_server(other)
        return [leader, other]

    def _pause(self):
        sid = self.e.leader()
        pid = self.e.members[sid].proc.pid
        os.kill(pid, signal.SIGSTOP)
        try:
            time.sleep(self.pause_s)  # the fault itself: a process that does not run
        finally:
            os.kill(pid, signal.SIGCONT)
        return [sid]

    def _partition(self):
        sid = self.e.leader()
        self.lab.cut(sid)
        try:
            self.e.wait_leader(SERVE_TIMEOUT_S, exclude=[sid])
            self.stopping.wait(self.hold_s)
        finally:
            self.lab.heal(sid)
        return [sid]

    def _partition_follower(self):
        sid = self.rng.choice(self.e.followers() or self._participants())
        self.lab.cut(sid)
        try:
            time.sleep(self.hold_s)  # the fault itself: a member cut off for hold_s
        finally:
            self.lab.heal(sid)
        return [sid]


class KazooFailures(logging.Handler):
    """Collects the exceptions that end a Kazoo connection loop. Kazoo checks that every reply
    carries the xid of the oldest request in flight and otherwise raises "xids do not match"
    in its connection thread, which then stops (the requests in flight never complete): the
    server answered a session's requests out of order, a FIFO violation no history shows."""

    def __init__(self):
        super().__init__(level=logging.ERROR)
        self.failures = []

    def emit(self, record):
        exc = record.exc_info[1] if record.exc_info else None
        self.failures.append("%s: %r" % (record.threadName, exc if exc else record.getMessage()))

    def violations(self):
        return [lin.Violation("fifo", "-", "the server answered a session out of request "
                              "order (%s)" % f) for f in self.failures if "xids do not match" in f]

    def others(self):
        return [f for f in self.failures if "xids do not match" not in f]


class RunResult:
    def __init__(self, kind, servers, ops, report, nemesis, workers, duration_s, kazoo):
        self.kind = kind
        self.servers = servers
        self.ops = ops
        self.report = report
        self.faults = nemesis.counts()
        self.skipped_faults = nemesis.skipped
        self.nemesis_errors = nemesis.errors
        self.worker_errors = [e for w in workers for e in w.errors] + kazoo.others()
        self.sessions = sum(len(w.sessions) for w in workers)
        self.duration_s = duration_s
        self.ok_ops = sum(1 for o in ops if o.outcome == lin.OK)
        self.events = nemesis.events

    def summary(self):
        return "%s %d servers, %.0fs, faults %s%s, %d sessions: %s" % (
            self.kind, self.servers, self.duration_s, self.faults,
            " (skipped: %s)" % ",".join(self.skipped_faults) if self.skipped_faults else "",
            self.sessions, self.report.summary())


def run(ensemble, lab, duration_s, faults, workers=5, keys=6, seed=None, pause_s=2.0):
    """Starts the workload and the nemesis on a serving `ensemble`, stops the nemesis after
    `duration_s`, lets the ensemble recover, reads every key through every server (sync + read,
    recorded as well), checks the history. Returns a RunResult."""
    seed = seed if seed is not None else random.randrange(1 << 30)
    rng = random.Random(seed)
    e = ensemble
    e.wait_serving(SERVE_TIMEOUT_S)
    root = "/linz-%s" % uuid.uuid4().hex[:8]
    setup = e.client()
    try:
        setup.retry(setup.create, root)
    finally:
        setup.stop()
        setup.close()
    key_paths = ["%s/k%d" % (root, i) for i in range(keys)]
    history = History()
    stopping = threading.Event()
    kazoo = KazooFailures()
    kazoo_logger = logging.getLogger("kazoo.client")
    kazoo_logger.addHandler(kazoo)
    try:
        return _run(e, lab, duration_s, faults, workers, rng, pause_s, key_paths, history,
                    stopping, kazoo)
    finally:
        kazoo_logger.removeHandler(kazoo)


def _run(e, lab, duration_s, faults, workers, rng, pause_s, key_paths, history, stopping,
         kazoo):
    ws = []
    for i in range(workers):
        hosts = e.address(e.ids[(i // 2) % len(e.ids)]) if i % 2 == 0 else e.connect_string()
        ws.append(Worker("c%d" % i, hosts, key_paths, history, rng.randrange(1 << 30),
                         stopping))
    for w in ws:
        w.start()
    nemesis_stop = threading.Event()
    nemesis = Nemesis(e, lab, faults, rng.randrange(1 << 30), nemesis_stop, pause_s)
    started = time.monotonic()
    nemesis.start()
    try:
        nemesis_stop.wait(duration_s)
    finally:
        nemesis_stop.set()
        nemesis.join(SERVE_TIMEOUT_S * 2 + 20)
    if nemesis.is_alive():
        nemesis.errors.append("nemesis did not finish its fault in time")
    # Recovery: every member serves again, and the workers make progress after the last fault.
    e.wait_serving(SERVE_TIMEOUT_S)
    healed = time.monotonic()
    try:
        wait_until(lambda: any(o.invoke > healed and o.outcome == lin.OK
                               for o in history.snapshot()),
                   SERVE_TIMEOUT_S, "an operation acknowledged after the last fault")
    except AssertionError as ex:  # reported with the history's verdict
        nemesis.errors.append(str(ex))
    stopping.set()
    for w in ws:
        w.join(OP_TIMEOUT_S * 3 + 15)
    duration = time.monotonic() - started
    # Final reads through every member (issue: lost acknowledged writes, divergent members).
    for sid in e.ids:
        c = e.client(sid)
        try:
            for key in key_paths:
                op = lin.Op(process="final-s%d" % sid, session=0, kind="read", key=key,
                            invoke=time.monotonic(), seq=0)
                try:
                    c.sync(key)
                    data, stat = c.get(key)
                    op.result_data, op.result_version, op.zxid = data, stat.version, stat.mzxid
                    op.outcome = lin.OK
                except Exception as ex:
                    op.outcome = _outcome_of(ex)
                    if op.outcome == lin.UNKNOWN:
                        raise
                op.complete = time.monotonic()
                history.add(op)
        finally:
            c.stop()
            c.close()
    ops = history.snapshot()
    report = lin.check(ops)
    report.violations.extend(kazoo.violations())
    return RunResult(e.kind, len(e.ids), ops, report, nemesis, ws, duration, kazoo)
