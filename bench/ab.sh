#!/bin/bash
# Alternating A/B of two voxgate-load binaries on the same machine minutes:
#
#   bench/ab.sh PAIRS CALLS SECONDS BIN_A BIN_B [voxgate-load args...]
#
# Copy each build's target/release/voxgate-load somewhere first (e.g. /tmp/vl-old,
# /tmp/vl-new). Runs A then B, PAIRS times, and prints one line per run: thread CPU,
# CPU 0 busy, loss, p99 excess, p50, the core's lateness p99, steal and the host wake
# probe's p99 before/after, load average. Compare the pairs, not the runs: the host's
# speed changes within minutes here.
set -eu
pairs=$1; calls=$2; seconds=$3; a=$4; b=$5; shift 5
for _ in $(seq "$pairs"); do
  for bin in "$a" "$b"; do
    "$bin" --calls "$calls" --seconds "$seconds" "$@" 2>/dev/null | tail -1 |
      python3 -c 'import sys,json
name=sys.argv[1]; d=json.loads(sys.stdin.read())
print(name, "thr", d["engine_thread_cpu_pct"], "cpu", d["engine_cpu_pct"], "loss", d["loss_pct"],
      "p99ex", d["p99_excess_us"], "p50", d["p50_us"], "late99", d.get("engine_service_late_p99_us"),
      "steal", d.get("engine_cpu_steal_pct"), "wake99", d.get("host_wake_p99_us_before"),
      d.get("host_wake_p99_us_after"), "load", d["loadavg"])' "$(basename "$bin")"
  done
done
