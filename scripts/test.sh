#!/usr/bin/env bash
# The test command (CI runs exactly this): set up, lint, run every test and fuzz briefly.
# Exits non-zero when anything fails.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
export CARGO_TERM_COLOR=never

echo "== fmt"; cargo fmt --all -- --check
echo "== clippy"; cargo clippy --locked --workspace --all-targets -- -D warnings
echo "== tests"; cargo test --locked --workspace --all-targets
echo "== doc tests"; cargo test --locked --workspace --doc
echo "== fuzz (brief, every target)"; FUZZ_ASAN=0 fuzz/run.sh
echo "== all checks passed"
