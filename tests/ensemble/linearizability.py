"""A linearizability checker for ZooKeeper histories, and the session guarantees ZooKeeper
promises (issue 14, "Verification at scale", item 2). Pure: histories in, verdicts out; no
sockets, clocks or threads (the recorder, workload and nemesis are in linzrun.py).

The model: every znode a test touches is a register whose state is ABSENT or (data, version).
Operations and the results they may have (ZooKeeper's DataTree / PrepRequestProcessor):

    create(key, data)        ok -> ABSENT becomes (data, 0); NodeExists: the node existed
    set(key, data)           setData version -1: ok(version v) -> (data, old + 1), v = old + 1;
                             NoNode: absent
    cas(key, data, expected) setData with a version: ok(v) only if version == expected, then
                             (data, expected + 1); BadVersion: present with another version;
                             NoNode: absent
    delete(key)              delete version -1: ok -> ABSENT; NoNode: absent
    read(key)                sync then getData (pipelined, FIFO): ok(data, version) -> the state
                             is exactly that; NoNode: absent
    get(key)                 getData without sync: NOT linearizable in ZooKeeper (a follower
                             serves it from its own, possibly older, state), so it is checked
                             only by the session guarantees below

An operation whose outcome is unknown (timed out, connection lost, session expired) is
*indeterminate*: it may have been applied at any moment after its invocation, or never. It has
no return event (an open end); a write of that kind is linearized with the effect of its success
where the state allows it, or left out (a failed write changes nothing, so leaving it out is the
same as linearizing its failure). An indeterminate read constrains nothing.

Per key, the Wing & Gong search with Lowe's memoization (the algorithm of "Testing for
Linearizability", Lowe 2017, as Porcupine implements it): the history is a list of call and
return events in real-time order; the search linearizes calls from the head of the list in
every order the model accepts, backtracks at a return whose call it has not linearized, and
never revisits a (set of linearized operations, state) pair. Linearizability is local (Herlihy
& Wing): a history is linearizable iff every key's sub-history is, so keys are checked apart.

Session guarantees (ZooKeeper Programmer's Guide, "ZooKeeper guarantees": sequential
consistency, FIFO client order; a client never sees an older view after a newer one, and sees
its own writes), checked with the zxids the server reports in Stats:

* fifo: a session's acknowledged writes have increasing zxids in the order it submitted them;
* stale-read: a read (with or without sync) by a session returns a state at least as new as
  everything that session had seen before it: no known write to that key has a zxid above the
  read's mzxid and at most the session's horizon (the largest zxid in the results of the ops it
  submitted earlier). This covers read-your-writes and monotonic reads, across keys too;
* zxid-divergence: two results naming the same (key, mzxid) with different data or version
  (two servers with different transactions under one zxid).

And, to name the culprit of the commonest linearizability violation (the search reports only
where it got stuck): stale-sync-read, a sync + read that returned a node older than a write to
it acknowledged before the read began.
"""

from dataclasses import dataclass, field

ABSENT = None
INF = float("inf")

# Operation kinds and outcomes.
WRITES = ("create", "set", "cas", "delete")
KINDS = WRITES + ("read", "get")
OK, NO_NODE, NODE_EXISTS, BAD_VERSION, UNKNOWN = ("ok", "NoNode", "NodeExists", "BadVersion",
                                                  "unknown")
OUTCOMES = (OK, NO_NODE, NODE_EXISTS, BAD_VERSION, UNKNOWN)
# Search steps per key before the verdict is "unknown" (not a violation): an explicit bound on a
# search that is exponential in the worst case (many concurrent indeterminate writes).
SEARCH_STEPS_MAX = 2_000_000


@dataclass
class Op:
    """One operation of a history. `complete` is None for an indeterminate operation (outcome
    UNKNOWN). For results: `result_data`/`result_version` of a read, `result_version` of an
    acknowledged set/cas/create, `zxid` the Stat's mzxid (a create's czxid) where the server
    returned a Stat."""
    process: str  # the client (thread) that issued it
    session: int  # ZooKeeper session id (0 when not known); guarantees hold per session
    kind: str
    key: str
    invoke: float
    complete: object = None  # float, or None for indeterminate
    outcome: str = UNKNOWN
    data: bytes = None  # the data a create/set/cas writes
    expected: int = None  # cas: the expected version
    result_data: bytes = None
    result_version: int = None
    zxid: int = None
    seq: int = 0  # submission order within the process
    id: int = -1

    def __post_init__(self):
        assert self.kind in KINDS, self.kind
        assert self.outcome in OUTCOMES, self.outcome
        assert (self.complete is None) == (self.outcome == UNKNOWN), self

    def determinate(self):
        return self.outcome != UNKNOWN

    def describe(self):
        args = {"create": "%r" % self.data, "set": "%r" % self.data,
                "cas": "%r expected v%s" % (self.data, self.expected), "delete": "",
                "read": "", "get": ""}[self.kind]
        if self.outcome == OK and self.kind in ("read", "get"):
            res = "ok %r v%s" % (self.result_data, self.result_version)
        elif self.outcome == OK and self.result_version is not None:
            res = "ok v%s" % self.result_version
        else:
            res = self.outcome
        z = " zxid 0x%x" % self.zxid if self.zxid is not None else ""
        end = "%.3f" % self.complete if self.complete is not None else "open"
        return "#%d %s s%x %s(%s %s) [%.3f, %s] -> %s%s" % (
            self.id, self.process, self.session, self.kind, self.key, args, self.invoke, end,
            res, z)


@dataclass
class Violation:
    kind: str  # "linearizability", "fifo", "stale-read", "zxid-divergence"
    key: str
    message: str
    ops: list = field(default_factory=list)

    def __str__(self):
        return "%s on %s: %s\n    %s" % (self.kind, self.key, self.message,
                                         "\n    ".join(o.describe() for o in self.ops))


class _Invalid:
    pass


INVALID = _Invalid()


def step(state, op):
    """The model's transition: the state after `op` (with its recorded outcome) applied to
    `state`, or INVALID when that outcome is impossible in `state`. An indeterminate write is
    stepped as its success (its failure is the same as leaving it out)."""
    o = op.outcome
    if op.kind in ("read", "get"):
        if o == OK:
            return state if state == (op.result_data, op.result_version) else INVALID
        if o == NO_NODE:
            return state if state is ABSENT else INVALID
        return INVALID
    success = o in (OK, UNKNOWN)
    if op.kind == "create":
        if success:
            if state is not ABSENT:
                return INVALID
            if o == OK and op.result_version not in (None, 0):
                return INVALID
            return (op.data, 0)
        if o == NODE_EXISTS:
            return state if state is not ABSENT else INVALID
        return INVALID
    if op.kind in ("set", "cas"):
        if success:
            if state is ABSENT:
                return INVALID
            if op.kind == "cas" and state[1] != op.expected:
                return INVALID
            version = state[1] + 1
            if o == OK and op.result_version is not None and op.result_version != version:
                return INVALID
            return (op.data, version)
        if o == NO_NODE:
            return state if state is ABSENT else INVALID
        if o == BAD_VERSION and op.kind == "cas":
            return state if state is not ABSENT and state[1] != op.expected else INVALID
        return INVALID
    if op.kind == "delete":
        if success:
            return ABSENT if state is not ABSENT else INVALID
        if o == NO_NODE:
            return state if state is ABSENT else INVALID
        return INVALID
    return INVALID


class _Entry:
    __slots__ = ("op", "is_return", "match", "prev", "next", "time")

    def __init__(self, op, is_return, time):
        self.op = op
        self.is_return = is_return
        self.time = time
        self.match = None
        self.prev = None
        self.next = None


def check_key(ops, initial=ABSENT, steps_max=SEARCH_STEPS_MAX):
    """Wing-Gong-Lowe over one key's operations (plain `get`s are left out, indeterminate reads
    too). Returns (verdict, detail): verdict True (linearizable), False (not: detail names the
    operation no order could place and the deepest prefix found), or None (search bound hit)."""
    ops = [o for o in ops if o.kind != "get" and not (o.kind == "read" and not o.determinate())]
    if not ops:
        return True, None
    events = []
    for o in ops:
        call = _Entry(o, False, o.invoke)
        ret = _Entry(o, True, o.complete if o.complete is not None else INF)
        call.match = ret
        events.append(call)
        events.append(ret)
    # Real-time order; at equal times calls first (the more permissive reading).
    events.sort(key=lambda e: (e.time, e.is_return))
    head = _Entry(None, False, -INF)
    prev = head
    for e in events:
        prev.next = e
        e.prev = prev
        prev = e
    index = {id(o): i for i, o in enumerate(ops)}

    def lift(call):
        call.prev.next = call.next
        if call.next is not None:
            call.next.prev = call.prev
        ret = call.match
        ret.prev.next = ret.next
        if ret.next is not None:
            ret.next.prev = ret.prev

    def unlift(call):
        ret = call.match
        ret.prev.next = ret
        if ret.next is not None:
            ret.next.prev = ret
        call.prev.next = call
        if call.next is not None:
            call.next.prev = call

    state = initial
    linearized = 0
    cache = set()
    calls = []  # (call entry, state before it)
    entry = head.next
    steps = 0
    best = (-1, None, None, None)  # (depth, blocking return op, state there, linearized ops)
    while entry is not None:
        steps += 1
        if steps > steps_max:
            return None, "search bound of %d steps reached" % steps_max
        if not entry.is_return:
            new_state = step(state, entry.op)
            if new_state is not INVALID:
                bit = 1 << index[id(entry.op)]
                key = (linearized | bit, new_state)
                if key not in cache:
                    cache.add(key)
                    calls.append((entry, state))
                    state = new_state
                    linearized |= bit
                    lift(entry)
                    entry = head.next
                    continue
            entry = entry.next
            continue
        # A return event: its call was not linearized before it.
        if entry.op.complete is None:
            # Every determinate operation is linearized (their returns all come before the open
            # ends); the indeterminate ones left over were never applied.
            return True, None
        if len(calls) > best[0]:
            best = (len(calls), entry.op, state, [c.op for c, _ in calls])
        if not calls:
            break
        call, state = calls.pop()
        linearized &= ~(1 << index[id(call.op)])
        unlift(call)
        entry = call.next
    if entry is None:
        return True, None
    depth, blocking, at_state, prefix = best
    return False, {"op": blocking, "state": at_state, "prefix": prefix}


def check_linearizable(ops, steps_max=SEARCH_STEPS_MAX):
    """Every key's sub-history. Returns (violations, unknown_keys)."""
    by_key = {}
    for o in ops:
        by_key.setdefault(o.key, []).append(o)
    violations, unknown = [], []
    for key in sorted(by_key):
        verdict, detail = check_key(by_key[key], steps_max=steps_max)
        if verdict is None:
            unknown.append(key)
        elif verdict is False:
            b = detail["op"]
            st = detail["state"]
            state = "absent" if st is ABSENT else "%r v%d" % st
            tail = detail["prefix"][-6:]
            # What overlapped the operation that could not be placed: the ops to look at.
            window = [o for o in by_key[key] if o.invoke <= b.complete and
                      (o.complete is None or o.complete >= b.invoke) and o is not b]
            violations.append(Violation(
                "linearizability", key,
                "no linearization places %s (deepest prefix: %d ops, ending in state %s; "
                "its last ops, then the ops concurrent with it)" % (b.describe(), len(
                    detail["prefix"]), state),
                [b] + tail + [o for o in window if o not in tail][:12]))
    return violations, unknown


def check_sessions(ops):
    """FIFO, stale reads within a session (read-your-writes, monotonic reads) and zxid
    divergence; see the module doc. Returns a list of Violations."""
    violations = []
    # Known writes per key: (zxid, op), from acknowledged writes that carry a Stat.
    writes = {}
    states = {}  # (key, zxid) -> (data, version, op)
    deleted_keys = {o.key for o in ops if o.kind == "delete"}
    for o in ops:
        if o.outcome != OK or o.zxid is None:
            continue
        if o.kind in ("create", "set", "cas"):
            writes.setdefault(o.key, []).append((o.zxid, o))
            version = o.result_version if o.result_version is not None else (
                0 if o.kind == "create" else None)
            seen = (o.data, version)
        elif o.kind in ("read", "get"):
            seen = (o.result_data, o.result_version)
        else:
            continue
        k = (o.key, o.zxid)
        if k in states:
            prior = states[k]
            if (prior[0] != seen[0] or (None not in (prior[1], seen[1]) and
                                        prior[1] != seen[1])):
                violations.append(Violation(
                    "zxid-divergence", o.key,
                    "two different states under zxid 0x%x" % o.zxid, [prior[2], o]))
        else:
            states[k] = (seen[0], seen[1], o)
    for w in writes.values():
        w.sort(key=lambda x: x[0])
    by_session = {}
    for o in ops:
        by_session.setdefault((o.process, o.session), []).append(o)
    for (process, session), sops in sorted(by_session.items(), key=lambda x: str(x[0])):
        sops.sort(key=lambda o: o.seq)
        horizon, horizon_op = 0, None
        last_write = None
        for o in sops:
            if o.outcome == OK and o.kind in ("read", "get") and session != 0:
                if o.zxid is not None:
                    newer = [w for z, w in writes.get(o.key, ()) if o.zxid < z <= horizon]
                    if newer:
                        violations.append(Violation(
                            "stale-read", o.key,
                            "the session had seen zxid 0x%x (%s) but read mzxid 0x%x, older "
                            "than %d acknowledged write(s) to the key at or below that" % (
                                horizon, "#%d" % horizon_op.id if horizon_op else "-", o.zxid,
                                len(newer)), [o, horizon_op] + newer[-3:]))
            elif (o.outcome == NO_NODE and o.kind in ("read", "get") and session != 0 and
                  o.key not in deleted_keys):
                created = [w for z, w in writes.get(o.key, ()) if z <= horizon]
                if created:
                    violations.append(Violation(
                        "stale-read", o.key,
                        "NoNode although the key was created at zxid 0x%x and the session had "
                        "seen zxid 0x%x (no delete of it in the history)" % (
                            created[0].zxid, horizon), [o, horizon_op, created[0]]))
            if o.outcome == OK and o.kind in ("create", "set", "cas") and o.zxid is not None \
                    and session != 0:
                if last_write is not None and o.zxid <= last_write.zxid:
                    violations.append(Violation(
                        "fifo", o.key,
                        "a write submitted after another by the same session has an older "
                        "zxid (0x%x <= 0x%x)" % (o.zxid, last_write.zxid), [last_write, o]))
                last_write = o
            if o.outcome == OK and o.zxid is not None and o.zxid > horizon:
                horizon, horizon_op = o.zxid, o
    return violations


def check_sync_reads(ops):
    """The plainest form of a non-linearizable sync + read, named for the report: it returned
    a node whose mzxid is older than a write to that key acknowledged (to anyone) before the
    read was invoked. Writes take effect in zxid order, so the read saw a state that had been
    overwritten before it began. (The search finds these too; this says which read it was.)"""
    writes = {}
    for o in ops:
        if o.outcome == OK and o.zxid is not None and o.kind in ("create", "set", "cas"):
            writes.setdefault(o.key, []).append(o)
    violations = []
    for o in ops:
        if o.kind != "read" or o.outcome != OK or o.zxid is None:
            continue
        newer = [w for w in writes.get(o.key, ()) if w.zxid > o.zxid and w.complete < o.invoke]
        if newer:
            last = max(newer, key=lambda w: w.zxid)
            violations.append(Violation(
                "stale-sync-read", o.key,
                "sync + read returned mzxid 0x%x, but %d write(s) to the key with a higher zxid "
                "were acknowledged before it was invoked (the newest 0x%x)" % (
                    o.zxid, len(newer), last.zxid), [o, last]))
    return violations


@dataclass
class Report:
    ops: int
    determinate: int
    indeterminate: int
    keys: int
    violations: list
    unknown_keys: list

    def ok(self):
        return not self.violations

    def summary(self):
        return ("%d ops (%d determinate, %d indeterminate) on %d keys: %d violation(s)%s" % (
            self.ops, self.determinate, self.indeterminate, self.keys, len(self.violations),
            ", search bound hit on %d key(s)" % len(self.unknown_keys)
            if self.unknown_keys else ""))


def check(ops, steps_max=SEARCH_STEPS_MAX):
    """Linearizability per key and the session guarantees. Numbers the ops (id) when they are
    not numbered yet."""
    for i, o in enumerate(ops):
        if o.id < 0:
            o.id = i
    lin, unknown = check_linearizable(ops, steps_max)
    sess = check_sessions(ops) + check_sync_reads(ops)
    det = sum(1 for o in ops if o.determinate())
    return Report(len(ops), det, len(ops) - det, len({o.key for o in ops}), lin + sess,
                  unknown)
