#!/usr/bin/env bash
# go-zookeeper's own test suite (Debian golang-github-samuel-go-zookeeper-dev), timed, against
# Apache ZooKeeper and against ringkeeper.
#
#   scripts/go-zookeeper-suite.sh [zookeeper|ringkeeper|both] [go test args, e.g. -run TestX]
#
# The package's tests start their servers with StartTestCluster (server_help.go), which runs
# `java -jar <zookeeper fat jar> server <dir>/zoo.cfg` for each server (server_java.go) and
# stops it with SIGKILL. This script:
#
# * copies the package's source into a temporary GOPATH (nothing of it is kept or committed)
#   and patches one thing there: FLWSrvr's `srvr` pattern (flw.go) is the pre-3.5 format
#   (`built on 01/02/2006 15:04 GMT`, an integer average latency); ZooKeeper 3.5+ writes
#   `built on 2022-02-25 08:49 UTC` and `Latency min/avg/max: 0/0.0/0`, so the helper's health
#   check would never pass against either server (Debian's 3.8.0 also reports its version as
#   `3.8.0-${mvngit.commit.id}`). The pattern is widened and a build date it cannot parse is no
#   longer an error;
# * puts a `java` shim first on PATH: it takes the helper's `-jar JAR server CFG`, adds to CFG
#   what keeps every server on 127.0.0.1 and off port 8080 (clientPortAddress=127.0.0.1,
#   admin.enableServer=false), and execs (so that the helper's SIGKILL reaches the server)
#   either ZooKeeper (`java -cp /usr/share/java/... QuorumPeerMain CFG`, the small test JVM of
#   scripts/reference-zk.sh) or `$RINGKEEPER_BIN --config CFG`;
# * runs `go test -v` offline (GO111MODULE=off, GOFLAGS=, GOPROXY=off) and prints, per server,
#   the pass/fail/skip counts, the wall time, the failing tests, and (for `both`) the tests
#   that fail only on ringkeeper or take more than twice as long (and over a second more).
#
# Logs and per-test tables stay in $OUT (default a new /tmp/go-zookeeper-suite.XXXX).
set -euo pipefail
cd "$(dirname "$0")/.."
REPO=$PWD
which=${1:-both}
[ $# -gt 0 ] && shift
case $which in zookeeper|ringkeeper|both) ;; *) echo "usage: $0 [zookeeper|ringkeeper|both] [go test args]" >&2; exit 2;; esac

PACKAGE_SRC=${GOZK_PACKAGE_SRC:-/usr/share/gocode/src/github.com/samuel/go-zookeeper}
RINGKEEPER_BIN=${RINGKEEPER_BIN:-$REPO/target/release/ringkeeper}
JAVA_DIR=${JAVA_DIR:-/usr/share/java}
SUITE_TIMEOUT=${SUITE_TIMEOUT:-30m}
REAL_JAVA=$(command -v java || true)
GO=$(command -v go || true)
[ -n "$GO" ] || { echo "go not found (apt-get install golang-go)" >&2; exit 1; }
[ -d "$PACKAGE_SRC/zk" ] || { echo "$PACKAGE_SRC missing (apt-get install golang-github-samuel-go-zookeeper-dev)" >&2; exit 1; }

OUT=${OUT:-$(mktemp -d /tmp/go-zookeeper-suite.XXXX)}
mkdir -p "$OUT"
GOPATH_DIR=$OUT/gopath
rm -rf "$GOPATH_DIR"
mkdir -p "$GOPATH_DIR/src/github.com/samuel" "$OUT/bin"
cp -r "$PACKAGE_SRC" "$GOPATH_DIR/src/github.com/samuel/go-zookeeper"
chmod -R u+w "$GOPATH_DIR"

# The srvr pattern of ZooKeeper 3.5+ (and the old one still matches it).
python3 - "$GOPATH_DIR/src/github.com/samuel/go-zookeeper/zk/flw.go" <<'EOF'
import sys
path = sys.argv[1]
s = open(path).read()
replacements = [
    (r'''`^Zookeeper version: ([A-Za-z0-9\.\-]+), built on''',
     r'''`^Zookeeper version: ([^,\n]+), built on'''),
    (r'''built on (\d\d/\d\d/\d\d\d\d \d\d:\d\d [A-Za-z0-9:\+\-]+)`''',
     r'''built on ([^\n]*?)\s*$`'''),
    (r'''`^Latency min/avg/max: (\d+)/(\d+)/(\d+)`''',
     r'''`^Latency min/avg/max: (\d+)/(\d+)(?:\.\d+)?/(\d+)`'''),
    ('''		buildTime, err := time.Parse("01/02/2006 15:04 MST", match[1])

		if err != nil {
			ss[i] = &ServerStats{Error: err}
			imOk = false
			continue
		}
''', '''		// patched by ringkeeper's scripts/go-zookeeper-suite.sh: 3.5+ dates parse or stay zero
		buildTime, err := time.Parse("01/02/2006 15:04 MST", match[1])
		if err != nil {
			buildTime, _ = time.Parse("2006-01-02 15:04 MST", match[1])
		}
'''),
]
for old, new in replacements:
    assert old in s, "flw.go: pattern not found: %r" % old
    s = s.replace(old, new)
open(path, "w").write(s)
EOF

# TestEncodeShortBuffer and TestDecodeShortBuffer (parallel tests, so they run last) panic in
# the client's encodePacket/decodePacket under Go 1.19 ("slice bounds out of range",
# re-panicked by its recover) and the panic ends the test binary before the remaining parallel
# tests report: skipped in the copy (they start no server).
python3 - "$GOPATH_DIR/src/github.com/samuel/go-zookeeper/zk/structs_test.go" <<'EOF2'
import sys
path = sys.argv[1]
s = open(path).read()
for name in ("TestEncodeShortBuffer", "TestDecodeShortBuffer"):
    old = "func %s(t *testing.T) {\n" % name
    assert old in s, "structs_test.go: %s not found" % name
    s = s.replace(old, old + '\tt.Skip("panics in the client under Go 1.19; no server involved")\n')
open(path, "w").write(s)
EOF2

# The java shim: the helper runs `java -jar JAR server CFG`.
cat >"$OUT/bin/java" <<EOF
#!/usr/bin/env bash
set -euo pipefail
cfg=""
while [ \$# -gt 0 ]; do
  case \$1 in
    -jar) shift 2 ;;
    server) cfg=\$2; shift 2 ;;
    *) shift ;;
  esac
done
[ -n "\$cfg" ] || { echo "java shim: no 'server CFG' in the arguments" >&2; exit 2; }
grep -q '^clientPortAddress=' "\$cfg" || printf 'clientPortAddress=127.0.0.1\nadmin.enableServer=false\n' >>"\$cfg"
dir=\$(dirname "\$cfg")
echo \$\$ >>"$OUT/server-pids"  # exec keeps the pid: the script reaps leftovers at the end
case "\${GOZK_SERVER:?}" in
  ringkeeper) exec "$RINGKEEPER_BIN" --config "\$cfg" ;;
  zookeeper)
    cp=""
    for jar in zookeeper zookeeper-jute slf4j-api slf4j-log4j12 log4j-1.2 netty-buffer netty-codec \\
        netty-common netty-handler netty-resolver netty-transport netty-transport-native-epoll \\
        netty-transport-native-unix-common commons-cli commons-io jackson-annotations \\
        jackson-core jackson-databind metrics-core snappy-java jline; do
      [ -f "$JAVA_DIR/\$jar.jar" ] && cp="\$cp\${cp:+:}$JAVA_DIR/\$jar.jar"
    done
    printf 'log4j.rootLogger=WARN, CONSOLE\nlog4j.appender.CONSOLE=org.apache.log4j.ConsoleAppender\nlog4j.appender.CONSOLE.layout=org.apache.log4j.PatternLayout\nlog4j.appender.CONSOLE.layout.ConversionPattern=%%d{ISO8601} - %%-5p [%%t:%%C{1}@%%L] - %%m%%n\n' >"\$dir/log4j.properties"
    exec "$REAL_JAVA" -Xms32m -Xmx256m -XX:+UseSerialGC -XX:TieredStopAtLevel=1 \\
      -Dlog4j.configuration=file:"\$dir/log4j.properties" -Dzookeeper.admin.enableServer=false \\
      -Dzookeeper.jmx.log4j.disable=true -cp "\$dir:\$cp" \\
      org.apache.zookeeper.server.quorum.QuorumPeerMain "\$cfg" ;;
esac
EOF
chmod +x "$OUT/bin/java"

# One run of the suite against one server: OUT/<server>.log (go test -v), OUT/<server>.tsv
# (test, status, seconds), OUT/<server>.summary.
run_suite() {
  local server=$1; shift
  if [ "$server" = zookeeper ] && { [ -z "$REAL_JAVA" ] || [ ! -f "$JAVA_DIR/zookeeper.jar" ]; }; then
    echo "zookeeper: skipped (java or $JAVA_DIR/zookeeper.jar missing: apt-get install zookeeper)"; return
  fi
  if [ "$server" = ringkeeper ] && [ ! -x "$RINGKEEPER_BIN" ]; then
    echo "ringkeeper: skipped ($RINGKEEPER_BIN missing: cargo build --release --bin ringkeeper)"; return
  fi
  local start end status=0
  start=$(date +%s.%N)
  (cd "$GOPATH_DIR/src/github.com/samuel/go-zookeeper/zk" &&
    GOZK_SERVER=$server PATH="$OUT/bin:$PATH" GOPATH="$GOPATH_DIR" GO111MODULE=off GOFLAGS= \
    GOPROXY=off CGO_ENABLED=0 GOCACHE="$OUT/gocache" \
    "$GO" test -count=1 -v -timeout "$SUITE_TIMEOUT" "$@" . ) >"$OUT/$server.log" 2>&1 || status=$?
  end=$(date +%s.%N)
  # `--- PASS: TestX (1.23s)` (subtests are indented and left out).
  sed -n -E 's/^--- (PASS|FAIL|SKIP): ([^ ]+) \(([0-9.]+)s\)$/\2\t\1\t\3/p' "$OUT/$server.log" >"$OUT/$server.tsv"
  local pass fail skip panicked=""
  pass=$(awk -F'\t' '$2=="PASS"' "$OUT/$server.tsv" | wc -l)
  fail=$(awk -F'\t' '$2=="FAIL"' "$OUT/$server.tsv" | wc -l)
  skip=$(awk -F'\t' '$2=="SKIP"' "$OUT/$server.tsv" | wc -l)
  if grep -qE '^panic: |^FAIL\s.*\[build failed\]' "$OUT/$server.log"; then
    panicked=" (the run ended early: $(grep -m1 -E '^panic: |build failed' "$OUT/$server.log"))"
  fi
  {
    printf '%s: %d passed, %d failed, %d skipped in %.1f s wall (go test exit %d)%s\n' \
      "$server" "$pass" "$fail" "$skip" "$(echo "$end - $start" | bc)" "$status" "$panicked"
    if [ "$fail" -gt 0 ]; then
      printf '  failed: %s\n' "$(awk -F'\t' '$2=="FAIL"{printf "%s (%ss) ", $1, $3}' "$OUT/$server.tsv")"
    fi
    printf '  slowest: %s\n' "$(sort -t$'\t' -k3,3 -rn "$OUT/$server.tsv" | head -5 | awk -F'\t' '{printf "%s %ss, ", $1, $3}')"
  } | tee "$OUT/$server.summary"
}

servers=$which
[ "$which" = both ] && servers="zookeeper ringkeeper"
for server in $servers; do run_suite "$server" "$@"; done

if [ "$which" = both ] && [ -s "$OUT/zookeeper.tsv" ] && [ -s "$OUT/ringkeeper.tsv" ]; then
  echo "compared (test: zookeeper -> ringkeeper):"
  join -t$'\t' <(sort "$OUT/zookeeper.tsv") <(sort "$OUT/ringkeeper.tsv") |
    awk -F'\t' '
      $2 != "FAIL" && $4 == "FAIL" { printf "  fails only on ringkeeper: %s (%ss -> %ss)\n", $1, $3, $5; next }
      $2 == "FAIL" && $4 != "FAIL" { printf "  fails only on zookeeper: %s (%ss -> %ss)\n", $1, $3, $5; next }
      $5 > 2 * $3 && $5 - $3 > 1 { printf "  slower on ringkeeper: %s %ss -> %ss\n", $1, $3, $5 }'
fi
# Servers a failed test left running (the helper only stops what it started successfully).
if [ -f "$OUT/server-pids" ]; then
  while read -r pid; do
    if kill -0 "$pid" 2>/dev/null && grep -qaE 'QuorumPeerMain|ringkeeper' "/proc/$pid/cmdline"; then
      kill -9 "$pid" 2>/dev/null || true
    fi
  done <"$OUT/server-pids"
fi
echo "logs: $OUT"
