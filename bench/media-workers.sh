#!/bin/sh
# The figures of bench/README.md "## Media workers": voxgate-load on both backends and
# the tokio-uring comparison, 10 s each at 500, 1,000 and 1,500 sessions.
set -eu
cd "$(dirname "$0")/.."
cargo build --release -p voxgate-bench --bins
for calls in 500 1000 1500; do
  for backend in uring mmsg; do
    ./target/release/voxgate-load --calls "$calls" --seconds 10 --backend "$backend" 2>&1 | tail -1
  done
  ./target/release/voxgate-load-tokio-uring --calls "$calls" --seconds 10 2>&1 | tail -1
done
