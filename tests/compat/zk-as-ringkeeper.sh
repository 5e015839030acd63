#!/usr/bin/env bash
# Harness self-test: a stand-in for the ringkeeper binary that runs Apache ZooKeeper in the
# foreground with the given zoo.cfg. With RINGKEEPER_BIN pointing here, every differential test
# compares ZooKeeper with ZooKeeper, which shows that the normalisation removes only values that
# differ between runs (a scenario that fails this way is flaky, not a ringkeeper bug).
#   RINGKEEPER_BIN=tests/compat/zk-as-ringkeeper.sh /usr/bin/python3 -m pytest tests/compat -q
set -euo pipefail
[ "${1:-}" = "--config" ] && [ -n "${2:-}" ] || { echo "usage: $0 --config <zoo.cfg>" >&2; exit 2; }
cfg=$2
dir=$(cd "$(dirname "$cfg")" && pwd)
cp=$dir
for jar in zookeeper zookeeper-jute slf4j-api slf4j-log4j12 log4j-1.2 netty-buffer netty-codec \
           netty-common netty-handler netty-resolver netty-transport netty-transport-native-epoll \
           netty-transport-native-unix-common commons-cli commons-io jackson-annotations \
           jackson-core jackson-databind metrics-core snappy-java; do
  [ -f "/usr/share/java/$jar.jar" ] && cp="$cp:/usr/share/java/$jar.jar"
done
cat > "$dir/log4j.properties" <<'PROPS'
log4j.rootLogger=INFO, CONSOLE
log4j.appender.CONSOLE=org.apache.log4j.ConsoleAppender
log4j.appender.CONSOLE.layout=org.apache.log4j.PatternLayout
log4j.appender.CONSOLE.layout.ConversionPattern=%d{ISO8601} - %-5p [%t:%C{1}@%L] - %m%n
PROPS
# ringkeeper reads znode.container.checkIntervalMs from zoo.cfg; ZooKeeper only as a plain system
# property (ContainerManager), so hand the zoo.cfg value over.
interval=$(sed -n 's/^[[:space:]]*znode\.container\.checkIntervalMs[[:space:]]*=[[:space:]]*//p' "$cfg" | tail -n1 | tr -d '[:space:]')
flags=()
[ -n "$interval" ] && flags+=("-Dznode.container.checkIntervalMs=$interval")
exec java -Xms64m -Xmx256m -XX:+UseSerialGC -XX:TieredStopAtLevel=1 \
  -Dlog4j.configuration="file:$dir/log4j.properties" -Dzookeeper.admin.enableServer=false \
  "${flags[@]}" -cp "$cp" org.apache.zookeeper.server.ZooKeeperServerMain "$cfg"
