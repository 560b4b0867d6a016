#!/usr/bin/env bash
# Idempotent setup for a fresh Debian 12 machine: system packages, the PocketSphinx
# source and model (from PyPI), cargo tools. Safe to run again; does only what is missing.
set -euo pipefail
cd "$(dirname "$0")/.."

APT_PACKAGES=(
  build-essential pkg-config
  sip-tester baresip          # real SIP peers for the end-to-end tests
  espeak-ng libespeak-ng-dev  # embedded text to speech
  sox                         # audio conversion in tests
  libopus-dev                 # Opus (audiopus links it)
  libsrtp2-dev                # libsrtp2: interop tests and benches only
  iproute2 util-linux         # network namespaces for the RFC 4475 run
  kamailio                    # cluster edge (deploy/kamailio, tests/cluster.rs)
  postgresql                  # shared store for the cluster tests (initdb/postgres)
  chromium chromium-driver    # admin console browser tests (WebDriver)
)

missing=()
for p in "${APT_PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "setup: installing ${missing[*]}"
  SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${missing[@]}"
fi

# PocketSphinx 5.1.1 source and its en-us model, from PyPI (not committed).
PS_DIR=third_party/pocketsphinx
if [ ! -f "$PS_DIR/.ok" ]; then
  echo "setup: fetching pocketsphinx 5.1.1 sdist from PyPI"
  tmp=$(mktemp -d)
  python3 -m pip download --quiet --no-binary pocketsphinx --no-deps pocketsphinx==5.1.1 -d "$tmp"
  rm -rf "$PS_DIR"; mkdir -p "$PS_DIR"
  tar -xzf "$tmp"/pocketsphinx-5.1.1.tar.gz -C "$PS_DIR" --strip-components=1
  rm -rf "$tmp"
  touch "$PS_DIR/.ok"
fi

if ! command -v cargo >/dev/null 2>&1; then
  echo "setup: cargo not found; install Rust with rustup first" >&2
  exit 1
fi
