#!/bin/sh
# The figures of bench/README.md "## SRTP" (voxgate-load --srtp): io_uring, 10 s each at
# 800 and 1,400 sessions, plain and SRTP interleaved in one session (two rounds; the README quotes one final round).
set -eu
cd "$(dirname "$0")/.."
cargo build --release -p voxgate-bench --bins
for round in 1 2; do
  for calls in 800 1400; do
    for srtp in "" "--srtp"; do
      # shellcheck disable=SC2086
      ./target/release/voxgate-load --calls "$calls" --seconds 10 --backend uring $srtp 2>&1 | tail -1
    done
  done
done
