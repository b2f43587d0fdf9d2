#!/usr/bin/env bash
# docs.sh: the documentation's shell blocks run, and show what they print.
#
#   bash tests/e2e/docs.sh                 every file: README.md, docs/*.md
#   bash tests/e2e/docs.sh docs/deploy.md  one file (or several)
#
# The convention, for whoever writes README.md or docs/*.md:
#   - A fenced block whose info string starts with `sh` is run by bash
#     (errexit and pipefail on); one starting with `python` by a Python 3 that
#     has NumPy. Fences may be indented (inside a list); the indentation is
#     removed. Other blocks (```c, ```, ```text) are only text.
#   - `sh norun` (or `python norun`) marks a block that must not run here:
#     a command that needs what the test machine lacks or that runs the
#     suite itself (`make test`).
#   - `sh exit=N` says the block ends with status N (an example of an error);
#     otherwise it must end with 0.
#   - An ```output block right after a run block (blank lines between are
#     fine) is what the block prints, standard output and standard error
#     together, compared line by line (trailing blanks ignored). A line that
#     is `...` alone stands for any number of lines. A block without one
#     must only succeed.
#   - The blocks of one file run in order, as a reader would type them in
#     one terminal, in a scratch directory that holds a copy of examples/
#     (so `examples/seed.nn` and `examples/data/...` are there) and
#     build/gradc (a link to the gradc under test, as in the source tree
#     after make). Files and the current directory carry over from one block
#     to the next; shell variables do not. `gradc` on PATH is that gradc, and
#     GRADC_SRC names the source tree for the few blocks that need more of
#     it. A path under /tmp/ in a block is moved into the scratch directory.
#
# Each file is also checked to name no file outside the repository (no
# ../shared, no LANGUAGE.md), no issue, and no link that is not there.
#
# Files whose blocks their owners are still making pass are listed in
# PENDING and skipped when every file is tested; naming one runs it.
PENDING="docs/mpi.md"
. "$(dirname "$0")/lib.bash"
PY=
for p in /usr/bin/python3 python3; do
  if command -v "$p" >/dev/null && "$p" -c 'import numpy' 2>/dev/null; then PY=$(command -v "$p"); break; fi
done
skip=0

files=("$@")
if [ ${#files[@]} = 0 ]; then
  for f in README.md docs/*.md; do
    case " $PENDING " in *" $f "*) echo "pending $f (its blocks are being made to pass; bash $0 $f runs them)"; continue ;; esac
    files+=("$f")
  done
fi

# blocks FILE DIR: each run block as DIR/N.sh or DIR/N.py, its first line
# "#@ LINE INFO"; its output block, if any, as DIR/N.out
blocks() {
  awk -v dir="$2" '
    function flush() { if (kind != "") close(path); kind = "" }
    /^ *```/ && !inblock {
      match($0, /^ */); ind = RLENGTH; info = substr($0, ind + 4); gsub(/^ +| +$/, "", info)
      split(info, w, " "); lang = w[1]; inblock = 1; start = NR
      if (lang == "output" && last != "" && blank_since) { kind = "out"; path = last ".out" }
      else if ((lang == "sh" || lang == "python") && info !~ /(^| )norun( |$)/) {
        n++; last = sprintf("%s/%03d", dir, n); kind = lang == "sh" ? "sh" : "py"
        path = last "." kind; print "#@ " NR " " info > path
      } else { kind = ""; if (lang != "output") last = "" }
      next
    }
    inblock && /^ *```[ \t]*$/ { inblock = 0; flush(); blank_since = 1; next }
    inblock { if (kind != "") { line = $0; for (k = 0; k < ind && substr(line, 1, 1) == " "; k++) line = substr(line, 2); print line > path } next }
    /^[ \t]*$/ { next }
    { last = ""; blank_since = 0 }
  ' "$1"
}

# matches WANT GOT: GOT fits WANT, `...` lines being any number of lines
matches() {
  awk 'NR == FNR { w[++nw] = $0; next } { g[++ng] = $0 }
    function fit(i, j,   k) {
      if (i > nw) return j > ng
      if (w[i] == "...") { for (k = j; k <= ng + 1; k++) if (fit(i + 1, k)) return 1; return 0 }
      return j <= ng && w[i] == g[j] && fit(i + 1, j + 1)
    }
    END { exit !fit(1, 1) }' <(sed 's/[ \t]*$//' "$1" | sed -e :a -e '/^\n*$/{$d;N;ba' -e '}') \
                             <(sed 's/[ \t]*$//' "$2" | sed -e :a -e '/^\n*$/{$d;N;ba' -e '}')
}

mkdir -p "$tmp/bin"
ln -s "$G" "$tmp/bin/gradc"
sc=$tmp/scratch
for f in "${files[@]}"; do
  [ -f "$f" ] || { bad "$f: no such file"; continue; }
  # only files of the repository, and no issue numbers, which mean nothing to a reader
  if refs=$(grep -n -E '\.\./shared|LANGUAGE\.md|\b[Ii]ssues?\b' "$f"); then bad "$f names what a reader does not have" "$refs"
  else ok "$f names no file outside the repository and no issue"; fi
  for l in $(grep -o -E '\]\([^)#]+' "$f" | sed 's/^](//' | grep -v -E '^[a-z]+:'); do
    [ -e "$(dirname "$f")/$l" ] || bad "$f links to $l, which is not there"
  done
  b=$tmp/blocks; rm -rf "$b" "$sc"; mkdir -p "$b" "$sc/build" "$sc/tmp"
  cp -r examples "$sc/"
  ln -s "$G" "$sc/build/gradc"
  blocks "$f" "$b"
  echo "$sc" > "$tmp/cwd"
  n=0
  for s in "$b"/*.sh "$b"/*.py; do
    [ -f "$s" ] || continue
    n=$((n+1))
    read -r _ line info < "$s"
    sed -i "2,\$s#/tmp/#$sc/tmp/#g" "$s"
    want=0; [[ " $info " =~ \ exit=([0-9]+)\  ]] && want=${BASH_REMATCH[1]}
    case $s in
      *.sh) runner=(bash -e -o pipefail)
            # where the block ends is where the next one starts
            { echo "trap 'pwd > \"$tmp/cwd\"' EXIT"; tail -n +2 "$s"; } > "$s.run"; s=$s.run ;;
      *.py) if [ -z "$PY" ]; then skip=$((skip+1)); echo "skipped $f:$line (no Python with NumPy: apt-get install -y python3-numpy)"; continue; fi
            runner=("$PY") ;;
    esac
    (cd "$(cat "$tmp/cwd")" && PATH=$tmp/bin:$PATH GRADC_SRC=$root "${runner[@]}" "$s") > "$tmp/got" 2>&1; rc=$?
    s=${s%.run}
    if [ "$rc" != "$want" ]; then bad "$f:$line: exit $rc, want $want" "$(tail -5 "$tmp/got")"
    elif [ -f "${s%.*}.out" ] && ! matches "${s%.*}.out" "$tmp/got"; then
      bad "$f:$line: the output differs (- shown, + printed)" "$(diff <(sed 's/[ \t]*$//' "${s%.*}.out") <(sed 's/[ \t]*$//' "$tmp/got") | grep '^[<>]' | sed 's/^</-/; s/^>/+/' | head -12)"
    else ok "$f:$line"; fi
  done
  [ $n = 0 ] && echo "     $f: no blocks to run"
done
finish docs ", $skip skipped"
