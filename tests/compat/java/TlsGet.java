// Reads one znode over TLS with ZooKeeper's Java client (ClientCnxnSocketNetty), waiting for
// the session before the read. The TLS settings come as -D system properties, as deployments
// pass them: zookeeper.client.secure, zookeeper.clientCnxnSocket, zookeeper.ssl.*.
// Usage: java -cp <zookeeper jars> TlsGet.java HOST:PORT PATH  (prints the data, exit 0)
import java.nio.charset.StandardCharsets;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import org.apache.zookeeper.Watcher;
import org.apache.zookeeper.ZooKeeper;

public class TlsGet {
    public static void main(String[] args) throws Exception {
        CountDownLatch connected = new CountDownLatch(1);
        ZooKeeper zk = new ZooKeeper(args[0], 10000, event -> {
            if (event.getState() == Watcher.Event.KeeperState.SyncConnected) {
                connected.countDown();
            }
        });
        try {
            if (!connected.await(30, TimeUnit.SECONDS)) {
                System.err.println("no session within 30 s");
                System.exit(2);
            }
            byte[] data = zk.getData(args[1], false, null);
            System.out.println("data: " + new String(data, StandardCharsets.UTF_8));
        } finally {
            zk.close();
        }
    }
}
