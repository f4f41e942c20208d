#!/usr/bin/env python3
"""Generate the goldens' workloads and recording plan (pure Python, seeded, deterministic).

    python3 scripts/device/make_workloads.py            # writes scripts/device/workloads/
    python3 scripts/device/make_workloads.py --check    # regenerates in memory, compares, prints the plan
    python3 scripts/device/make_workloads.py --set s2 [--check]   # session 2: scripts/device/workloads/s2/

Every workload is a trace-replay CSV ``arrived_at,num_prefill_tokens,num_decode_tokens``
(arrival in seconds from the start of the run). ``plan.tsv`` lists the recordings in the order
``run_goldens.sh`` makes them, with a role:

* ``warmup``: drives the freshly started server through its batch shapes (CUDA graphs are
  captured lazily, once per shape; see ../shared/device/README.md) and is recorded too, as a
  fixture of its own (the cold start) and as calibration data;
* ``calib``: calibration workloads (their own seeds), for fitting the simulator;
* ``judge``: the goldens that judge fidelity; never used for calibration.

The same file recorded several times (``rep1``..``rep3``) measures the noise floor. Durations
are estimated with a fluid queue whose service rate matches what was measured on the H100
(knee near 3-4 req/s for the base mix; ../shared/device/README.md), plus the drain of the last
requests; they plan the device time, they predict nothing else.
"""

import argparse
import hashlib
import io
import os
import random
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
OUT_DIR = os.path.join(HERE, "workloads")

# The base length mix (uniform, as in the runs already recorded on this stack).
PROMPT = (50, 2000)
OUTPUT = (16, 256)
LONG_PROMPT = (3000, 8000)

# Fluid-queue service model for the estimates: one request costs (prompt + 4 * output) / RATE
# seconds of engine time. With the base mix (mean 1025 + 4 * 136) this gives ~3.7 req/s.
SERVICE_TOKENS_PER_S = 5800.0
ITL_S = 0.03  # per output token of the last requests, for the drain
RUN_OVERHEAD_S = 3.0  # recorder start, connection set-up, writing the fixture


# --------------------------------------------------------------------------------------------
# Generators


def lengths(rng, n, prompt=PROMPT, output=None, long_frac=0.0):
    output = output or OUTPUT
    out = []
    for _ in range(n):
        p = rng.randint(*LONG_PROMPT) if long_frac and rng.random() < long_frac else rng.randint(*prompt)
        out.append((p, rng.randint(*output)))
    return out


def exact_rate(gaps, rate):
    """Rescales the gaps so that the n-1 gaps span exactly (n-1)/rate seconds.

    A short run's realised rate is off by ~1/sqrt(n) (a 150-request "3 req/s" draw came out at
    3.66), which would blur a load sweep. Exponential gaps divided by their sum are uniform
    spacings, so for Poisson this is the Poisson process conditioned on its count; for gamma gaps
    it keeps the burstiness (Dirichlet spacings with the same shape)."""
    if not gaps:
        return [0.0]
    k = (len(gaps) / rate) / sum(gaps)
    out, t = [0.0], 0.0
    for g in gaps:
        t += g * k
        out.append(t)
    return out


def poisson_arrivals(rng, n, rate):
    """First request at 0, then exponential gaps, at exactly the given mean rate."""
    return exact_rate([rng.expovariate(rate) for _ in range(n - 1)], rate)


def gamma_arrivals(rng, n, rate, burstiness):
    """Gamma gaps with shape = burstiness and mean 1/rate (vLLM bench's convention: burstiness 1
    is Poisson, below 1 burstier; coefficient of variation 1/sqrt(burstiness)), at exactly the
    given mean rate."""
    scale = 1.0 / (rate * burstiness)
    return exact_rate([rng.gammavariate(burstiness, scale) for _ in range(n - 1)], rate)


def ladder():
    """One request alone per 64-token query bucket (1..2048 prompt tokens), then long prompts:
    the CUDA-graph shapes of light load, which an overload pass does not visit."""
    rows, t = [], 0.0
    for k in range(1, 33):
        rows.append((round(t, 6), 64 * k - 8, 4))
        t += 0.4
    for p in (2500, 3500, 4500, 6000, 8000):
        rows.append((round(t, 6), p, 4))
        t += 1.0
    return rows


class Workload:
    def __init__(self, name, role, seed, n, rate, kind, desc, **kw):
        self.name, self.role, self.seed, self.n, self.rate, self.kind = name, role, seed, n, rate, kind
        self.desc, self.kw = desc, kw

    @property
    def file(self):
        return f"{self.name}.csv"

    def rows(self):
        if self.kind == "ladder":
            return ladder()
        rng = random.Random(self.seed)
        if self.kind == "burst":
            times = [0.0] * self.n
        elif self.kind == "poisson":
            times = poisson_arrivals(rng, self.n, self.rate)
        elif self.kind == "gamma":
            times = gamma_arrivals(rng, self.n, self.rate, self.kw["burstiness"])
        else:
            raise ValueError(self.kind)
        lens = lengths(rng, self.n, prompt=self.kw.get("prompt", PROMPT), output=self.kw.get("output"),
                       long_frac=self.kw.get("long_frac", 0.0))
        return [(round(t, 6), p, o) for t, (p, o) in zip(times, lens)]


# The workloads (seeds: warm-up 100s, calibration 200s, judging 300s; never shared).
def warmup_workloads(cold_seed, overload_seed):
    """The warm-up every session starts with: the issue's 40 requests on the cold server, the
    shape ladder, the overload pass (only the seeds differ between sessions)."""
    return [
        Workload("warmup-ladder", "warmup", 0, 37, None, "ladder",
                 "one request per 64-token prompt bucket, alone, then 5 long prompts; 4 output tokens"),
        Workload("cold40-poisson-2qps", "warmup", cold_seed, 40, 2.0, "poisson",
                 "the issue's 40 warm-up requests, recorded: the cold-start fixture"),
        Workload("overload-poisson-8qps", "warmup", overload_seed, 200, 8.0, "poisson",
                 "shape-covering overload pass, 8% long prompts", long_frac=0.08),
    ]


WORKLOADS = {
    w.name: w
    for w in warmup_workloads(101, 102) + [
        Workload("calib-poisson-1.5qps", "calib", 201, 72, 1.5, "poisson", "calibration, below the knee"),
        Workload("calib-poisson-3.5qps", "calib", 202, 100, 3.5, "poisson", "calibration, at the knee"),
        Workload("judge-poisson-0.5qps", "judge", 301, 24, 0.5, "poisson", "load sweep"),
        Workload("judge-poisson-1qps", "judge", 302, 50, 1.0, "poisson", "load sweep"),
        Workload("judge-poisson-2qps", "judge", 303, 100, 2.0, "poisson", "load sweep; mid-load noise floor (3 repeats)"),
        Workload("judge-poisson-3qps", "judge", 304, 150, 3.0, "poisson", "load sweep"),
        Workload("judge-poisson-4qps", "judge", 305, 200, 4.0, "poisson", "load sweep, past the knee"),
        Workload("judge-poisson-6qps", "judge", 306, 200, 6.0, "poisson", "load sweep, saturated"),
        Workload("judge-gamma-2qps-b0.25", "judge", 307, 100, 2.0, "gamma", "bursty: gamma gaps, CV 2",
                 burstiness=0.25),
        Workload("judge-long-0.4qps", "judge", 308, 24, 0.4, "poisson",
                 "long prompts 3000-8000 (chunked prefill at 2048 tokens per step)", prompt=LONG_PROMPT),
        Workload("judge-burst-64", "judge", 309, 64, None, "burst", "static burst: 64 requests at t=0"),
    ]
}

# Recording order. Warm-up first (phase warmup): the 40 requests on the cold server (so
# that recording is the cold-start fixture), then the shape ladder and the overload pass; then
# the saturated runs early (a rare late
# graph capture costs them least), the three repeats of the mid-load workload spread over the
# session (so the noise floor includes drift), calibration runs in between.
PLAN = [
    ("warmup", "cold40-poisson-2qps", "cold40-poisson-2qps"),
    ("warmup", "warmup-ladder", "warmup-ladder"),
    ("warmup", "overload-poisson-8qps", "overload-poisson-8qps"),
    ("record", "judge-poisson-2qps-rep1", "judge-poisson-2qps"),
    ("record", "judge-poisson-6qps", "judge-poisson-6qps"),
    ("record", "judge-burst-64", "judge-burst-64"),
    ("record", "judge-poisson-1qps", "judge-poisson-1qps"),
    ("record", "judge-poisson-4qps", "judge-poisson-4qps"),
    ("record", "calib-poisson-1.5qps", "calib-poisson-1.5qps"),
    ("record", "judge-poisson-2qps-rep2", "judge-poisson-2qps"),
    ("record", "judge-poisson-0.5qps", "judge-poisson-0.5qps"),
    ("record", "judge-gamma-2qps-b0.25", "judge-gamma-2qps-b0.25"),
    ("record", "judge-poisson-3qps", "judge-poisson-3qps"),
    ("record", "judge-long-0.4qps", "judge-long-0.4qps"),
    ("record", "judge-poisson-2qps-rep3", "judge-poisson-2qps"),
    ("record", "calib-poisson-3.5qps", "calib-poisson-3.5qps"),
]


# Session 2 (``--set s2``, written to workloads/s2/): a second recording session on a fresh
# server, with >= 200 requests per run at >= 2 req/s (tighter tails than session 1's 100-150),
# the same length mix and exact-rate rescaling, and new seeds (warm-up 40x, judging 41x-42x),
# none shared with session 1. Its fixtures go to golden/h100/qwen3-0.6b/hf-cb/s2/.
S2_WORKLOADS = {
    w.name: w
    for w in warmup_workloads(401, 402) + [
        Workload("judge-poisson-0.5qps", "judge", 420, 50, 0.5, "poisson", "load sweep"),
        Workload("judge-poisson-1qps", "judge", 415, 120, 1.0, "poisson", "load sweep"),
        Workload("judge-poisson-2qps", "judge", 411, 200, 2.0, "poisson", "load sweep; mid-load noise floor (3 repeats)"),
        Workload("judge-poisson-3qps", "judge", 414, 200, 3.0, "poisson", "load sweep, at the knee"),
        Workload("judge-poisson-4qps", "judge", 413, 200, 4.0, "poisson", "load sweep, past the knee"),
        Workload("judge-poisson-5qps", "judge", 418, 200, 5.0, "poisson", "load sweep, near saturation"),
        Workload("judge-poisson-6qps", "judge", 412, 200, 6.0, "poisson", "load sweep, saturated"),
        Workload("judge-gamma-2qps-b0.25", "judge", 416, 200, 2.0, "gamma", "bursty: gamma gaps, CV 2",
                 burstiness=0.25),
        Workload("judge-long-0.4qps", "judge", 419, 50, 0.4, "poisson",
                 "long prompts 3000-8000 (chunked prefill at 2048 tokens per step)", prompt=LONG_PROMPT),
        Workload("judge-burst-200", "judge", 417, 200, None, "burst", "static burst: 200 requests at t=0"),
    ]
}

# Session 2's order is its priority (a short device budget loses the last runs first): warm-up,
# then the saturated and mid-load runs, the repeats of the 2 req/s file spread over the session,
# the long and slow runs last.
S2_PLAN = [
    ("warmup", "cold40-poisson-2qps", "cold40-poisson-2qps"),
    ("warmup", "warmup-ladder", "warmup-ladder"),
    ("warmup", "overload-poisson-8qps", "overload-poisson-8qps"),
    ("record", "judge-poisson-2qps-rep1", "judge-poisson-2qps"),
    ("record", "judge-poisson-6qps", "judge-poisson-6qps"),
    ("record", "judge-poisson-4qps", "judge-poisson-4qps"),
    ("record", "judge-poisson-3qps", "judge-poisson-3qps"),
    ("record", "judge-poisson-1qps", "judge-poisson-1qps"),
    ("record", "judge-poisson-2qps-rep2", "judge-poisson-2qps"),
    ("record", "judge-gamma-2qps-b0.25", "judge-gamma-2qps-b0.25"),
    ("record", "judge-burst-200", "judge-burst-200"),
    ("record", "judge-poisson-5qps", "judge-poisson-5qps"),
    ("record", "judge-poisson-2qps-rep3", "judge-poisson-2qps"),
    ("record", "judge-long-0.4qps", "judge-long-0.4qps"),
    ("record", "judge-poisson-0.5qps", "judge-poisson-0.5qps"),
]
S2_OUT_DIR = os.path.join(OUT_DIR, "s2")


# vLLM 0.24 on the H200 (``--set vllm``, written to workloads/vllm/; issue 10): the same length
# mix, a server ~13x faster per token than transformers serve on the H100 (knee near 40-50 req/s,
# ../shared/device/vllm/README.md), so rates are x8-x10 and every run has >= 300 requests.
# Seeds: warm-up 50x, calibration 52x, judging 53x-54x (none shared with the other sets).
# vLLM captures its CUDA graphs at start (not per new shape), so the warm-up is the cold-start
# fixture plus one overload pass that drives every batch size and chunk shape once.
SHORT_PROMPT = (16, 128)
LONG_OUTPUT = (512, 1024)
VLLM_RATES = (8, 16, 24, 32, 40, 48, 56)
VLLM_WORKLOADS = {
    w.name: w
    for w in [
        Workload("cold40-poisson-8qps", "warmup", 501, 40, 8.0, "poisson",
                 "40 requests on the freshly started server, recorded: the cold-start fixture"),
        Workload("overload-poisson-64qps", "warmup", 502, 600, 64.0, "poisson",
                 "shape-covering overload pass, 8% long prompts", long_frac=0.08),
        Workload("calib-poisson-12qps", "calib", 521, 300, 12.0, "poisson", "calibration, light load"),
        Workload("calib-poisson-36qps", "calib", 522, 300, 36.0, "poisson", "calibration, below the knee"),
    ] + [
        Workload(f"judge-poisson-{r}qps", "judge", 530 + i, 300, float(r), "poisson",
                 "load sweep" + ("; mid-load noise floor (3 repeats)" if r == 24 else ""))
        for i, r in enumerate(VLLM_RATES, 1)
    ] + [
        Workload("judge-gamma-24qps-b0.25", "judge", 541, 300, 24.0, "gamma", "bursty: gamma gaps, CV 2",
                 burstiness=0.25),
        Workload("judge-long-4qps", "judge", 542, 150, 4.0, "poisson",
                 "long prompts 3000-8000 (16 chunks of 512 at most)", prompt=LONG_PROMPT),
        Workload("judge-shortlong-8qps", "judge", 543, 300, 8.0, "poisson",
                 "short prompts 16-128, long outputs 512-1024", prompt=SHORT_PROMPT, output=LONG_OUTPUT),
        Workload("judge-burst-500", "judge", 544, 500, None, "burst", "static burst: 500 requests at t=0"),
    ]
}
# Order = priority (a short device budget loses the last runs first): the sweep's ends and the
# mid-load repeats early, the repeats spread over the session.
VLLM_PLAN = [
    ("warmup", "cold40-poisson-8qps", "cold40-poisson-8qps"),
    ("warmup", "overload-poisson-64qps", "overload-poisson-64qps"),
    ("record", "judge-poisson-24qps-rep1", "judge-poisson-24qps"),
    ("record", "judge-poisson-56qps", "judge-poisson-56qps"),
    ("record", "judge-poisson-48qps", "judge-poisson-48qps"),
    ("record", "calib-poisson-36qps", "calib-poisson-36qps"),
    ("record", "judge-poisson-40qps", "judge-poisson-40qps"),
    ("record", "judge-poisson-32qps", "judge-poisson-32qps"),
    ("record", "judge-burst-500", "judge-burst-500"),
    ("record", "judge-gamma-24qps-b0.25", "judge-gamma-24qps-b0.25"),
    ("record", "judge-poisson-24qps-rep2", "judge-poisson-24qps"),
    ("record", "judge-poisson-16qps", "judge-poisson-16qps"),
    ("record", "calib-poisson-12qps", "calib-poisson-12qps"),
    ("record", "judge-long-4qps", "judge-long-4qps"),
    ("record", "judge-poisson-8qps", "judge-poisson-8qps"),
    ("record", "judge-shortlong-8qps", "judge-shortlong-8qps"),
    ("record", "judge-poisson-24qps-rep3", "judge-poisson-24qps"),
]
# The second configuration (--max-num-batched-tokens 2048) on its own server: the warm-up pass,
# then the same workload files at three rates and the long prompts (where the chunk size
# matters most). Written as plan-mbt2048.tsv beside plan.tsv.
VLLM_MBT2048_PLAN = [
    ("warmup", "mbt2048-overload-poisson-64qps", "overload-poisson-64qps"),
    ("record", "mbt2048-judge-poisson-16qps", "judge-poisson-16qps"),
    ("record", "mbt2048-judge-poisson-32qps", "judge-poisson-32qps"),
    ("record", "mbt2048-judge-poisson-48qps", "judge-poisson-48qps"),
    ("record", "mbt2048-judge-long-4qps", "judge-long-4qps"),
]
# A third session (issue 11: p99 needs >= 1,000 requests): a freshly started server of the first
# configuration, its own warm-up, then three 1,000-request Poisson runs below the knee. New seeds
# (55x), so these runs are also out-of-sample for everything fitted on the first session.
VLLM_P99_WORKLOADS = {
    w.name: w
    for w in [
        Workload(f"judge-poisson-{r}qps-n1000", "judge", 550 + i, 1000, float(r), "poisson",
                 "1,000 requests: enough for p99 (the sample guard's minimum)")
        for i, r in enumerate((16, 24, 32), 1)
    ]
}
VLLM_WORKLOADS.update(VLLM_P99_WORKLOADS)
VLLM_P99_PLAN = [
    ("warmup", "p99-cold40-poisson-8qps", "cold40-poisson-8qps"),
    ("warmup", "p99-overload-poisson-64qps", "overload-poisson-64qps"),
    ("record", "judge-poisson-24qps-n1000", "judge-poisson-24qps-n1000"),
    ("record", "judge-poisson-16qps-n1000", "judge-poisson-16qps-n1000"),
    ("record", "judge-poisson-32qps-n1000", "judge-poisson-32qps-n1000"),
]
VLLM_OUT_DIR = os.path.join(OUT_DIR, "vllm")


# --------------------------------------------------------------------------------------------
# Estimates and output


def estimate_s(rows):
    """Fluid queue: work arrives with each request and is served at rate 1; then the last
    requests drain. Returns (estimated seconds, offered load in req/s)."""
    backlog_end = 0.0
    for t, p, o in rows:
        backlog_end = max(backlog_end, t) + (p + 4 * o) / SERVICE_TOKENS_PER_S
    last = rows[-1][0]
    tail = max(o for _, _, o in rows[-8:]) * ITL_S
    span = max(backlog_end, last)
    return span + tail + RUN_OVERHEAD_S


def csv_text(rows):
    buf = io.StringIO()
    buf.write("arrived_at,num_prefill_tokens,num_decode_tokens\n")
    for t, p, o in rows:
        buf.write(f"{t:.6f},{p},{o}\n")
    return buf.getvalue()


def plan_rows(plan=None):
    out = []
    for i, (phase, run, wname) in enumerate(plan or PLAN, 1):
        w = WORKLOADS[wname]
        rows = w.rows()
        est = estimate_s(rows)
        rate = "" if w.rate is None else f"{w.rate:g}"
        # A run is stopped at twice its estimate plus a minute: a hung server must not eat the call.
        out.append(dict(order=i, run=run, workload=w.file, role=w.role, phase=phase, requests=len(rows),
                        rate=rate or ("burst" if w.kind == "burst" else "ladder"),
                        est_s=int(round(est)), timeout_s=int(round(2 * est + 60)), desc=w.desc))
    return out


PLAN_COLUMNS = ["order", "run", "workload", "role", "phase", "requests", "rate", "est_s", "timeout_s"]


def plan_text(rows):
    lines = ["\t".join(PLAN_COLUMNS)]
    for r in rows:
        lines.append("\t".join(str(r[c]) for c in PLAN_COLUMNS))
    return "\n".join(lines) + "\n"


def print_plan(rows, out=sys.stdout):
    total = 0
    by_phase = {}
    out.write(f"{'#':>2}  {'run':<26} {'role':<6} {'reqs':>5} {'rate':>6} {'est s':>6} {'cum min':>7}\n")
    for r in rows:
        total += r["est_s"]
        by_phase[r["phase"]] = by_phase.get(r["phase"], 0) + r["est_s"]
        out.write(f"{r['order']:>2}  {r['run']:<26} {r['role']:<6} {r['requests']:>5} {r['rate']:>6} "
                  f"{r['est_s']:>6} {total / 60:>7.1f}\n")
    out.write("estimated GPU time by phase: "
              + ", ".join(f"{k} {v / 60:.1f} min" for k, v in by_phase.items())
              + f"; recordings in all {total / 60:.1f} min\n")


# A miniature of the plan for the CPU self-test of run_goldens.sh (tiny model, short requests):
# the same roles and phases, a repeated file, a burst; never committed.
SELFTEST_WORKLOADS = {
    w.name: w
    for w in [
        Workload("st-ladder", "warmup", 900, 3, 4.0, "poisson", "self-test warm-up", prompt=(20, 120)),
        Workload("st-cold", "warmup", 901, 4, 4.0, "poisson", "self-test cold start", prompt=(20, 120)),
        Workload("st-calib", "calib", 902, 4, 4.0, "poisson", "self-test calibration", prompt=(20, 120)),
        Workload("st-judge", "judge", 903, 5, 3.0, "poisson", "self-test judge (repeated)", prompt=(20, 200)),
        Workload("st-burst", "judge", 904, 4, None, "burst", "self-test burst", prompt=(20, 120)),
    ]
}
SELFTEST_PLAN = [
    ("warmup", "st-cold", "st-cold"),
    ("warmup", "st-ladder", "st-ladder"),
    ("record", "st-judge-rep1", "st-judge"),
    ("record", "st-burst", "st-burst"),
    ("record", "st-calib", "st-calib"),
    ("record", "st-judge-rep2", "st-judge"),
]
SELFTEST_OUTPUT = (4, 12)


def main():
    global WORKLOADS, PLAN, OUTPUT, SERVICE_TOKENS_PER_S, ITL_S
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default=None,
                    help="output folder (default scripts/device/workloads, or workloads/SET)")
    ap.add_argument("--set", default="s1", choices=["s1", "s2", "vllm"],
                    help="which recording session's plan: s1 (default), s2 (session 2), vllm (vLLM on the H200)")
    ap.add_argument("--check", action="store_true", help="compare with the files on disk; write nothing")
    ap.add_argument("--selftest", action="store_true", help="write the CPU self-test's miniature plan instead")
    args = ap.parse_args()
    if args.selftest:
        if args.out in (None, OUT_DIR, S2_OUT_DIR):
            sys.exit("make_workloads: --selftest needs --out (the self-test plan is not committed)")
        WORKLOADS, PLAN, OUTPUT = SELFTEST_WORKLOADS, SELFTEST_PLAN, SELFTEST_OUTPUT
    elif args.set == "s2":
        WORKLOADS, PLAN = S2_WORKLOADS, S2_PLAN
        args.out = args.out or S2_OUT_DIR
    elif args.set == "vllm":
        WORKLOADS, PLAN = VLLM_WORKLOADS, VLLM_PLAN
        # vLLM on the H200: ~75k weighted tokens/s (the knee near 48 req/s), ITL ~4 ms under load.
        SERVICE_TOKENS_PER_S, ITL_S = 75000.0, 0.004
        args.out = args.out or VLLM_OUT_DIR
    args.out = args.out or OUT_DIR

    files = {w.file: csv_text(w.rows()) for w in WORKLOADS.values()}
    rows = plan_rows()
    files["plan.tsv"] = plan_text(rows)
    if args.set == "vllm" and not args.selftest:
        second = plan_rows(VLLM_MBT2048_PLAN)
        files["plan-mbt2048.tsv"] = plan_text(second)
        third = plan_rows(VLLM_P99_PLAN)
        files["plan-p99.tsv"] = plan_text(third)
    sums = "".join(f"{hashlib.sha256(files[f].encode()).hexdigest()}  {f}\n" for f in sorted(files))
    files["SHA256SUMS"] = sums

    if args.check:
        bad = []
        for name, text in files.items():
            path = os.path.join(args.out, name)
            if not os.path.exists(path) or open(path).read() != text:
                bad.append(name)
        print_plan(rows)
        if "plan-mbt2048.tsv" in files:
            print_plan(second)
            print_plan(third)
        if bad:
            sys.exit(f"make_workloads: differs from {args.out}: {', '.join(bad)}")
        print(f"make_workloads: {len(files)} files in {args.out} match")
        return

    os.makedirs(args.out, exist_ok=True)
    for name, text in files.items():
        with open(os.path.join(args.out, name), "w") as f:
            f.write(text)
    print_plan(rows)
    if "plan-mbt2048.tsv" in files:
        print_plan(second)
        print_plan(third)
    print(f"make_workloads: wrote {len(files)} files to {args.out}")


if __name__ == "__main__":
    main()
