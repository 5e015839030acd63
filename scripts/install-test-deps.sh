#!/usr/bin/env bash
# Installs what the test suite needs on a fresh Debian machine: the reference server (Apache
# ZooKeeper) and the real clients the compatibility suites drive (Kazoo, the C client, Curator,
# zkCli, and the Go clients go-zookeeper and its ngaut fork with the Go toolchain to build
# tests/compat/go), plus pytest, and openssl for the TLS suite's certificates (keytool comes
# with the JDK). Packages already present are not reinstalled.
set -euo pipefail

packages=(zookeeper zookeeper-bin python3-kazoo python3-pytest
          libcurator-client-java libcurator-framework-java libcurator-recipes-java
          iproute2 golang-go golang-github-samuel-go-zookeeper-dev openssl
          golang-github-ngaut-go-zookeeper-dev
          libkrb5-dev libclang-dev python3-pure-sasl krb5-kdc krb5-admin-server
          prometheus)
# SASL: libkrb5-dev (MIT GSS-API headers, krb5-config) and libclang-dev (bindgen) build the
# libgssapi crate; python3-pure-sasl is Kazoo's SASL client; krb5-kdc (krb5kdc, kdb5_util) and
# krb5-admin-server (kadmin.local only; its kadmind is not started) let
# tests/compat/test_sasl.py run a throwaway KDC on loopback. prometheus (with promtool):
# tests/compat/test_operator.py starts one on loopback to scrape ringkeeper (the package's own
# service is not used).
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
