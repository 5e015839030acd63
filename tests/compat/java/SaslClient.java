// The Java ZooKeeper client logging in with SASL from a JAAS `Client` section, as a Kafka
// broker or HBase configures it (-Djava.security.auth.login.config=..., DIGEST-MD5 or
// Kerberos). Used by tests/compat/test_sasl.py against both servers.
//
// Usage: java -Djava.security.auth.login.config=client.jaas SaslClient <connectString> <path>...
// Prints one line per observation: the first session event after connecting (SaslAuthenticated
// or AuthFailed), whoAmI's ids, then for each path `get <path> OK <data>` or
// `get <path> <KeeperException code>`. Exit status 0 unless the client could not run.
import java.nio.charset.StandardCharsets;
import java.util.List;
import java.util.concurrent.ArrayBlockingQueue;
import java.util.concurrent.BlockingQueue;
import java.util.concurrent.TimeUnit;
import org.apache.zookeeper.KeeperException;
import org.apache.zookeeper.Watcher;
import org.apache.zookeeper.ZooKeeper;
import org.apache.zookeeper.data.ClientInfo;

public final class SaslClient {
    public static void main(String[] args) throws Exception {
        BlockingQueue<Watcher.Event.KeeperState> states = new ArrayBlockingQueue<>(64);
        ZooKeeper zk = new ZooKeeper(args[0], 10000, event -> {
            if (event.getType() == Watcher.Event.EventType.None) {
                states.offer(event.getState());
            }
        });
        try {
            // The first state after SyncConnected tells how SASL went (ClientCnxn sends
            // SaslAuthenticated or AuthFailed once the exchange ends).
            Watcher.Event.KeeperState outcome = null;
            long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(20);
            while (outcome == null && System.nanoTime() < deadline) {
                Watcher.Event.KeeperState state = states.poll(1, TimeUnit.SECONDS);
                if (state != null && state != Watcher.Event.KeeperState.SyncConnected
                        && state != Watcher.Event.KeeperState.Disconnected) {
                    outcome = state;
                }
            }
            System.out.println("event " + outcome);
            if (outcome != Watcher.Event.KeeperState.SaslAuthenticated) {
                return;
            }
            List<ClientInfo> ids = zk.whoAmI();
            StringBuilder line = new StringBuilder("whoami");
            for (ClientInfo info : ids) {
                line.append(' ').append(info.getAuthScheme()).append(':').append(info.getUser());
            }
            System.out.println(line);
            for (int index = 1; index < args.length; index++) {
                try {
                    byte[] data = zk.getData(args[index], false, null);
                    System.out.println("get " + args[index] + " OK "
                        + new String(data, StandardCharsets.UTF_8));
                } catch (KeeperException error) {
                    System.out.println("get " + args[index] + " " + error.code());
                }
            }
        } finally {
            zk.close();
        }
    }
}
