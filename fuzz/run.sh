#!/usr/bin/env bash
# Builds every fuzz target with libFuzzer + ASan on the stable toolchain (RUSTC_BOOTSTRAP
# for this build only, the same flags cargo-fuzz passes) and runs each briefly against its
# seed corpus. A crash fails the run; crashes land in fuzz/artifacts/<target>/.
#   fuzz/run.sh                 every target, ~30 s in all
#   fuzz/run.sh TARGET SECONDS  one target, longer
set -euo pipefail
cd "$(dirname "$0")"
TRIPLE=$(rustc -vV | sed -n 's/^host: //p')
export RUSTC_BOOTSTRAP=1
# FUZZ_ASAN=0 drops AddressSanitizer (the test command does, to halve the cold build on a
# 2-core CI machine: the fuzzed code is safe Rust, whose bounds and overflow checks stay on;
# run with ASan locally for long campaigns).
ASAN="-Zsanitizer=address"
[ "${FUZZ_ASAN:-1}" = "0" ] && ASAN=""
export RUSTFLAGS="-Cpasses=sancov-module -Cllvm-args=-sanitizer-coverage-level=4 \
 -Cllvm-args=-sanitizer-coverage-inline-8bit-counters -Cllvm-args=-sanitizer-coverage-pc-table \
 -Cllvm-args=-sanitizer-coverage-trace-compares --cfg fuzzing $ASAN \
 -Cdebug-assertions -Coverflow-checks"
export CARGO_TARGET_DIR="$PWD/target${ASAN:+-asan}"
cargo build --locked --release --target "$TRIPLE" --bins

targets=$(sed -n 's/^name = "\(.*\)"/\1/p' Cargo.toml | grep -v '^voxgate-fuzz$')
if [ $# -ge 1 ]; then targets=$1; fi
count=$(echo "$targets" | wc -w)
if [ "$count" -eq 0 ]; then echo "fuzz: no targets"; exit 0; fi
secs=${2:-$(( 30 / count > 2 ? 30 / count : 2 ))}
status=0
for t in $targets; do
  work=$(mktemp -d)
  mkdir -p "artifacts/$t" "corpus/$t"
  echo "fuzz: $t for ${secs}s (seed corpus: $(ls "corpus/$t" | wc -l) files)"
  if ! "$CARGO_TARGET_DIR/$TRIPLE/release/$t" -max_total_time="$secs" -print_final_stats=0 \
      -artifact_prefix="artifacts/$t/" "$work" "corpus/$t" > "$work.log" 2>&1; then
    echo "fuzz: $t FAILED; see fuzz/artifacts/$t/"; tail -40 "$work.log"; status=1
  else
    grep -E '^#[0-9]+.*DONE' "$work.log" | tail -1 || true
  fi
  rm -rf "$work" "$work.log"
done
exit $status
