#!/usr/bin/env bash
# gpt_smoke.sh: the GPT of examples/gpt.nn (make gpt's model) built as an
# executable and trained for 50 steps with --text on the first 200 kB of
# tiny shakespeare: the loss falls from about ln 65 = 4.17, eval --text
# gives loss and bits per character of a held-out piece, sample writes text
# of the training file's characters. The full run is make gpt.
. "$(dirname "$0")/lib.bash"
head -c 200000 examples/data/tinyshakespeare.txt > "$tmp/train.txt"
tail -c 20000 examples/data/tinyshakespeare.txt > "$tmp/held.txt"
if ! "$G" examples/gpt.nn -o "$tmp/gpt" 2>"$tmp/err"; then
  bad "gpt build" "$(head -3 "$tmp/err")"; finish gpt_smoke; exit
fi
if ! "$tmp/gpt" train --text "$tmp/train.txt" --steps 50 --save "$tmp/p" >"$tmp/out" 2>&1; then
  bad "gpt train --steps 50" "$(tail -3 "$tmp/out")"; finish gpt_smoke; exit
fi
first=$(grep -o 'loss [0-9.]*' "$tmp/out" | head -1 | awk '{print $2}')
last=$(grep -o 'loss [0-9.]*' "$tmp/out" | tail -1 | awk '{print $2}')
if awk -v a="$first" -v b="$last" 'BEGIN { exit !(b < a && b < 3.6) }'; then ok "gpt: 50 steps take the loss from $first to $last"
else bad "gpt: the loss does not fall ($first -> $last)" "$(tail -4 "$tmp/out")"; fi
if "$tmp/gpt" eval "$tmp/p" --text "$tmp/held.txt" >"$tmp/ev" 2>&1 && grep -q "bits per character" "$tmp/ev"; then
  ok "gpt: eval --text ($(tr '\n' ' ' < "$tmp/ev" | cut -c1-80))"
else bad "gpt: eval --text" "$(head -3 "$tmp/ev")"; fi
if "$tmp/gpt" sample "$tmp/p" --tokens 100 --seed 1 --prompt "ROMEO:" >"$tmp/s" 2>"$tmp/err" && [ "$(wc -c < "$tmp/s")" -ge 100 ]; then
  ok "gpt: sample writes text"
else bad "gpt: sample" "$(head -3 "$tmp/err")"; fi
finish gpt_smoke
