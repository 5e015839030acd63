// Curator's EnsembleTracker (CuratorFrameworkImpl, ensembleTracker(true)) follows a reconfig:
// it reads /zookeeper/config with a watch at connect, and again when a reconfig changes it.
//
// Usage: java EnsembleTrackerCheck <connectString> <user:password of super>
// Prints "BEFORE <hex version>", "AFTER <hex version>" (the versions the tracker saw before and
// after a reconfig that keeps the membership) and "CONNECT <connection string>" (what the
// tracker made of the config's client addresses). Exit 0, or 1 with the reason on stderr.
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;

import org.apache.curator.framework.CuratorFramework;
import org.apache.curator.framework.CuratorFrameworkFactory;
import org.apache.curator.retry.RetryNTimes;
import org.apache.zookeeper.server.quorum.flexible.QuorumVerifier;

public class EnsembleTrackerCheck {
    static final long TIMEOUT_MS = 30_000;

    static long awaitVersion(CuratorFramework client, long above) throws InterruptedException {
        long deadline = System.currentTimeMillis() + TIMEOUT_MS;
        while (System.currentTimeMillis() < deadline) {
            QuorumVerifier qv = client.getCurrentConfig();
            if (qv != null && qv.getVersion() > above) {
                return qv.getVersion();
            }
            Thread.sleep(50);
        }
        throw new IllegalStateException("the tracker saw no config version above " + Long.toHexString(above));
    }

    public static void main(String[] args) throws Exception {
        CuratorFramework client = CuratorFrameworkFactory.builder()
            .connectString(args[0])
            .retryPolicy(new RetryNTimes(50, 100))
            .authorization("digest", args[1].getBytes(StandardCharsets.UTF_8))
            .ensembleTracker(true)
            .build();
        try {
            client.start();
            if (!client.blockUntilConnected(30, TimeUnit.SECONDS)) {
                System.err.println("not connected");
                System.exit(1);
            }
            long before = awaitVersion(client, 0);
            System.out.println("BEFORE " + Long.toHexString(before));
            String config = new String(client.getConfig().forEnsemble(), StandardCharsets.UTF_8);
            List<String> members = new ArrayList<>();
            for (String line : config.split("\n")) {
                if (line.startsWith("server.")) {
                    members.add(line);
                }
            }
            client.reconfig().withNewMembers(members).fromConfig(before).forEnsemble();
            long after = awaitVersion(client, before);
            System.out.println("AFTER " + Long.toHexString(after));
            System.out.println("CONNECT " + client.getZookeeperClient().getCurrentConnectionString());
        } finally {
            client.close();
        }
    }
}
