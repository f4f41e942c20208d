# shellcheck shell=bash disable=SC2034 # SIMFID_ARGV is read by the caller
# The simfid command lines used by run_goldens.sh: the ONE place to adapt when a flag changes.
# Sourced, not run. Each function fills the array SIMFID_ARGV with a complete command line (so
# that the caller can put it under `timeout`), from its arguments and these variables:
#
#   SIMFID_CMD     array: the simfid binary (or a stand-in command), e.g. (target/release/simfid)
#   MODEL_REQ      the request's "model" field; transformers serve accepts only the path it was
#                  started with (or no field), so this is /tmp/qwen3 for the goldens
#   GPU_NAME       nvidia-smi's name of the GPU, always the real one
#   SERVER_NAME    e.g. "transformers-serve-cb 5.17.0"
#   SERVER_FLAGS   the serving flags, recorded in the fixture
#   REQ_TIMEOUT_S  per-request timeout (seconds)
#   TOKENIZER      optional tokenizer.json: the recorder counts the tokens inside each streamed
#                  chunk with it (vLLM coalesces several tokens into one SSE chunk under load)

# simfid_record_argv URL WORKLOAD_CSV OUT_JSONL
#   Replays the workload open-loop against an OpenAI-compatible server and records every
#   request's timeline. Prompts of n words "w1000 w1001 ..." are n tokens for the goldens'
#   tokenizer (--prompt-mode words). No warm-up here: run_goldens.sh warms the server itself
#   and records the warm-up too.
simfid_record_argv() {
  local url=$1 workload=$2 out=$3
  SIMFID_ARGV=("${SIMFID_CMD[@]}" record
    --url "$url"
    --workload "$workload"
    -o "$out"
    --prompt-mode words
    --warmup 0
    --model "$MODEL_REQ"
    --server-name "$SERVER_NAME"
    --server-flags "$SERVER_FLAGS"
    --gpu "$GPU_NAME"
    --timeout "$REQ_TIMEOUT_S")
  if [ -n "${TOKENIZER:-}" ]; then SIMFID_ARGV+=(--tokenizer "$TOKENIZER"); fi
}

# simfid_profile_argv URL OUT_JSON
#   Step-time experiments through the server's API (B requests decoding at context L, prompts
#   arriving into a decode batch): scripts/device/stepprof.sh plans them with `simfid profile
#   plan`, records each with `simfid record` (same flags as the goldens) and fits the step
#   model with `simfid profile fit` into OUT_JSON (recorded runs kept beside it).
simfid_profile_argv() {
  local url=$1 out=$2
  SIMFID_ARGV=(bash "$REPO/scripts/device/stepprof.sh" "${SIMFID_CMD[@]}" "$url" "$out"
    --prompt-mode words
    --warmup 0
    --model "$MODEL_REQ"
    --server-name "$SERVER_NAME"
    --server-flags "$SERVER_FLAGS"
    --gpu "$GPU_NAME"
    --timeout "$REQ_TIMEOUT_S")
  if [ -n "${TOKENIZER:-}" ]; then SIMFID_ARGV+=(--tokenizer "$TOKENIZER"); fi
}

# simfid_version: one line, or "unknown".
simfid_version() {
  local v
  v=$("${SIMFID_CMD[@]}" --version 2>/dev/null | head -n 1) || true
  echo "${v:-unknown}"
}
