#!/usr/bin/env bash
# Fails when a C source or header in the tree differs from what clang-format
# (with the committed .clang-format) would write. Fix with:
#   clang-format -i $(git ls-files '*.c' '*.h')
set -euo pipefail
cd "$(dirname "$0")/.."
if ! command -v clang-format >/dev/null; then
  echo "check-format: clang-format not installed (packaging/install-deps.sh installs it)" >&2
  exit 1
fi
mapfile -t files < <(find agent cli common coordinator tests -name '*.[ch]' -not -path '*/build*' | sort)
bad=0
for f in "${files[@]}"; do
  if ! clang-format --dry-run -Werror "$f" >/dev/null 2>&1; then
    echo "check-format: $f is not clang-formatted (clang-format -i $f)"
    bad=$((bad + 1))
  fi
done
echo "check-format: ${#files[@]} files checked, $bad not formatted"
[ "$bad" -eq 0 ]
