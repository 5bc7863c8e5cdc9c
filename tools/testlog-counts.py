#!/usr/bin/python3
"""Print "passed failed skipped" counts of a meson testlog.json."""
import json
import sys

p = f = s = 0
for line in open(sys.argv[1]):
    r = json.loads(line).get("result")
    if r in ("OK", "EXPECTEDFAIL"):
        p += 1
    elif r == "SKIP":
        s += 1
    else:
        f += 1
print(p, f, s)
