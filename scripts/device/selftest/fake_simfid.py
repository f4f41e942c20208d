#!/usr/bin/env python3
"""A stand-in for the simfid binary in run_goldens.sh's CPU self-test (standard library only).

It accepts exactly the flags of the contract that run_goldens.sh relies on (argparse rejects any
other, so a drift in scripts/device/simfid_cli.sh shows up here) and does a plain version of
the work: `record` replays a trace-replay CSV open-loop with streamed greedy completions and
writes one JSON line per request; `profile` sends a few single requests and writes a JSON file.
It is not the recorder: its output format is its own and nothing reads it but the self-test.

Environment: FAKE_SIMFID_FAIL=1 makes every command fail at once (tests the tool-error path);
FAKE_SIMFID_KILL_ON kills the server during one recording (tests the restart path).
"""

import argparse
import csv
import json
import os
import sys
import threading
import time
import urllib.error
import urllib.request


def words(n):
    return " ".join(f"w{1000 + i}" for i in range(n))


def one_request(url, model, prompt_tokens, max_tokens, timeout):
    body = {"prompt": words(prompt_tokens), "max_tokens": max_tokens, "temperature": 0, "stream": True}
    if model:
        body["model"] = model
    req = urllib.request.Request(url.rstrip("/") + "/completions", data=json.dumps(body).encode(),
                                 headers={"Content-Type": "application/json"})
    t0 = time.time()
    rec = {"sent": t0, "prompt_tokens": prompt_tokens, "max_tokens": max_tokens, "chunks": [], "usage": None,
           "finish_reason": None, "error": None}
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            for raw in r:
                line = raw.decode("utf-8", "replace").strip()
                if not line.startswith("data:") or line[5:].strip() == "[DONE]":
                    continue
                obj = json.loads(line[5:])
                for ch in obj.get("choices", []):
                    if ch.get("text"):
                        rec["chunks"].append(round(time.time() - t0, 6))
                    if ch.get("finish_reason"):
                        rec["finish_reason"] = ch["finish_reason"]
                if obj.get("usage"):
                    rec["usage"] = obj["usage"]
    except urllib.error.HTTPError as e:
        rec["error"] = f"HTTP {e.code}"
    except Exception as e:  # noqa: BLE001
        rec["error"] = f"{type(e).__name__}: {e}"
    rec["e2e"] = round(time.time() - t0, 6)
    return rec


def maybe_kill_server(a):
    """FAKE_SIMFID_KILL_ON=<workload file name>:<marker file>:<server pid file>: once (while the
    marker exists), kill the server's process group before recording that workload."""
    spec = os.environ.get("FAKE_SIMFID_KILL_ON")
    if not spec:
        return
    name, marker, pidfile = spec.split(":")
    if os.path.basename(a.workload) == name and os.path.exists(marker):
        os.remove(marker)
        with open(pidfile) as f:
            pid = int(f.read().strip())
        os.killpg(pid, 9)
        time.sleep(1)
        print(f"fake_simfid: killed the server (pid {pid}) on purpose", file=sys.stderr)


def cmd_record(a):
    maybe_kill_server(a)
    with open(a.workload) as f:
        rows = [(float(r["arrived_at"]), int(float(r["num_prefill_tokens"])), int(float(r["num_decode_tokens"])))
                for r in csv.DictReader(f)]
    results = [None] * len(rows)
    start = time.time() + 0.2

    def worker(i, at, p, o):
        delay = start + at - time.time()
        if delay > 0:
            time.sleep(delay)
        rec = one_request(a.url, a.model, p, o, a.timeout)
        rec.update(id=i, arrived_at=at, scheduled=start + at)
        results[i] = rec

    threads = [threading.Thread(target=worker, args=(i, *r), daemon=True) for i, r in enumerate(rows)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    errors = 0
    with open(a.output, "w") as f:
        for rec in results:
            errors += rec["error"] is not None
            f.write(json.dumps(rec) + "\n")
        f.write(json.dumps({"summary": True, "gpu": a.gpu, "server": a.server_name, "flags": a.server_flags,
                            "requests": len(rows), "errors": errors}) + "\n")
    print(f"fake_simfid record: {len(rows)} requests, {errors} errors -> {a.output}")
    return 1 if errors else 0


def cmd_profile(a):
    out = []
    for p in (8, 64, 128):
        rec = one_request(a.url, None, p, 4, 60)
        out.append({"prompt_tokens": p, "e2e": rec["e2e"], "chunks": rec["chunks"], "error": rec["error"]})
    with open(a.output, "w") as f:
        json.dump({"fake": True, "points": out}, f, indent=2)
    print(f"fake_simfid profile: {len(out)} points -> {a.output}")
    return 0


def main():
    if os.environ.get("FAKE_SIMFID_FAIL") == "1":
        print("fake_simfid: failing on purpose (FAKE_SIMFID_FAIL=1)", file=sys.stderr)
        return 2
    ap = argparse.ArgumentParser(prog="simfid")
    ap.add_argument("--version", action="store_true")
    sub = ap.add_subparsers(dest="cmd")
    r = sub.add_parser("record")
    r.add_argument("--url", required=True)
    r.add_argument("--workload", required=True)
    r.add_argument("-o", dest="output", required=True)
    r.add_argument("--warmup", type=int, default=0)
    r.add_argument("--model")
    r.add_argument("--server-name")
    r.add_argument("--server-flags")
    r.add_argument("--gpu")
    r.add_argument("--timeout", type=float, default=600)
    r.add_argument("--concurrency", type=int)
    r.add_argument("--prompt-mode", choices=["words"], default="words")
    p = sub.add_parser("profile")
    p.add_argument("--url", required=True)
    p.add_argument("-o", dest="output", required=True)
    a = ap.parse_args()
    if a.version:
        print("simfid 0.0.0-fake (self-test stand-in)")
        return 0
    if a.cmd == "record":
        return cmd_record(a)
    if a.cmd == "profile":
        return cmd_profile(a)
    ap.print_help()
    return 2


if __name__ == "__main__":
    sys.exit(main())
