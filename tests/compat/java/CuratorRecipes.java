// Real-client compatibility check: Apache Curator 5.4 recipes against a ZooKeeper-compatible server.
//
// Usage: java -cp <classpath> CuratorRecipes <connectString>
//
// Each recipe runs with several CuratorFramework clients (each its own session) and threads,
// bounded by RECIPE_TIMEOUT_SECONDS, and prints exactly one line on stdout:
//   PASS <name>            or            FAIL <name>: <reason>
// The exit code is the number of failed recipes (capped at 100), so 0 means every recipe passed.
// Diagnostics from the client libraries go to stderr.
//
// Every check asserts something a wrong server would break: ordering, exact counts, Stat fields,
// error codes, or watch events. Waits are on events (listeners, watches, latches) with a bound,
// never on sleeps.

import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Collection;
import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.UUID;
import java.util.concurrent.BlockingQueue;
import java.util.concurrent.Callable;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.LinkedBlockingQueue;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.atomic.AtomicReference;

import org.apache.curator.framework.CuratorFramework;
import org.apache.curator.framework.CuratorFrameworkFactory;
import org.apache.curator.framework.api.transaction.CuratorOp;
import org.apache.curator.framework.api.transaction.CuratorTransactionResult;
import org.apache.curator.framework.api.transaction.OperationType;
import org.apache.curator.framework.recipes.atomic.AtomicValue;
import org.apache.curator.framework.recipes.atomic.DistributedAtomicLong;
import org.apache.curator.framework.recipes.cache.ChildData;
import org.apache.curator.framework.recipes.cache.CuratorCache;
import org.apache.curator.framework.recipes.cache.CuratorCacheListener;
import org.apache.curator.framework.recipes.leader.LeaderLatch;
import org.apache.curator.framework.recipes.leader.LeaderLatchListener;
import org.apache.curator.framework.recipes.leader.Participant;
import org.apache.curator.framework.recipes.locks.InterProcessMutex;
import org.apache.curator.framework.recipes.nodes.PersistentNode;
import org.apache.curator.retry.ExponentialBackoffRetry;
import org.apache.curator.retry.RetryNTimes;
import org.apache.zookeeper.CreateMode;
import org.apache.zookeeper.KeeperException;
import org.apache.zookeeper.OpResult;
import org.apache.zookeeper.WatchedEvent;
import org.apache.zookeeper.Watcher;
import org.apache.zookeeper.ZooKeeper;
import org.apache.zookeeper.data.ACL;
import org.apache.zookeeper.data.Stat;

public final class CuratorRecipes {
    /** A recipe that does not finish within this bound is a failure (a hang is a bug). */
    static final int RECIPE_TIMEOUT_SECONDS = 30;
    /** Bound for a single awaited event inside a recipe. */
    static final int EVENT_TIMEOUT_SECONDS = 15;
    static final int SESSION_TIMEOUT_MS = 10_000;
    static final int CONNECTION_TIMEOUT_MS = 5_000;

    /** An assertion about server behaviour that did not hold. */
    static final class CheckFailed extends Exception {
        CheckFailed(String message) {
            super(message);
        }
    }

    interface Recipe {
        void run(Context context) throws Exception;
    }

    /** Per-recipe state: its own base path and the clients it opened, closed at the end. */
    static final class Context implements AutoCloseable {
        final String connectString;
        final String basePath;
        final List<CuratorFramework> clients = Collections.synchronizedList(new ArrayList<>());
        final List<AutoCloseable> closeables = Collections.synchronizedList(new ArrayList<>());

        Context(String connectString, String basePath) {
            this.connectString = connectString;
            this.basePath = basePath;
        }

        CuratorFramework newClient() throws Exception {
            CuratorFramework client = CuratorFrameworkFactory.newClient(connectString, SESSION_TIMEOUT_MS,
                    CONNECTION_TIMEOUT_MS, new ExponentialBackoffRetry(100, 3));
            clients.add(client);
            client.start();
            check(client.blockUntilConnected(EVENT_TIMEOUT_SECONDS, TimeUnit.SECONDS),
                    "client did not connect to " + connectString + " within " + EVENT_TIMEOUT_SECONDS + " s");
            return client;
        }

        <T extends AutoCloseable> T closeLater(T closeable) {
            closeables.add(closeable);
            return closeable;
        }

        String path(String relative) {
            return basePath + "/" + relative;
        }

        @Override
        public void close() {
            List<AutoCloseable> reversed = new ArrayList<>(closeables);
            Collections.reverse(reversed);
            for (AutoCloseable closeable : reversed) {
                try {
                    closeable.close();
                } catch (Exception ignored) {
                    // Already closed by the recipe, or its session is gone: nothing left to release.
                }
            }
            if (!clients.isEmpty()) {
                try {
                    clients.get(0).delete().quietly().deletingChildrenIfNeeded().forPath(basePath);
                } catch (Exception ignored) {
                    // Cleanup is best effort; every recipe uses a fresh random base path.
                }
            }
            for (CuratorFramework client : clients) {
                client.close();
            }
        }
    }

    static void check(boolean condition, String message) throws CheckFailed {
        if (!condition) {
            throw new CheckFailed(message);
        }
    }

    static void checkEqual(Object expected, Object actual, String what) throws CheckFailed {
        if (expected == null ? actual != null : !expected.equals(actual)) {
            throw new CheckFailed(what + ": expected " + expected + ", got " + actual);
        }
    }

    static byte[] bytes(String text) {
        return text.getBytes(StandardCharsets.UTF_8);
    }

    static String text(byte[] data) {
        return data == null ? null : new String(data, StandardCharsets.UTF_8);
    }

    static <T> T poll(BlockingQueue<T> queue, String waitingFor) throws Exception {
        T item = queue.poll(EVENT_TIMEOUT_SECONDS, TimeUnit.SECONDS);
        if (item == null) {
            throw new CheckFailed("timed out after " + EVENT_TIMEOUT_SECONDS + " s waiting for " + waitingFor);
        }
        return item;
    }

    static <E extends KeeperException> E expectKeeperException(Class<E> expected, String operation,
            Callable<?> action) throws Exception {
        try {
            Object result = action.call();
            throw new CheckFailed(operation + ": expected " + expected.getSimpleName() + ", but it succeeded with "
                    + result);
        } catch (KeeperException exception) {
            if (!expected.isInstance(exception)) {
                throw new CheckFailed(operation + ": expected " + expected.getSimpleName() + ", got "
                        + exception.code() + " (" + exception.getClass().getSimpleName() + ")");
            }
            return expected.cast(exception);
        }
    }

    static long sessionId(CuratorFramework client) throws Exception {
        return client.getZookeeperClient().getZooKeeper().getSessionId();
    }

    static String describe(Stat stat) {
        return String.format("{czxid=%d mzxid=%d pzxid=%d version=%d cversion=%d aversion=%d ephemeralOwner=0x%x "
                + "dataLength=%d numChildren=%d}", stat.getCzxid(), stat.getMzxid(), stat.getPzxid(),
                stat.getVersion(), stat.getCversion(), stat.getAversion(), stat.getEphemeralOwner(),
                stat.getDataLength(), stat.getNumChildren());
    }

    // ---------------------------------------------------------------------------------------------
    // CRUD with Stat fields and error codes (ZooKeeper programmer's guide, "ZooKeeper Stat Structure").

    static void crud(Context context) throws Exception {
        CuratorFramework client = context.newClient();
        CuratorFramework other = context.newClient();
        String node = context.path("node");

        Stat created = new Stat();
        String createdPath = client.create().creatingParentsIfNeeded().storingStatIn(created)
                .forPath(node, bytes("hello"));
        checkEqual(node, createdPath, "create returned path");
        checkEqual(0, created.getVersion(), "version after create " + describe(created));
        checkEqual(0, created.getCversion(), "cversion after create " + describe(created));
        checkEqual(0, created.getAversion(), "aversion after create " + describe(created));
        checkEqual(5, created.getDataLength(), "dataLength after create " + describe(created));
        checkEqual(0, created.getNumChildren(), "numChildren after create " + describe(created));
        checkEqual(0L, created.getEphemeralOwner(), "ephemeralOwner of a persistent node");
        checkEqual(created.getCzxid(), created.getMzxid(), "mzxid == czxid after create " + describe(created));
        checkEqual(created.getCzxid(), created.getPzxid(), "pzxid == czxid after create " + describe(created));
        check(created.getCtime() == created.getMtime(), "ctime == mtime after create " + describe(created));

        // A second session reads the same data and Stat.
        Stat read = new Stat();
        checkEqual("hello", text(other.getData().storingStatIn(read).forPath(node)), "data read by other session");
        checkEqual(created, read, "Stat read back by another session");

        List<ACL> acl = client.getACL().forPath(node);
        checkEqual(1, acl.size(), "default ACL entries");
        checkEqual(31, acl.get(0).getPerms(), "default ACL perms (world:anyone ALL)");
        checkEqual("world", acl.get(0).getId().getScheme(), "default ACL scheme");
        checkEqual("anyone", acl.get(0).getId().getId(), "default ACL id");

        Stat updated = client.setData().withVersion(0).forPath(node, bytes("world!"));
        checkEqual(1, updated.getVersion(), "version after setData " + describe(updated));
        checkEqual(6, updated.getDataLength(), "dataLength after setData");
        checkEqual(created.getCzxid(), updated.getCzxid(), "czxid unchanged by setData");
        check(updated.getMzxid() > created.getMzxid(), "mzxid grows on setData " + describe(updated));
        checkEqual(created.getPzxid(), updated.getPzxid(), "pzxid unchanged by setData");

        expectKeeperException(KeeperException.BadVersionException.class, "setData with stale version 0",
                () -> client.setData().withVersion(0).forPath(node, bytes("stale")));
        expectKeeperException(KeeperException.NodeExistsException.class, "create existing node",
                () -> client.create().forPath(node));
        expectKeeperException(KeeperException.NoNodeException.class, "getData on missing node",
                () -> client.getData().forPath(context.path("missing")));
        expectKeeperException(KeeperException.NoNodeException.class, "create with missing parent",
                () -> client.create().forPath(context.path("missing/child")));
        check(client.checkExists().forPath(context.path("missing")) == null, "checkExists on missing node is null");

        String child = node + "/child";
        Stat childStat = new Stat();
        client.create().storingStatIn(childStat).forPath(child, new byte[0]);
        checkEqual(0, childStat.getDataLength(), "dataLength of empty node");
        Stat parent = client.checkExists().forPath(node);
        checkEqual(1, parent.getNumChildren(), "parent numChildren after child create " + describe(parent));
        checkEqual(1, parent.getCversion(), "parent cversion after child create " + describe(parent));
        checkEqual(childStat.getCzxid(), parent.getPzxid(), "parent pzxid == child czxid " + describe(parent));
        checkEqual(1, parent.getVersion(), "parent version unchanged by child create");

        expectKeeperException(KeeperException.NotEmptyException.class, "delete node with a child",
                () -> client.delete().forPath(node));
        expectKeeperException(KeeperException.BadVersionException.class, "delete with wrong version",
                () -> client.delete().withVersion(5).forPath(child));
        client.delete().withVersion(0).forPath(child);
        parent = client.checkExists().forPath(node);
        checkEqual(0, parent.getNumChildren(), "parent numChildren after child delete");
        checkEqual(2, parent.getCversion(), "parent cversion after child delete");
        check(parent.getPzxid() > childStat.getCzxid(), "parent pzxid grows on child delete " + describe(parent));

        // ZooKeeper persists a parent's cversion as the number of child creates; the Stat reports
        // creates * 2 - numChildren (DataNode.copyStat), i.e. creates + deletes. Sequential names
        // carry the persisted value, so deletes do not advance them: after one create and one
        // delete the next suffix is 1, not 2 (observed on Apache ZooKeeper 3.8.0).
        String first = client.create().withMode(CreateMode.PERSISTENT_SEQUENTIAL).forPath(node + "/seq-");
        String second = client.create().withMode(CreateMode.PERSISTENT_SEQUENTIAL).forPath(node + "/seq-");
        checkEqual(node + "/seq-0000000001", first, "first sequential name (suffix counts creates only)");
        checkEqual(node + "/seq-0000000002", second, "second sequential name");
        parent = client.checkExists().forPath(node);
        checkEqual(4, parent.getCversion(), "parent cversion after 3 creates and 1 delete " + describe(parent));
        checkEqual(2, parent.getNumChildren(), "parent numChildren with two sequential children");
        List<String> children = new ArrayList<>(client.getChildren().forPath(node));
        Collections.sort(children);
        checkEqual(Arrays.asList("seq-0000000001", "seq-0000000002"), children, "children");

        // Ephemeral owner is the creating session; ephemerals cannot have children.
        String ephemeral = node + "/ephemeral";
        client.create().withMode(CreateMode.EPHEMERAL).forPath(ephemeral);
        Stat ephemeralStat = other.checkExists().forPath(ephemeral);
        checkEqual(sessionId(client), ephemeralStat.getEphemeralOwner(), "ephemeralOwner seen by another session");
        expectKeeperException(KeeperException.NoChildrenForEphemeralsException.class, "create under an ephemeral",
                () -> client.create().forPath(ephemeral + "/child"));

        // A value close to the 1 MB default jute.maxbuffer round-trips intact.
        byte[] large = new byte[512 * 1024];
        for (int i = 0; i < large.length; i++) {
            large[i] = (byte) (i * 31 + 7);
        }
        client.create().forPath(node + "/large", large);
        byte[] largeRead = other.getData().forPath(node + "/large");
        check(Arrays.equals(large, largeRead), "512 KiB value did not round-trip (read "
                + (largeRead == null ? "null" : largeRead.length + " bytes") + ")");

        // A one-shot data watch fires once with NodeDataChanged for the path.
        BlockingQueue<WatchedEvent> events = new LinkedBlockingQueue<>();
        other.getData().usingWatcher((Watcher) events::add).forPath(node);
        client.setData().forPath(node, bytes("watched"));
        WatchedEvent event = poll(events, "NodeDataChanged on " + node);
        checkEqual(Watcher.Event.EventType.NodeDataChanged, event.getType(), "watch event type");
        checkEqual(node, event.getPath(), "watch event path");
        client.setData().forPath(node, bytes("again"));
        client.sync().forPath(node);
        other.sync().forPath(node);
        checkEqual("again", text(other.getData().forPath(node)), "data after sync");
        check(events.isEmpty(), "one-shot watch fired twice: " + events);
    }

    // ---------------------------------------------------------------------------------------------
    // Multi-op transaction: all-or-nothing, per-op results (ZooKeeper.multi, since 3.4).

    static void transaction(Context context) throws Exception {
        CuratorFramework client = context.newClient();
        String base = context.path("txn");
        client.create().creatingParentsIfNeeded().forPath(base, bytes("v0"));
        client.create().forPath(base + "/doomed");

        List<CuratorOp> operations = Arrays.asList(
                client.transactionOp().create().forPath(base + "/a", bytes("A")),
                client.transactionOp().create().withMode(CreateMode.PERSISTENT_SEQUENTIAL).forPath(base + "/s-"),
                client.transactionOp().setData().withVersion(0).forPath(base, bytes("v1")),
                client.transactionOp().check().withVersion(0).forPath(base + "/a"),
                client.transactionOp().delete().withVersion(0).forPath(base + "/doomed"));
        List<CuratorTransactionResult> results = client.transaction().forOperations(operations);
        checkEqual(5, results.size(), "number of transaction results");
        checkEqual(Arrays.asList(OperationType.CREATE, OperationType.CREATE, OperationType.SET_DATA,
                OperationType.CHECK, OperationType.DELETE), results.stream().map(CuratorTransactionResult::getType)
                        .collect(java.util.stream.Collectors.toList()), "transaction result types");
        checkEqual(base + "/a", results.get(0).getResultPath(), "created path in transaction");
        // The parent's cversion is 1 (doomed) then 2 after /a, so the sequential suffix is 2.
        checkEqual(base + "/s-0000000002", results.get(1).getResultPath(), "sequential path in transaction");
        Stat setStat = results.get(2).getResultStat();
        check(setStat != null, "setData in transaction returned no Stat");
        checkEqual(1, setStat.getVersion(), "version from setData inside transaction");
        for (CuratorTransactionResult result : results) {
            checkEqual(0, result.getError(), "error code of a successful op " + result.getType());
        }
        checkEqual("A", text(client.getData().forPath(base + "/a")), "data created by transaction");
        check(client.checkExists().forPath(base + "/doomed") == null, "node deleted by transaction still exists");
        Stat afterSuccess = client.checkExists().forPath(base);
        // All ops of one multi share one zxid.
        Stat created = client.checkExists().forPath(base + "/a");
        checkEqual(created.getCzxid(), afterSuccess.getMzxid(), "one zxid for every op in a transaction");
        checkEqual(afterSuccess.getMzxid(), afterSuccess.getPzxid(), "parent pzxid from the transaction's zxid");

        // A failing op aborts the whole transaction; earlier ops are rolled back.
        List<CuratorOp> failing = Arrays.asList(
                client.transactionOp().create().forPath(base + "/b", bytes("B")),
                client.transactionOp().check().withVersion(999).forPath(base),
                client.transactionOp().setData().forPath(base, bytes("never")));
        try {
            List<CuratorTransactionResult> unexpected = client.transaction().forOperations(failing);
            throw new CheckFailed("transaction with a failing check succeeded: " + unexpected.size() + " results");
        } catch (KeeperException exception) {
            checkEqual(KeeperException.Code.BADVERSION, exception.code(), "error of failed transaction");
            List<OpResult> opResults = exception.getResults();
            check(opResults != null, "failed transaction carries no per-op results");
            List<Integer> errors = new ArrayList<>();
            for (OpResult opResult : opResults) {
                check(opResult instanceof OpResult.ErrorResult, "failed transaction result is not an ErrorResult: "
                        + opResult.getClass().getSimpleName());
                errors.add(((OpResult.ErrorResult) opResult).getErr());
            }
            // ZooKeeper reports OK (0) for ops before the failure and RUNTIMEINCONSISTENCY (-2) after it.
            checkEqual(Arrays.asList(0, KeeperException.Code.BADVERSION.intValue(),
                    KeeperException.Code.RUNTIMEINCONSISTENCY.intValue()), errors, "per-op error codes");
        }
        check(client.checkExists().forPath(base + "/b") == null, "create from a failed transaction was applied");
        Stat afterFailure = client.checkExists().forPath(base);
        checkEqual(afterSuccess, afterFailure, "parent Stat changed by a failed transaction");
        checkEqual("v1", text(client.getData().forPath(base)), "data after failed transaction");
    }

    // ---------------------------------------------------------------------------------------------
    // LeaderLatch: ephemeral sequential participants, lowest sequence leads, the next one takes over.

    static void leaderLatch(Context context) throws Exception {
        final int participantCount = 5;
        String latchPath = context.path("latch");
        BlockingQueue<String> becameLeader = new LinkedBlockingQueue<>();
        Map<String, LeaderLatch> latches = new LinkedHashMap<>();
        for (int i = 0; i < participantCount; i++) {
            CuratorFramework client = context.newClient();
            String id = "participant-" + i;
            LeaderLatch latch = context.closeLater(new LeaderLatch(client, latchPath, id));
            latch.addListener(new LeaderLatchListener() {
                @Override
                public void isLeader() {
                    becameLeader.add(id);
                }

                @Override
                public void notLeader() {
                }
            });
            latches.put(id, latch);
        }
        // Start them concurrently so participant nodes are created in a racing order.
        ExecutorService starter = Executors.newFixedThreadPool(participantCount);
        try {
            List<Future<?>> starts = new ArrayList<>();
            for (LeaderLatch latch : latches.values()) {
                starts.add(starter.submit(() -> {
                    latch.start();
                    return null;
                }));
            }
            for (Future<?> start : starts) {
                start.get(EVENT_TIMEOUT_SECONDS, TimeUnit.SECONDS);
            }
        } finally {
            starter.shutdownNow();
        }

        String firstLeader = poll(becameLeader, "a first leader");
        checkLeadership(latches, firstLeader, participantCount);

        latches.get(firstLeader).close();
        latches.remove(firstLeader);
        String secondLeader = poll(becameLeader, "leadership to move after the leader closed");
        check(!secondLeader.equals(firstLeader), "leadership did not move: " + secondLeader);
        checkLeadership(latches, secondLeader, participantCount - 1);
        check(becameLeader.isEmpty(), "more than one new leader: " + becameLeader);
    }

    static void checkLeadership(Map<String, LeaderLatch> latches, String leader, int expectedParticipants)
            throws Exception {
        List<String> leaders = new ArrayList<>();
        for (Map.Entry<String, LeaderLatch> entry : latches.entrySet()) {
            if (entry.getValue().hasLeadership()) {
                leaders.add(entry.getKey());
            }
        }
        checkEqual(Collections.singletonList(leader), leaders, "latches holding leadership");
        for (Map.Entry<String, LeaderLatch> entry : latches.entrySet()) {
            Participant seen = entry.getValue().getLeader();
            checkEqual(leader, seen.getId(), "leader as seen by " + entry.getKey());
            check(seen.isLeader(), "Participant.isLeader false for the leader");
            Collection<Participant> participants = entry.getValue().getParticipants();
            checkEqual(expectedParticipants, participants.size(), "participants seen by " + entry.getKey());
        }
    }

    // ---------------------------------------------------------------------------------------------
    // InterProcessMutex: mutual exclusion under contention, and reentrancy.

    static void interProcessMutex(Context context) throws Exception {
        final int clientCount = 4;
        final int threadsPerClient = 2;
        final int incrementsPerThread = 12;
        String lockPath = context.path("lock");
        String counterPath = context.path("counter");
        List<CuratorFramework> clients = new ArrayList<>();
        for (int i = 0; i < clientCount; i++) {
            clients.add(context.newClient());
        }
        clients.get(0).create().creatingParentsIfNeeded().forPath(counterPath, bytes("0"));

        AtomicInteger holders = new AtomicInteger();
        AtomicReference<String> violation = new AtomicReference<>();
        ExecutorService workers = Executors.newFixedThreadPool(clientCount * threadsPerClient);
        try {
            List<Future<?>> results = new ArrayList<>();
            for (CuratorFramework client : clients) {
                for (int t = 0; t < threadsPerClient; t++) {
                    results.add(workers.submit(() -> {
                        InterProcessMutex mutex = new InterProcessMutex(client, lockPath);
                        for (int i = 0; i < incrementsPerThread; i++) {
                            if (!mutex.acquire(EVENT_TIMEOUT_SECONDS, TimeUnit.SECONDS)) {
                                throw new CheckFailed("lock not acquired within " + EVENT_TIMEOUT_SECONDS + " s");
                            }
                            try {
                                int inside = holders.incrementAndGet();
                                if (inside != 1) {
                                    violation.compareAndSet(null, inside + " holders inside the lock at once");
                                }
                                Stat stat = new Stat();
                                long value = Long.parseLong(text(client.getData().storingStatIn(stat)
                                        .forPath(counterPath)));
                                // A conditional write: a lost update would also surface as BadVersion.
                                client.setData().withVersion(stat.getVersion())
                                        .forPath(counterPath, bytes(Long.toString(value + 1)));
                                holders.decrementAndGet();
                            } finally {
                                mutex.release();
                            }
                        }
                        return null;
                    }));
                }
            }
            for (Future<?> result : results) {
                result.get(RECIPE_TIMEOUT_SECONDS, TimeUnit.SECONDS);
            }
        } finally {
            workers.shutdownNow();
        }
        check(violation.get() == null, "mutual exclusion violated: " + violation.get());
        long expected = (long) clientCount * threadsPerClient * incrementsPerThread;
        checkEqual(Long.toString(expected), text(clients.get(0).getData().forPath(counterPath)), "counter");
        checkEqual(Collections.emptyList(), clients.get(0).getChildren().forPath(lockPath),
                "lock nodes left after every release");

        // Reentrancy: the holder acquires twice and must release twice before another client gets it.
        InterProcessMutex holder = new InterProcessMutex(clients.get(0), lockPath);
        InterProcessMutex contender = new InterProcessMutex(clients.get(1), lockPath);
        check(holder.acquire(EVENT_TIMEOUT_SECONDS, TimeUnit.SECONDS), "first acquire");
        check(holder.acquire(EVENT_TIMEOUT_SECONDS, TimeUnit.SECONDS), "reentrant acquire");
        checkEqual(1, clients.get(0).getChildren().forPath(lockPath).size(), "one lock node for a reentrant holder");
        // Acquiring from another thread with a short bound must fail while the lock is held.
        check(!tryAcquireOnOtherThread(contender, 300), "contender acquired a lock held twice");
        holder.release();
        check(holder.isAcquiredInThisProcess(), "lock released after one of two releases");
        check(!tryAcquireOnOtherThread(contender, 300), "contender acquired a lock still held once");
        BlockingQueue<Boolean> acquired = new LinkedBlockingQueue<>();
        CountDownLatch releaseContender = new CountDownLatch(1);
        Thread waiting = new Thread(() -> {
            try {
                boolean got = contender.acquire(EVENT_TIMEOUT_SECONDS, TimeUnit.SECONDS);
                acquired.add(got);
                if (got) {
                    releaseContender.await(EVENT_TIMEOUT_SECONDS, TimeUnit.SECONDS);
                    contender.release();
                }
            } catch (Exception exception) {
                acquired.add(false);
            }
        });
        waiting.setDaemon(true);
        waiting.start();
        holder.release();
        check(poll(acquired, "waiting contender to get the lock after the final release"),
                "waiting contender did not get the lock");
        releaseContender.countDown();
        waiting.join(TimeUnit.SECONDS.toMillis(EVENT_TIMEOUT_SECONDS));
        check(!waiting.isAlive(), "contender thread did not finish");
    }

    static boolean tryAcquireOnOtherThread(InterProcessMutex mutex, long timeoutMs) throws Exception {
        ExecutorService single = Executors.newSingleThreadExecutor();
        try {
            return single.submit(() -> {
                boolean got = mutex.acquire(timeoutMs, TimeUnit.MILLISECONDS);
                if (got) {
                    mutex.release();
                }
                return got;
            }).get(EVENT_TIMEOUT_SECONDS, TimeUnit.SECONDS);
        } finally {
            single.shutdownNow();
        }
    }

    // ---------------------------------------------------------------------------------------------
    // CuratorCache: in Curator 5 it is built on a persistent recursive watch (addWatch, ZooKeeper 3.6+).

    static final class CacheEvent {
        final CuratorCacheListener.Type type;
        final String path;
        final String data;

        CacheEvent(CuratorCacheListener.Type type, ChildData node) {
            this.type = type;
            this.path = node.getPath();
            this.data = text(node.getData());
        }

        @Override
        public String toString() {
            return type + " " + path + " '" + data + "'";
        }
    }

    static void curatorCache(Context context) throws Exception {
        CuratorFramework reader = context.newClient();
        CuratorFramework writer = context.newClient();
        String root = context.path("cache");
        writer.create().creatingParentsIfNeeded().forPath(root + "/existing/inner", bytes("e0"));

        BlockingQueue<CacheEvent> events = new LinkedBlockingQueue<>();
        CountDownLatch initialized = new CountDownLatch(1);
        CuratorCache cache = context.closeLater(CuratorCache.build(reader, root));
        cache.listenable().addListener(CuratorCacheListener.builder()
                .forAll((type, oldData, data) -> events.add(new CacheEvent(type,
                        type == CuratorCacheListener.Type.NODE_DELETED ? oldData : data)))
                .forInitialized(initialized::countDown)
                .build());
        cache.start();
        check(initialized.await(EVENT_TIMEOUT_SECONDS, TimeUnit.SECONDS), "cache never initialized");
        checkEqual(3, cache.size(), "nodes in the cache after initial load (root, existing, existing/inner)");
        checkEqual("e0", cache.get(root + "/existing/inner").map(node -> text(node.getData())).orElse(null),
                "initial data of a nested node");
        List<String> initialCreates = new ArrayList<>();
        for (CacheEvent event; (event = events.poll()) != null; ) {
            checkEqual(CuratorCacheListener.Type.NODE_CREATED, event.type, "initial load event " + event);
            initialCreates.add(event.path);
        }
        Collections.sort(initialCreates);
        checkEqual(Arrays.asList(root, root + "/existing", root + "/existing/inner"), initialCreates,
                "initial load events");

        // Nested creates, made by another session, three levels below the watched root.
        String deep = root + "/x/y/z";
        writer.create().creatingParentsIfNeeded().forPath(deep, bytes("v1"));
        expectCacheEvent(events, CuratorCacheListener.Type.NODE_CREATED, root + "/x");
        expectCacheEvent(events, CuratorCacheListener.Type.NODE_CREATED, root + "/x/y");
        CacheEvent createdDeep = expectCacheEvent(events, CuratorCacheListener.Type.NODE_CREATED, deep);
        checkEqual("v1", createdDeep.data, "data in create event");

        writer.setData().forPath(deep, bytes("v2"));
        CacheEvent changed = expectCacheEvent(events, CuratorCacheListener.Type.NODE_CHANGED, deep);
        checkEqual("v2", changed.data, "data in change event");
        writer.setData().forPath(root + "/existing/inner", bytes("e1"));
        expectCacheEvent(events, CuratorCacheListener.Type.NODE_CHANGED, root + "/existing/inner");

        writer.delete().forPath(deep);
        CacheEvent deleted = expectCacheEvent(events, CuratorCacheListener.Type.NODE_DELETED, deep);
        checkEqual("v2", deleted.data, "last data in delete event");
        check(!cache.get(deep).isPresent(), "deleted node still in the cache");
        checkEqual("e1", cache.get(root + "/existing/inner").map(node -> text(node.getData())).orElse(null),
                "cached data after change");

        // The recursive watch persists: it keeps firing after it has fired (unlike a one-shot watch).
        writer.create().forPath(deep, bytes("v3"));
        expectCacheEvent(events, CuratorCacheListener.Type.NODE_CREATED, deep);
        writer.delete().deletingChildrenIfNeeded().forPath(root + "/x");
        List<String> deletes = new ArrayList<>();
        for (int i = 0; i < 3; i++) {
            CacheEvent event = poll(events, "delete events for the x subtree");
            checkEqual(CuratorCacheListener.Type.NODE_DELETED, event.type, "event while deleting subtree " + event);
            deletes.add(event.path);
        }
        // Children are deleted before their parents.
        checkEqual(Arrays.asList(deep, root + "/x/y", root + "/x"), deletes, "delete event order");
        checkEqual(3, cache.size(), "nodes in the cache at the end");
    }

    static CacheEvent expectCacheEvent(BlockingQueue<CacheEvent> events, CuratorCacheListener.Type type,
            String path) throws Exception {
        CacheEvent event = poll(events, type + " " + path);
        check(event.type == type && event.path.equals(path), "expected " + type + " " + path + ", got " + event);
        return event;
    }

    // ---------------------------------------------------------------------------------------------
    // PersistentNode (ephemeral mode): recreated when deleted, and again after its session expires.

    static void persistentNode(Context context) throws Exception {
        CuratorFramework owner = context.newClient();
        CuratorFramework observer = context.newClient();
        String path = context.path("members/me");
        observer.create().creatingParentsIfNeeded().forPath(context.path("members"));

        BlockingQueue<String> nodeCreated = new LinkedBlockingQueue<>();
        PersistentNode node = context.closeLater(new PersistentNode(owner, CreateMode.EPHEMERAL, false, path,
                bytes("payload")));
        node.getListenable().addListener(nodeCreated::add);
        node.start();
        check(node.waitForInitialCreate(EVENT_TIMEOUT_SECONDS, TimeUnit.SECONDS), "initial create did not happen");
        checkEqual(path, poll(nodeCreated, "initial nodeCreated"), "created path");
        checkEqual(path, node.getActualPath(), "actual path");
        Stat first = observer.checkExists().forPath(path);
        check(first != null, "node missing after initial create");
        checkEqual(sessionId(owner), first.getEphemeralOwner(), "ephemeralOwner of the persistent node");

        // Another session deletes it: the recipe's watch fires and it creates the node again.
        observer.delete().forPath(path);
        checkEqual(path, poll(nodeCreated, "re-create after delete"), "re-created path");
        Stat second = observer.checkExists().forPath(path);
        check(second != null, "node missing after re-create");
        check(second.getCzxid() > first.getCzxid(), "re-created node has an older czxid");
        checkEqual(sessionId(owner), second.getEphemeralOwner(), "ephemeralOwner after re-create");
        checkEqual("payload", text(observer.getData().forPath(path)), "data after re-create");

        // Expire the owner's session from the server side: attach a second handle to the same
        // session (id + password), then close that handle. The server deletes the ephemeral and
        // the owner, on reconnecting, learns its session expired and opens a new one.
        long oldSession = sessionId(owner);
        BlockingQueue<WatchedEvent> deletion = new LinkedBlockingQueue<>();
        check(observer.checkExists().usingWatcher((Watcher) deletion::add).forPath(path) != null,
                "node missing before expiry");
        expireSession(context.connectString, owner);
        WatchedEvent deletedEvent = poll(deletion, "ephemeral deletion when its session is closed");
        checkEqual(Watcher.Event.EventType.NodeDeleted, deletedEvent.getType(), "event on session close");
        checkEqual(path, poll(nodeCreated, "re-create in a new session after expiry"), "path after expiry");
        Stat third = observer.checkExists().forPath(path);
        check(third != null, "node missing after session expiry and re-create");
        check(third.getEphemeralOwner() != oldSession, "node still owned by the expired session");
        checkEqual(sessionId(owner), third.getEphemeralOwner(), "ephemeralOwner is the new session");

        node.close();
        check(observer.checkExists().forPath(path) == null, "node left behind after PersistentNode.close");
    }

    static void expireSession(String connectString, CuratorFramework client) throws Exception {
        ZooKeeper zooKeeper = client.getZookeeperClient().getZooKeeper();
        CountDownLatch connected = new CountDownLatch(1);
        ZooKeeper intruder = new ZooKeeper(connectString, SESSION_TIMEOUT_MS, event -> {
            if (event.getState() == Watcher.Event.KeeperState.SyncConnected) {
                connected.countDown();
            }
        }, zooKeeper.getSessionId(), zooKeeper.getSessionPasswd());
        try {
            check(connected.await(EVENT_TIMEOUT_SECONDS, TimeUnit.SECONDS),
                    "second handle could not attach to the session");
            checkEqual(zooKeeper.getSessionId(), intruder.getSessionId(), "session id of the attached handle");
        } finally {
            intruder.close();
        }
    }

    // ---------------------------------------------------------------------------------------------
    // DistributedAtomicLong: optimistic compare-and-set on the node version; concurrent adds are exact.

    static void distributedAtomicLong(Context context) throws Exception {
        final int clientCount = 4;
        final int threadsPerClient = 2;
        final int incrementsPerThread = 20;
        String path = context.path("atomic");
        List<CuratorFramework> clients = new ArrayList<>();
        for (int i = 0; i < clientCount; i++) {
            clients.add(context.newClient());
        }
        DistributedAtomicLong initial = new DistributedAtomicLong(clients.get(0), path, new RetryNTimes(10, 1));
        check(initial.initialize(0L), "initialize on a fresh node");
        check(!initial.initialize(5L), "second initialize succeeded");

        AtomicInteger attemptsFailed = new AtomicInteger();
        ExecutorService workers = Executors.newFixedThreadPool(clientCount * threadsPerClient);
        List<Long> seen = Collections.synchronizedList(new ArrayList<>());
        try {
            List<Future<?>> results = new ArrayList<>();
            for (CuratorFramework client : clients) {
                for (int t = 0; t < threadsPerClient; t++) {
                    results.add(workers.submit(() -> {
                        // Retries are the recipe's own CAS loop; a short fixed backoff keeps them bounded.
                        DistributedAtomicLong counter = new DistributedAtomicLong(client, path,
                                new RetryNTimes(200, 2));
                        for (int i = 0; i < incrementsPerThread; i++) {
                            AtomicValue<Long> value = counter.increment();
                            while (!value.succeeded()) {
                                attemptsFailed.incrementAndGet();
                                if (Thread.currentThread().isInterrupted()) {
                                    throw new InterruptedException();
                                }
                                value = counter.increment();
                            }
                            if (value.postValue() != value.preValue() + 1) {
                                throw new CheckFailed("increment went " + value.preValue() + " -> "
                                        + value.postValue());
                            }
                            seen.add(value.postValue());
                        }
                        return null;
                    }));
                }
            }
            for (Future<?> result : results) {
                result.get(RECIPE_TIMEOUT_SECONDS, TimeUnit.SECONDS);
            }
        } finally {
            workers.shutdownNow();
        }
        long expected = (long) clientCount * threadsPerClient * incrementsPerThread;
        AtomicValue<Long> finalValue = initial.get();
        check(finalValue.succeeded(), "final get failed");
        checkEqual(expected, finalValue.postValue(), "final counter value");
        // Every successful increment observed a distinct post value 1..expected: no two CAS won on the same version.
        List<Long> sorted = new ArrayList<>(seen);
        Collections.sort(sorted);
        for (int i = 0; i < sorted.size(); i++) {
            checkEqual((long) i + 1, sorted.get(i), "post values of all increments (distinct, 1.." + expected + ")");
        }
        AtomicValue<Long> swapped = initial.compareAndSet(expected, -1L);
        check(swapped.succeeded(), "compareAndSet with the current value failed");
        AtomicValue<Long> stale = initial.compareAndSet(expected, 7L);
        check(!stale.succeeded(), "compareAndSet with a stale expected value succeeded");
        checkEqual(-1L, initial.get().postValue(), "value after compareAndSet");
    }

    // ---------------------------------------------------------------------------------------------

    public static void main(String[] args) throws Exception {
        if (args.length != 1) {
            System.err.println("usage: java -cp <classpath> CuratorRecipes <connectString>");
            System.exit(2);
        }
        String connectString = args[0];
        String runRoot = "/curator-compat-" + UUID.randomUUID().toString().substring(0, 8);

        Map<String, Recipe> recipes = new LinkedHashMap<>();
        recipes.put("crud_stat", CuratorRecipes::crud);
        recipes.put("transaction", CuratorRecipes::transaction);
        recipes.put("leader_latch", CuratorRecipes::leaderLatch);
        recipes.put("inter_process_mutex", CuratorRecipes::interProcessMutex);
        recipes.put("curator_cache", CuratorRecipes::curatorCache);
        recipes.put("persistent_node", CuratorRecipes::persistentNode);
        recipes.put("distributed_atomic_long", CuratorRecipes::distributedAtomicLong);

        // One connection attempt first: an unreachable server fails every recipe at once instead
        // of once per recipe after its connect timeout.
        String unreachable = preflight(connectString);
        if (unreachable != null) {
            for (String name : recipes.keySet()) {
                System.out.println("FAIL " + name + ": " + unreachable);
            }
            System.exit(Math.min(recipes.size(), 100));
        }

        ExecutorService runner = Executors.newCachedThreadPool(runnable -> {
            Thread thread = new Thread(runnable, "recipe");
            thread.setDaemon(true);
            return thread;
        });
        int failures = 0;
        for (Map.Entry<String, Recipe> entry : recipes.entrySet()) {
            String name = entry.getKey();
            Future<?> outcome = runner.submit(() -> {
                try (Context context = new Context(connectString, runRoot + "/" + name)) {
                    entry.getValue().run(context);
                }
                return null;
            });
            String failure = null;
            try {
                outcome.get(RECIPE_TIMEOUT_SECONDS, TimeUnit.SECONDS);
            } catch (TimeoutException timeout) {
                outcome.cancel(true);
                failure = "timed out after " + RECIPE_TIMEOUT_SECONDS + " s";
            } catch (java.util.concurrent.ExecutionException execution) {
                failure = explain(execution.getCause());
            }
            if (failure == null) {
                System.out.println("PASS " + name);
            } else {
                failures++;
                System.out.println("FAIL " + name + ": " + failure.replace('\n', ' '));
            }
            System.out.flush();
        }
        cleanupRunRoot(connectString, runRoot);
        // Daemon threads of a timed-out recipe may still be blocked; exit explicitly.
        System.exit(Math.min(failures, 100));
    }

    static String explain(Throwable cause) {
        if (cause instanceof CheckFailed) {
            return cause.getMessage();
        }
        if (cause instanceof KeeperException) {
            KeeperException keeper = (KeeperException) cause;
            return "unexpected KeeperException " + keeper.code() + " for " + keeper.getPath();
        }
        if (cause instanceof java.util.concurrent.ExecutionException && cause.getCause() != null) {
            return explain(cause.getCause());
        }
        if (cause instanceof TimeoutException) {
            return "a worker did not finish within its bound";
        }
        return "unexpected " + cause;
    }

    static String preflight(String connectString) {
        try (CuratorFramework client = CuratorFrameworkFactory.newClient(connectString, SESSION_TIMEOUT_MS,
                CONNECTION_TIMEOUT_MS, new RetryNTimes(1, 100))) {
            client.start();
            if (!client.blockUntilConnected(EVENT_TIMEOUT_SECONDS, TimeUnit.SECONDS)) {
                return "server " + connectString + " unreachable (no session within " + EVENT_TIMEOUT_SECONDS + " s)";
            }
            return null;
        } catch (InterruptedException exception) {
            Thread.currentThread().interrupt();
            return "interrupted while connecting";
        }
    }

    static void cleanupRunRoot(String connectString, String runRoot) {
        try (CuratorFramework client = CuratorFrameworkFactory.newClient(connectString, SESSION_TIMEOUT_MS,
                CONNECTION_TIMEOUT_MS, new RetryNTimes(1, 100))) {
            client.start();
            if (client.blockUntilConnected(EVENT_TIMEOUT_SECONDS, TimeUnit.SECONDS)) {
                client.delete().quietly().deletingChildrenIfNeeded().forPath(runRoot);
            }
        } catch (Exception ignored) {
            // Best effort: the run root has a random name.
        }
    }
}
