#!/usr/bin/env bash
# Compile CuratorRecipes.java against Debian's Curator 5.4 and ZooKeeper jars.
#
# Usage: tests/compat/java/build.sh <output-dir>
# Writes the classes and <output-dir>/classpath.txt (the runtime classpath, output dir first).
# Jars are taken from /usr/share/java (override with JAVA_JAR_DIR); a missing jar stops the
# build with the Debian package that provides it.
set -euo pipefail

if [ "$#" -ne 1 ]; then
    echo "usage: $0 <output-dir>" >&2
    exit 2
fi
out_dir=$1
source_dir=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
jar_dir=${JAVA_JAR_DIR:-/usr/share/java}
javac_bin=${JAVAC:-javac}

# jar name -> Debian package providing it. The Curator and ZooKeeper jars carry Class-Path
# manifests for their own dependencies (jackson, commons-*, netty, ...), so only the direct
# ones are listed. slf4j-simple is the logging backend at run time (to stderr). -Xlint:-path:
# the ZooKeeper manifest names jars Debian does not ship (e.g. jline).
jars=(
    "curator-recipes.jar libcurator-recipes-java"
    "curator-framework.jar libcurator-framework-java"
    "curator-client.jar libcurator-client-java"
    "zookeeper.jar libzookeeper-java"
    "zookeeper-jute.jar libzookeeper-java"
    "guava.jar libguava-java"
    "slf4j-api.jar libslf4j-java"
    "slf4j-simple.jar libslf4j-java"
)

if ! command -v "$javac_bin" >/dev/null 2>&1; then
    echo "build.sh: javac not found (install a JDK, e.g. apt-get install default-jdk-headless)" >&2
    exit 1
fi

classpath=""
missing=0
for entry in "${jars[@]}"; do
    jar=${entry%% *}
    package=${entry##* }
    if [ ! -r "$jar_dir/$jar" ]; then
        echo "build.sh: missing $jar_dir/$jar -- install it with: apt-get install $package" >&2
        missing=1
        continue
    fi
    classpath="${classpath:+$classpath:}$jar_dir/$jar"
done
if [ "$missing" -ne 0 ]; then
    exit 1
fi

mkdir -p "$out_dir"
out_dir=$(cd "$out_dir" && pwd)
"$javac_bin" -Xlint:all,-processing,-serial,-path -encoding UTF-8 -d "$out_dir" -cp "$classpath" \
    "$source_dir/CuratorRecipes.java"
printf '%s\n' "$out_dir:$classpath" > "$out_dir/classpath.txt"
echo "built $out_dir/CuratorRecipes.class" >&2
