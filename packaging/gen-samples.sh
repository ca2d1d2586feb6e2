#!/usr/bin/env bash
# Regenerates the sample configuration files in packaging/ from the config
# tables compiled into the binaries (orch-agent --print-sample), so that a
# sample never says something the code does not.
#
#   packaging/gen-samples.sh BUILD_DIR [OUT_DIR]   write the samples (default OUT_DIR:
#                                                  packaging/ itself); commit the result
#   packaging/gen-samples.sh --check BUILD_DIR     regenerate into a temp dir and fail
#                                                  if a committed sample differs (ctest
#                                                  packaging.samples runs this)
#
# --check also loads each committed sample with --check-config and requires that
# the only error is the missing secret (host_key, fleet_secret): the samples carry no
# secret and no "insecure": true, so a sample copied to /etc as-is refuses to
# start instead of running unauthenticated.
#
# Exit status: 0 ok, 1 a sample differs or loads wrongly, 2 usage or missing binary.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)

# name of the sample in packaging/ | binary (relative to the build dir) | the one
# key whose absence must be the sample's only error (its secret)
SAMPLES=(
  "agent.sample.json|agent/orch-agent|host_key"
  "coordinator.sample.json|coordinator/orch-coordinator|fleet_secret"
)

usage() {
  sed -n '2,17p' "$0" | sed 's/^# \{0,1\}//' >&2
  exit 2
}

check=false
if [ "${1:-}" = "--check" ]; then
  check=true
  shift
fi
[ $# -ge 1 ] && [ $# -le 2 ] || usage
build=$1
out=${2:-$here}
if $check && [ $# -ne 1 ]; then
  usage
fi

find_binary() {
  local p="$build/$1"
  if [ ! -x "$p" ]; then
    echo "gen-samples: $p not found or not executable (build first: cmake --build $build)" >&2
    exit 2
  fi
  printf '%s\n' "$p"
}

generate() {
  local dir=$1 entry name bin
  for entry in "${SAMPLES[@]}"; do
    name=${entry%%|*}
    bin=${entry#*|}
    bin=$(find_binary "${bin%%|*}")
    "$bin" --print-sample >"$dir/$name.tmp"
    mv "$dir/$name.tmp" "$dir/$name"
  done
}

if ! $check; then
  mkdir -p "$out"
  generate "$out"
  for entry in "${SAMPLES[@]}"; do
    echo "gen-samples: wrote $out/${entry%%|*}"
  done
  exit 0
fi

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
generate "$tmp"
rc=0
for entry in "${SAMPLES[@]}"; do
  name=${entry%%|*}
  bin=${entry#*|}
  secret=${bin#*|}
  bin=$(find_binary "${bin%%|*}")
  if ! diff -u "$here/$name" "$tmp/$name"; then
    echo "gen-samples: packaging/$name is out of date with the config table;" \
      "run packaging/gen-samples.sh $build and commit it" >&2
    rc=1
  fi
  # The committed sample must load except for the one secret it lacks.
  set +e
  errors=$("$bin" -c "$here/$name" --check-config 2>&1 >/dev/null)
  status=$?
  set -e
  keys=$(printf '%s\n' "$errors" | grep -o "key '[a-z_]*'" | sort -u || true)
  if [ "$status" -ne 3 ] || [ "$keys" != "key '$secret'" ]; then
    echo "gen-samples: $bin -c packaging/$name --check-config should fail (exit 3) only" \
      "because $secret is missing; got exit $status:" >&2
    printf '%s\n' "$errors" >&2
    rc=1
  fi
done
[ "$rc" -eq 0 ] && echo "gen-samples: ${#SAMPLES[@]} sample(s) match their config tables"
exit "$rc"
