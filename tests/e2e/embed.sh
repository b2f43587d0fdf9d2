#!/usr/bin/env bash
# embed.sh: examples/embed builds a program around a generated model, once
# with its plain Makefile and once with CMake; both programs must run.
set -u
cd "$(dirname "$0")/../.."
G=${GRADC:-$PWD/build/gradc}
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
fail=0
mkdir -p "$tmp/make"
if make -s -C examples/embed GRADC="$G" BUILD="$tmp/make" > "$tmp/log" 2>&1 && "$tmp/make/embed" > "$tmp/out"; then
  echo "ok   make: $(head -1 "$tmp/out")"
else echo "FAIL embed with make"; cat "$tmp/log" "$tmp/out" 2>/dev/null | tail -5; fail=1; fi
if command -v cmake >/dev/null; then
  if cmake -S examples/embed -B "$tmp/cmake" -DGRADC_EXECUTABLE="$G" > "$tmp/log" 2>&1 &&
     cmake --build "$tmp/cmake" >> "$tmp/log" 2>&1 && "$tmp/cmake/embed" > "$tmp/out"; then
    echo "ok   cmake: $(head -1 "$tmp/out")"
    # a changed model is recompiled
    touch -d '+1 second' examples/tiny.nn 2>/dev/null || touch examples/tiny.nn
    if cmake --build "$tmp/cmake" 2>&1 | grep -q "gradc: compiling tiny.nn"; then echo "ok   cmake rebuilds a changed model"
    else echo "FAIL cmake did not rerun gradc after the model changed"; fail=1; fi
  else echo "FAIL embed with cmake"; tail -15 "$tmp/log"; fail=1; fi
else
  echo "skip cmake (not installed)"
fi
exit $fail
