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
status=0
cargo run -q -p rehearse -- certify --impl "$impl" \
    --manifest "conformance/$name.toml" --markdown "conformance/$name.md" || status=$?
# The report names the adapter by its target directory: spell that as the
# variable, so the committed report is the same wherever it was built, and
# say which command regenerates it.
report="conformance/$name.md"
awk -v root="$root/" -v line="Regenerate with \`adapters/certify.sh $1\` (adapters/README.md); manifest \`conformance/$name.toml\`." '
    { while ((i = index($0, root)) > 0) $0 = substr($0, 1, i - 1) "$ADAPTER_TARGET_ROOT/" substr($0, i + length(root)) }
    { print }
    NR == 3 { print ""; print line }
' "$report" > "$report.tmp"
mv "$report.tmp" "$report"
exit "$status"
