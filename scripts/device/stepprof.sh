#!/usr/bin/env bash
# Step-time profiling through the server's API (simfid::exec::step):
#   1. `simfid profile plan` writes the controlled experiments as workloads,
#   2. `simfid record` records each against the server into RUNS/<name>.jsonl,
#   3. `simfid profile fit` extracts the engine steps from the chunk times and fits the model.
# Usage: stepprof.sh SIMFID URL OUT_JSON [extra `simfid record` flags...]
# Recorded experiments are kept next to OUT_JSON (plan/, runs/); a run already recorded is not
# recorded again, so the script resumes.
set -uo pipefail
simfid=$1 url=$2 out=$3
shift 3
dir=$(dirname "$out")
mkdir -p "$dir/plan" "$dir/runs"
"$simfid" profile plan -o "$dir/plan" || exit 1
for csv in "$dir"/plan/*.csv; do
  name=$(basename "$csv" .csv)
  [ -s "$dir/runs/$name.jsonl" ] && continue
  echo "stepprof: recording $name"
  "$simfid" record --url "$url" --workload "$csv" -o "$dir/runs/$name.jsonl.part" --no-progress "$@" \
    && mv "$dir/runs/$name.jsonl.part" "$dir/runs/$name.jsonl" \
    || echo "stepprof: $name failed (kept as .part)"
done
"$simfid" profile fit --plan "$dir/plan/plan.json" --runs "$dir/runs" -o "$out"
