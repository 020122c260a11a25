#!/usr/bin/env bash
# Replay side by side with Ergo's supervisor replay, interleaved, in one run.
#
#   cargo build --release -p rehearse
#   ERGOBENCH=/path/to/ergobench benches/peers.sh [TRIGGERS] [ROUNDS]
#
# TRIGGERS (default 100000) is the length of the load scenario written here:
# one persona, one trigger a second, distinct work keys. `rehearse run`
# captures it once; `ergobench build` writes Ergo's two captures of as many
# episodes once: the stub (empty payloads, no effects) and the fair variant
# (a trigger-shaped payload and 9 effects of about 440 bytes per episode,
# each re-hashed at replay, as rehearse's 9 log events per trigger are).
# Then ROUNDS times (default 5), in turn: `rehearse replay --strict`, Ergo
# stub, Ergo fair, each under /usr/bin/time. It prints each run, then the
# medians (wall, CPU, peak RSS), episodes per second of wall time for the
# whole process, and rehearse's rate as a ratio of each peer's.
#
# ERGOBENCH is the `ergobench` binary of the peer driver (a separate cargo
# package outside this workspace, built with --release). REHEARSE defaults
# to target/release/rehearse; WORK (default: a new temporary directory,
# removed at the end) holds the scenario and the captures. CAPTURE names an
# existing capture of TRIGGERS episodes to replay instead of running the
# load scenario (for example one written by
# `target/release/examples/peak_memory capture TRIGGERS FILE`).
set -euo pipefail

triggers=${1:-100000}
rounds=${2:-5}
root=$(cd "$(dirname "$0")/.." && pwd)
rehearse=${REHEARSE:-$root/target/release/rehearse}
ergobench=${ERGOBENCH:?set ERGOBENCH to the ergobench peer binary}
if [[ -n ${WORK:-} ]]; then
    work=$WORK
    mkdir -p "$work"
else
    work=$(mktemp -d)
    trap 'rm -rf "$work"' EXIT
fi

capture=${CAPTURE:-}
if [[ -z $capture ]]; then
scenario=$work/load.yaml
awk -v n="$triggers" 'BEGIN {
    printf "version: 1\nname: load\nstart: 2026-01-01T00:00:00Z\npersonas:\n  p:\n    entry_workflow: wf\n    budget: { daily_usd: 1000000.0 }\nsteps:\n"
    for (i = 0; i < n; i++)
        printf "  - at: %ds\n    trigger: { persona: p, provider: webhook, kind: push, metadata: { dedupe_key: k%d }, cost: { usd: 0.001, tokens: 3 } }\n", i, i
}' > "$scenario"
"$rehearse" run "$scenario" --out "$work/run" > /dev/null
capture=$work/run/load/capture.jsonl
fi
"$ergobench" build "$triggers" "$work/stub.json" > /dev/null
"$ergobench" build "$triggers" "$work/fair.json" --payload --effects 9 > /dev/null

# One measured run: label, then the command; appends "label wall cpu rss_kib".
measure() {
    local label=$1
    shift
    /usr/bin/time -o "$work/time.txt" -f '%e %U %S %M' "$@" > /dev/null 2>&1
    read -r wall user sys rss < "$work/time.txt"
    echo "$label $wall $(awk -v u="$user" -v s="$sys" 'BEGIN { print u + s }') $rss" | tee -a "$work/runs.txt"
}

: > "$work/runs.txt"
echo "label wall_s cpu_s peak_rss_kib"
for ((round = 1; round <= rounds; round++)); do
    measure rehearse "$rehearse" replay --strict "$capture"
    measure ergo-stub "$ergobench" replay "$work/stub.json"
    measure ergo-fair "$ergobench" replay "$work/fair.json" --effects 9
done

# Medians per label, then the ratios of episodes per second.
awk -v n="$triggers" '
function median(list, count,    sorted, i, j, t) {
    for (i = 1; i <= count; i++) sorted[i] = list[i]
    for (i = 2; i <= count; i++)
        for (j = i; j > 1 && sorted[j - 1] > sorted[j]; j--) {
            t = sorted[j]; sorted[j] = sorted[j - 1]; sorted[j - 1] = t
        }
    return count % 2 ? sorted[(count + 1) / 2] : (sorted[count / 2] + sorted[count / 2 + 1]) / 2
}
{
    k = ++count[$1]; wall[$1, k] = $2; cpu[$1, k] = $3; rss[$1, k] = $4
}
END {
    printf "\n%-10s %10s %10s %12s %14s\n", "medians", "wall_s", "cpu_s", "peak_MiB", "episodes/s"
    split("rehearse ergo-stub ergo-fair", labels, " ")
    for (l = 1; l <= 3; l++) {
        name = labels[l]
        for (k = 1; k <= count[name]; k++) { w[k] = wall[name, k]; c[k] = cpu[name, k]; r[k] = rss[name, k] }
        mw[name] = median(w, count[name]); mc = median(c, count[name]); mr = median(r, count[name])
        printf "%-10s %10.3f %10.3f %12.1f %14.0f\n", name, mw[name], mc, mr / 1024, n / mw[name]
    }
    printf "\nrehearse / ergo-fair: %.2fx   rehearse / ergo-stub: %.2fx (episodes per second, %d triggers)\n",
        mw["ergo-fair"] / mw["rehearse"], mw["ergo-stub"] / mw["rehearse"], n
}' "$work/runs.txt"
