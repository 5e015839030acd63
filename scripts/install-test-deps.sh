#!/usr/bin/env bash
# Installs what the test suite needs on a fresh Debian machine: the reference server (Apache
# ZooKeeper) and the real clients the compatibility suites drive (Kazoo, the C client, Curator,
# zkCli, and the Go clients go-zookeeper and its ngaut fork with the Go toolchain to build
# tests/compat/go), plus pytest. Packages already present are not reinstalled.
set -euo pipefail

packages=(zookeeper zookeeper-bin python3-kazoo python3-pytest
          libcurator-client-java libcurator-framework-java libcurator-recipes-java
          iproute2 golang-go golang-github-samuel-go-zookeeper-dev
          golang-github-ngaut-go-zookeeper-dev)
missing=()
for package in "${packages[@]}"; do
  dpkg -s "$package" >/dev/null 2>&1 || missing+=("$package")
done
if ! command -v javac >/dev/null 2>&1; then
  missing+=(default-jdk-headless)
fi
if [ ${#missing[@]} -gt 0 ]; then
  echo "installing: ${missing[*]}"
  if [ "$(id -u)" -ne 0 ]; then SUDO=sudo; else SUDO=; fi
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${missing[@]}" >/dev/null
fi
