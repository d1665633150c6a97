#!/usr/bin/env bash
# Installs the Debian packages the integration tests run real servers from, where missing:
# zookeeper (the server jar, run with java), etcd-server, and docker-compose (to validate
# deploy/docker-compose.yml; no Docker engine is needed for that), and chromium (the console's
# browser test drives it headless with playwright-core). Does nothing when they are there.
set -euo pipefail

need=()
[ -f /usr/share/java/zookeeper.jar ] || need+=(zookeeper)
[ -x /usr/bin/etcd ] || need+=(etcd-server)
command -v java >/dev/null 2>&1 || need+=(default-jre-headless)
command -v docker-compose >/dev/null 2>&1 || need+=(docker-compose)
[ -x /usr/bin/chromium ] || need+=(chromium)

if [ ${#need[@]} -eq 0 ]; then
  echo "install-test-deps: zookeeper, etcd, java, docker-compose and chromium are present"
  exit 0
fi

sudo=""
if [ "$(id -u)" -ne 0 ]; then
  command -v sudo >/dev/null 2>&1 || { echo "install-test-deps: need root or sudo to install: ${need[*]}" >&2; exit 1; }
  sudo="sudo"
fi
echo "install-test-deps: installing ${need[*]}"
$sudo apt-get update -qq
DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${need[@]}" >/dev/null
echo "install-test-deps: done"
