#!/bin/sh
# Sustained SIP calls/s with SIPp as the client against `voxgate run` (release build),
# media sessions allocated on the engine for every call (PCMU offer, HOLD_MS hold).
# For each rate: SIPp's successful/failed calls, the achieved rate, and the CPU used by
# the gateway (from /proc/<pid>/stat) and by SIPp (/usr/bin/time), as % of one core over
# the step's wall time.
# Usage: [HOLD_MS=1000] bench/sip/cps.sh [seconds-per-step] [rates...]
set -eu
cd "$(dirname "$0")/../.."
SECS=${1:-10}; shift || true
HOLD_MS=${HOLD_MS:-1000}
RATES=${*:-"200 400 800 1200 1600 2000"}
ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)"
BIN=target/release/voxgate
[ -x "$BIN" ] || cargo build --release --bin voxgate
TMP=$(mktemp -d)
"$BIN" run --config bench/sip/gateway.toml >"$TMP/gw.log" 2>&1 &
GW=$!
trap 'kill $GW 2>/dev/null; rm -rf "$TMP"' EXIT
sleep 1
ticks() { awk '{print $14+$15}' "/proc/$1/stat"; }
HZ=$(getconf CLK_TCK)
printf "rate\tcalls\tok\tfailed\tachieved/s\tgateway_cpu%%\tsipp_cpu%%\n"
for R in $RATES; do
  N=$((R * SECS))
  G0=$(ticks $GW); T0=$(date +%s.%N)
  ( cd "$TMP" && exec /usr/bin/time -f "%U %S" -o "$TMP/sipp.time" sipp 127.0.0.1:5090 -sf "$OLDPWD/tests/sipp/uac_load.xml" -s +19585550123 \
      -i 127.0.0.1 -p 5095 -m "$N" -r "$R" -l $((R * 4)) -d "$HOLD_MS" -nostdin -max_socket 8192 \
      -timeout $((SECS * 3 + 20))s -trace_screen >/dev/null 2>&1 ) &
  SP=$!
  wait $SP || true
  T1=$(date +%s.%N); G1=$(ticks $GW)
  LOG=$(ls -t "$TMP"/uac_load_*_screen.log | head -1)
  OK=$(grep -a "Successful call" "$LOG" | tail -1 | awk '{print $(NF)}')
  FAIL=$(grep -a "Failed call" "$LOG" | tail -1 | awk '{print $(NF)}')
  EL=$(echo "$T1 - $T0" | bc -l)
  printf "%s\t%s\t%s\t%s\t%.0f\t%.0f\t%.0f\n" "$R" "$N" "$OK" "$FAIL" \
    "$(echo "$OK / ($EL - 1)" | bc -l)" "$(echo "($G1 - $G0) * 100 / $HZ / $EL" | bc -l)" \
    "$(tail -1 "$TMP/sipp.time" | awk '{print ($1 + $2) * 100}' | sed 's/$/ \/ '"$EL"'/' | bc -l)"
  rm -f "$TMP"/uac_load_*
done
