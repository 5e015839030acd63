"""Kazoo recipes with real concurrency (several clients and threads) against each server. Not
differential: each must simply work on both servers. Every wait is bounded."""

import threading
import queue
import uuid

import pytest
from kazoo.client import KazooClient
from kazoo.retry import KazooRetry

WAIT_S = 10.0


@pytest.fixture
def clients(server):
    made = []
    base = "/r-%s" % uuid.uuid4().hex[:12]

    def make():
        c = KazooClient(hosts="%s:%d" % (server.host, server.port), timeout=10.0,
                        connection_retry=KazooRetry(max_tries=-1, delay=0.05, max_delay=0.5))
        c.start(timeout=15)
        made.append(c)
        return c

    make.base = base
    yield make
    for c in made:
        try:
            c.stop()
            c.close()
        except Exception:
            pass


def run_threads(targets):
    ts = [threading.Thread(target=t, daemon=True) for t in targets]
    for t in ts:
        t.start()
    for t in ts:
        t.join(WAIT_S * 2)
    assert not any(t.is_alive() for t in ts), "threads did not finish in time"


def test_lock_mutual_exclusion(clients):
    """Four clients increment a shared value under a Lock; no update is lost and at most one
    holder at a time."""
    path = clients.base + "/lock"
    owner = clients()
    owner.ensure_path(clients.base + "/value")
    owner.set(clients.base + "/value", b"0")
    holders, max_holders, errors = [0], [0], []
    guard = threading.Lock()

    def worker(c):
        def run():
            lock = c.Lock(path, identifier="w")
            for _ in range(5):
                assert lock.acquire(timeout=WAIT_S)
                try:
                    with guard:
                        holders[0] += 1
                        max_holders[0] = max(max_holders[0], holders[0])
                    data, st = c.get(clients.base + "/value")
                    c.set(clients.base + "/value", str(int(data) + 1).encode(), version=st.version)
                    with guard:
                        holders[0] -= 1
                except Exception as e:  # pragma: no cover - recorded for the assertion
                    errors.append(e)
                finally:
                    lock.release()
        return run

    run_threads([worker(clients()) for _ in range(4)])
    assert not errors and max_holders[0] == 1
    assert owner.get(clients.base + "/value")[0] == b"20"


def test_lock_contenders_and_release_on_session_close(clients):
    """A waiting contender gets the lock when the holder's session closes (its ephemeral lock
    node is deleted)."""
    a, b = clients(), clients()
    la, lb = a.Lock(clients.base + "/l", "a"), b.Lock(clients.base + "/l", "b")
    assert la.acquire(timeout=WAIT_S)
    got = threading.Event()
    t = threading.Thread(target=lambda: lb.acquire(timeout=WAIT_S) and got.set(), daemon=True)
    t.start()
    # wait until b is queued (two contender nodes), bounded
    deadline = threading.Event()
    for _ in range(100):
        if len(la.contenders()) == 2:
            break
        deadline.wait(0.05)
    assert la.contenders() == ["a", "b"]
    a.stop()
    assert got.wait(WAIT_S)
    lb.release()


def test_election_single_leader(clients):
    """Election: exactly one leader at a time; when it leaves, another is elected."""
    path = clients.base + "/election"
    leaders = queue.Queue()
    release = {i: threading.Event() for i in range(3)}
    cs = [clients() for _ in range(3)]

    def candidate(i):
        def lead():
            leaders.put(i)
            release[i].wait(WAIT_S)
        return lambda: cs[i].Election(path, "c%d" % i).run(lead)

    threads = [threading.Thread(target=candidate(i), daemon=True) for i in range(3)]
    for t in threads:
        t.start()
    first = leaders.get(timeout=WAIT_S)
    with pytest.raises(queue.Empty):
        leaders.get(timeout=0.3)  # nobody else leads while the first does
    release[first].set()
    second = leaders.get(timeout=WAIT_S)
    assert second != first
    release[second].set()
    third = leaders.get(timeout=WAIT_S)
    assert {first, second, third} == {0, 1, 2}
    release[third].set()
    for t in threads:
        t.join(WAIT_S)


def test_barrier(clients):
    a, b = clients(), clients()
    path = clients.base + "/barrier"
    a.Barrier(path).create()
    passed = threading.Event()
    t = threading.Thread(target=lambda: b.Barrier(path).wait(WAIT_S) and passed.set(),
                         daemon=True)
    t.start()
    assert not passed.wait(0.3)
    a.Barrier(path).remove()
    assert passed.wait(WAIT_S)


def test_double_barrier(clients):
    """Three participants: nobody passes enter() until all three arrived."""
    path = clients.base + "/dbarrier"
    entered = []
    lock = threading.Lock()
    cs = [clients() for _ in range(3)]

    def part(i):
        def run():
            db = cs[i].DoubleBarrier(path, 3)
            db.enter()
            with lock:
                entered.append(i)
            db.leave()
        return run

    run_threads([part(i) for i in range(3)])
    assert sorted(entered) == [0, 1, 2]


def test_queue_fifo_across_clients(clients):
    p, q = clients(), clients()
    path = clients.base + "/queue"
    producer = p.Queue(path)
    for i in range(10):
        producer.put(("item-%d" % i).encode())
    consumer = q.Queue(path)
    got = [consumer.get() for _ in range(10)]
    assert got == [("item-%d" % i).encode() for i in range(10)]
    assert consumer.get() is None


def test_queue_priority(clients):
    c = clients()
    qq = c.Queue(clients.base + "/pq")
    qq.put(b"low", priority=200)
    qq.put(b"high", priority=10)
    assert [qq.get(), qq.get()] == [b"high", b"low"]


def test_locking_queue_concurrent_consumers(clients):
    """LockingQueue: every item is consumed exactly once by three competing consumers."""
    path = clients.base + "/lq"
    prod = clients().LockingQueue(path)
    prod.put_all([str(i).encode() for i in range(12)])
    got, lock = [], threading.Lock()
    cs = [clients() for _ in range(3)]

    def consumer(c):
        def run():
            lq = c.LockingQueue(path)
            while True:
                item = lq.get(timeout=1.0)
                if item is None:
                    return
                with lock:
                    got.append(item)
                assert lq.consume()
        return run

    run_threads([consumer(c) for c in cs])
    assert sorted(got, key=int) == [str(i).encode() for i in range(12)]


def test_counter_concurrent_increments(clients):
    path = clients.base + "/counter"
    cs = [clients() for _ in range(3)]

    def inc(c):
        def run():
            counter = c.Counter(path)
            for _ in range(10):
                counter += 1
        return run

    run_threads([inc(c) for c in cs])
    assert cs[0].Counter(path).value == 30


def test_party_membership(clients):
    path = clients.base + "/party"
    a, b, watcher = clients(), clients(), clients()
    pa, pb = a.Party(path, "alice"), b.Party(path, "bob")
    pa.join()
    pb.join()
    assert sorted(watcher.Party(path)) == ["alice", "bob"]
    assert len(watcher.ShallowParty(path)) == 2
    b.stop()  # session closes: bob's ephemeral leaves the party
    assert sorted(watcher.Party(path)) == ["alice"]
    pa.leave()
    assert list(watcher.Party(path)) == []


def test_semaphore_bounds_holders(clients):
    """Semaphore with max_leases=2: never more than two holders among four clients."""
    path = clients.base + "/sem"
    holding, peak, lock = [0], [0], threading.Lock()
    cs = [clients() for _ in range(4)]

    def worker(c, i):
        def run():
            sem = c.Semaphore(path, identifier="w%d" % i, max_leases=2)
            assert sem.acquire(timeout=WAIT_S)
            with lock:
                holding[0] += 1
                peak[0] = max(peak[0], holding[0])
            threading.Event().wait(0.1)  # hold the lease briefly so holders overlap
            with lock:
                holding[0] -= 1
            sem.release()
        return run

    run_threads([worker(c, i) for i, c in enumerate(cs)])
    assert peak[0] == 2


def test_data_watch_recipe(clients):
    """DataWatch calls back with the initial value and every change (and None on delete)."""
    w, o = clients(), clients()
    path = clients.base + "/dw"
    o.ensure_path(path)
    seen = queue.Queue()
    w.DataWatch(path, lambda data, stat: seen.put(data))
    assert seen.get(timeout=WAIT_S) == b""
    o.set(path, b"1")
    assert seen.get(timeout=WAIT_S) == b"1"
    o.set(path, b"2")
    assert seen.get(timeout=WAIT_S) == b"2"
    o.delete(path)
    assert seen.get(timeout=WAIT_S) is None


def test_children_watch_recipe(clients):
    w, o = clients(), clients()
    path = clients.base + "/cw"
    o.ensure_path(path)
    seen = queue.Queue()
    w.ChildrenWatch(path, lambda children: seen.put(sorted(children)))
    assert seen.get(timeout=WAIT_S) == []
    o.create(path + "/a")
    assert seen.get(timeout=WAIT_S) == ["a"]
    o.create(path + "/b", ephemeral=True)
    assert seen.get(timeout=WAIT_S) == ["a", "b"]
    o.delete(path + "/a")
    assert seen.get(timeout=WAIT_S) == ["b"]


def test_tree_cache(clients):
    """TreeCache mirrors a subtree: initial load, adds, updates and removes arrive as events and
    the cache content matches."""
    from kazoo.recipe.cache import TreeCache, TreeEvent
    w, o = clients(), clients()
    root = clients.base + "/tc"
    o.ensure_path(root + "/a")
    events = queue.Queue()
    cache = TreeCache(w, root)
    cache.listen(lambda ev: events.put(ev))
    cache.start()
    try:
        def wait_for(kind, path):
            while True:
                ev = events.get(timeout=WAIT_S)
                if ev.event_type == kind and (path is None or ev.event_data.path == path):
                    return ev
        wait_for(TreeEvent.INITIALIZED, None)
        assert cache.get_children(root) == frozenset(["a"])
        o.create(root + "/a/b", b"x")
        wait_for(TreeEvent.NODE_ADDED, root + "/a/b")
        o.set(root + "/a/b", b"y")
        wait_for(TreeEvent.NODE_UPDATED, root + "/a/b")
        assert cache.get_data(root + "/a/b").data == b"y"
        o.delete(root + "/a/b")
        wait_for(TreeEvent.NODE_REMOVED, root + "/a/b")
        assert cache.get_data(root + "/a/b") is None
    finally:
        cache.close()
