#!/usr/bin/env python3
"""Small, dependency-free helpers for run_goldens.sh (Python standard library only).

    goldens_helper.py gpu --expect H100 --out gpu.json      exit 0 ok, 3 other GPU, 2 no nvidia-smi
    goldens_helper.py wait --url http://127.0.0.1:8000 --timeout 180 [--pid N]
    goldens_helper.py probe --url ... --model /tmp/qwen3 --words 16 --max-tokens 4 [--out probe.json]
    goldens_helper.py versions --out versions.json [--simfid-version TEXT]
    goldens_helper.py meta --out RUN.meta.json key=value ... [--json key=FILE ...]
    goldens_helper.py summary --state DIR --plan plan.tsv
    goldens_helper.py slug "NVIDIA H100 80GB HBM3"          -> h100
"""

import argparse
import datetime
import hashlib
import json
import os
import re
import subprocess
import sys
import time
import urllib.error
import urllib.request


def now_iso():
    return datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def write_json(path, obj):
    if not path:
        print(json.dumps(obj, indent=2))
        return
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        json.dump(obj, f, indent=2)
        f.write("\n")
    os.replace(tmp, path)


# --------------------------------------------------------------------------------------------
# gpu


def gpu_slug(name):
    """A short lowercase label for file names: the first known GPU model in the name."""
    m = re.search(r"\b(A100|A10G?|A30|A40|H100|H200|H20|B200|B100|GB200|L40S?|L4|V100|T4)\b", name or "", re.I)
    if m:
        return m.group(1).lower()
    s = re.sub(r"[^a-z0-9]+", "-", (name or "unknown").lower()).strip("-")
    return s[:40] or "unknown"


def cmd_gpu(args):
    q = "name,driver_version,memory.total,pci.bus_id,uuid"
    try:
        out = subprocess.run(
            ["nvidia-smi", f"--query-gpu={q}", "--format=csv,noheader"],
            capture_output=True, text=True, timeout=30, check=True,
        ).stdout
    except (OSError, subprocess.SubprocessError) as e:
        print(f"goldens_helper gpu: nvidia-smi failed: {e}", file=sys.stderr)
        write_json(args.out, {"error": f"nvidia-smi failed: {e}", "checked_utc": now_iso()})
        return 2
    gpus = []
    for line in out.strip().splitlines():
        parts = [p.strip() for p in line.split(",")]
        while len(parts) < 5:
            parts.append("")
        gpus.append(dict(zip(["name", "driver", "memory_total", "pci_bus_id", "uuid"], parts)))
    if not gpus:
        write_json(args.out, {"error": "nvidia-smi listed no GPU", "checked_utc": now_iso()})
        return 2
    first = gpus[0]
    ok = args.expect.lower() in first["name"].lower() if args.expect else True
    info = {
        "name": first["name"],
        "driver": first["driver"],
        "memory_total": first["memory_total"],
        "count": len(gpus),
        "gpus": gpus,
        "slug": gpu_slug(first["name"]),
        "expected": args.expect,
        "matches_expected": ok,
        "checked_utc": now_iso(),
    }
    write_json(args.out, info)
    # One line for the shell: name|driver|slug
    print(f"{first['name']}|{first['driver']}|{info['slug']}")
    return 0 if ok else 3


# --------------------------------------------------------------------------------------------
# wait / probe


def http_status(url, timeout=5.0):
    """The HTTP status of a GET, or None when nothing answers."""
    try:
        with urllib.request.urlopen(url, timeout=timeout) as r:
            return r.status
    except urllib.error.HTTPError as e:
        return e.code  # the server answered (transformers serve's /v1/models can say 500)
    except (urllib.error.URLError, OSError):
        return None


def pid_alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # A zombie still "exists": look at its state where /proc tells it.
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split(")")[-1].split()[0] != "Z"
    except OSError:
        return True


def cmd_wait(args):
    t0 = time.time()
    base = args.url.rstrip("/")
    last_report = 0.0
    while time.time() - t0 < args.timeout:
        if args.pid and not pid_alive(args.pid):
            print(f"goldens_helper wait: server process {args.pid} exited", file=sys.stderr)
            return 2
        # Any answer of /health or /v1/models means uvicorn is up; the forced model is loaded
        # before uvicorn starts listening.
        for path in ("/health", "/v1/models"):
            st = http_status(base + path)
            if st is not None:
                print(f"goldens_helper wait: {path} answered HTTP {st} after {time.time() - t0:.1f} s")
                return 0
        if time.time() - last_report > 30:
            print(f"goldens_helper wait: no answer yet ({time.time() - t0:.0f} s)", flush=True)
            last_report = time.time()
        time.sleep(1.0)
    print(f"goldens_helper wait: no answer in {args.timeout} s", file=sys.stderr)
    return 1


def prompt_of(n, first=1000):
    return " ".join(f"w{first + i}" for i in range(n))


def cmd_probe(args):
    """One streamed greedy completion: pins temperature 0 if it is the server's first request,
    checks that n words are n prompt tokens, and shows the server can still generate."""
    # stream_options: vLLM reports usage in a stream only when asked (transformers always does).
    body = {"prompt": prompt_of(args.words), "max_tokens": args.max_tokens, "temperature": 0, "stream": True,
            "stream_options": {"include_usage": True}}
    if args.model:
        body["model"] = args.model
    req = urllib.request.Request(
        args.url.rstrip("/") + "/v1/completions",
        data=json.dumps(body).encode(),
        headers={"Content-Type": "application/json"},
    )
    res = {"request": {k: v for k, v in body.items() if k != "prompt"}, "prompt_words": args.words,
           "started_utc": now_iso()}
    t0 = time.perf_counter()
    chunks, first, usage, finish, err = 0, None, None, None, None
    try:
        with urllib.request.urlopen(req, timeout=args.timeout) as r:
            res["http_status"] = r.status
            for raw in r:
                line = raw.decode("utf-8", "replace").strip()
                if not line.startswith("data:"):
                    continue
                data = line[5:].strip()
                if data == "[DONE]":
                    break
                obj = json.loads(data)
                for ch in obj.get("choices", []):
                    if ch.get("text"):
                        chunks += 1
                        if first is None:
                            first = time.perf_counter() - t0
                    if ch.get("finish_reason"):
                        finish = ch["finish_reason"]
                if obj.get("usage"):
                    usage = obj["usage"]
    except urllib.error.HTTPError as e:
        err = f"HTTP {e.code}: {e.read()[:300].decode('utf-8', 'replace')}"
    except Exception as e:  # noqa: BLE001 - report anything as a failed probe
        err = f"{type(e).__name__}: {e}"
    res.update(seconds=round(time.perf_counter() - t0, 4), ttft_s=None if first is None else round(first, 4),
               text_chunks=chunks, usage=usage, finish_reason=finish, error=err)
    ok = err is None and usage is not None and usage.get("prompt_tokens") == args.words
    if ok and usage.get("completion_tokens") != args.max_tokens:
        # Not fatal (an EOS can end a request early), but worth seeing.
        res["note"] = "completion_tokens differs from max_tokens"
    if err is None and usage is not None and usage.get("prompt_tokens") != args.words:
        res["error"] = (f"prompt of {args.words} words gave {usage.get('prompt_tokens')} prompt tokens: "
                        "the exact-length tokenizer is not in use")
    res["ok"] = ok
    if args.out:
        write_json(args.out, res)
    print(f"goldens_helper probe: ok={ok} ttft={res['ttft_s']} s usage={usage} finish={finish}"
          + (f" error={res['error']}" if res.get("error") else ""))
    return 0 if ok else 1


# --------------------------------------------------------------------------------------------
# versions / meta


def cmd_versions(args):
    from importlib import metadata

    pkgs = ["torch", "transformers", "tokenizers", "safetensors", "huggingface_hub", "accelerate", "fastapi",
            "starlette", "uvicorn", "pydantic", "pydantic_core", "openai", "numpy", "flash_attn", "kernels"]
    vers = {}
    for p in pkgs:
        try:
            vers[p] = metadata.version(p)
        except metadata.PackageNotFoundError:
            vers[p] = None
    info = {
        "python": sys.version.split()[0],
        "python_executable": sys.executable,
        "pythonpath": os.environ.get("PYTHONPATH", ""),
        "packages": vers,
        "uname": " ".join(os.uname()),
        "simfid": args.simfid_version,
        "checked_utc": now_iso(),
    }
    try:
        import torch

        info["torch_cuda"] = torch.version.cuda
        info["cuda_available"] = torch.cuda.is_available()
    except Exception as e:  # noqa: BLE001
        info["torch_error"] = str(e)
    write_json(args.out, info)
    p = info["packages"]
    print(f"python {info['python']}, torch {p['torch']}, transformers {p['transformers']}, "
          f"fastapi {p['fastapi']}, uvicorn {p['uvicorn']}, flash_attn {p['flash_attn']}, kernels {p['kernels']}")
    return 0


def parse_value(v):
    if re.fullmatch(r"-?\d+", v):
        return int(v)
    if re.fullmatch(r"-?\d+\.\d*", v):
        return float(v)
    return v


def sha256_of(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def cmd_meta(args):
    obj = {}
    if args.merge and os.path.exists(args.out):
        with open(args.out) as f:
            obj = json.load(f)
    for kv in args.pairs:
        k, _, v = kv.partition("=")
        obj[k] = parse_value(v)
    for kv in args.json or []:
        k, _, path = kv.partition("=")
        try:
            with open(path) as f:
                obj[k] = json.load(f)
        except (OSError, ValueError) as e:
            obj[k] = {"unreadable": f"{path}: {e}"}
    for kv in args.sha256 or []:
        k, _, path = kv.partition("=")
        obj[k] = sha256_of(path) if os.path.exists(path) else None
    for kv in args.lines or []:
        k, _, path = kv.partition("=")
        try:
            with open(path) as f:
                obj[k] = sum(1 for line in f if line.strip())
        except OSError:
            obj[k] = None
    write_json(args.out, obj)
    return 0


# --------------------------------------------------------------------------------------------
# summary


def read_plan(path):
    with open(path) as f:
        lines = [line.rstrip("\n").split("\t") for line in f if line.strip()]
    head = lines[0]
    return [dict(zip(head, row)) for row in lines[1:]]


def cmd_summary(args):
    plan = read_plan(args.plan)
    runs_dir = os.path.join(args.state, "runs")
    out = []
    out.append(f"{'#':>2}  {'run':<26} {'role':<6} {'status':<9} {'reqs':>5} {'lines':>5} {'est s':>5} {'took s':>6}  note")
    todo = []
    for r in plan:
        meta_path = os.path.join(runs_dir, r["run"] + ".meta.json")
        meta = {}
        if os.path.exists(meta_path):
            with open(meta_path) as f:
                meta = json.load(f)
        status = meta.get("status", "pending")
        if status != "ok":
            todo.append(r["run"])
        took = meta.get("seconds", "")
        lines = meta.get("jsonl_lines", "")
        note = meta.get("note", "")
        out.append(f"{r['order']:>2}  {r['run']:<26} {r['role']:<6} {status:<9} {r['requests']:>5} {str(lines):>5} "
                   f"{r['est_s']:>5} {str(took):>6}  {note}")
    text = "\n".join(out) + "\n"
    if todo:
        text += f"not recorded yet ({len(todo)}): {' '.join(todo)}\n"
        rec = [r for r in todo if r in {p["run"] for p in plan if p["phase"] == "record"}]
        if rec:
            text += f"on a fresh machine, resume with: --only {','.join(rec)}\n"
    else:
        text += "every run of the plan is recorded\n"
    sys.stdout.write(text)
    return 0


def cmd_slug(args):
    print(gpu_slug(args.name))
    return 0


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = ap.add_subparsers(dest="cmd", required=True)

    p = sub.add_parser("gpu")
    p.add_argument("--expect", default="H100")
    p.add_argument("--out")
    p.set_defaults(fn=cmd_gpu)

    p = sub.add_parser("wait")
    p.add_argument("--url", required=True)
    p.add_argument("--timeout", type=float, default=180)
    p.add_argument("--pid", type=int)
    p.set_defaults(fn=cmd_wait)

    p = sub.add_parser("probe")
    p.add_argument("--url", required=True)
    p.add_argument("--model")
    p.add_argument("--words", type=int, default=16)
    p.add_argument("--max-tokens", type=int, default=4)
    p.add_argument("--timeout", type=float, default=120)
    p.add_argument("--out")
    p.set_defaults(fn=cmd_probe)

    p = sub.add_parser("versions")
    p.add_argument("--out")
    p.add_argument("--simfid-version", default=None)
    p.set_defaults(fn=cmd_versions)

    p = sub.add_parser("meta")
    p.add_argument("--out", required=True)
    p.add_argument("--merge", action="store_true", help="update an existing file")
    p.add_argument("--json", action="append", help="key=FILE: embed a JSON file")
    p.add_argument("--sha256", action="append", help="key=FILE: a file's sha256")
    p.add_argument("--lines", action="append", help="key=FILE: count of non-empty lines")
    p.add_argument("pairs", nargs="*", help="key=value (ints and floats are typed)")
    p.set_defaults(fn=cmd_meta)

    p = sub.add_parser("summary")
    p.add_argument("--state", required=True)
    p.add_argument("--plan", required=True)
    p.set_defaults(fn=cmd_summary)

    p = sub.add_parser("slug")
    p.add_argument("name")
    p.set_defaults(fn=cmd_slug)

    args = ap.parse_args()
    sys.exit(args.fn(args))


if __name__ == "__main__":
    main()
