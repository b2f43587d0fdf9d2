#!/usr/bin/env bash
# deep_models.sh: models deep enough that the graph passes build thousands
# of nodes while holding pointers to others (tests/models/deep30.nn, thirty
# dense layers; nested150.nn, relu 150 deep). gradc must compile them
# without an invalid memory access: under valgrind when it is installed,
# and under AddressSanitizer in `make test-sanitize` (GRADC is then the
# sanitized build). Their C must compile without a warning.
set -u
cd "$(dirname "$0")/../.."
G=${GRADC:-build/gradc}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
fail=0
vg=""
if command -v valgrind >/dev/null && [ -z "${GRADC:-}" ]; then
  vg="valgrind -q --error-exitcode=99"
else
  echo "note: valgrind not used (apt-get install -y valgrind; or a sanitized gradc is under test)"
fi
for m in deep30 nested150; do
  mkdir -p "$tmp/$m"
  if ! $vg "$G" -c tests/models/$m.nn -o "$tmp/$m" 2>"$tmp/err"; then
    echo "FAIL $m: gradc: $(head -5 "$tmp/err")"; fail=1; continue
  fi
  if ! ${CC:-cc} -std=c99 -O1 -Wall -Wextra -pedantic -Werror -c "$tmp/$m"/*.c -o "$tmp/$m/o.o" 2>"$tmp/err"; then
    echo "FAIL $m: cc: $(head -5 "$tmp/err")"; fail=1; continue
  fi
  echo "ok   $m"
done
exit $fail
