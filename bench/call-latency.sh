#!/usr/bin/env bash
# Gateway's own share of a turn (input → assistant request, plus first synthesized chunk
# → the answer's first RTP packet) in the 50-call SIPp run, release build, N rounds.
# Usage: bench/call-latency.sh [ROUNDS]   (prints each round's breakdown and the p99s)
set -euo pipefail
cd "$(dirname "$0")/.."
rounds="${1:-3}"
for i in $(seq 1 "$rounds"); do
    echo "== round $i, load average $(cut -d' ' -f1-3 /proc/loadavg)"
    cargo test --release --test e2e_sipp fifty -- --nocapture 2>&1 |
        grep -E 'calls in|^  [A-Za-z→ (),-]+:|GATEWAY_SHARE_P99_MS|test result'
done
