#!/usr/bin/env python3
"""Time Qwen3-0.6B's operators as `transformers serve --continuous-batching` runs them, in Vidur's CSVs.

Writes, for each dtype, ``OUT/<dtype>/mlp.csv`` and ``OUT/<dtype>/attention.csv`` in the column
formats that Vidur (microsoft/vidur @ 7d47513) reads, ``OUT/<dtype>/extra_ops.csv`` with the
operators Vidur has no column for (Qwen3's q/k RMSNorm on its own, the final norm, the LM head
with greedy argmax), and ``OUT/provenance.json`` (GPU, driver, torch, kernels, grids, date).

    python3 scripts/profile/profile_ops.py --out /tmp/profiles                 # H100: both dtypes
    python3 scripts/profile/profile_ops.py --out /tmp/p --device cpu --quick     # logic test on a CPU

What is timed, and why that way (see fixtures/profiles/README.md for the full story):

* **The server's own modules.** One ``Qwen3DecoderLayer`` (plus embedding, final norm and LM head)
  is built from transformers with the Qwen3-0.6B configuration, so every operator runs the same
  PyTorch kernels as the server: three separate q/k/v GEMMs, eager RMSNorm, eager rotary. Where
  transformers is missing, equivalent local modules are used (``provenance.json`` says which).
* **Vidur's operators, mapped.** ``attn_pre_proj`` = q_proj + k_proj + v_proj (1024 -> 2048, 1024,
  1024); ``attn_rope`` = Qwen3's per-head q/k RMSNorm + rotary, i.e. everything between the
  projection and attention (Vidur has no q/k-norm column; ``extra_ops.csv`` has it alone);
  ``mlp_up_proj`` = gate_proj + up_proj (1024 -> 3072 twice); ``mlp_act`` = SiLU(gate) * up;
  ``add`` = one residual add.
* **Attention as the paged-SDPA regime runs it** (this GPU image has neither flash-attn nor
  ``kernels``): per layer, ``attn_kv_cache_save`` = the two ``index_copy_`` writes of the new
  K/V rows into the paged cache; ``attn_prefill`` / ``attn_decode`` = gathering the padded KV rows
  back (``index_select``), expanding 8 KV heads to 16, and
  ``torch.nn.functional.scaled_dot_product_attention`` with the dense additive mask (a slice of
  the server's ``[1, 1, max_batch_tokens, kv_capacity + max_batch_tokens]`` buffer);
  ``attn_input_reshape`` = the query's ``.contiguous()`` copy; ``attn_output_reshape`` = the
  output's transpose + copy. Shapes are padded as the server pads them with CUDA graphs on:
  queries to a multiple of 64 tokens, the read KV to a multiple of 16384 (0 pads to 16384).
* **Kernel time, not launch time.** On CUDA each sample is bracketed by CUDA events, and a
  ``torch.cuda._sleep`` kernel is queued first so that the host runs ahead of the device: the
  events then measure the kernels back to back, as inside the CUDA graph the server replays.
  Stats (min, max, mean, median, population std, in ms) are over ``--reps`` samples after
  ``--warmup`` untimed calls, as Vidur's profiler reports them.
"""

import argparse
import csv
import datetime
import json
import math
import os
import platform
import random
import statistics
import subprocess
import sys
import time

import torch

# --------------------------------------------------------------------------------------------
# Model and server parameters

# Qwen/Qwen3-0.6B (public config.json). Overridden by --config.
QWEN3_06B = dict(
    vocab_size=151936,
    hidden_size=1024,
    intermediate_size=3072,
    num_hidden_layers=28,
    num_attention_heads=16,
    num_key_value_heads=8,
    head_dim=128,
    max_position_embeddings=40960,
    rms_norm_eps=1e-6,
    hidden_act="silu",
    tie_word_embeddings=True,
)
ROPE_THETA = 1_000_000.0

MLP_OPS = [
    "emb",
    "input_layernorm",
    "attn_pre_proj",
    "attn_rope",
    "attn_post_proj",
    "post_attention_layernorm",
    "mlp_up_proj",
    "mlp_act",
    "mlp_down_proj",
    "add",
]
MLP_MODEL_COLS = [
    "n_head",
    "n_kv_head",
    "n_embd",
    "n_expanded_embd",
    "vocab_size",
    "use_gated_mlp",
    "num_tokens",
    "num_tensor_parallel_workers",
]
ATTN_OPS = [
    "attn_input_reshape",
    "attn_kv_cache_save",
    "attn_prefill",
    "attn_decode",
    "attn_output_reshape",
]
ATTN_MODEL_COLS = [
    "n_embd",
    "n_q_head",
    "n_kv_head",
    "block_size",
    "num_tensor_parallel_workers",
    "max_model_len",
    "batch_size",
    "prefill_chunk_size",
    "kv_cache_size",
    "is_prefill",
    "attention_backend",
]
EXTRA_OPS = ["attn_qk_norm", "rope_only", "final_norm", "lm_head"]
STATS = ["min", "max", "mean", "median", "std"]
ATTENTION_BACKEND = "HF_PAGED_SDPA"


def stat_columns(ops):
    return [f"time_stats.{op}.{s}" for op in ops for s in STATS]


MLP_HEADER = stat_columns(MLP_OPS) + MLP_MODEL_COLS
ATTN_HEADER = stat_columns(ATTN_OPS) + ATTN_MODEL_COLS
EXTRA_HEADER = stat_columns(EXTRA_OPS) + ["n_embd", "vocab_size", "num_tokens", "lm_head_rows"]


class Dims:
    """The model dimensions that shape the operators."""

    def __init__(self, cfg):
        self.cfg = cfg
        self.hidden = cfg["hidden_size"]
        self.inter = cfg["intermediate_size"]
        self.n_q = cfg["num_attention_heads"]
        self.n_kv = cfg["num_key_value_heads"]
        self.head_dim = cfg.get("head_dim") or self.hidden // self.n_q
        self.vocab = cfg["vocab_size"]
        self.eps = cfg.get("rms_norm_eps", 1e-6)
        self.max_pos = cfg.get("max_position_embeddings", 40960)
        rope = cfg.get("rope_parameters") or {}
        self.rope_theta = rope.get("rope_theta", cfg.get("rope_theta", ROPE_THETA))


class Server:
    """The continuous-batching settings of the server whose attention shapes are reproduced."""

    def __init__(self, args):
        self.block_size = args.block_size
        self.kv_capacity = args.num_blocks * args.block_size  # the server's num_pages
        self.max_batch_tokens = args.max_batch_tokens
        self.max_requests = min(1024, args.max_batch_tokens)
        self.q_pad = args.q_pad
        self.kv_pad = args.kv_pad

    @staticmethod
    def pad(size, interval, cap):
        """transformers' pad_to_interval: next multiple of interval (0 pads to one interval), capped."""
        padded = math.ceil(size / interval) * interval if size > 0 else interval
        return min(padded, cap)

    def shapes(self, q_tokens, past_tokens):
        """(padded query rows, padded KV rows read back) for a batch, as the server pads it."""
        q = self.pad(q_tokens, self.q_pad, self.max_batch_tokens)
        kv = self.pad(past_tokens, self.kv_pad, self.kv_capacity)
        return q, kv


# --------------------------------------------------------------------------------------------
# Grids


def vidur_token_grid(max_tokens):
    """1..7, 8..1016 step 8, 1024..2048 step 16, 2048..4096 step 32 (deduplicated), capped."""
    grid = list(range(1, 8)) + list(range(8, 1024, 8)) + list(range(1024, 2049, 16))
    grid += list(range(2048 + 32, 4097, 32))
    return [n for n in grid if n <= max_tokens]


def prefill_grid(quick, server, max_model_len):
    """(chunk, kv) points of single-request prefills: chunk = tokens of this step, kv = past."""
    if quick:
        chunks, kvs = [16, 64], [0, 128]
    else:
        # The server pads a chunk to a multiple of 64, so multiples of 64 are exact
        # representatives; a few small chunks show the padding floor.
        chunks = [1, 16, 32] + list(range(64, server.max_batch_tokens + 1, 64))
        kvs = [0, 512, 1024, 2048, 4096, 6144, 8192, 12288, 16384, 24576, 32768]
    return [(c, kv) for c in chunks for kv in kvs if c + kv <= max_model_len]


def decode_grid(quick, server, max_model_len):
    """(batch, kv) points of decode batches: B requests, each with kv tokens of context."""
    if quick:
        batches, kvs = [1, 4], [64, 256]
    else:
        batches = list(range(1, 9)) + [12, 16, 24, 32, 48, 64, 96, 128, 192, 256]
        kvs = [64, 256, 512, 1024, 2048, 4096, 8192, 16384]
    pts = []
    for b in batches:
        for kv in kvs:
            if kv <= max_model_len and b * (kv + 1) <= server.kv_capacity and b <= server.max_requests:
                pts.append((b, kv))
    return pts


# --------------------------------------------------------------------------------------------
# Timing


class Timer:
    """Times a callable: CUDA events behind a sleep kernel on a GPU, the host clock on a CPU."""

    def __init__(self, device, reps, warmup):
        self.device = device
        self.reps = reps
        self.warmup = warmup
        self.cuda = device.type == "cuda"
        self.lead_failures = 0
        self.cycles_per_ms = None
        if self.cuda and hasattr(torch.cuda, "_sleep"):
            self.cycles_per_ms = self._calibrate_sleep()

    def _calibrate_sleep(self):
        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        cycles = 2_000_000
        rates = []
        for _ in range(3):
            start.record()
            torch.cuda._sleep(cycles)
            end.record()
            torch.cuda.synchronize()
            rates.append(cycles / max(start.elapsed_time(end), 1e-3))
        return statistics.median(rates[1:])

    def sample(self, fn):
        """Runs fn warmup times, then returns reps timings in ms."""
        for _ in range(self.warmup):
            fn()
        if not self.cuda:
            out = []
            for _ in range(self.reps):
                t0 = time.perf_counter()
                fn()
                out.append((time.perf_counter() - t0) * 1e3)
            return out

        torch.cuda.synchronize()
        # The host cost of one call bounds how far ahead the sleep kernel must put the host.
        t0 = time.perf_counter()
        fn()
        host_ms = (time.perf_counter() - t0) * 1e3
        torch.cuda.synchronize()
        starts = [torch.cuda.Event(enable_timing=True) for _ in range(self.reps)]
        ends = [torch.cuda.Event(enable_timing=True) for _ in range(self.reps)]
        lead_ms = min(200.0, 0.1 + 1.5 * self.reps * (host_ms + 0.01))
        for _attempt in range(3):
            if self.cycles_per_ms:
                torch.cuda._sleep(int(lead_ms * self.cycles_per_ms))
            t0 = time.perf_counter()
            for i in range(self.reps):
                starts[i].record()
                fn()
                ends[i].record()
            enqueue_ms = (time.perf_counter() - t0) * 1e3
            torch.cuda.synchronize()
            out = [s.elapsed_time(e) for s, e in zip(starts, ends)]
            if not self.cycles_per_ms or enqueue_ms <= lead_ms:
                return out
            # The device caught up with the host: samples may include launch gaps. Retry longer.
            lead_ms = min(400.0, 2.0 * enqueue_ms + 0.1)
        self.lead_failures += 1
        return out


def summarize(times):
    return {
        "min": min(times),
        "max": max(times),
        "mean": statistics.fmean(times),
        "median": statistics.median(times),
        "std": statistics.pstdev(times),
    }


def zero_stats():
    return dict.fromkeys(STATS, 0.0)


# --------------------------------------------------------------------------------------------
# Modules: transformers' own Qwen3 modules (same kernels as the server), else local equivalents


class LocalRMSNorm(torch.nn.Module):
    """RMSNorm computed in float32, as Qwen3's eager RMSNorm does."""

    def __init__(self, n, eps):
        super().__init__()
        self.weight = torch.nn.Parameter(torch.ones(n))
        self.eps = eps

    def forward(self, x):
        dt = x.dtype
        x32 = x.to(torch.float32)
        x32 = x32 * torch.rsqrt(x32.pow(2).mean(-1, keepdim=True) + self.eps)
        return self.weight * x32.to(dt)


def local_rotate_half(x):
    half = x.shape[-1] // 2
    return torch.cat((-x[..., half:], x[..., :half]), dim=-1)


def local_apply_rotary(q, k, cos, sin):
    cos, sin = cos.unsqueeze(1), sin.unsqueeze(1)
    return q * cos + local_rotate_half(q) * sin, k * cos + local_rotate_half(k) * sin


class Modules:
    """The operators of one decoder layer plus the model-level ones, on device, in dtype."""

    def __init__(self, dims, dtype, device, prefer_transformers=True):
        self.dims, self.dtype, self.device = dims, dtype, device
        self.impl = None
        if prefer_transformers:
            try:
                self._from_transformers()
                self.impl = "transformers"
            except Exception as e:  # ImportError, or an API change: fall back, and say so.
                print(f"profile_ops: transformers' Qwen3 modules unavailable ({e}); using local ones")
        if self.impl is None:
            self._local()
            self.impl = "local"
        for m in [self.emb, self.layer_modules, self.final_norm, self.lm_head]:
            m.to(device=device, dtype=dtype)
            m.eval()

    def _from_transformers(self):
        from transformers import Qwen3Config
        from transformers.models.qwen3 import modeling_qwen3 as mq

        d = self.dims
        cfg = Qwen3Config(
            vocab_size=d.vocab,
            hidden_size=d.hidden,
            intermediate_size=d.inter,
            num_hidden_layers=1,
            num_attention_heads=d.n_q,
            num_key_value_heads=d.n_kv,
            head_dim=d.head_dim,
            max_position_embeddings=d.max_pos,
            rms_norm_eps=d.eps,
            hidden_act=d.cfg.get("hidden_act", "silu"),
            rope_parameters={"rope_type": "default", "rope_theta": d.rope_theta},
        )
        layer = mq.Qwen3DecoderLayer(cfg, layer_idx=0)
        attn = layer.self_attn
        self.layer_modules = layer
        self.q_proj, self.k_proj, self.v_proj, self.o_proj = attn.q_proj, attn.k_proj, attn.v_proj, attn.o_proj
        self.q_norm, self.k_norm = attn.q_norm, attn.k_norm
        self.input_layernorm = layer.input_layernorm
        self.post_attention_layernorm = layer.post_attention_layernorm
        self.gate_proj, self.up_proj, self.down_proj = layer.mlp.gate_proj, layer.mlp.up_proj, layer.mlp.down_proj
        self.act_fn = layer.mlp.act_fn
        self.apply_rotary = mq.apply_rotary_pos_emb
        self.rotary = mq.Qwen3RotaryEmbedding(cfg)
        self.emb = torch.nn.Embedding(d.vocab, d.hidden)
        self.final_norm = mq.Qwen3RMSNorm(d.hidden, eps=d.eps)
        self.lm_head = torch.nn.Linear(d.hidden, d.vocab, bias=False)

    def _local(self):
        d = self.dims
        lin = lambda i, o: torch.nn.Linear(i, o, bias=False)  # noqa: E731
        self.q_proj, self.k_proj = lin(d.hidden, d.n_q * d.head_dim), lin(d.hidden, d.n_kv * d.head_dim)
        self.v_proj, self.o_proj = lin(d.hidden, d.n_kv * d.head_dim), lin(d.n_q * d.head_dim, d.hidden)
        self.q_norm, self.k_norm = LocalRMSNorm(d.head_dim, d.eps), LocalRMSNorm(d.head_dim, d.eps)
        self.input_layernorm = LocalRMSNorm(d.hidden, d.eps)
        self.post_attention_layernorm = LocalRMSNorm(d.hidden, d.eps)
        self.gate_proj, self.up_proj, self.down_proj = lin(d.hidden, d.inter), lin(d.hidden, d.inter), lin(d.inter, d.hidden)
        self.act_fn = torch.nn.SiLU()
        self.apply_rotary = local_apply_rotary
        self.rotary = None
        self.layer_modules = torch.nn.ModuleList(
            [self.q_proj, self.k_proj, self.v_proj, self.o_proj, self.q_norm, self.k_norm,
             self.input_layernorm, self.post_attention_layernorm, self.gate_proj, self.up_proj, self.down_proj]
        )
        self.emb = torch.nn.Embedding(d.vocab, d.hidden)
        self.final_norm = LocalRMSNorm(d.hidden, d.eps)
        self.lm_head = lin(d.hidden, d.vocab)

    def cos_sin(self, positions, like):
        """The rotary cos/sin for positions [1, T], computed once per forward by the model."""
        if self.rotary is not None:
            self.rotary.to(self.device)
            return self.rotary(like, positions)
        d = self.dims
        inv = 1.0 / (d.rope_theta ** (torch.arange(0, d.head_dim, 2, device=self.device, dtype=torch.float32) / d.head_dim))
        freqs = positions[0].float()[:, None] * inv[None, :]
        emb = torch.cat((freqs, freqs), dim=-1)[None]
        return emb.cos().to(like.dtype), emb.sin().to(like.dtype)


# --------------------------------------------------------------------------------------------
# Per-token operators (mlp.csv, extra_ops.csv)


def linear_op_closures(mods, n_tokens, server):
    """Closures, one per operator, over inputs preallocated for n_tokens tokens."""
    d, dev, dt = mods.dims, mods.device, mods.dtype
    T = n_tokens
    ids = torch.randint(0, d.vocab, (1, T), device=dev)
    positions = torch.arange(T, device=dev).unsqueeze(0)
    x = torch.randn(1, T, d.hidden, device=dev, dtype=dt)
    x2 = torch.randn(1, T, d.hidden, device=dev, dtype=dt)
    q_lin = torch.randn(1, T, d.n_q * d.head_dim, device=dev, dtype=dt)
    k_lin = torch.randn(1, T, d.n_kv * d.head_dim, device=dev, dtype=dt)
    attn_out = torch.randn(1, T, d.n_q * d.head_dim, device=dev, dtype=dt)
    gate = torch.randn(1, T, d.inter, device=dev, dtype=dt)
    up = torch.randn(1, T, d.inter, device=dev, dtype=dt)
    mid = torch.randn(1, T, d.inter, device=dev, dtype=dt)
    cos, sin = mods.cos_sin(positions, x)
    q_shape, k_shape = (1, T, d.n_q, d.head_dim), (1, T, d.n_kv, d.head_dim)
    q_normed = torch.randn(q_shape, device=dev, dtype=dt).transpose(1, 2)
    k_normed = torch.randn(k_shape, device=dev, dtype=dt).transpose(1, 2)
    # The LM head sees one row per sequence: at most max_requests rows (the server's padding).
    rows = min(T, server.max_requests)
    logits_idx = torch.arange(rows, device=dev)

    def qk_norm():
        q = mods.q_norm(q_lin.view(q_shape)).transpose(1, 2)
        k = mods.k_norm(k_lin.view(k_shape)).transpose(1, 2)
        return q, k

    def rope():
        q, k = qk_norm()
        return mods.apply_rotary(q, k, cos, sin)

    def lm_head():
        logits = mods.lm_head(x[:, logits_idx, :])
        return logits.argmax(dim=-1)

    mlp = {
        "emb": lambda: mods.emb(ids),
        "input_layernorm": lambda: mods.input_layernorm(x),
        "attn_pre_proj": lambda: (mods.q_proj(x), mods.k_proj(x), mods.v_proj(x)),
        "attn_rope": rope,
        "attn_post_proj": lambda: mods.o_proj(attn_out),
        "post_attention_layernorm": lambda: mods.post_attention_layernorm(x),
        "mlp_up_proj": lambda: (mods.gate_proj(x), mods.up_proj(x)),
        "mlp_act": lambda: mods.act_fn(gate) * up,
        "mlp_down_proj": lambda: mods.down_proj(mid),
        "add": lambda: x + x2,
    }
    extra = {
        "attn_qk_norm": qk_norm,
        "rope_only": lambda: mods.apply_rotary(q_normed, k_normed, cos, sin),
        "final_norm": lambda: mods.final_norm(x),
        "lm_head": lm_head,
    }
    return mlp, extra, rows


# --------------------------------------------------------------------------------------------
# Attention (attention.csv)


class PagedAttention:
    """One layer's paged KV cache, index buffers and mask buffer, shaped as the server's."""

    def __init__(self, dims, server, dtype, device, seed):
        self.d, self.s, self.dtype, self.device = dims, server, dtype, device
        slots = server.kv_capacity + 2 * server.block_size  # the cache has two padding blocks
        self.k_cache = torch.randn(slots, dims.n_kv, dims.head_dim, device=device, dtype=dtype)
        self.v_cache = torch.randn(slots, dims.n_kv, dims.head_dim, device=device, dtype=dtype)
        self.mask_buf = torch.empty(
            1, 1, server.max_batch_tokens, server.kv_capacity + server.max_batch_tokens, device=device, dtype=dtype
        )
        self.mask_buf.fill_(torch.finfo(dtype).min)
        self.rng = random.Random(seed)
        self.n_rep = dims.n_q // dims.n_kv
        self.scale = dims.head_dim ** -0.5

    def _slots(self, n):
        """n cache slots laid out as whole blocks at random places, like a block table."""
        bs = self.s.block_size
        n_blocks = self.s.kv_capacity // bs
        out = []
        while len(out) < n:
            b = self.rng.randrange(n_blocks)
            out.extend(range(b * bs, (b + 1) * bs))
        return torch.tensor(out[:n], device=self.device, dtype=torch.int64)

    def closures(self, q_tokens, past_tokens, past_per_seq, seqs):
        """Closures for the five attention operators of one step with q_tokens new tokens and
        past_tokens cached tokens in all, as the server pads and runs them."""
        d, dev, dt = self.d, self.device, self.dtype
        q_rows, kv_rows = self.s.shapes(q_tokens, past_tokens)
        k_total = kv_rows + q_rows
        query = torch.randn(1, q_rows, d.n_q, d.head_dim, device=dev, dtype=dt).transpose(1, 2)
        query_c = query.contiguous()
        key = torch.randn(1, q_rows, d.n_kv, d.head_dim, device=dev, dtype=dt).transpose(1, 2)
        value = torch.randn(1, q_rows, d.n_kv, d.head_dim, device=dev, dtype=dt).transpose(1, 2)
        write_index = self._slots(q_rows)
        read_index = self._slots(k_total)
        mask = self.mask_buf[..., :q_rows, :k_total]
        # Each real sequence sees its own past and its own tokens; padding rows see nothing.
        mask.fill_(torch.finfo(dt).min)
        col = 0
        per_seq_q = max(1, q_tokens // max(1, seqs))
        for i in range(seqs):
            r0, r1 = i * per_seq_q, min(q_tokens, (i + 1) * per_seq_q)
            mask[..., r0:r1, col:col + past_per_seq + (r1 - r0)] = 0
            col += past_per_seq + (r1 - r0)
        attn_out = torch.randn(1, d.n_q, q_rows, d.head_dim, device=dev, dtype=dt)
        k_cache, v_cache, n_rep, scale = self.k_cache, self.v_cache, self.n_rep, self.scale

        def expand(x):
            # [rows, kv_heads, hd] -> [1, q_heads, rows, hd], as sdpa_paged's repeat_kv does.
            x = x.transpose(0, 1).unsqueeze(0)
            b, h, n, hd = x.shape
            return x[:, :, None, :, :].expand(b, h, n_rep, n, hd).reshape(b, h * n_rep, n, hd)

        def input_reshape():
            return query.contiguous()

        def kv_cache_save():
            k_cache.index_copy_(0, write_index, key.transpose(1, 2).squeeze(0))
            v_cache.index_copy_(0, write_index, value.transpose(1, 2).squeeze(0))

        def attention():
            k = expand(torch.index_select(k_cache, 0, read_index)).contiguous()
            v = expand(torch.index_select(v_cache, 0, read_index)).contiguous()
            return torch.nn.functional.scaled_dot_product_attention(
                query_c, k, v, attn_mask=mask, dropout_p=0.0, scale=scale, is_causal=False
            )

        def output_reshape():
            return attn_out.transpose(1, 2).contiguous().reshape(1, q_rows, -1)

        return {
            "attn_input_reshape": input_reshape,
            "attn_kv_cache_save": kv_cache_save,
            "attn": attention,
            "attn_output_reshape": output_reshape,
        }, (q_rows, kv_rows)


# --------------------------------------------------------------------------------------------
# Environment and provenance


def run_quiet(cmd):
    try:
        return subprocess.run(cmd, capture_output=True, text=True, timeout=20).stdout.strip()
    except Exception:
        return ""


def environment(device):
    env = {
        "date_utc": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "torch_cuda": torch.version.cuda,
        "cudnn": torch.backends.cudnn.version() if torch.backends.cudnn.is_available() else None,
        "host": platform.node(),
    }
    try:
        import transformers

        env["transformers"] = transformers.__version__
    except ImportError:
        env["transformers"] = None
    if device.type == "cuda":
        env["gpu"] = torch.cuda.get_device_name(device)
        props = torch.cuda.get_device_properties(device)
        env["gpu_memory_gib"] = round(props.total_memory / 2**30, 1)
        env["sm_count"] = props.multi_processor_count
        env["driver"] = run_quiet(["nvidia-smi", "--query-gpu=driver_version", "--format=csv,noheader"]).split("\n")[0]
        env["sdpa_backends_enabled"] = {
            "flash": torch.backends.cuda.flash_sdp_enabled(),
            "mem_efficient": torch.backends.cuda.mem_efficient_sdp_enabled(),
            "math": torch.backends.cuda.math_sdp_enabled(),
            "cudnn": getattr(torch.backends.cuda, "cudnn_sdp_enabled", lambda: None)(),
        }
    else:
        env["gpu"] = None
        env["cpu"] = platform.processor() or platform.machine()
    for mod in ("flash_attn", "kernels"):
        try:
            __import__(mod)
            env[f"{mod}_importable"] = True
        except ImportError:
            env[f"{mod}_importable"] = False
    return env


def kernel_names(fn, device):
    """Names of the device kernels one call of fn launches (CUDA only), for the provenance."""
    if device.type != "cuda":
        return []
    try:
        from torch.profiler import ProfilerActivity, profile

        fn()
        torch.cuda.synchronize()
        with profile(activities=[ProfilerActivity.CUDA]) as prof:
            fn()
            torch.cuda.synchronize()
        names = []
        for ev in prof.events():
            if getattr(ev, "device_type", None) == torch.autograd.DeviceType.CUDA and ev.name not in names:
                names.append(ev.name)
        return [n[:160] for n in names]
    except Exception as e:
        return [f"(profiler failed: {e})"]


# --------------------------------------------------------------------------------------------
# Driver


def fmt(v):
    if isinstance(v, bool):
        return "True" if v else "False"
    if isinstance(v, float):
        return repr(v)
    return str(v)


def write_csv(path, header, rows):
    with open(path, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(header)
        for r in rows:
            w.writerow([fmt(r[c]) for c in header])


def flatten(op_stats):
    out = {}
    for op, st in op_stats.items():
        for s in STATS:
            out[f"time_stats.{op}.{s}"] = st[s]
    return out


class Budget:
    def __init__(self, seconds):
        self.t0 = time.time()
        self.seconds = seconds

    def left(self):
        return self.seconds - (time.time() - self.t0)


def profile_dtype(name, dtype, args, dims, server, device, budget_s):
    budget = Budget(budget_s)
    timer = Timer(device, args.reps, args.warmup)
    attn_timer = Timer(device, args.attn_reps, args.warmup)
    mods = Modules(dims, dtype, device, prefer_transformers=not args.local_modules)
    info = {"modules": mods.impl, "truncated": []}
    torch.manual_seed(args.seed)

    # mlp.csv and extra_ops.csv over the token grid.
    grid = vidur_token_grid(args.max_tokens)
    if args.quick:
        grid = [n for n in (1, 8, 64, 256) if n <= args.max_tokens]
    mlp_rows, extra_rows = [], []
    mlp_budget = budget_s * 0.4
    with torch.inference_mode():
        for i, n in enumerate(grid):
            if time.time() - budget.t0 > mlp_budget:
                info["truncated"].append(f"mlp: stopped at num_tokens {n} ({i}/{len(grid)} points)")
                break
            mlp_ops, extra_ops, rows = linear_op_closures(mods, n, server)
            stats = {op: summarize(timer.sample(mlp_ops[op])) for op in MLP_OPS}
            row = flatten(stats)
            row.update(
                n_head=dims.n_q, n_kv_head=dims.n_kv, n_embd=dims.hidden, n_expanded_embd=dims.inter,
                vocab_size=dims.vocab, use_gated_mlp=True, num_tokens=n, num_tensor_parallel_workers=1,
            )
            mlp_rows.append(row)
            xstats = {op: summarize(timer.sample(extra_ops[op])) for op in EXTRA_OPS}
            xrow = flatten(xstats)
            xrow.update(n_embd=dims.hidden, vocab_size=dims.vocab, num_tokens=n, lm_head_rows=rows)
            extra_rows.append(xrow)
            del mlp_ops, extra_ops

    # attention.csv: prefill (chunk x kv) and decode (batch x kv) points.
    max_model_len = args.max_model_len
    pa = PagedAttention(dims, server, dtype, device, args.seed)
    attn_rows = []
    points = [("prefill", c, kv) for c, kv in prefill_grid(args.quick, server, max_model_len)]
    points += [("decode", b, kv) for b, kv in decode_grid(args.quick, server, max_model_len)]
    # Interleave so that a budget cut leaves both kinds covered.
    pre = [p for p in points if p[0] == "prefill"]
    dec = [p for p in points if p[0] == "decode"]
    order = [p for pair in zip(pre, dec) for p in pair] + pre[len(dec):] + dec[len(pre):]
    sample_kernels = {}
    with torch.inference_mode():
        for i, (kind, a, kv) in enumerate(order):
            if budget.left() <= 0:
                info["truncated"].append(f"attention: stopped after {i}/{len(order)} points")
                break
            if kind == "prefill":
                c = a
                fns, padded = pa.closures(q_tokens=c, past_tokens=kv, past_per_seq=kv, seqs=1)
                batch, chunk = 1, c
            else:
                b = a
                fns, padded = pa.closures(q_tokens=b, past_tokens=b * kv, past_per_seq=kv, seqs=b)
                batch, chunk = b, 0
            stats = {
                "attn_input_reshape": summarize(attn_timer.sample(fns["attn_input_reshape"])),
                "attn_kv_cache_save": summarize(attn_timer.sample(fns["attn_kv_cache_save"])),
                "attn_output_reshape": summarize(attn_timer.sample(fns["attn_output_reshape"])),
            }
            attn_stats = summarize(attn_timer.sample(fns["attn"]))
            stats["attn_prefill"] = attn_stats if kind == "prefill" else zero_stats()
            stats["attn_decode"] = attn_stats if kind == "decode" else zero_stats()
            if kind not in sample_kernels:
                sample_kernels[kind] = {
                    "point": {"batch_size": batch, "prefill_chunk_size": chunk, "kv_cache_size": kv,
                              "padded_q": padded[0], "padded_kv_read": padded[1]},
                    "kernels": kernel_names(fns["attn"], device),
                }
            row = flatten({op: stats[op] for op in ATTN_OPS})
            row.update(
                n_embd=dims.hidden, n_q_head=dims.n_q, n_kv_head=dims.n_kv, block_size=server.block_size,
                num_tensor_parallel_workers=1, max_model_len=max_model_len, batch_size=batch,
                prefill_chunk_size=chunk, kv_cache_size=kv, is_prefill=(kind == "prefill"),
                attention_backend=ATTENTION_BACKEND,
            )
            attn_rows.append(row)
            del fns
    del pa
    if device.type == "cuda":
        torch.cuda.empty_cache()

    out_dir = os.path.join(args.out, name)
    os.makedirs(out_dir, exist_ok=True)
    write_csv(os.path.join(out_dir, "mlp.csv"), MLP_HEADER, mlp_rows)
    write_csv(os.path.join(out_dir, "attention.csv"), ATTN_HEADER, attn_rows)
    write_csv(os.path.join(out_dir, "extra_ops.csv"), EXTRA_HEADER, extra_rows)
    info.update(
        mlp_points=len(mlp_rows), mlp_points_planned=len(grid),
        attention_points=len(attn_rows), attention_points_planned=len(order),
        attention_kernels=sample_kernels,
        sleep_lead_failures=timer.lead_failures + attn_timer.lead_failures,
        seconds=round(time.time() - budget.t0, 1),
    )
    print(f"profile_ops: {name}: {len(mlp_rows)}/{len(grid)} token points, "
          f"{len(attn_rows)}/{len(order)} attention points in {info['seconds']} s -> {out_dir}", flush=True)
    return info


def parse_args(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", required=True, help="output folder: OUT/<dtype>/{mlp,attention,extra_ops}.csv")
    ap.add_argument("--dtypes", default="bf16,fp16", help="comma-separated: bf16, fp16 (default both)")
    ap.add_argument("--device", default="cuda", help="cuda (default) or cpu (logic tests only)")
    ap.add_argument("--quick", action="store_true", help="tiny grids, few repetitions, small KV padding: a smoke test")
    ap.add_argument("--budget-s", type=float, default=240.0,
                    help="time budget for all dtypes together; a grid cut short is recorded in provenance.json")
    ap.add_argument("--reps", type=int, default=20, help="timed calls per linear/norm operator point (Vidur: 20)")
    ap.add_argument("--attn-reps", type=int, default=10, help="timed calls per attention point")
    ap.add_argument("--warmup", type=int, default=3, help="untimed calls before each point")
    ap.add_argument("--max-tokens", type=int, default=4096, help="largest num_tokens of mlp.csv (Vidur: 4096)")
    ap.add_argument("--max-model-len", type=int, default=40960, help="max_model_len column; caps chunk + kv")
    ap.add_argument("--config", help="a config.json to take the dimensions from (default: Qwen3-0.6B)")
    ap.add_argument("--local-modules", action="store_true", help="use local modules even if transformers is there")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--cpu-threads", type=int, default=1, help="torch threads with --device cpu")
    srv = ap.add_argument_group("server shapes (defaults: the goldens' transformers serve flags)")
    srv.add_argument("--block-size", type=int, default=256)
    srv.add_argument("--num-blocks", type=int, default=512)
    srv.add_argument("--max-batch-tokens", type=int, default=2048)
    srv.add_argument("--q-pad", type=int, default=64, help="query padding interval (CUDA graphs on)")
    srv.add_argument("--kv-pad", type=int, default=16384, help="KV read padding interval (CUDA graphs on)")
    args = ap.parse_args(argv)
    if args.quick:
        args.reps, args.attn_reps, args.warmup = 3, 2, 1
        args.max_tokens = min(args.max_tokens, 256)
        args.num_blocks, args.block_size, args.max_batch_tokens = 8, 64, 256
        args.kv_pad = 256
        args.max_model_len = min(args.max_model_len, 512)
    return args


def main(argv=None):
    args = parse_args(argv)
    device = torch.device(args.device)
    if device.type == "cuda" and not torch.cuda.is_available():
        sys.exit("profile_ops: CUDA is not available (use --device cpu for a logic test)")
    if device.type == "cpu":
        # Intra-op threads on a small shared CPU add scheduler quanta to every call.
        torch.set_num_threads(args.cpu_threads)
    cfg = dict(QWEN3_06B)
    if args.config:
        with open(args.config) as f:
            cfg.update(json.load(f))
    dims = Dims(cfg)
    server = Server(args)
    dtypes = {"bf16": torch.bfloat16, "fp16": torch.float16}
    names = [n.strip() for n in args.dtypes.split(",") if n.strip()]
    for n in names:
        if n not in dtypes:
            sys.exit(f"profile_ops: unknown dtype {n!r} (bf16, fp16)")
    os.makedirs(args.out, exist_ok=True)
    t0 = time.time()
    prov = {
        "what": "Qwen3-0.6B operator timings for Vidur (mlp.csv, attention.csv) + extra_ops.csv",
        "model": {"name": "Qwen/Qwen3-0.6B", "hidden_size": dims.hidden, "intermediate_size": dims.inter,
                  "num_attention_heads": dims.n_q, "num_key_value_heads": dims.n_kv, "head_dim": dims.head_dim,
                  "vocab_size": dims.vocab},
        "n_embd_note": "n_embd is the true hidden size (1024); Vidur derives head_dim = n_embd / n_head = 64, "
                       "but Qwen3's head_dim is 128 (see fixtures/profiles/README.md)",
        "server_shapes": {"block_size": server.block_size, "kv_capacity_tokens": server.kv_capacity,
                          "max_batch_tokens": server.max_batch_tokens, "q_pad": server.q_pad,
                          "kv_pad": server.kv_pad},
        "attention_backend": ATTENTION_BACKEND + ": transformers' paged|sdpa path (index_copy_/index_select on "
                             "the paged cache, repeat_kv, torch SDPA with a dense additive mask)",
        "timing": {"method": "cuda events behind a sleep kernel" if device.type == "cuda" else "host clock (CPU)",
                   "reps": args.reps, "attn_reps": args.attn_reps, "warmup": args.warmup, "unit": "ms",
                   "std": "population (ddof=0), as numpy.std in Vidur"},
        "quick": args.quick,
        "environment": environment(device),
        "dtypes": {},
    }
    per_dtype_budget = args.budget_s / max(1, len(names))
    for n in names:
        prov["dtypes"][n] = profile_dtype(n, dtypes[n], args, dims, server, device, per_dtype_budget)
    prov["seconds"] = round(time.time() - t0, 1)
    with open(os.path.join(args.out, "provenance.json"), "w") as f:
        json.dump(prov, f, indent=2)
    print(f"profile_ops: done in {prov['seconds']} s; provenance in {os.path.join(args.out, 'provenance.json')}")


if __name__ == "__main__":
    main()
