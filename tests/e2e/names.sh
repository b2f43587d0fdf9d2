#!/usr/bin/env bash
# names.sh: text from outside (paths, command lines) and names of the model
# reach the generated C only through gradc's escaping and mangling: a model
# in a folder whose name holds '*/', a quote and a newline compiles with
# -Werror as a pair, with #line directives (-g) and as an executable whose
# --cflags hold '*/' too; names that clash with C, the headers or the
# model's own macros (tests/models/name_clash.nn) build in vector and
# --scalar form with gcc and clang; and gcc is silent at -O1 to -O3 (sums
# whose rest loop would be empty, tests/models/decay_sums.nn; the small
# products' rest loops of tests/models/tokens.nn).
. "$(dirname "$0")/lib.bash"
STRICT="-std=c99 -Wall -Wextra -pedantic -Werror"

d="$tmp/"$'we*/ird"dir\nx'
mkdir -p "$d"
cp examples/linreg.nn "$d/lin.nn"
if "$G" -c "$d/lin.nn" -o "$d" 2>"$tmp/err" && gcc $STRICT -c "$d/linreg.c" -o "$tmp/a.o" 2>>"$tmp/err"; then
  ok "a path with */, a quote and a newline: -c"
else bad "a path with */, a quote and a newline: -c" "$(head -3 "$tmp/err")"; fi
if "$G" -c -g "$d/lin.nn" -o "$d" 2>"$tmp/err" && gcc $STRICT -c "$d/linreg.c" -o "$tmp/a.o" 2>>"$tmp/err"; then
  ok "the same path in #line (-g)"
else bad "the same path in #line (-g)" "$(head -3 "$tmp/err")"; fi
if "$G" "$d/lin.nn" -o "$d/exe" --cflags '-O1 -DX="*/"' 2>"$tmp/err" && "$d/exe" info >/dev/null 2>>"$tmp/err"; then
  ok "an executable from that path, --cflags with */"
else bad "an executable from that path, --cflags with */" "$(head -3 "$tmp/err")"; fi

for cc in gcc clang; do
  command -v $cc >/dev/null || { echo "skipped $cc (apt-get install -y $cc)"; continue; }
  for form in "" --scalar; do
    rm -rf "$tmp/n"; mkdir "$tmp/n"
    if "$G" -c $form tests/models/name_clash.nn -o "$tmp/n" 2>"$tmp/err" &&
       $cc $STRICT -c "$tmp/n/case.c" -o "$tmp/n/case.o" 2>>"$tmp/err"; then
      ok "name_clash.nn ${form:-vector} with $cc"
    else bad "name_clash.nn ${form:-vector} with $cc" "$(head -5 "$tmp/err")"; fi
  done
done
grep -q 'CASE_PARAM_W_2_OFFSET 3 ' "$tmp/n/case.h" && ok "params W and w get macros of their own" ||
  bad "params W and w get macros of their own" "$(grep OFFSET "$tmp/n/case.h")"
# the generated C is silent at every optimization level, not only without one
for m in decay_sums tokens; do
  rm -rf "$tmp/o"; mkdir "$tmp/o"
  "$G" -c tests/models/$m.nn -o "$tmp/o"
  for o in -O1 -O2 -O3; do
    if gcc $STRICT $o -march=native -c "$tmp/o/$m.c" -o "$tmp/o/x.o" 2>"$tmp/err"; then ok "$m.nn silent at $o"
    else bad "$m.nn silent at $o" "$(head -3 "$tmp/err")"; fi
  done
done
finish names
