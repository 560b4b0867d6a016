#!/usr/bin/env bash
# The main job: set up, build, and run `voxgate demo` on the embedded defaults.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
cargo build --release --locked --bin voxgate
exec ./target/release/voxgate demo "$@"
