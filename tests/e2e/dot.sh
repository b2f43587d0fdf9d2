#!/usr/bin/env bash
# dot.sh: --emit=dot, dot-forward and dot-backward of every example are
# graphs Graphviz draws without a warning, no node carries an attribute
# twice (a second style= would drop the first: the bold outline of a saved
# param), and the parts hold what they say: the forward part no ellipse
# (backward node), the backward part no forward node but the saved ones.
# Without graphviz (apt-get install graphviz) the drawing is not checked.
. "$(dirname "$0")/lib.bash"
have_dot=1; command -v dot >/dev/null || { have_dot=0; echo "ok   dot: drawing not checked (no graphviz)"; }
for f in examples/*.nn; do
  m=$(basename "$f" .nn)
  for k in dot dot-forward dot-backward; do
    if ! "$G" -q --emit=$k "$f" > "$tmp/g.dot" 2> "$tmp/err"; then bad "$m --emit=$k" "$(head -3 "$tmp/err")"; continue; fi
    twice=$(grep -E '^ +n[0-9]+ \[' "$tmp/g.dot" | grep -E '(style|color|shape|label)=.*[ ,]\1=' || true)
    [ -z "$twice" ] || { bad "$m --emit=$k: an attribute given twice" "$twice"; continue; }
    case $k in
      dot-forward) ! grep -q 'shape=ellipse' "$tmp/g.dot" || { bad "$m --emit=$k draws backward nodes"; continue; } ;;
      dot-backward) ! grep -E 'shape=box' "$tmp/g.dot" | grep -v -q 'color=blue' || { bad "$m --emit=$k draws forward nodes it does not read"; continue; } ;;
    esac
    if [ $have_dot = 1 ] && ! dot -Tsvg "$tmp/g.dot" -o "$tmp/g.svg" 2> "$tmp/err" || [ -s "$tmp/err" ]; then
      bad "$m --emit=$k: dot -Tsvg" "$(head -5 "$tmp/err")"; continue
    fi
    ok "$m --emit=$k"
  done
done
finish dot
