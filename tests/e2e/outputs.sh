#!/usr/bin/env bash
# outputs.sh: gradc never loses data and never leaves debris.
#   - an output that is an input (the default executable of `gradc mymodel`,
#     m.txt, seed.NN, -o same.nn, a header named like the model) is refused
#     with exit 2 before any work, and the model is left as it was;
#   - outputs that are device nodes or FIFOs are written into, not replaced;
#   - an output that cannot be written is refused before the C compiler runs;
#   - SIGINT, SIGTERM, SIGHUP or SIGPIPE while the C compiler runs leaves no
#     gradc.XXXXXX folder in TMPDIR and no temporary file beside the output,
#     and gradc dies of that signal.
# GRADC overrides the compiler.
. "$(dirname "$0")/lib.bash"
cd "$tmp"
cp "$root/examples/seed.nn" orig.nn

# ------------------------------------------------ an output that is an input
# keeps NAME CMD...: exit 2, "is an input" said, the file NAME unchanged
keeps() {
  local name=$1; shift
  cp orig.nn "$name"
  "$@" > /dev/null 2> err; local rc=$?
  if [ $rc = 2 ] && grep -q "is an input of this run" err && cmp -s orig.nn "$name" && [ -z "$(ls | grep tmp)" ]; then
    ok "$*: refused, $name kept ($(head -1 err))"
  else bad "$*" "exit $rc: $(head -2 err)" "$(cmp orig.nn "$name" 2>&1)"; fi
  rm -f "$name"
}
keeps mymodel "$G" mymodel
keeps m.txt "$G" m.txt
keeps seed.NN "$G" seed.NN
keeps same.nn "$G" same.nn -o same.nn
keeps same.nn "$G" same.nn -o ./same.nn
cp orig.nn link-target.nn; ln -s link-target.nn viasym.nn
"$G" link-target.nn -o viasym.nn 2> err; rc=$?
[ $rc = 2 ] && cmp -s orig.nn link-target.nn && ok "an input reached through a symlink is refused" || bad "symlink: exit $rc $(head -1 err)"
printf 'model m\ninput x[2]\nparam w[2]\nminimize sum(w * x)\noutput w * x\n' > m.h
"$G" -c m.h -o . 2> err; rc=$?
[ $rc = 2 ] && grep -q '^model m$' m.h && ok "-c writing m.h over its model m.h: refused" || bad "-c m.h: exit $rc $(head -1 err)"
"$G" --emit=c same.nn -o same.nn 2> err; rc=$?
cp orig.nn same.nn; "$G" --emit=c same.nn -o same.nn 2> err; rc=$?
[ $rc = 2 ] && cmp -s orig.nn same.nn && ok "--emit=c -o the model: refused" || bad "--emit -o model: exit $rc"

# ------------------------------------------------ devices and FIFOs in place
if mknod mynull c 1 3 2>/dev/null; then
  "$G" orig.nn -o mynull 2> err; rc=$?
  [ $rc = 0 ] && [ -c mynull ] && ok "-o a character device (c 1 3): written into, still a device" || bad "device: exit $rc, $(ls -l mynull)"
  "$G" --emit=grad orig.nn -o mynull; [ -c mynull ] && ok "--emit -o a device: still a device" || bad "--emit device replaced"
  "$G" -c orig.nn -o mynull.c 2>/dev/null; rm -f mynull.c mynull.h
else echo "skip device nodes (mknod not permitted)"; fi
mkfifo fifo
( cat fifo > fifo.out ) &
"$G" --emit=grad orig.nn -o fifo; rc=$?
wait
[ $rc = 0 ] && [ -p fifo ] && grep -q 'dL/d' fifo.out && ok "--emit -o a FIFO: written into, still a FIFO" || bad "fifo: exit $rc $(ls -l fifo)"

# ------------------------------------------ unwritable outputs, before work
printf '#!/bin/sh\ntouch "%s/cc-ran"\nexec cc "$@"\n' "$tmp" > marker-cc; chmod +x marker-cc
for out in nodir/exe /proc/version .; do
  rm -f cc-ran
  "$G" --cc ./marker-cc orig.nn -o "$out" 2> err; rc=$?
  if [ $rc = 2 ] && [ ! -e cc-ran ] && grep -q "error" err; then ok "-o $out refused before the C compiler: $(head -1 err)"
  else bad "-o $out" "exit $rc, cc ran: $([ -e cc-ran ] && echo yes || echo no)" "$(head -2 err)"; fi
done

# ------------------------------------------- an internal error (or not)
# --scalar on a max-pool stopped gradc with an internal error at this
# writing: whatever the exit, the output folder holds the pair or nothing,
# and TMPDIR no build folder
printf 'input x[1,4,4]\ntarget y[1]\nparam W[1,4]\nh = maxpool2d(x, 2)\nyhat = W @ reshape(h, [4])\nminimize mse(yhat, y)\noutput yhat\n' > mp.nn
mkdir -p ie ietmp
"$G" -c --scalar mp.nn -o ie 2> err; rc=$?
left=$(ls -A ie | tr '\n' ' ')
[ "$left" = "" ] || [ "$left" = "mp.c mp.h " ] && ok "-c --scalar on a max-pool: exit $rc, left '$left'" || bad "-c --scalar: exit $rc, left $left" "$(head -1 err)"
TMPDIR=$tmp/ietmp "$G" --scalar mp.nn -o ie/exe 2> err; rc=$?
left="$(ls -A ietmp | tr '\n' ' ')$(ls -A ie | grep -v '^mp\.[ch]$' | grep -v '^exe$' | tr '\n' ' ')"
[ -z "$left" ] && ok "--scalar executable on a max-pool: exit $rc, nothing left behind" || bad "--scalar exe: exit $rc, left $left" "$(head -1 err)"

# --------------------------------------------------------------- signals
printf '#!/bin/sh\ntouch "%s/cc-started"\nsleep 20\nexec cc "$@"\n' "$tmp" > slow-cc; chmod +x slow-cc
mkdir -p tmpdir out
for sig in INT TERM HUP PIPE; do
  rm -f cc-started
  # job control: the job gets a process group of its own (as a terminal's
  # would, which Ctrl-C signals whole) and SIGINT is not ignored in it
  set -m
  TMPDIR=$tmp/tmpdir "$G" --cc ./slow-cc orig.nn -o out/exe 2> err &
  pid=$!
  set +m
  for i in $(seq 100); do [ -e cc-started ] && break; sleep 0.1; done
  [ -n "$(ls tmpdir)" ] || bad "SIG$sig: no build folder while cc runs (the test waits in the wrong place)"
  kill -s $sig -- -$pid 2>/dev/null
  wait $pid 2>/dev/null; rc=$?
  left="$(ls tmpdir) $(ls out)"
  if [ -z "${left// /}" ] && [ $rc -gt 128 ]; then ok "SIG$sig during the build: exit $rc, nothing left in TMPDIR or beside the output"
  else bad "SIG$sig during the build" "exit $rc, left: $left" "$(head -2 err)"; fi
  rm -rf tmpdir/* out/*
done

finish outputs
