#!/usr/bin/env bash
# Build (if needed) and run the Curator recipe checks against a server.
#
# Usage: tests/compat/java/run.sh <connectString>      e.g. 127.0.0.1:22181
# Build output goes to $CURATOR_COMPAT_BUILD_DIR (default: $TMPDIR/ringkeeper-curator-compat).
# Client library logging goes to stderr at level $CURATOR_COMPAT_LOG_LEVEL (default: error).
# Exit code: the number of failed recipes (0 = all passed); 1 also for build problems.
set -euo pipefail

if [ "$#" -ne 1 ]; then
    echo "usage: $0 <connectString>" >&2
    exit 2
fi
source_dir=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
build_dir=${CURATOR_COMPAT_BUILD_DIR:-${TMPDIR:-/tmp}/ringkeeper-curator-compat}
java_bin=${JAVA:-java}

if [ ! -f "$build_dir/CuratorRecipes.class" ] || [ ! -f "$build_dir/classpath.txt" ] \
    || [ "$source_dir/CuratorRecipes.java" -nt "$build_dir/CuratorRecipes.class" ] \
    || [ "$source_dir/build.sh" -nt "$build_dir/classpath.txt" ]; then
    "$source_dir/build.sh" "$build_dir"
fi

# Seven recipes of at most 30 s each, plus JVM start: a hard outer bound in case the JVM wedges.
exec timeout --kill-after=10 300 "$java_bin" \
    -Dorg.slf4j.simpleLogger.defaultLogLevel="${CURATOR_COMPAT_LOG_LEVEL:-error}" \
    -Dorg.slf4j.simpleLogger.logFile=System.err \
    -cp "$(cat "$build_dir/classpath.txt")" CuratorRecipes "$1"
