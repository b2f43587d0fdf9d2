#!/usr/bin/env bash
# install.sh: `make install` into a fresh prefix, then use the installed
# gradc from another directory: compile, train and predict; the man page
# renders; pkg-config finds the runtime; `make uninstall` removes it all.
set -u
cd "$(dirname "$0")/../.."
root=$PWD
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
fail=0
p=$tmp/prefix
if ! make -s install PREFIX="$p" > "$tmp/log" 2>&1; then echo "FAIL make install"; tail -5 "$tmp/log"; exit 1; fi
for f in bin/gradc lib/gradc/libgradcrt.a lib/gradc/libgradcrt_d.a include/gradc/gradc_rt.h \
         share/man/man1/gradc.1 lib/pkgconfig/gradc.pc; do
  [ -f "$p/$f" ] || { echo "FAIL not installed: $f"; fail=1; }
done
mkdir -p "$tmp/work" && cd "$tmp/work"
cp "$root/examples/iris.nn" "$root/examples/data/iris_train.csv" "$root/examples/data/iris_test.csv" .
if env -u GRADC_RUNTIME_DIR "$p/bin/gradc" iris.nn 2> err && ./iris train iris_train.csv --standardize --save iris.params -q > /dev/null 2>&1 &&
   ./iris predict iris.params iris_test.csv > pred; then
  echo "ok   installed gradc: built, trained and predicted $(wc -l < pred) examples from $PWD"
else echo "FAIL installed gradc: $(cat err)"; fail=1; fi
"$p/bin/gradc" --version | grep -q "^gradc [0-9]" && echo "ok   --version: $("$p/bin/gradc" --version)" || { echo "FAIL --version"; fail=1; }
if command -v man >/dev/null; then
  if man -l "$p/share/man/man1/gradc.1" 2>&1 | grep -q "gradc - compile a model"; then echo "ok   man -l renders gradc(1)"
  else echo "FAIL man -l"; fail=1; fi
fi
if command -v pkg-config >/dev/null; then
  libs=$(PKG_CONFIG_PATH=$p/lib/pkgconfig pkg-config --libs --cflags gradc)
  [[ "$libs" == *"-I$p/include/gradc"* && "$libs" == *-lgradcrt* ]] && echo "ok   pkg-config: $libs" || { echo "FAIL pkg-config: $libs"; fail=1; }
fi
if command -v cmake >/dev/null; then
  if PATH=$p/bin:$PATH cmake -S "$root/examples/embed" -B "$tmp/cm" > "$tmp/log" 2>&1 && cmake --build "$tmp/cm" >> "$tmp/log" 2>&1 &&
     "$tmp/cm/embed" > /dev/null; then echo "ok   the embed example builds with CMake against the installed gradc"
  else echo "FAIL cmake with the installed gradc"; tail -5 "$tmp/log"; fail=1; fi
fi
cd "$root"
make -s uninstall PREFIX="$p" > /dev/null 2>&1
left=$(find "$p" -type f | head -3)
[ -z "$left" ] && echo "ok   make uninstall removed everything" || { echo "FAIL left after uninstall: $left"; fail=1; }
exit $fail
