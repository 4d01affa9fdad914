#!/usr/bin/env python3
"""bench/fsync/summary.py < run.jsonl: median (min-max) per cell of the
JSON lines bench/fsync/run.sh prints, as two Markdown tables."""
import collections
import json
import statistics
import sys

raw = collections.OrderedDict()
api = collections.OrderedDict()
for line in sys.stdin:
    try:
        j = json.loads(line)
    except ValueError:
        continue
    if "dirsync" in j:  # the peer's client/fsync_bench.c
        k = ("peer fsync_bench" + (" -d" if j["dirsync"] else ""), 1, j["threads"], 0, 0)
        j["syncs_per_msg"] = 2.0 if j["dirsync"] else 1.0
        j["max_batch_ms"] = j["max_latency_ms"]
        raw.setdefault(k, []).append(j)
    elif "strategy" in j:
        k = (j["strategy"], j["batch"], j["threads"], j["dirs"], j["noise_mib_s"])
        raw.setdefault(k, []).append(j)
    else:
        k = (j["mode"], j["sync"], j["threads"], j["rcpts"], j.get("committer_threads", 0))
        api.setdefault(k, []).append(j)


def med(rows, key, fmt="%.0f"):
    v = sorted(r[key] for r in rows)
    return (fmt + " (" + fmt + "-" + fmt + ")") % (statistics.median(v), v[0], v[-1])


print("| strategy | batch | writers | noise MiB/s | msgs/s | syncs/msg | max batch ms |")
print("|---|---|---|---|---|---|---|")
for (s, b, t, d, n), rows in raw.items():
    print("| %s | %d | %d | %d | %s | %.2f | %.0f |" % (
        s, b, t, n, med(rows, "ops_per_s"), rows[0]["syncs_per_msg"], max(r["max_batch_ms"] for r in rows)))
print()
print("| mode | sync | worker threads | rcpts/txn | committer threads | msgs/s | mean txn ms | CPU ms/msg |")
print("|---|---|---|---|---|---|---|---|")
for (m, sy, t, rc, ct), rows in api.items():
    print("| %s | %s | %d | %d | %s | %s | %s | %s |" % (
        m, sy, t, rc, ct or "-", med(rows, "msgs_per_s"), med(rows, "mean_txn_ms", "%.1f"),
        med(rows, "cpu_ms_per_msg", "%.2f")))
