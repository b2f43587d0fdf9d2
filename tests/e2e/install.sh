#!/usr/bin/env bash
# install.sh: `make install` with DESTDIR into a fresh folder, then the
# installed gradc used from another directory: it compiles, trains and
# predicts; the man page renders; pkg-config's documented use builds a
# training executable from `gradc -c` and `gradc --main` in one's own build
# (float with gradc.pc, double with gradc-double.pc); the CMake package is in
# place (tests/e2e/embed.sh builds projects with it); `make uninstall`
# removes it all.
set -u
cd "$(dirname "$0")/../.."
root=$PWD
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
fail=0
dest=$tmp/dest
p=$dest/usr/local
# (CC and CFLAGS of a sanitizer run are for generated code, not for build/)
if ! env -u CC -u CFLAGS make -s install DESTDIR="$dest" PREFIX=/usr/local > "$tmp/log" 2>&1; then echo "FAIL make install"; tail -5 "$tmp/log"; exit 1; fi
for f in bin/gradc lib/gradc/libgradcrt.a lib/gradc/libgradcrt_d.a include/gradc/gradc_rt.h \
         share/man/man1/gradc.1 lib/pkgconfig/gradc.pc lib/pkgconfig/gradc-double.pc \
         lib/cmake/gradc/gradcConfig.cmake lib/cmake/gradc/gradcConfigVersion.cmake; do
  [ -f "$p/$f" ] || { echo "FAIL not installed: $f"; fail=1; }
done
grep -q "prefix=/usr/local$" "$p/lib/pkgconfig/gradc.pc" && echo "ok   gradc.pc names PREFIX, not DESTDIR" ||
  { echo "FAIL gradc.pc: $(head -1 "$p/lib/pkgconfig/gradc.pc")"; fail=1; }
mkdir -p "$tmp/work" && cd "$tmp/work"
cp "$root/examples/iris.nn" "$root/examples/tiny.nn" "$root/examples/data/iris_train.csv" "$root/examples/data/iris_test.csv" \
   "$root/examples/data/tiny.csv" .
if env -u GRADC_RUNTIME_DIR "$p/bin/gradc" iris.nn 2> err && ./iris train iris_train.csv --standardize --save iris.params -q > /dev/null 2>&1 &&
   ./iris predict iris.params iris_test.csv > pred; then
  echo "ok   installed gradc: built, trained and predicted $(wc -l < pred) examples from $PWD"
else echo "FAIL installed gradc: $(cat err)"; fail=1; fi
"$p/bin/gradc" --version | grep -q "^gradc [0-9]" && echo "ok   --version: $("$p/bin/gradc" --version)" || { echo "FAIL --version"; fail=1; }
if man -l "$p/share/man/man1/gradc.1" 2>&1 | grep -q "gradc - compile a model"; then echo "ok   man -l renders gradc(1)"
else echo "FAIL man -l"; fail=1; fi

# pkg-config: gradc -c and gradc --main, then one cc line (docs/deploy.md)
export PKG_CONFIG_PATH=$p/lib/pkgconfig PKG_CONFIG_SYSROOT_DIR=$dest
sed '/^model/a precision double' tiny.nn > tinyd.nn
sed -i 's/^model tiny/model tinyd/' tinyd.nn
for m in iris:gradc tinyd:gradc-double; do
  name=${m%%:*} pc=${m#*:}
  flags=$(pkg-config --cflags --libs "$pc") || { echo "FAIL pkg-config $pc"; fail=1; continue; }
  [[ "$flags" == *"-I$p/include/gradc"* && "$flags" == *-lgradcrt* ]] || { echo "FAIL pkg-config $pc: $flags"; fail=1; }
  if "$p/bin/gradc" -c $name.nn && "$p/bin/gradc" --main $name.nn && [ -f ${name}_main.c ] &&
     cc -O2 $name.c ${name}_main.c $flags -o $name-own 2> err; then
    data=iris_train.csv; [ $name = tinyd ] && data=tiny.csv
    if ./$name-own train $data --epochs 3 --save $name-own.params > out 2>&1 && grep -q epoch out; then
      echo "ok   cc $name.c ${name}_main.c \$(pkg-config --cflags --libs $pc) builds a training executable that trains"
    else echo "FAIL $name-own train: $(tail -3 out)"; fail=1; fi
  else echo "FAIL pkg-config build of $name: $(head -5 err)"; fail=1; fi
done
unset PKG_CONFIG_PATH PKG_CONFIG_SYSROOT_DIR

cd "$root"
env -u CC -u CFLAGS make -s uninstall DESTDIR="$dest" PREFIX=/usr/local > /dev/null 2>&1
left=$(find "$dest" -type f | head -3)
[ -z "$left" ] && echo "ok   make uninstall removed everything" || { echo "FAIL left after uninstall: $left"; fail=1; }
exit $fail
