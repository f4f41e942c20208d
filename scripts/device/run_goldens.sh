#!/usr/bin/env bash
# Record simfid's golden fixtures on a GPU machine in one pass (or a few, with --phase).
#
#   bash scripts/device/run_goldens.sh [--phase LIST] [options]      (from the repository root)
#
# Phases, run in the order given (default: all = setup,warmup,record,stepprof,stop,ops):
#   setup     install the carried wheels (.whl/) into /tmp/site, build the random-weight
#             Qwen3-0.6B + exact-length tokenizer into /tmp/qwen3, start `transformers serve`
#             (setsid: it outlives this call) and wait until it answers
#   warmup    one probe request (temperature 0: the first request fixes sampling), then the
#             plan's warm-up workloads, recorded: the issue's 40 requests, shape ladder, overload
#   record    `simfid record` for every pending run of the plan (scripts/device/workloads/plan.tsv)
#   stepprof  `simfid profile`: step-time experiments through the API
#   stop      stop the server
#   ops       scripts/profile/profile_ops.py: operator profiles in Vidur's CSV formats (bf16, fp16)
#   pack      always, at the end and after every run: results into $OUT (at most 4 files)
# Every phase is idempotent and resumes: recorded runs are not redone, a server that answers
# is reused, a missing server is started (and warmed up) by whichever phase needs it.
#
# Options:
#   --phase LIST        comma-separated phases (see above)
#   --deadline-s S      start nothing that would not finish S seconds after this call began;
#                       default 560 when $OUT is set (the device tool's 600 s limit), else none
#   --allow-gpu         record on a GPU that is not the expected one (the fixtures still name
#                       the real GPU); without it, anything but --expect-gpu is refused
#   --expect-gpu NAME   default H100
#   --only RUNS         comma-separated run names of the plan: record only these
#   --retry-failed      record again the runs whose recording failed
#   --plan FILE         default scripts/device/workloads/plan.tsv
#   --simfid CMD        default target/release/simfid (a command line is allowed)
#   --server-flags STR  default: the goldens' flags (below)
#   --python PY         default python3
#   --state DIR         default /tmp/simfid-goldens (survives between calls on a warm machine)
#   --out DIR           default $OUT, else /tmp/simfid-goldens-out
#   --model-dir DIR     default /tmp/qwen3
#   --port N            default 8000
#   --wheels DIR        default .whl      --site DIR   default /tmp/site
#   --stepprof-timeout-s S   limit of `simfid profile` (default 240)
#   --ops-budget-s S    time budget of profile_ops.py, both dtypes (default 240)
#   --selftest          CPU self-test: tiny model, CPU server flags, quick CPU operator profile
#   --external-server   use the OpenAI-compatible server already listening on --port (vLLM,
#                       SGLang, ...): nothing is started or stopped; give --server-name,
#                       --server-flags (recorded as they are) and --model-req
#   --server-name STR   recorded server name (default "transformers-serve-cb <version>")
#   --model-req NAME    the requests' "model" field (default: --model-dir)
#
# The goldens' server: transformers serve /tmp/qwen3 --continuous-batching --cb-use-cuda-graph
#   --cb-num-blocks 512 --cb-max-batch-tokens 2048 --host 127.0.0.1 --port 8000
set -euo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
HERE=$REPO/scripts/device
cd "$REPO"
# shellcheck source=scripts/device/simfid_cli.sh
source "$HERE/simfid_cli.sh"

GOLDEN_SERVER_FLAGS="--continuous-batching --cb-use-cuda-graph --cb-num-blocks 512 --cb-max-batch-tokens 2048"
SELFTEST_SERVER_FLAGS="--continuous-batching --cb-use-cuda-graph --cb-num-blocks 64 --cb-max-batch-tokens 256 --cb-block-size 32 --device cpu"

PHASES=all
DEADLINE_S=
ALLOW_GPU=0
EXPECT_GPU=H100
ONLY=
RETRY_FAILED=0
PLAN=$HERE/workloads/plan.tsv
SIMFID=target/release/simfid
SERVER_FLAGS=
PY=python3
STATE=/tmp/simfid-goldens
OUT_DIR=${OUT:-/tmp/simfid-goldens-out}
MODEL_DIR=/tmp/qwen3
PORT=8000
WHEELS=.whl
SITE=/tmp/site
SELFTEST=0
EXTERNAL=0
SERVER_NAME_OPT=
MODEL_REQ_OPT=
SERVER_WAIT_S=180
STEPPROF_TIMEOUT_S=240
OPS_BUDGET_S=240
REQ_TIMEOUT_S=600

usage() { sed -n '2,/^set -euo/p' "$0" | sed '$d' | sed 's/^# \{0,1\}//'; }

while [ $# -gt 0 ]; do
  case $1 in
    --phase) PHASES=$2; shift 2 ;;
    --deadline-s) DEADLINE_S=$2; shift 2 ;;
    --allow-gpu) ALLOW_GPU=1; shift ;;
    --expect-gpu) EXPECT_GPU=$2; shift 2 ;;
    --only) ONLY=$2; shift 2 ;;
    --retry-failed) RETRY_FAILED=1; shift ;;
    --plan) PLAN=$2; shift 2 ;;
    --simfid) SIMFID=$2; shift 2 ;;
    --server-flags) SERVER_FLAGS=$2; shift 2 ;;
    --python) PY=$2; shift 2 ;;
    --state) STATE=$2; shift 2 ;;
    --out) OUT_DIR=$2; shift 2 ;;
    --model-dir) MODEL_DIR=$2; shift 2 ;;
    --port) PORT=$2; shift 2 ;;
    --wheels) WHEELS=$2; shift 2 ;;
    --site) SITE=$2; shift 2 ;;
    --selftest) SELFTEST=1; shift ;;
    --external-server) EXTERNAL=1; shift ;;
    --server-name) SERVER_NAME_OPT=$2; shift 2 ;;
    --model-req) MODEL_REQ_OPT=$2; shift 2 ;;
    --stepprof-timeout-s) STEPPROF_TIMEOUT_S=$2; shift 2 ;;
    --ops-budget-s) OPS_BUDGET_S=$2; shift 2 ;;
    -h|--help) usage; exit 0 ;;
    *) echo "run_goldens: unknown argument $1 (see --help)" >&2; exit 2 ;;
  esac
done

if [ -z "$DEADLINE_S" ]; then
  if [ -n "${OUT:-}" ]; then DEADLINE_S=560; else DEADLINE_S=0; fi
fi
if [ "$SELFTEST" = 1 ]; then
  SERVER_FLAGS=${SERVER_FLAGS:-$SELFTEST_SERVER_FLAGS}
  MKMODEL_ARGS=(--tiny --device cpu)
  OPS_ARGS=(--device cpu --quick --dtypes bf16)
else
  SERVER_FLAGS=${SERVER_FLAGS:-$GOLDEN_SERVER_FLAGS}
  MKMODEL_ARGS=(--dtype bf16)
  OPS_ARGS=(--dtypes bf16,fp16)
fi
read -r -a SIMFID_CMD <<< "$SIMFID"
# The GPU machine has no network and everything here is local: never wait on the hub.
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 PYTHONUNBUFFERED=1
MODEL_REQ=${MODEL_REQ_OPT:-$MODEL_DIR}
BASE_URL=http://127.0.0.1:$PORT
API_URL=$BASE_URL/v1
HELPER=("$PY" "$HERE/goldens_helper.py")
GPU_NAME=unknown
GPU_SLUG=unknown
TOOL_ERROR=0
SERVER_NAME=unknown
SID=

T0=$(date +%s)
CALL_ID=$(date -u +%Y%m%dT%H%M%SZ)
mkdir -p "$STATE"/{runs,env,logs,sessions,stepprof,plan} "$OUT_DIR"
exec > >(tee -a "$OUT_DIR/run_goldens.log" "$STATE/logs/run_goldens-$CALL_ID.log") 2>&1

# ---------------------------------------------------------------------------------------------
# Clock, logging, phase bookkeeping

now() { date +%s; }
elapsed() { echo $(( $(now) - T0 )); }
remaining() {
  if [ "$DEADLINE_S" -le 0 ]; then echo 999999; else echo $(( DEADLINE_S - $(elapsed) )); fi
}
log() { echo "[run_goldens $(date -u +%H:%M:%S) +$(elapsed)s] $*"; }
warn() { log "WARNING: $*"; }

PHASE_T0=0
phase_begin() { # NAME BUDGET_S
  PHASE_T0=$(now)
  log "== phase $1: budget ~$2 s; $(remaining) s left before the deadline"
}
phase_end() { # NAME STATUS
  local dt=$(( $(now) - PHASE_T0 ))
  [ -f "$STATE/timings.tsv" ] || printf 'call\tphase\tstarted_unix\tseconds\tstatus\n' > "$STATE/timings.tsv"
  printf '%s\t%s\t%s\t%s\t%s\n' "$CALL_ID" "$1" "$PHASE_T0" "$dt" "$2" >> "$STATE/timings.tsv"
  log "== phase $1: $2 in $dt s"
}
fits() { [ "$(remaining)" -ge "$1" ]; } # NEEDED_S

# ---------------------------------------------------------------------------------------------
# GPU check (every call: cheap, and every fixture names the real GPU)

check_gpu() {
  local line rc=0
  line=$("${HELPER[@]}" gpu --expect "$EXPECT_GPU" --out "$STATE/env/gpu.json") || rc=$?
  if [ "$rc" = 2 ]; then
    if [ "$SELFTEST" = 1 ]; then
      GPU_NAME="cpu (selftest)"; GPU_SLUG=selftest
      "${HELPER[@]}" meta --out "$STATE/env/gpu.json" name="$GPU_NAME" slug=selftest
      log "GPU: none (self-test on the CPU)"
      return 0
    fi
    if [ "$ALLOW_GPU" = 1 ]; then
      GPU_NAME=unknown; GPU_SLUG=unknown
      warn "nvidia-smi failed; recording with GPU name 'unknown' (--allow-gpu)"
      return 0
    fi
    log "ERROR: nvidia-smi failed: no GPU to record goldens on (--allow-gpu to go on anyway)"
    return 3
  fi
  GPU_NAME=${line%%|*}
  GPU_SLUG=${line##*|}
  local driver=${line#*|}; driver=${driver%%|*}
  nvidia-smi > "$STATE/env/nvidia-smi.txt" 2>&1 || true
  if [ "$rc" = 3 ]; then
    if [ "$ALLOW_GPU" = 1 ] || [ "$SELFTEST" = 1 ]; then
      warn "GPU is '$GPU_NAME', not $EXPECT_GPU; recording anyway (the fixtures name '$GPU_NAME')"
    else
      log "ERROR: GPU is '$GPU_NAME', not $EXPECT_GPU: refusing to record $EXPECT_GPU goldens on it."
      log "       Pass --allow-gpu to record there (fixtures are always labelled with the real GPU),"
      log "       or --expect-gpu NAME for goldens of another GPU."
      return 3
    fi
  fi
  log "GPU: $GPU_NAME (driver $driver); expected $EXPECT_GPU"
}

# ---------------------------------------------------------------------------------------------
# Setup: wheels, model, server

use_site() {
  if [ -d "$SITE" ]; then
    case ":${PYTHONPATH:-}:" in *":$SITE:"*) ;; *) export PYTHONPATH=$SITE${PYTHONPATH:+:$PYTHONPATH} ;; esac
  fi
}

ensure_wheels() {
  if [ -f "$SITE/.installed" ]; then use_site; return 0; fi
  if ! ls "$WHEELS"/*.whl >/dev/null 2>&1; then
    log "no wheels in $WHEELS: using the Python environment as it is"
    return 0
  fi
  log "installing $(ls "$WHEELS"/*.whl | wc -l) wheels from $WHEELS into $SITE"
  "$PY" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target "$SITE" "$WHEELS"/*.whl
  use_site
  if ! "$PY" -c 'import requests' 2>/dev/null && ls "$WHEELS"/fallback/*.whl >/dev/null 2>&1; then
    log "requests is missing: installing the fallback wheels"
    "$PY" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --target "$SITE" "$WHEELS"/fallback/*.whl
  fi
  touch "$SITE/.installed"
}

ensure_model() {
  if [ -f "$MODEL_DIR/simfid-model.json" ]; then return 0; fi
  log "building the random-weight model in $MODEL_DIR (${MKMODEL_ARGS[*]})"
  "$PY" "$HERE/mkmodel.py" "$MODEL_DIR" "${MKMODEL_ARGS[@]}"
}

server_pid() { cat "$STATE/server.pid" 2>/dev/null || true; }
pid_alive() { [ -n "$1" ] && kill -0 "$1" 2>/dev/null; }
answering() { "${HELPER[@]}" wait --url "$BASE_URL" --timeout 2 >/dev/null 2>&1; }

served() { cat "$STATE/sessions/$SID/served" 2>/dev/null || echo 0; }
add_served() { echo $(( $(served) + $1 )) > "$STATE/sessions/$SID/served"; }

start_server() {
  ensure_wheels
  ensure_model
  if answering; then
    log "ERROR: something already answers on port $PORT but it is not a server this state dir started"
    return 4
  fi
  # Fail fast on a missing module rather than after the wait.
  if ! "$PY" -c 'import fastapi, uvicorn, pydantic, openai, transformers.cli.transformers' 2>"$STATE/logs/preflight.err"; then
    log "ERROR: the server's Python modules do not import:"; tail -n 5 "$STATE/logs/preflight.err"
    return 4
  fi
  local ord=$(( $(ls "$STATE/sessions" | wc -l) + 1 ))
  SID=s$ord-$(date -u +%Y%m%dT%H%M%SZ)
  mkdir -p "$STATE/sessions/$SID"
  echo 0 > "$STATE/sessions/$SID/served"
  : > "$STATE/sessions/$SID/history"
  local slog=$STATE/logs/server-$SID.log
  # shellcheck disable=SC2206 # SERVER_FLAGS is a list of flags, split on spaces
  local cmd=("$PY" -m transformers.cli.transformers serve "$MODEL_DIR" $SERVER_FLAGS --host 127.0.0.1 --port "$PORT")
  log "starting server session $SID: transformers serve $MODEL_DIR $SERVER_FLAGS --host 127.0.0.1 --port $PORT"
  local t_start; t_start=$(now)
  setsid "${cmd[@]}" > "$slog" 2>&1 < /dev/null &
  local pid=$!
  echo "$pid" > "$STATE/server.pid"
  echo "$SID" > "$STATE/server.session"
  local rc=0
  "${HELPER[@]}" wait --url "$BASE_URL" --timeout "$SERVER_WAIT_S" --pid "$pid" || rc=$?
  if [ "$rc" != 0 ]; then
    log "ERROR: the server did not come up (wait rc=$rc); last lines of $slog:"
    tail -n 60 "$slog" || true
    stop_server
    return 4
  fi
  set_server_name
  "${HELPER[@]}" meta --out "$STATE/sessions/$SID/session.json" \
    session="$SID" pid="$pid" started_unix="$t_start" startup_seconds=$(( $(now) - t_start )) \
    server_name="$SERVER_NAME" command="transformers serve $MODEL_DIR $SERVER_FLAGS --host 127.0.0.1 --port $PORT" \
    server_flags="$SERVER_FLAGS" model_dir="$MODEL_DIR" env="HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1" \
    --json model="$MODEL_DIR/simfid-model.json"
  log "server up after $(( $(now) - t_start )) s (pid $pid)"
  "${HELPER[@]}" versions --out "$STATE/env/versions.json" --simfid-version "$(simfid_version)" || true
}

set_server_name() {
  if [ -n "$SERVER_NAME_OPT" ]; then SERVER_NAME=$SERVER_NAME_OPT; return; fi
  local tf_ver
  tf_ver=$("$PY" -c 'import transformers; print(transformers.__version__)' 2>/dev/null || echo unknown)
  SERVER_NAME="transformers-serve-cb $tf_ver"
}

load_session() {
  SID=$(cat "$STATE/server.session" 2>/dev/null || true)
  set_server_name
}

# A server this script did not start (--external-server): one session per state dir.
use_external_server() {
  if ! answering; then log "ERROR: no server answers on $BASE_URL (--external-server)"; return 4; fi
  if [ ! -f "$STATE/server.session" ]; then
    SID=s1-external
    mkdir -p "$STATE/sessions/$SID"
    echo 0 > "$STATE/sessions/$SID/served"
    : > "$STATE/sessions/$SID/history"
    echo "$SID" > "$STATE/server.session"
    set_server_name
    "${HELPER[@]}" meta --out "$STATE/sessions/$SID/session.json" session="$SID" external=1 \
      server_name="$SERVER_NAME" server_flags="$SERVER_FLAGS" url="$BASE_URL" \
      first_seen_utc="$(date -u +%Y-%m-%dT%H:%M:%SZ)"
    "${HELPER[@]}" versions --out "$STATE/env/versions.json" --simfid-version "$(simfid_version)" >/dev/null || true
  fi
  load_session
}

ensure_server() {
  if [ "$EXTERNAL" = 1 ]; then use_external_server; return; fi
  local pid; pid=$(server_pid)
  if pid_alive "$pid" && answering; then load_session; return 0; fi
  if [ -n "$pid" ]; then
    warn "server pid $pid is gone or not answering: starting a new session (warm-up again)"
    tail -n 30 "$STATE/logs/server-$(cat "$STATE/server.session" 2>/dev/null).log" 2>/dev/null || true
    stop_server
  fi
  if ! fits 150; then log "deadline: no time to start a server (needs ~150 s)"; return 5; fi
  start_server
}

stop_server() {
  [ "$EXTERNAL" = 1 ] && return 0
  local pid; pid=$(server_pid)
  if [ -z "$pid" ]; then return 0; fi
  if pid_alive "$pid"; then
    log "stopping server pid $pid (its process group)"
    kill -TERM -- "-$pid" 2>/dev/null || kill -TERM "$pid" 2>/dev/null || true
    for _ in $(seq 1 30); do pid_alive "$pid" || break; sleep 1; done
    if pid_alive "$pid"; then
      warn "server pid $pid still alive after 30 s: SIGKILL"
      kill -KILL -- "-$pid" 2>/dev/null || kill -KILL "$pid" 2>/dev/null || true
    fi
  fi
  rm -f "$STATE/server.pid"
}

# probe LABEL: one greedy request; counts as served. The first request of a server also builds
# its batching manager and KV cache, so it may take a while.
probe() {
  local rc=0 tmo=30
  [ "$1" = first ] && tmo=150
  "${HELPER[@]}" probe --url "$BASE_URL" --model "$MODEL_REQ" --words 16 --max-tokens 4 --timeout "$tmo" \
    --out "$STATE/env/probe-$SID-$1.json" || rc=$?
  add_served 1
  return $rc
}

# ---------------------------------------------------------------------------------------------
# Recording

snapshot_plan() {
  cp "$PLAN" "$STATE/plan/plan.tsv"
  local wdir; wdir=$(dirname "$PLAN")
  cut -f3 "$PLAN" | tail -n +2 | sort -u | while read -r w; do cp "$wdir/$w" "$STATE/plan/"; done
}

meta_status() { # RUN -> status or "pending"
  "$PY" -c 'import json,sys
try: print(json.load(open(sys.argv[1])).get("status","pending"))
except Exception: print("pending")' "$STATE/runs/$1.meta.json"
}

in_only() { # RUN
  [ -z "$ONLY" ] && return 0
  case ",$ONLY," in *",$1,"*) return 0 ;; *) return 1 ;; esac
}

# record_run RUN WORKLOAD ROLE ORDER REQS RATE EST TIMEOUT
# Returns 0 recorded (or nothing to do), 1 failed, 2 deadline, 3 tool error (abort the phase),
# 4 server lost.
record_run() {
  local run=$1 wl=$2 role=$3 order=$4 reqs=$5 rate=$6 est=$7 tmo=$8
  local wpath; wpath=$(dirname "$PLAN")/$wl
  local meta=$STATE/runs/$run.meta.json out=$STATE/runs/$run.jsonl rlog=$STATE/runs/$run.log
  if ! fits $(( est + 15 )); then
    log "deadline: $run needs ~$est s + 15 s of margin, $(remaining) s left: stopping here"
    return 2
  fi
  [ "$tmo" -gt "$(( $(remaining) - 5 ))" ] && tmo=$(( $(remaining) - 5 ))
  # An earlier attempt (failed, lost, cut off) is kept aside, not overwritten.
  if [ -f "$meta" ]; then
    local stamp f; stamp=$(date -u +%Y%m%dT%H%M%SZ)
    mkdir -p "$STATE/runs/attempts"
    for f in "$meta" "$out" "$rlog"; do
      [ -f "$f" ] && mv "$f" "$STATE/runs/attempts/$(basename "$f").$stamp"
    done
  fi
  local before history; before=$(served)
  history=$(paste -sd' ' "$STATE/sessions/$SID/history" 2>/dev/null || true)
  simfid_record_argv "$API_URL" "$wpath" "$out"
  log "recording $run ($reqs requests, rate $rate, ~$est s, stop at $tmo s): $wl"
  "${HELPER[@]}" meta --out "$meta" run="$run" status=running role="$role" order="$order" \
    workload="$wl" requests_planned="$reqs" rate="$rate" est_s="$est" gpu="$GPU_NAME" \
    server_session="$SID" served_before="$before" runs_before_on_server="$history" \
    call="$CALL_ID" started_unix="$(now)" started_utc="$(date -u +%Y-%m-%dT%H:%M:%SZ)" \
    command="$(printf '%q ' "${SIMFID_ARGV[@]}")" --sha256 workload_sha256="$wpath"
  local t_start rc=0; t_start=$(now)
  timeout --signal=INT --kill-after=15 "$tmo" "${SIMFID_ARGV[@]}" > "$rlog" 2>&1 || rc=$?
  local took=$(( $(now) - t_start ))
  local lines=0; [ -f "$out" ] && lines=$(grep -c . "$out" || true)
  local status=ok note=""
  if [ "$rc" != 0 ]; then
    status=failed; note="exit $rc"
    [ "$rc" = 124 ] && note="stopped at the $tmo s limit"
    if [ "$lines" = 0 ] && [ "$took" -lt 15 ] && [ "$rc" != 124 ]; then
      status=error; note="exit $rc at once, no output: a tool problem, not the server's"
    fi
  elif [ "$lines" = 0 ]; then
    status=failed; note="exit 0 but no JSONL lines"
  fi
  if [ "$status" != error ]; then
    add_served "$reqs"
    echo "$run" >> "$STATE/sessions/$SID/history"
  fi
  # Is the server still generating? (a dead CB worker answers HTTP but fails completions)
  local health=ok
  probe "after-$run" >/dev/null 2>&1 || health=dead
  # A run that failed with its server is recorded again (after a restart), not left failed.
  if [ "$health" = dead ] && [ "$status" = failed ]; then status=lost; note="$note; the server died"; fi
  "${HELPER[@]}" meta --merge --out "$meta" status="$status" exit_code="$rc" seconds="$took" \
    ended_utc="$(date -u +%Y-%m-%dT%H:%M:%SZ)" server_health_after="$health" note="$note" \
    simfid_version="$(simfid_version)" --lines jsonl_lines="$out" \
    --json gpu_info="$STATE/env/gpu.json" --json server="$STATE/sessions/$SID/session.json" \
    --json versions="$STATE/env/versions.json"
  log "$run: $status in $took s, $lines JSONL lines${note:+ ($note)}; server $health"
  if [ "$status" != ok ]; then tail -n 15 "$rlog" | sed 's/^/    | /' || true; fi
  pack quiet
  [ "$health" = dead ] && return 4
  [ "$status" = error ] && return 3
  [ "$status" = ok ] || return 1
  return 0
}

# run_plan PHASE: record the plan's pending runs of that phase, in order.
run_plan() {
  local phase=$1 order run wl role ph reqs rate est tmo st rc
  while IFS=$'\t' read -r -u 3 order run wl role ph reqs rate est tmo; do
    [ "$order" = order ] && continue
    [ "$ph" = "$phase" ] || continue
    # --only picks recordings; the warm-up is never skipped.
    if [ "$phase" = record ] && ! in_only "$run"; then continue; fi
    local name=$run
    if [ "$phase" = warmup ]; then
      # Warm-up is per server session: a restarted server is warmed (and recorded) again.
      local ord=${SID%%-*}; ord=${ord#s}
      [ "$ord" -gt 1 ] && name="$run-restart$((ord - 1))"
    fi
    st=$(meta_status "$name")
    if [ "$st" = ok ]; then log "$name: already recorded"; continue; fi
    if [ "$st" = failed ] && [ "$RETRY_FAILED" = 0 ] && [ "$phase" = record ]; then
      log "$name: failed before (see its log); --retry-failed records it again"; continue
    fi
    rc=0
    record_run "$name" "$wl" "$role" "$order" "$reqs" "$rate" "$est" "$tmo" || rc=$?
    case $rc in
      0|1) ;;
      2) return 2 ;;
      3) log "ERROR: simfid record failed at once; fix the command in scripts/device/simfid_cli.sh"
         TOOL_ERROR=1
         return 3 ;;
      4) warn "server lost during $name"
         return 4 ;;
    esac
  done 3< "$PLAN"
  return 0
}

phase_warmup() {
  phase_begin warmup "$(awk -F'\t' '$5=="warmup"{s+=$8} END{print s+5}' "$PLAN")"
  local rc=0
  ensure_server || { phase_end warmup "no server (rc $?)"; return 5; }
  if [ "$(cat "$STATE/warm.session" 2>/dev/null)" = "$SID" ]; then
    phase_end warmup "already warm (session $SID)"; return 0
  fi
  if [ "$(served)" = 0 ]; then
    log "first request of session $SID: greedy probe (temperature 0 fixes the server's sampling)"
    if ! probe first; then
      log "ERROR: the first request failed; server log tail:"
      tail -n 40 "$STATE/logs/server-$SID.log" || true
      phase_end warmup "first request failed"; return 5
    fi
  fi
  run_plan warmup || rc=$?
  if [ "$rc" = 0 ]; then
    echo "$SID" > "$STATE/warm.session"
    phase_end warmup "done (served $(served) requests on session $SID)"
  else
    phase_end warmup "incomplete (rc $rc)"
  fi
  return $rc
}

ensure_warm() {
  if [ "$(cat "$STATE/warm.session" 2>/dev/null)" = "$SID" ]; then return 0; fi
  if [ "$TOOL_ERROR" = 1 ]; then log "not warm, and simfid record is failing: not trying again in this call"; return 3; fi
  log "server session $SID is not warmed up yet: warm-up first"
  phase_warmup
}

phase_record() {
  phase_begin record "$(awk -F'\t' '$5=="record"{s+=$8} END{print s}' "$PLAN")"
  local rc=0 tries=0
  while :; do
    rc=0
    ensure_server || { rc=5; break; }
    ensure_warm || { rc=$?; break; }
    run_plan record || rc=$?
    # A lost server is restarted (and warmed up again) once per call.
    if [ "$rc" = 4 ] && [ "$tries" = 0 ]; then tries=1; stop_server; continue; fi
    break
  done
  case $rc in
    0) phase_end record "done" ;;
    2) phase_end record "stopped by the deadline (call again: it resumes)" ;;
    *) phase_end record "stopped (rc $rc)" ;;
  esac
  return 0
}

phase_stepprof() {
  phase_begin stepprof "$STEPPROF_TIMEOUT_S"
  local out=$STATE/stepprof/step_profile.json meta=$STATE/stepprof/step_profile.meta.json
  if [ "$("$PY" -c 'import json,sys
try: print(json.load(open(sys.argv[1])).get("status",""))
except Exception: print("")' "$meta")" = ok ]; then
    phase_end stepprof "already done"; return 0
  fi
  ensure_server || { phase_end stepprof "no server"; return 0; }
  ensure_warm || { phase_end stepprof "not warm"; return 0; }
  local tmo=$STEPPROF_TIMEOUT_S
  [ "$tmo" -gt "$(( $(remaining) - 10 ))" ] && tmo=$(( $(remaining) - 10 ))
  if [ "$tmo" -lt 60 ]; then phase_end stepprof "skipped: deadline ($(remaining) s left)"; return 0; fi
  simfid_profile_argv "$API_URL" "$out"
  local t_start rc=0; t_start=$(now)
  "${HELPER[@]}" meta --out "$meta" status=running server_session="$SID" served_before="$(served)" \
    gpu="$GPU_NAME" command="$(printf '%q ' "${SIMFID_ARGV[@]}")" started_utc="$(date -u +%Y-%m-%dT%H:%M:%SZ)"
  timeout --signal=INT --kill-after=15 "$tmo" "${SIMFID_ARGV[@]}" > "$STATE/stepprof/step_profile.log" 2>&1 || rc=$?
  local status=ok; [ "$rc" = 0 ] && [ -s "$out" ] || status=failed
  "${HELPER[@]}" meta --merge --out "$meta" status="$status" exit_code="$rc" seconds=$(( $(now) - t_start )) \
    simfid_version="$(simfid_version)" --json server="$STATE/sessions/$SID/session.json"
  [ "$status" = ok ] || tail -n 15 "$STATE/stepprof/step_profile.log" | sed 's/^/    | /' || true
  pack quiet
  phase_end stepprof "$status (exit $rc)"
}

phase_ops() {
  phase_begin ops "$OPS_BUDGET_S"
  if [ -f "$STATE/profiles/provenance.json" ]; then phase_end ops "already done"; return 0; fi
  local budget=$OPS_BUDGET_S
  [ "$budget" -gt "$(( $(remaining) - 45 ))" ] && budget=$(( $(remaining) - 45 ))
  if [ "$budget" -lt 60 ]; then phase_end ops "skipped: deadline ($(remaining) s left)"; return 0; fi
  use_site
  local rc=0
  # The grids take ~1-2 min per dtype on an H100; --budget-s cuts them short and says so.
  timeout --kill-after=15 $(( budget + 60 )) "$PY" "$REPO/scripts/profile/profile_ops.py" \
    --out "$STATE/profiles.tmp" --budget-s "$budget" "${OPS_ARGS[@]}" > "$STATE/logs/profile_ops.log" 2>&1 || rc=$?
  tail -n 6 "$STATE/logs/profile_ops.log" | sed 's/^/    | /'
  if [ "$rc" = 0 ]; then
    rm -rf "$STATE/profiles"; mv "$STATE/profiles.tmp" "$STATE/profiles"
    cp "$STATE/logs/profile_ops.log" "$STATE/profiles/"
  fi
  pack quiet
  phase_end ops "exit $rc"
}

phase_setup() {
  phase_begin setup "$(( SERVER_WAIT_S + 40 ))"
  local rc=0
  if [ "$EXTERNAL" = 0 ]; then
    ensure_wheels
    ensure_model
  fi
  ensure_server || rc=$?
  if ! command -v "${SIMFID_CMD[0]}" >/dev/null 2>&1; then
    warn "simfid is not executable at '${SIMFID_CMD[0]}': recordings will fail (carry target/release/simfid)"
  fi
  local simv; simv=$(simfid_version)
  "${HELPER[@]}" versions --out "$STATE/env/versions.json" --simfid-version "$simv" || true
  if [ "$rc" = 0 ]; then phase_end setup "server up (session $SID)"; else phase_end setup "failed (rc $rc)"; fi
  return $rc
}

# ---------------------------------------------------------------------------------------------
# Packing: at most 4 files in $OUT_DIR (log, summary, goldens tarball, profiles tarball)

pack() {
  local quiet=${1:-}
  "${HELPER[@]}" summary --state "$STATE" --plan "$PLAN" > "$STATE/summary.txt" 2>&1 || true
  cp "$STATE/summary.txt" "$OUT_DIR/summary.txt"
  local parts=() p
  for p in runs env logs sessions stepprof plan timings.tsv summary.txt; do
    [ -e "$STATE/$p" ] && parts+=("$p")
  done
  tar -czf "$OUT_DIR/goldens-$GPU_SLUG.tar.gz.part" -C "$STATE" "${parts[@]}"
  mv "$OUT_DIR/goldens-$GPU_SLUG.tar.gz.part" "$OUT_DIR/goldens-$GPU_SLUG.tar.gz"
  if [ -d "$STATE/profiles" ]; then
    tar -czf "$OUT_DIR/profiles-$GPU_SLUG.tar.gz.part" -C "$STATE" profiles
    mv "$OUT_DIR/profiles-$GPU_SLUG.tar.gz.part" "$OUT_DIR/profiles-$GPU_SLUG.tar.gz"
  fi
  if [ -z "$quiet" ]; then
    local f
    for f in "$OUT_DIR"/*; do
      log "out: $(basename "$f") $(du -k "$f" | cut -f1) KiB"
      [ "$(du -k "$f" | cut -f1)" -gt 15000 ] && warn "$(basename "$f") is over 15 MiB (the device tool returns files up to 16 MiB)"
    done
  fi
  return 0
}

finish() {
  local rc=$?
  set +e
  pack
  log "summary:"
  sed 's/^/  /' "$STATE/summary.txt"
  if [ -f "$STATE/timings.tsv" ]; then
    log "phase timings of this call:"
    awk -F'\t' -v c="$CALL_ID" '$1==c{printf "  %-9s %5d s  %s\n", $2, $4, $5}' "$STATE/timings.tsv"
  fi
  local pid; pid=$(server_pid)
  if pid_alive "$pid"; then log "server still running (pid $pid, session $(cat "$STATE/server.session" 2>/dev/null)): it survives this call"; fi
  log "call $CALL_ID ends (exit $rc) after $(elapsed) s"
}
trap finish EXIT

# ---------------------------------------------------------------------------------------------
# Main

log "run_goldens: call $CALL_ID, phases '$PHASES', deadline ${DEADLINE_S}s (0 = none), state $STATE, out $OUT_DIR"
[ -f "$PLAN" ] || { log "ERROR: no plan $PLAN"; exit 2; }
[ "$PHASES" = all ] && PHASES=setup,warmup,record,stepprof,stop,ops
snapshot_plan
"${HELPER[@]}" summary --state "$STATE" --plan "$PLAN" | tail -n 1 | sed 's/^/plan: /'
check_gpu || exit $?

IFS=, read -r -a PHASE_LIST <<< "$PHASES"
for ph in "${PHASE_LIST[@]}"; do
  case $ph in
    setup) phase_setup || exit $? ;;
    warmup) phase_warmup || true ;;
    record) phase_record ;;
    stepprof) phase_stepprof ;;
    stop) phase_begin stop 30; stop_server; phase_end stop "done" ;;
    ops) phase_ops ;;
    pack) ;;
    *) log "ERROR: unknown phase '$ph'"; exit 2 ;;
  esac
done
