#!/usr/bin/env bash
# Record the vLLM goldens (issue 10) on a GPU machine with no network, in a few device calls.
#
#   bash scripts/device/run_vllm_goldens.sh STEP [STEP...] [--expect-gpu NAME] [--deadline-s S]
#
# Steps, run in the order given; each is idempotent, so a call can repeat them:
#   stage       copy the bundle pieces carried in this call (.vllm-bundle/part*.tar.xz, SHA256SUMS)
#               to /tmp/simfid-vllm/pieces, which outlives the call while the machine stays warm;
#               carry one piece per call (a piece + the tree + simfid fit the 64 MiB transfer);
#               also .vllm-bundle/simfid.xz (the stripped release binary, xz) when carried
#   install     scripts/device/vllm/install.sh into /tmp/simfid-vllm/site once every piece is
#               there, and the random-weight Qwen3-0.6B + word-level tokenizer into /tmp/qwen3
#   start-512   start `vllm serve` with the goldens' configuration (below) under setsid, wait
#               until it answers (a server of the other configuration is stopped first)
#   start-2048  the same with --max-num-batched-tokens 2048 (the second configuration)
#   record-512  run_goldens.sh --external-server: warm-up, then every pending run of
#               workloads/vllm/plan.tsv, then the step-time experiments; resumable
#   record-2048 the same for workloads/vllm/plan-mbt2048.tsv (no step experiments)
#   record-p99  workloads/vllm/plan-p99.tsv on a server of the first configuration in its own
#               session (state-p99): its warm-up, then three 1,000-request runs (p99 needs them)
#   opprof      scripts/profile/profile_ops_vllm.py (operator profiles with vLLM's kernels, for
#               Vidur) into $OUT/opprof.tar.gz; stops the server first (the GPU must be idle)
#   bench-serve `vllm bench serve` (completions and chat) against `simfid serve` on this machine
#               (issue 13's trial; installs aiohttp/tqdm from .vllm-bundle/extra/ if the image
#               lacks them); results into $OUT/bench-serve.tar.gz
#   stop        stop the server
# Results are packed by run_goldens.sh into $OUT/mbt512/ and $OUT/mbt2048/ after every run;
# the server logs go into $OUT/vllm-logs.tar.gz.
#
# The goldens' server (issue 10), client on the same machine:
#   vllm serve /tmp/qwen3 --seed 0 --dtype bfloat16 --max-num-batched-tokens 512
#     --max-num-seqs 256 --gpu-memory-utilization 0.5 --host 127.0.0.1 --port 8000
# with PYTHONPATH=/tmp/simfid-vllm/site HF_HUB_OFFLINE=1 VLLM_NO_USAGE_STATS=1
# VLLM_USE_FLASHINFER_SAMPLER=0 (flashinfer is not in the bundle).
set -euo pipefail
REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
HERE=$REPO/scripts/device
cd "$REPO"

ROOT=/tmp/simfid-vllm
PIECES=$ROOT/pieces
SITE=$ROOT/site
MODEL_DIR=/tmp/qwen3
PORT=8000
EXPECT_GPU=H200
DEADLINE_S=${OUT:+560}
STEPS=()
while [ $# -gt 0 ]; do
  case $1 in
    --expect-gpu) EXPECT_GPU=$2; shift 2 ;;
    --deadline-s) DEADLINE_S=$2; shift 2 ;;
    -h|--help) sed -n 2,28p "$0"; exit 0 ;;
    -*) echo "run_vllm_goldens: unknown option $1" >&2; exit 2 ;;
    *) STEPS+=("$1"); shift ;;
  esac
done
START=$(date +%s)
OUT_DIR=${OUT:-$ROOT/out}
mkdir -p "$PIECES" "$ROOT/logs" "$OUT_DIR"
log() { echo "[vllm-goldens +$(( $(date +%s) - START ))s] $*"; }

flags_for() { # CONFIG -> the server flags recorded in the fixtures
  echo "--seed 0 --dtype bfloat16 --max-num-batched-tokens $1 --max-num-seqs 256 --gpu-memory-utilization 0.5"
}
vllm_env() {
  export PYTHONPATH=$SITE PATH=$SITE/bin:$PATH HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 \
    VLLM_NO_USAGE_STATS=1 VLLM_USE_FLASHINFER_SAMPLER=0 PYTHONUNBUFFERED=1
}
answering() { python3 -c "import sys,urllib.request as u; u.urlopen(sys.argv[1], timeout=2)" "http://127.0.0.1:$PORT/v1/models" >/dev/null 2>&1; }

step_stage() {
  local n=0
  for f in .vllm-bundle/part*.tar.xz .vllm-bundle/SHA256SUMS; do
    [ -f "$f" ] || continue
    cp "$f" "$PIECES/"; n=$((n + 1))
  done
  if [ -f .vllm-bundle/simfid.xz ]; then
    python3 -c "import lzma,sys; open(sys.argv[2],'wb').write(lzma.open(sys.argv[1]).read())" \
      .vllm-bundle/simfid.xz "$ROOT/simfid" && chmod +x "$ROOT/simfid" && n=$((n + 1))
  fi
  log "stage: $n files carried; pieces there: $(cd "$PIECES" && ls | tr '\n' ' ')"
}

step_install() {
  bash "$HERE/vllm/install.sh" "$PIECES" "$SITE" 2>&1 | tail -n 8
  if [ ! -f "$MODEL_DIR/model.safetensors" ]; then
    python3 "$HERE/mkmodel.py" "$MODEL_DIR" --dtype bf16 2>&1 | tail -n 3
  fi
  vllm_env
  python3 -c "import vllm; print('vllm', vllm.__version__)"
}

stop_server() {
  local pid; pid=$(cat "$ROOT/server.pid" 2>/dev/null || true)
  [ -n "$pid" ] || return 0
  kill -TERM -- "-$pid" 2>/dev/null || true
  for _ in $(seq 30); do kill -0 "$pid" 2>/dev/null || break; sleep 1; done
  kill -KILL -- "-$pid" 2>/dev/null || true
  rm -f "$ROOT/server.pid" "$ROOT/server.config"
  # the GPU memory of the engine core process is freed with it
  for _ in $(seq 20); do answering || break; sleep 1; done
  log "server stopped"
}

step_start() { # CONFIG
  local cfg=$1
  if [ "$(cat "$ROOT/server.config" 2>/dev/null)" = "$cfg" ] && answering; then
    log "start-$cfg: already answering"; return 0
  fi
  stop_server
  vllm_env
  local logf=$ROOT/logs/server-mbt$cfg-$(date +%s).log
  # shellcheck disable=SC2046 # the flags are words
  setsid python3 -m vllm.entrypoints.cli.main serve "$MODEL_DIR" $(flags_for "$cfg") \
    --host 127.0.0.1 --port "$PORT" > "$logf" 2>&1 < /dev/null &
  echo $! > "$ROOT/server.pid"
  echo "$cfg" > "$ROOT/server.config"
  local t0; t0=$(date +%s)
  until answering; do
    if ! kill -0 "$(cat "$ROOT/server.pid")" 2>/dev/null || [ $(( $(date +%s) - t0 )) -gt 420 ]; then
      log "start-$cfg: server did not come up; log tail:"; tail -n 40 "$logf"; return 4
    fi
    sleep 2
  done
  log "start-$cfg: server up in $(( $(date +%s) - t0 )) s"
  grep -E "KV cache|maximum concurrency|backend|Graph capturing finished|torch.compile takes" "$logf" | head -n 12 || true
}

step_record() { # CONFIG [PLAN-NAME]
  vllm_env   # the versions check of run_goldens.sh then sees vLLM's packages
  local cfg=$1 name=${2:-mbt$1} plan=plan.tsv phases=warmup,record,stepprof
  [ "$cfg" = 2048 ] && { plan=plan-mbt2048.tsv; phases=warmup,record; }
  [ "$name" = p99 ] && { plan=plan-p99.tsv; phases=warmup,record; }
  answering || { log "record-$cfg: no server"; return 4; }
  [ "$(cat "$ROOT/server.config" 2>/dev/null)" = "$cfg" ] || { log "record-$cfg: the server runs another configuration"; return 4; }
  local left=""
  if [ -n "$DEADLINE_S" ]; then left=$(( DEADLINE_S - ($(date +%s) - START) )); [ "$left" -gt 30 ] || return 0; fi
  mkdir -p "$OUT_DIR/$name"
  local simfid=target/release/simfid
  [ -x "$ROOT/simfid" ] && simfid=$ROOT/simfid
  TOKENIZER=$MODEL_DIR/tokenizer.json bash "$HERE/run_goldens.sh" --external-server --simfid "$simfid" \
    --phase "$phases" --plan "$HERE/workloads/vllm/$plan" --expect-gpu "$EXPECT_GPU" \
    --server-name "vllm 0.24.0" --server-flags "$(flags_for "$cfg")" --model-req "$MODEL_DIR" \
    --state "$ROOT/state-$name" --out "$OUT_DIR/$name" --stepprof-timeout-s 150 \
    ${left:+--deadline-s "$left"} || log "record-$name: run_goldens.sh exit $?"
}

step_opprof() {
  stop_server
  vllm_env
  local dir=$ROOT/opprof
  rm -rf "$dir"; mkdir -p "$dir"
  python3 scripts/profile/profile_ops_vllm.py --out "$dir" ${OPPROF_ARGS:-} 2>&1 | grep -v Warning | tail -n 20
  tar -czf "$OUT_DIR/opprof.tar.gz" -C "$ROOT" opprof
}

# Installs the extra wheels carried in .vllm-bundle/extra/ whose module the image lacks.
extra_wheels() {
  local extra=$ROOT/extra-site
  [ -d .vllm-bundle/extra ] || return 0
  mkdir -p "$extra"
  python3 - "$extra" .vllm-bundle/extra/*.whl <<'PY'
import importlib.util, subprocess, sys, os
target, wheels = sys.argv[1], sys.argv[2:]
mods = {"attrs": "attr", "typing_extensions": "typing_extensions"}
for w in wheels:
    dist = os.path.basename(w).split("-")[0]
    mod = mods.get(dist, dist)
    if importlib.util.find_spec(mod) is None:
        subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--no-index",
                        "--target", target, w], check=True)
        print("extra wheel installed:", dist)
PY
  export PYTHONPATH=$PYTHONPATH:$extra
}

step_bench_serve() {
  vllm_env
  extra_wheels
  local simfid=target/release/simfid
  [ -x "$ROOT/simfid" ] && simfid=$ROOT/simfid
  local dir=$ROOT/bench-serve port=8100
  rm -rf "$dir"; mkdir -p "$dir"
  "$simfid" serve --port $port --model Qwen/Qwen3-0.6B --served-model-name qwen3 --device h200 \
    --tokenizer "$MODEL_DIR/tokenizer.json" > "$dir/serve.log" 2>&1 &
  local spid=$!
  for _ in $(seq 50); do PORT=$port answering && break; sleep 0.2; done
  local rc=0
  for ep in completions chat; do
    local backend=openai endpoint=/v1/completions
    [ $ep = chat ] && { backend=openai-chat; endpoint=/v1/chat/completions; }
    python3 -m vllm.entrypoints.cli.main bench serve --backend $backend --endpoint $endpoint \
      --base-url "http://127.0.0.1:$port" --model qwen3 --tokenizer "$MODEL_DIR" \
      --dataset-name random --random-input-len 200 --random-output-len 100 --num-prompts 300 \
      --request-rate 20 --seed 0 --ignore-eos --save-result --result-dir "$dir" \
      --result-filename "bench-$ep.json" > "$dir/bench-$ep.log" 2>&1 || rc=$?
    tail -n 25 "$dir/bench-$ep.log"
  done
  kill "$spid" 2>/dev/null || true
  wait "$spid" 2>/dev/null || true   # a killed server's status must not end the script here
  tar -czf "$OUT_DIR/bench-serve.tar.gz" -C "$ROOT" bench-serve
  log "bench-serve: exit $rc"
}

pack_logs() {
  tar -czf "$OUT_DIR/vllm-logs.tar.gz" -C "$ROOT" logs 2>/dev/null || true
}
trap pack_logs EXIT

for s in "${STEPS[@]}"; do
  case $s in
    stage) step_stage ;;
    install) step_install ;;
    start-512) step_start 512 ;;
    start-2048) step_start 2048 ;;
    record-512) step_record 512 ;;
    record-2048) step_record 2048 ;;
    record-p99) step_record 512 p99 ;;
    opprof) step_opprof ;;
    bench-serve) step_bench_serve ;;
    stop) stop_server ;;
    *) echo "run_vllm_goldens: unknown step $s" >&2; exit 2 ;;
  esac
done
log "done"
