#!/usr/bin/env bash
# Certifies one upstream adapter against the scenario library and rewrites its
# committed report. Run from the repository root after building the adapter
# (adapters/README.md):
#   adapters/certify.sh harn-vm           # conformance/harn-vm-0.10.185.md
#   adapters/certify.sh ergo-supervisor   # conformance/ergo-supervisor-0.1.0-alpha.1.md
# ADAPTER_TARGET_ROOT is where the adapters' target directories are
# (default /work/adapter-target: harn-vm/ and ergo-supervisor/ in it).
# Exits as `rehearse certify` does: 0 when nothing fails the run.
set -euo pipefail
root="${ADAPTER_TARGET_ROOT:-/work/adapter-target}"
case "${1:-}" in
    harn-vm) impl="$root/harn-vm/debug/harn-protocol"; name=harn-vm-0.10.185 ;;
    ergo-supervisor) impl="$root/ergo-supervisor/debug/ergo-protocol"; name=ergo-supervisor-0.1.0-alpha.1 ;;
    *) echo "usage: adapters/certify.sh harn-vm|ergo-supervisor" >&2; exit 2 ;;
esac
cargo run -q -p rehearse -- certify --impl "$impl" \
    --manifest "conformance/$name.toml" --markdown "conformance/$name.md"
