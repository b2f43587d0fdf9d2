# lib.bash: what the scripts of tests/e2e share, sourced at their top
# (`. "$(dirname "$0")/lib.bash"`; not a test itself: run_e2e.sh runs *.sh).
# It goes to the tree's root and sets root, G (the gradc under test: GRADC,
# else build/gradc), tmp (a scratch folder removed at exit), and ok, bad and
# finish, which count and print the results.
set -u
cd "$(dirname "$0")/../.."
root=$PWD
G=${GRADC:-$root/build/gradc}
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
pass=0 fail=0
ok() { pass=$((pass+1)); echo "ok   $1"; }
bad() { fail=$((fail+1)); echo "FAIL $1"; shift; [ $# -gt 0 ] && printf '     %s\n' "$@"; return 0; }
# finish NAME [EXTRA]: the closing line; the status is that of the checks
finish() { echo "$1: $pass passed, $fail failed${2:-}"; [ "$fail" = 0 ]; }
