#!/usr/bin/env bash
# Installs everything orch needs to build, test and run the demo, from Debian 12
# packages only. Idempotent: packages already present are not touched, and apt's
# package lists are refreshed only when something is missing.
#
# mariadb-server is installed for the sandbox; its system service is stopped and
# disabled so it never occupies 3306 (tests start their own servers by PID).
set -euo pipefail

PKGS=(
  build-essential cmake pkg-config clang-format
  libmariadb-dev-compat libmariadb-dev
  libnng-dev
  libprotobuf-c-dev protobuf-c-compiler
  libevent-dev
  libmbedtls-dev
  libjansson-dev
  libcmocka-dev
  mariadb-server mariadb-client
  python3 python3-pytest python3-pymysql
  iproute2 procps openssl
)

missing=()
for p in "${PKGS[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed'; then
    missing+=("$p")
  fi
done

if [ ${#missing[@]} -eq 0 ]; then
  echo "install-deps: all ${#PKGS[@]} packages present"
  exit 0
fi

if [ "$(id -u)" -ne 0 ]; then
  SUDO=sudo
else
  SUDO=
fi

echo "install-deps: installing ${missing[*]}"
# Keep the package's maintainer scripts from starting mariadb on 3306.
policy=/usr/sbin/policy-rc.d
created_policy=0
if [ ! -e "$policy" ]; then
  printf '#!/bin/sh\nexit 101\n' | $SUDO tee "$policy" >/dev/null
  $SUDO chmod +x "$policy"
  created_policy=1
fi
cleanup() { [ "$created_policy" = 1 ] && $SUDO rm -f "$policy"; }
trap cleanup EXIT

export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -q
$SUDO apt-get install -y -q --no-install-recommends "${missing[@]}"

if command -v systemctl >/dev/null 2>&1 && systemctl list-unit-files mariadb.service >/dev/null 2>&1; then
  $SUDO systemctl disable --now mariadb.service >/dev/null 2>&1 || true
fi
echo "install-deps: done"
