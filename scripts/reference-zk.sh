#!/usr/bin/env bash
# Start or stop the reference Apache ZooKeeper (standalone) from Debian's `zookeeper` package.
#
#   scripts/reference-zk.sh start <dir>   # uses <dir>/zoo.cfg; data in <dir>/data, log in <dir>/zk.log
#   scripts/reference-zk.sh stop  <dir>   # SIGTERM, then SIGKILL after a bound
#
# ZK_JVM_FLAGS (optional): extra JVM options, split on whitespace, for settings ZooKeeper reads
# only as plain system properties, e.g. ZK_JVM_FLAGS=-Dznode.container.checkIntervalMs=1000
# (ContainerManager's interval; a zoo.cfg key would become zookeeper.znode.container...).
#
# ZK_JVM_PROFILE (optional): `test` (default) starts a small, quick-to-start JVM (256 MiB heap,
# serial GC, C1 only) for correctness tests; `server` starts it as zkServer.sh does (default
# collector, full JIT) with ZK_HEAP_MB of heap (default 1000, zkServer.sh's ZK_SERVER_HEAP), and
# is what every benchmark must use: a hobbled reference would flatter ringkeeper.
#
# The server runs as a plain foreground java process put in the background (no zkServer.sh, no
# systemd), so several can run side by side on different ports. The classpath is built from
# /usr/share/java: zookeeper.jar names most of its dependencies in its manifest Class-Path; we add
# zookeeper-jute, an slf4j binding (slf4j-log4j12 + log4j 1.2, as Debian ships them) and a
# log4j.properties that writes to the console, which goes to <dir>/zk.log. The Jetty jars are
# there for the AdminServer (off unless a test enables it: admin.enableServer=true in zoo.cfg).
#
# Why ZooKeeperServerMain: it is the standalone entry point (QuorumPeerMain falls back to it for a
# config without server.N lines). Unknown zoo.cfg keys become `zookeeper.`-prefixed system
# properties (QuorumPeerConfig.parseProperties), so extendedTypesEnabled and
# DigestAuthenticationProvider.superDigest in zoo.cfg take effect.
set -euo pipefail

JAVA_DIR=${JAVA_DIR:-/usr/share/java}
START_TIMEOUT_S=${START_TIMEOUT_S:-30}
STOP_TIMEOUT_S=${STOP_TIMEOUT_S:-10}

usage() { echo "usage: $0 start|stop <dir>" >&2; exit 2; }
[ $# -eq 2 ] || usage
action=$1
dir=$(cd "$2" && pwd)
pidfile="$dir/zk.pid"

# Read one key from zoo.cfg (last occurrence wins, as in java.util.Properties).
cfg_get() { sed -n "s/^[[:space:]]*$1[[:space:]]*=[[:space:]]*//p" "$dir/zoo.cfg" | tail -n1 | tr -d '[:space:]'; }

# Send a four-letter word with bash's /dev/tcp (no nc dependency); prints the answer.
four_letter() {
  local host=$1 port=$2 word=$3
  ( exec 3<>"/dev/tcp/$host/$port" && printf '%s' "$word" >&3 && timeout 2 cat <&3 ) 2>/dev/null || true
}

classpath() {
  local cp="" jar
  for jar in zookeeper zookeeper-jute slf4j-api slf4j-log4j12 log4j-1.2 \
             netty-buffer netty-codec netty-common netty-handler netty-resolver netty-transport \
             netty-transport-native-epoll netty-transport-native-unix-common \
             commons-cli commons-io jackson-annotations jackson-core jackson-databind \
             metrics-core snappy-java jline \
             jetty9-server jetty9-servlet jetty9-http jetty9-io jetty9-util jetty9-security servlet-api; do
    if [ -f "$JAVA_DIR/$jar.jar" ]; then cp="$cp${cp:+:}$JAVA_DIR/$jar.jar"; fi
  done
  [ -f "$JAVA_DIR/zookeeper.jar" ] || { echo "no $JAVA_DIR/zookeeper.jar: apt-get install zookeeper" >&2; exit 1; }
  echo "$dir:$cp"   # $dir first: it holds log4j.properties
}

start() {
  [ -f "$dir/zoo.cfg" ] || { echo "no $dir/zoo.cfg" >&2; exit 1; }
  if [ -f "$pidfile" ] && kill -0 "$(cat "$pidfile")" 2>/dev/null; then
    echo "already running (pid $(cat "$pidfile"))" >&2; exit 1
  fi
  local port host
  port=$(cfg_get clientPort); host=$(cfg_get clientPortAddress); host=${host:-127.0.0.1}
  [ -n "$port" ] || { echo "zoo.cfg has no clientPort" >&2; exit 1; }
  mkdir -p "$(cfg_get dataDir || echo "$dir/data")" "$dir/data"
  cat > "$dir/log4j.properties" <<'PROPS'
log4j.rootLogger=INFO, CONSOLE
log4j.appender.CONSOLE=org.apache.log4j.ConsoleAppender
log4j.appender.CONSOLE.layout=org.apache.log4j.PatternLayout
log4j.appender.CONSOLE.layout.ConversionPattern=%d{ISO8601} - %-5p [%t:%C{1}@%L] - %m%n
PROPS
  local profile
  case "${ZK_JVM_PROFILE:-test}" in
    # Small heap and C1 only: for tests the reference only needs to be correct, and it starts faster.
    test) profile="-Xms64m -Xmx256m -XX:+UseSerialGC -XX:TieredStopAtLevel=1" ;;
    server) profile="-Xmx${ZK_HEAP_MB:-1000}m" ;;
    *) echo "ZK_JVM_PROFILE must be test or server" >&2; exit 2 ;;
  esac
  # shellcheck disable=SC2086
  nohup java $profile \
    -Dlog4j.configuration="file:$dir/log4j.properties" \
    -Dzookeeper.admin.enableServer=false \
    -Dzookeeper.jmx.log4j.disable=true \
    ${ZK_JVM_FLAGS:-} \
    -cp "$(classpath)" org.apache.zookeeper.server.ZooKeeperServerMain "$dir/zoo.cfg" \
    > "$dir/zk.log" 2>&1 < /dev/null &
  echo $! > "$pidfile"
  local deadline=$((SECONDS + START_TIMEOUT_S))
  while [ $SECONDS -lt $deadline ]; do
    if ! kill -0 "$(cat "$pidfile")" 2>/dev/null; then
      echo "ZooKeeper exited during start; see $dir/zk.log" >&2; tail -n 20 "$dir/zk.log" >&2; exit 1
    fi
    # ruok answers imok as soon as the connection factory listens, before the database is
    # loaded (sessions are refused until then), so also wait for srvr to report a Mode.
    if [ "$(four_letter "$host" "$port" ruok)" = imok ] \
       && four_letter "$host" "$port" srvr | grep -q '^Mode:'; then
      echo "ZooKeeper up on $host:$port (pid $(cat "$pidfile"))"; return 0
    fi
    sleep 0.2
  done
  echo "ZooKeeper did not answer ruok within ${START_TIMEOUT_S}s; see $dir/zk.log" >&2
  stop; exit 1
}

stop() {
  [ -f "$pidfile" ] || return 0
  local pid; pid=$(cat "$pidfile")
  if kill -0 "$pid" 2>/dev/null; then
    kill -TERM "$pid" 2>/dev/null || true
    local deadline=$((SECONDS + STOP_TIMEOUT_S))
    while kill -0 "$pid" 2>/dev/null && [ $SECONDS -lt $deadline ]; do sleep 0.1; done
    if kill -0 "$pid" 2>/dev/null; then kill -KILL "$pid" 2>/dev/null || true; fi
  fi
  rm -f "$pidfile"
}

case $action in
  start) start ;;
  stop) stop ;;
  *) usage ;;
esac
