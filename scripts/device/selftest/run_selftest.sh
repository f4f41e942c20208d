#!/usr/bin/env bash
# CPU self-test of run_goldens.sh: every phase, split over several calls as on the GPU machine,
# against a real `transformers serve --continuous-batching` with a tiny random Qwen3 on the CPU,
# with fake_simfid.py standing in for the simfid binary and a fake nvidia-smi.
#
#   bash scripts/device/selftest/run_selftest.sh [PYTHON]
#
# PYTHON must have torch, transformers 5.x, tokenizers, fastapi, uvicorn, pydantic, openai,
# accelerate and requests (e.g. a venv: python3 -m venv /tmp/torchenv && /tmp/torchenv/bin/pip
# install torch transformers fastapi uvicorn openai accelerate requests). About 3 minutes.
set -euo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/../../.." && pwd)
cd "$REPO"
PY=${1:-${SELFTEST_PY:-/tmp/torchenv/bin/python}}
W=$(mktemp -d /tmp/simfid-selftest.XXXXXX)
PORT=${SELFTEST_PORT:-8017}
STATE=$W/state
PLAN_DIR=$W/plan
FAKEBIN=$W/bin
mkdir -p "$FAKEBIN"
PYVER=$("$PY" -c 'import sys; print(f"{sys.version_info[0]}.{sys.version_info[1]}")')

fail() { echo "SELFTEST FAILED: $*" >&2; exit 1; }
step() { echo; echo "######## $*"; }

fake_gpu() { # NAME
  cat > "$FAKEBIN/nvidia-smi" <<EOF
#!/bin/sh
case "\$*" in
  *--query-gpu*) echo "$1, 580.159.04, 81559 MiB, 00000000:00:07.0, GPU-selftest" ;;
  *) echo "fake nvidia-smi: $1" ;;
esac
EOF
  chmod +x "$FAKEBIN/nvidia-smi"
}

RG=(bash scripts/device/run_goldens.sh --selftest --python "$PY" --state "$STATE" --plan "$PLAN_DIR/plan.tsv"
    --model-dir "$W/model" --port "$PORT" --simfid "$PY scripts/device/selftest/fake_simfid.py"
    --wheels "$W/whl" --site "$W/site")

XPID=
cleanup() {
  local pid
  for pid in "$(cat "$STATE/server.pid" 2>/dev/null || true)" "$XPID"; do
    if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; then kill -TERM -- "-$pid" 2>/dev/null || true; fi
  done
}
trap cleanup EXIT

step "plan and wheels"
"$PY" scripts/device/make_workloads.py --selftest --out "$PLAN_DIR" > /dev/null
bash scripts/device/prepare_wheels.sh --dest "$W/whl" --python-version "$PYVER" > /dev/null

step "1. a GPU other than the expected one is refused"
fake_gpu "NVIDIA H200"
# (--selftest accepts any GPU, so this call goes without it.)
rc=0; PATH=$FAKEBIN:$PATH OUT=$W/out1 bash scripts/device/run_goldens.sh --python "$PY" --state "$W/state-refuse" \
  --plan "$PLAN_DIR/plan.tsv" --phase setup > "$W/call1.txt" 2>&1 || rc=$?
[ "$rc" = 3 ] || fail "expected exit 3 for an H200 without --allow-gpu, got $rc"
grep -q "refusing to record H100 goldens" "$W/call1.txt" || fail "no refusal message"
grep -q '"name": "NVIDIA H200"' "$W/state-refuse/env/gpu.json" || fail "real GPU name not recorded"
echo "ok: refused, real name recorded"

fake_gpu "NVIDIA H100 80GB HBM3"

step "2. the tool-error path: a simfid that fails at once stops the warm-up fast"
rc=0; PATH=$FAKEBIN:$PATH FAKE_SIMFID_FAIL=1 OUT=$W/out2 "${RG[@]}" --phase setup,warmup,record > "$W/call2.txt" 2>&1 || rc=$?
grep -q "simfid record failed at once" "$W/call2.txt" || fail "tool error not reported"
grep -q "server up after" "$W/call2.txt" || fail "server did not start"
[ -f "$W/out2/goldens-h100.tar.gz" ] || fail "nothing packed after a tool error"
echo "ok: tool error reported, results packed"
# The error marks the warm-up run "error": the next call records it again.

step "3. call A: setup + warm-up (server reused from call 2)"
PATH=$FAKEBIN:$PATH OUT=$W/outA "${RG[@]}" --phase setup,warmup > "$W/callA.txt" 2>&1 || fail "call A exit $?"
grep -q "already recorded\|recording st-ladder" "$W/callA.txt" || fail "warm-up did not run"
[ -f "$STATE/warm.session" ] || fail "not marked warm"

step "4. call B: record under a short deadline (stops part-way, resumable)"
PATH=$FAKEBIN:$PATH OUT=$W/outB "${RG[@]}" --phase record --deadline-s 22 > "$W/callB.txt" 2>&1 || fail "call B exit $?"
# st-judge-rep2 needs est 5 + 15 s of margin: it cannot start after three runs.
grep -q "deadline: .* stopping here" "$W/callB.txt" || fail "deadline did not stop the recording"
grep -q "not recorded yet" "$W/outB/summary.txt" || fail "nothing left after a deadline stop"

step "5. the server dies between calls; call C restarts it, warms it up again, finishes the plan"
kill -KILL -- "-$(cat "$STATE/server.pid")"
sleep 1
PATH=$FAKEBIN:$PATH OUT=$W/outC "${RG[@]}" --phase record > "$W/callC.txt" 2>&1 || fail "call C exit $?"
grep -q "starting server session s2-" "$W/callC.txt" || fail "no second server session"
grep -q "recording st-ladder-restart1" "$W/callC.txt" || fail "restarted server not warmed up again"
grep -q "every run of the plan is recorded" "$W/outC/summary.txt" || fail "plan not complete after call C"

step "6. call D: step profile, stop, operator profile"
PATH=$FAKEBIN:$PATH OUT=$W/outD "${RG[@]}" --phase stepprof,stop,ops > "$W/callD.txt" 2>&1 || fail "call D exit $?"
[ ! -f "$STATE/server.pid" ] || fail "server pid file left after stop"

step "7. --external-server: a server started by someone else (as vLLM would be)"
XSTATE=$W/state-external
HF_HUB_OFFLINE=1 setsid "$PY" -m transformers.cli.transformers serve "$W/model" --continuous-batching \
  --cb-num-blocks 64 --cb-max-batch-tokens 256 --cb-block-size 32 --device cpu --host 127.0.0.1 \
  --port $((PORT + 1)) > "$W/external-server.log" 2>&1 < /dev/null &
XPID=$!
"$PY" scripts/device/goldens_helper.py wait --url "http://127.0.0.1:$((PORT + 1))" --timeout 120 --pid "$XPID" > /dev/null \
  || fail "external server did not start"
rc=0; PATH=$FAKEBIN:$PATH OUT=$W/outX bash scripts/device/run_goldens.sh --python "$PY" --state "$XSTATE" \
  --plan "$PLAN_DIR/plan.tsv" --port $((PORT + 1)) --simfid "$PY scripts/device/selftest/fake_simfid.py" \
  --external-server --server-name "some-server 1.0" --server-flags "--whatever 1" --model-req "$W/model" \
  --phase setup,warmup,record,stop --only st-burst > "$W/callX.txt" 2>&1 || rc=$?
kill -0 "$XPID" 2>/dev/null || fail "--external-server stopped a server it did not start"
kill -TERM -- "-$XPID"
[ "$rc" = 0 ] || fail "external call exit $rc"
grep -q '"server_name": "some-server 1.0"' "$XSTATE/runs/st-burst.meta.json" || fail "server name not recorded"
grep -q '"status": "ok"' "$XSTATE/runs/st-cold.meta.json" || fail "external warm-up not recorded"
[ ! -f "$XSTATE/runs/st-calib.meta.json" ] || fail "--only did not restrict the recordings"
echo "ok: external server used, not stopped; --only honoured"

step "8. the server dies during a recording: restarted, warmed up again, the run recorded again"
KSTATE=$W/state-kill
touch "$W/kill-marker"
rc=0; PATH=$FAKEBIN:$PATH OUT=$W/outK FAKE_SIMFID_KILL_ON="st-burst.csv:$W/kill-marker:$KSTATE/server.pid" \
  "${RG[@]}" --state "$KSTATE" --phase setup,warmup,record,stop --only st-burst > "$W/callK.txt" 2>&1 || rc=$?
[ "$rc" = 0 ] || fail "kill call exit $rc"
grep -q "server lost during st-burst" "$W/callK.txt" || fail "server loss not detected"
grep -q '"status": "ok"' "$KSTATE/runs/st-burst.meta.json" || fail "st-burst not recorded after the restart"
grep -q '"server_session": "s2-' "$KSTATE/runs/st-burst.meta.json" || fail "st-burst not on the new server"
grep -q '"status": "ok"' "$KSTATE/runs/st-cold-restart1.meta.json" || fail "new server not warmed up"
compgen -G "$KSTATE/runs/attempts/st-burst.meta.json.*" > /dev/null || fail "the lost attempt was not kept aside"
echo "ok: loss detected, new server warmed up, run recorded again, the lost attempt kept"

step "9. check what came back"
"$PY" - "$W" <<'EOF'
import csv, io, json, os, sys, tarfile
w = sys.argv[1]
out = os.path.join(w, "outD")
files = sorted(os.listdir(out))
assert len(files) <= 8, files
assert {"goldens-h100.tar.gz", "profiles-h100.tar.gz", "run_goldens.log", "summary.txt"} <= set(files), files
plan = list(csv.DictReader(open(os.path.join(w, "plan", "plan.tsv")), delimiter="\t"))
with tarfile.open(os.path.join(out, "goldens-h100.tar.gz")) as t:
    names = t.getnames()
    def load(n):
        return t.extractfile(n).read().decode()
    for row in plan:
        meta = json.loads(load(f"runs/{row['run']}.meta.json"))
        assert meta["status"] == "ok", (row["run"], meta["status"], meta.get("note"))
        lines = load(f"runs/{row['run']}.jsonl").strip().splitlines()
        assert len(lines) == int(row["requests"]) + 1, (row["run"], len(lines))
        recs = [json.loads(l) for l in lines[:-1]]
        for r in recs:
            assert r["error"] is None, r
            assert r["usage"]["prompt_tokens"] == r["prompt_tokens"], r  # exact-length tokenizer
            assert r["usage"]["completion_tokens"] == r["max_tokens"], r
        for k in ("gpu", "server_session", "served_before", "workload_sha256", "versions", "server", "gpu_info",
                  "runs_before_on_server", "seconds", "exit_code", "simfid_version"):
            assert k in meta, (row["run"], k)
        assert meta["gpu"] == "NVIDIA H100 80GB HBM3", meta["gpu"]
    # the restarted session's warm-up is there too, and its runs name their server session
    assert "runs/st-ladder-restart1.jsonl" in names, names
    assert json.loads(load("runs/st-judge-rep2.meta.json"))["server_session"].startswith("s2-")
    # the first request of each session was the greedy probe
    probes = [n for n in names if n.startswith("env/probe-") and n.endswith("-first.json")]
    assert len(probes) == 2, probes
    for n in probes:
        p = json.loads(load(n))
        assert p["ok"] and p["request"]["temperature"] == 0, p
    timings = load("timings.tsv")
    for ph in ("setup", "warmup", "record", "stepprof", "stop", "ops"):
        assert f"\t{ph}\t" in timings, ph
    assert json.loads(load("stepprof/step_profile.meta.json"))["status"] == "ok"
    assert "plan/plan.tsv" in names and "plan/st-judge.csv" in names
    assert any(n.startswith("logs/server-s1-") for n in names) and any(n.startswith("logs/server-s2-") for n in names)
    served = json.loads(load("runs/st-judge-rep2.meta.json"))["served_before"]
    assert served > 0, served
with tarfile.open(os.path.join(out, "profiles-h100.tar.gz")) as t:
    names = t.getnames()
    for f in ("profiles/bf16/mlp.csv", "profiles/bf16/attention.csv", "profiles/bf16/extra_ops.csv",
              "profiles/provenance.json"):
        assert f in names, (f, names)
    head = t.extractfile("profiles/bf16/mlp.csv").read().decode().splitlines()[0].split(",")
    assert len(head) == 58 and head[-1] == "num_tensor_parallel_workers", head
print("checks passed:", len(plan), "runs,", len(files), "files back")
EOF
echo
echo "SELFTEST PASSED ($W)"
