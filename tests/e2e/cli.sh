#!/usr/bin/env bash
# cli.sh: gradc's command line behaves as a C compiler's does. -o with
# --emit writes the file (and nothing on an error); -c -o takes a directory
# or NAME.c (NAME.h beside it, included by that name); '-' reads the model
# from standard input (<stdin>:LINE:COL in diagnostics); -q silences
# warnings, -Werror makes them errors; flags that cannot both hold are
# refused naming both; a directory as the model, '--emit' without a kind and
# a UTF-8 byte-order mark get their own answers; --main writes the
# executable's glue; a model name of 255 characters builds.
# GRADC overrides the compiler.
. "$(dirname "$0")/lib.bash"
# run CMD...: status in $rc, stdout in $tmp/.out, stderr in $tmp/.err
run() { "$@" >"$tmp/.out" 2>"$tmp/.err"; rc=$?; }
# expect NAME STATUS STDERR-PATTERN CMD...
expect() {
  local name=$1 want=$2 pat=$3; shift 3
  run "$@"
  if [ "$rc" != "$want" ]; then bad "$name" "exit $rc, want $want: $(head -3 "$tmp/.err")"
  elif [ -n "$pat" ] && ! grep -q -E -- "$pat" "$tmp/.err"; then bad "$name" "stderr: $(head -3 "$tmp/.err")" "want: $pat"
  else ok "$name${pat:+: $(grep -m1 -E -- "$pat" "$tmp/.err" | cut -c1-100)}"; fi
}
cd "$tmp"
cp "$root/examples/seed.nn" "$root/examples/tiny.nn" .
printf 'input x[2]\ninput z[2]\nparam w[2]\nminimize sum(w * x)\noutput w * x\n' > warn.nn

# ------------------------------------------------------- --emit=KIND -o FILE
expect "emit -o" 0 '' "$G" --emit=grad seed.nn -o grad.txt
[ -s grad.txt ] && [ ! -s "$tmp/.out" ] && "$G" --emit=grad seed.nn | cmp -s - grad.txt && ok "emit -o wrote what stdout gets, stdout empty" ||
  bad "emit -o file" "$(ls)"
for k in tokens ast graph c h dot stats; do
  run "$G" --emit=$k seed.nn -o "e.$k"
  # the same but for the command line the generated C records
  [ $rc = 0 ] && "$G" --emit=$k seed.nn | grep -v 'gradc --emit' | cmp -s - <(grep -v 'gradc --emit' "e.$k") &&
    ok "emit=$k -o" || bad "emit=$k -o" "exit $rc"
done
printf 'input x[2]\nminimize sum(x +)\n' > broken.nn
expect "emit -o on an error" 1 'broken.nn:2:' "$G" --emit=ast broken.nn -o broken.txt
[ ! -e broken.txt ] && ok "no file on an error" || bad "broken.txt written"
[ -z "$(ls | grep tmp)" ] && ok "no temporary file left" || bad "left: $(ls | grep tmp)"

# ------------------------------------------------------------- -c -o
mkdir -p out
expect "-c -o DIR" 0 '' "$G" -c seed.nn -o out
[ -f out/seed.c ] && [ -f out/seed.h ] && ok "-c -o DIR wrote seed.c, seed.h" || bad "-c -o DIR: $(ls out)"
expect "-c -o NAME.c" 0 '' "$G" -c seed.nn -o out/foo.c
[ -f out/foo.c ] && [ -f out/foo.h ] && grep -q '^#include "foo.h"' out/foo.c && ok "-c -o out/foo.c wrote foo.c including foo.h" ||
  bad "-c -o NAME.c" "$(ls out)" "$(grep '#include' out/foo.c | head -2)"
cc -std=c99 -Wall -Werror -c out/foo.c -o out/foo.o && ok "foo.c compiles with foo.h" || bad "foo.c does not compile"
expect "-c -o into a missing directory" 2 "nodir/x.c: error: cannot write there" "$G" -c seed.nn -o nodir/x.c
expect "-c -o a file not .c" 2 "directory or a file ending in .c" "$G" -c seed.nn -o out/foo.txt
expect "-c -o DIR/ that is not there" 2 "gradc: error: 'nodir/' is not there" "$G" -c seed.nn -o nodir/

# ------------------------------------------------------------ standard input
expect "stdin --check" 0 '' "$G" --check - < seed.nn
printf 'input x[2]\nparam w[2]\nminimize sum(w * y)\n' > bad.nn
expect "stdin diagnostics" 1 '^<stdin>:3:18: error: unknown name' "$G" --check - < bad.nn
mkdir -p s && (cd s && "$G" - < ../warn.nn 2>/dev/null) && [ -x s/stdin ] && ok "stdin without a model line builds ./stdin" ||
  bad "stdin executable" "$(ls s)"
mkdir -p s2 && (cd s2 && "$G" -c - < ../tiny.nn) && [ -f s2/tiny.c ] && ok "stdin with 'model tiny' writes tiny.c" || bad "stdin -c: $(ls s2)"
expect "two model files" 2 "more than one model file" "$G" - seed.nn

# ------------------------------------------------------------ -q and -Werror
expect "warnings shown" 0 "warn.nn:2:7: warning: input 'z' is never used" "$G" --check warn.nn
run "$G" -q --check warn.nn
[ $rc = 0 ] && [ ! -s "$tmp/.err" ] && ok "-q silences warnings" || bad "-q" "exit $rc: $(head -3 "$tmp/.err")"
run "$G" -q --check bad.nn
[ $rc = 1 ] && grep -q "error: unknown name 'y'" "$tmp/.err" && ok "-q keeps errors" || bad "-q errors" "$(cat "$tmp/.err")"
rm -rf w && mkdir w
expect "-Werror" 1 "warn.nn:2:7: error: input 'z' is never used \[-Werror\]" "$G" -Werror -c warn.nn -o w
[ -z "$(ls w)" ] && ok "-Werror wrote nothing" || bad "-Werror wrote $(ls w)"
expect "-Werror without warnings" 0 '' "$G" -Werror --check seed.nn

# ------------------------------------------------------- conflicting flags
expect "-c --check" 2 "'-c' and '--check' do not go together" "$G" -c --check seed.nn
expect "--emit=c -c" 2 "'--emit=c' and '-c' do not go together" "$G" --emit=c -c seed.nn
expect "--emit=c --emit=h" 2 "'--emit=c' and '--emit=h' do not go together" "$G" --emit=c --emit=h seed.nn
expect "--check --main" 2 "'--check' and '--main' do not go together" "$G" --check --main seed.nn
expect "-c --threads" 2 "'--threads' and '-c' do not go together" "$G" -c --threads 2 seed.nn
expect "--emit=grad --cc" 2 "'--cc' and '--emit=grad' do not go together" "$G" --emit=grad --cc gcc seed.nn
expect "--mpi --check" 2 "'--mpi' and '--check' do not go together" "$G" --mpi --check seed.nn
expect "--check -o" 2 "'--check' and '-o' do not go together" "$G" --check seed.nn -o x
expect "-q -v" 2 "'-q' and '-v' do not go together" "$G" -q -v seed.nn
expect "--scalar --predict-only" 2 "'--scalar' and '--predict-only' do not go together" "$G" -c --scalar --predict-only tiny.nn
expect "-o twice" 2 "-o is given twice" "$G" -c seed.nn -o a -o b

# -------------------------------------------- directories, --emit, the BOM
mkdir -p adir
expect "a directory as the model" 2 "gradc: error: 'adir' is a directory, not a model file" "$G" adir
expect "--emit without a kind" 2 "--emit needs a kind \(--emit=KIND\)" "$G" --emit seed.nn
expect "--emit KIND" 0 '' "$G" --emit grad seed.nn
printf '\xef\xbb\xbfinput x[2]\nparam w[2]\nminimize sum(w * y)\n' > bom.nn
expect "byte-order mark skipped, columns right" 1 "^bom.nn:3:18: error: unknown name 'y'" "$G" --check bom.nn
grep -q stray "$tmp/.err" && bad "BOM reported as stray" || ok "no stray byte reported"
printf '\xef\xbb\xbfinput x[2]\nparam w[2]\nminimize sum(w * x)\noutput w * x\n' > bomok.nn
expect "byte-order mark: a model that checks" 0 '' "$G" --check bomok.nn

# --------------------------------------------------------------- --main
mkdir -p m && expect "--main" 0 '' "$G" --main seed.nn -o m
[ -f m/seed_main.c ] && grep -q 'grt_main' m/seed_main.c && ok "--main wrote seed_main.c" || bad "--main: $(ls m)"
expect "--main -o FILE" 0 '' "$G" --main seed.nn -o m/glue.c
[ -f m/glue.c ] && ok "--main -o m/glue.c" || bad "--main -o FILE"

# ------------------------------------------------- a 255-character name
long=$(printf 'm%.0s' $(seq 255))
{ echo "model $long"; cat tiny.nn | grep -v '^model'; } > long.nn
mkdir -p l && expect "255-character model name builds" 0 '' "$G" long.nn -o l/exe
[ -x l/exe ] && l/exe info > /dev/null 2>&1 && ok "its executable runs" || bad "the long-named executable"
expect "-c with a 255-character name" 2 "too long for a file; name the output with -o FILE.c" "$G" -c long.nn -o l
expect "-c -o FILE.c with a 255-character name" 0 '' "$G" -c long.nn -o l/long.c
[ -f l/long.c ] && [ -f l/long.h ] && cc -std=c99 -c l/long.c -o l/long.o && ok "the long-named pair compiles" || bad "long pair"

# ------------------------------------------- --help and the man page agree
opts() { grep -oE -- '(^|[^-A-Za-z])--?[A-Za-z][-A-Za-z0-9]*' | sed -E 's/^[^-]+//' | sort -u; }
"$G" --help | grep -v pkg-config | sed "s/--libs//" | opts > help.opts
sed -n '/^\.SH OPTIONS/,/^\.SH /p' "$root/docs/gradc.1" | sed 's/\\-/-/g' | grep -v 'pkg-config' | opts > man.opts
if diff help.opts man.opts > opts.diff; then ok "--help and gradc.1 list the same $(wc -l < help.opts) options"
else bad "--help and gradc.1 differ (< help, > man)" "$(tr '\n' ' ' < opts.diff)"; fi
for o in --predict-only --embed-params --main -Werror --threads --mpi --explain -q; do
  grep -qx -- "$o" man.opts || bad "gradc.1 lacks $o"
done
grep -q '^\.SH SEE ALSO' "$root/docs/gradc.1" && ok "gradc.1 has SEE ALSO" || bad "gradc.1 has no SEE ALSO"

finish cli
