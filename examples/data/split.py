#!/usr/bin/env python3
"""split.py: the fixed train/test splits of the example data sets.

Shuffles the rows of a CSV file (header kept) with a fixed seed and writes
the first FRACTION of them to NAME_train.csv and the rest to NAME_test.csv.
The committed splits were made with: python3 split.py FILE.csv 0.8 42
"""
import random
import sys

path, frac, seed = sys.argv[1], float(sys.argv[2]), int(sys.argv[3])
with open(path) as f:
    header, *rows = f.read().splitlines()
rows = [r for r in rows if r.strip()]
random.Random(seed).shuffle(rows)
k = round(len(rows) * frac)
stem = path[:-4]
for name, part in (("train", rows[:k]), ("test", rows[k:])):
    with open(f"{stem}_{name}.csv", "w") as f:
        f.write("\n".join([header] + part) + "\n")
