#!/usr/bin/env bash
# embed.sh: embedding a generated model anywhere.
#   - examples/embed, copied out of the tree, builds and runs with its plain
#     Makefile and with CMake (against the source tree's cmake/ package);
#   - after `make install DESTDIR=...`, a CMake project in a folder outside
#     the tree uses find_package(gradc) and gradc_add_model(reg linear.nn)
#     for a model whose `model myreg` line names the header (myreg.h); a
#     changed model file is compiled again and the new C used; a changed
#     `model` line reconfigures and the new names are used.
set -u
cd "$(dirname "$0")/../.."
root=$PWD
G=${GRADC:-$root/build/gradc}
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
fail=0
ok() { echo "ok   $1"; }
bad() { echo "FAIL $1"; shift; [ $# -gt 0 ] && printf '     %s\n' "$@"; fail=1; }

# ------------------------------------------- examples/embed, copied out
cp -r examples/embed "$tmp/e-make"
if make -s -C "$tmp/e-make" GRADC="$G" > "$tmp/log" 2>&1 && "$tmp/e-make/embed" > "$tmp/out"; then
  ok "examples/embed copied out, make: $(head -1 "$tmp/out")"
else bad "examples/embed with make" "$(tail -5 "$tmp/log" "$tmp/out" 2>/dev/null)"; fi
cp -r examples/embed "$tmp/e-cmake"
if cmake -S "$tmp/e-cmake" -B "$tmp/e-cmake/b" -Dgradc_DIR="$root/cmake" -DGRADC_EXECUTABLE="$G" > "$tmp/log" 2>&1 &&
   cmake --build "$tmp/e-cmake/b" >> "$tmp/log" 2>&1 && "$tmp/e-cmake/b/embed" > "$tmp/out"; then
  ok "examples/embed copied out, CMake: $(head -1 "$tmp/out")"
else bad "examples/embed with CMake" "$(tail -15 "$tmp/log")"; fi

# ------------------------------------- a project against an installed gradc
dest=$tmp/dest
# (CC and CFLAGS of a sanitizer run are for generated code, not for build/)
if ! env -u CC -u CFLAGS make -s install DESTDIR="$dest" PREFIX=/usr/local > "$tmp/log" 2>&1; then bad "make install" "$(tail -5 "$tmp/log")"; exit 1; fi
proj=$tmp/proj; mkdir -p "$proj"
cat > "$proj/CMakeLists.txt" <<'CM'
cmake_minimum_required(VERSION 3.13)
project(uses_gradc C)
find_package(gradc 0.1 REQUIRED)
gradc_add_model(reg linear.nn)
add_executable(app app.c)
target_link_libraries(app PRIVATE reg)
CM
model() { # model NAME WIDTH: a linear model named NAME with WIDTH inputs
  printf 'model %s\ninput x[%s]\ntarget y[1]\nparam w[1, %s]\nparam b[1]\nyhat = w @ x + b\nminimize mse(yhat, y)\noutput yhat\n' "$1" "$2" "$2"
}
app() { # app NAME: prints its model's input size
  local U; U=$(echo "$1" | tr a-z A-Z)
  printf '#include <stdio.h>\n#include "%s.h"\nint main(void) { printf("%s inputs %%d\\n", %s_INPUT_SIZE); return 0; }\n' "$1" "$1" "$U"
}
model myreg 3 > "$proj/linear.nn"; app myreg > "$proj/app.c"
# only the DESTDIR prefix: no gradc on PATH, no source tree
run_build() { env PATH=/usr/bin:/bin cmake --build "$proj/b" > "$tmp/log" 2>&1 && "$proj/b/app"; }
if env PATH=/usr/bin:/bin cmake -S "$proj" -B "$proj/b" -DCMAKE_PREFIX_PATH="$dest/usr/local" > "$tmp/log" 2>&1 &&
   out=$(run_build) && [ "$out" = "myreg inputs 3" ]; then
  ok "find_package(gradc) + gradc_add_model(reg linear.nn) with 'model myreg': myreg.h included; $out"
else bad "CMake project against the DESTDIR install" "$(tail -15 "$tmp/log")" "${out:-}"; fi
grep -q "GRADC_EXECUTABLE:FILEPATH=$dest/usr/local/bin/gradc" "$proj/b/CMakeCache.txt" && ok "the installed gradc is the one used" ||
  bad "GRADC_EXECUTABLE: $(grep GRADC_EXECUTABLE: "$proj/b/CMakeCache.txt")"
sleep 1; model myreg 5 > "$proj/linear.nn"
if out=$(run_build) && [ "$out" = "myreg inputs 5" ]; then ok "a changed model is compiled again: $out"
else bad "rebuild after the model changed" "${out:-}" "$(tail -5 "$tmp/log")"; fi
sleep 1; model other 4 > "$proj/linear.nn"; app other > "$proj/app.c"
if out=$(run_build) && [ "$out" = "other inputs 4" ]; then ok "a changed model line: other.h used: $out"
else bad "rebuild after the model line changed" "${out:-}" "$(tail -8 "$tmp/log")"; fi
exit $fail
