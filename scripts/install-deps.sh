#!/usr/bin/env bash
# Installs, from Debian bookworm's packages, everything Strata needs to build, test and
# benchmark. Safe to run again: apt-get skips what is already there.
set -euo pipefail

packages=(
  build-essential cmake ninja-build pkg-config ccache git
  librocksdb-dev libabsl-dev libboost1.81-dev libsimdjson-dev libzstd-dev libre2-dev
  libsnappy-dev libprotobuf-dev protobuf-compiler zlib1g-dev libxxhash-dev
  libcli11-dev libspdlog-dev libyaml-cpp-dev
  libgtest-dev libgmock-dev libbenchmark-dev
  curl python3
  # Peers of the end-to-end tests (tests/e2e), which start their own instances.
  prometheus prometheus-node-exporter victoria-metrics
)

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -eq 0 ]; then
  exit 0
fi
echo "install-deps: installing ${missing[*]}" >&2
SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
export DEBIAN_FRONTEND=noninteractive
# The peers' maintainer scripts start their services through invoke-rc.d; in a container
# without an init system that fails and aborts the install, and the tests never use a
# system-started instance anyway. A policy-rc.d answering 101 ("action forbidden") stops
# them from starting for the duration of the install, unless the system already has one.
policy=/usr/sbin/policy-rc.d
if [ ! -e "$policy" ]; then
  printf '#!/bin/sh\nexit 101\n' | $SUDO tee "$policy" >/dev/null
  $SUDO chmod 755 "$policy"
  trap '$SUDO rm -f "$policy"' EXIT
fi
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
