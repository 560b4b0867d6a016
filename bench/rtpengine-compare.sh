#!/bin/sh
# Same-run comparison of voxgate's media core with rtpengine (Debian's rtpengine-daemon,
# userspace forwarding, one worker thread), both pinned to CPU 0 at SCHED_FIFO 10 and
# driven by the same generator on CPU 1 (voxgate-load and voxgate-load-rtpengine).
# Rounds alternate rtpengine and voxgate at each load so both see the same machine.
#
#   bench/rtpengine-compare.sh [ROUNDS] [SECONDS] [LOADS...]
#
# A load is a stream count (50 packets/s each way per stream): "1000" is 1,000 echo
# sessions or 500 relayed calls; "800s" is the same with SRTP (voxgate: both directions
# of every session; rtpengine: SDES-SRTP on the caller's leg, plain on the callee's, so
# each relayed packet is protected or unprotected once, as in an echo session).
# Every JSON line is appended to $OUT (default bench/results/rtpengine-compare-<date>.jsonl);
# the medians of that file are
# printed at the end.
set -eu
cd "$(dirname "$0")/.."
rounds=${1:-3}
seconds=${2:-10}
shift 2 2>/dev/null || shift $#
loads=${*:-1000 1500 800s 1400s}

if ! command -v rtpengine >/dev/null 2>&1; then
  sudo_cmd=""
  [ "$(id -u)" -eq 0 ] || sudo_cmd="sudo"
  $sudo_cmd apt-get install -y --no-install-recommends rtpengine-daemon
fi
cargo build --release -p voxgate-bench --bins

ng_port=22222
log=$(mktemp)
chrt -f 10 taskset -c 0 rtpengine --foreground --log-stderr --log-level=4 \
  --interface=127.0.0.1 --listen-ng=127.0.0.1:$ng_port --port-min=40000 --port-max=49999 \
  --table=-1 --num-threads=1 --delete-delay=0 >"$log" 2>&1 &
rtpe=$!
trap 'kill "$rtpe" 2>/dev/null; wait "$rtpe" 2>/dev/null; rm -f "$log"' EXIT INT TERM
# rtpengine is ready when its ng port answers a ping.
ready=0
for _ in $(seq 50); do
  if python3 -c "
import socket,sys
s=socket.socket(socket.AF_INET,socket.SOCK_DGRAM); s.settimeout(0.2)
s.sendto(b'p d7:command4:pinge',('127.0.0.1',$ng_port))
sys.exit(0 if b'pong' in s.recv(1000) else 1)" 2>/dev/null; then ready=1; break; fi
done
[ "$ready" -eq 1 ] || { echo "rtpengine did not start:"; cat "$log"; exit 1; }

out=${OUT:-bench/results/rtpengine-compare-$(date +%Y-%m-%d).jsonl}
for round in $(seq "$rounds"); do
  for load in $loads; do
    calls=${load%s}
    srtp=""
    [ "$calls" = "$load" ] || srtp="--srtp"
    ./target/release/voxgate-load-rtpengine --calls "$calls" --seconds "$seconds" --pid "$rtpe" $srtp 2>/dev/null | tail -1 | tee -a "$out"
    ./target/release/voxgate-load --calls "$calls" --seconds "$seconds" --backend uring $srtp 2>/dev/null | tail -1 | tee -a "$out"
  done
  echo "round $round of $rounds done" >&2
done

python3 - "$out" <<'PY'
import json, statistics, sys
rows = [json.loads(l) for l in open(sys.argv[1]) if l.startswith("{")]
groups = {}
for r in rows:
    groups.setdefault((r["calls"], r["srtp"], r["backend"]), []).append(r)
print("| streams | SRTP | backend | runs | CPU 0 busy | process/thread CPU | loss | p99 excess | CPU 0 steal |")
print("| ---: | --- | --- | ---: | ---: | ---: | ---: | ---: | ---: |")
for (calls, srtp, backend), rs in sorted(groups.items()):
    def med(k):
        v = [r[k] for r in rs if r.get(k) is not None]
        return statistics.median(v) if v else float("nan")
    print(f"| {calls} | {'yes' if srtp else 'no'} | {backend} | {len(rs)} | {med('engine_cpu_pct'):.1f} % "
          f"| {med('engine_thread_cpu_pct'):.1f} % | {med('loss_pct'):.2f} % | {med('p99_excess_us')/1000:.1f} ms | {med('engine_cpu_steal_pct'):.1f} % |")
PY
