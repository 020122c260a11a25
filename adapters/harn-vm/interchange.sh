#!/usr/bin/env bash
# Log interchange, the upstream's side (docs/SCENARIOS.md, "Log interchange"):
# runs every scenario of the library (scenarios/invalid/ excepted) with
# rehearse, loads each run's events.jsonl into harn-vm's own persona_status
# and compares the status, value receipts included, with rehearse's report.
# Writes the comparison to conformance/interchange/harn-vm-0.10.185.txt.
# Run from the repository root after building the adapter:
#   CARGO_TARGET_DIR=/work/adapter-target/harn-vm cargo build --manifest-path adapters/harn-vm/Cargo.toml
#   adapters/harn-vm/interchange.sh
set -euo pipefail
target="${CARGO_TARGET_DIR:-/work/adapter-target/harn-vm}"
runs="$(mktemp -d)"
trap 'rm -rf "$runs"' EXIT
mapfile -t scenarios < <(find scenarios -name '*.yaml' -not -path 'scenarios/invalid/*' | LC_ALL=C sort)
cargo run -q -p rehearse -- run --out "$runs" "${scenarios[@]}" > /dev/null
mkdir -p conformance/interchange
"$target/debug/harn-interchange" run "$runs"/* > conformance/interchange/harn-vm-0.10.185.txt
tail -n 1 conformance/interchange/harn-vm-0.10.185.txt
