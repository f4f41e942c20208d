#!/usr/bin/env python3
"""Time Qwen3-0.6B's operators with vLLM's own kernels (FlashAttention 3 + vLLM's CUDA ops), in Vidur's CSVs.

The vLLM counterpart of ``profile_ops.py`` (which times transformers' paged-SDPA path): same
grids, same timer (CUDA events behind a sleep kernel), same CSV columns, so Vidur (microsoft/vidur
@ 7d47513) and ``simfid simulate --exec profile:`` read the output unchanged.

    PYTHONPATH=/tmp/simfid-vllm/site python3 scripts/profile/profile_ops_vllm.py --out /tmp/p-vllm

Needs a CUDA GPU with vLLM importable (the project's offline bundle, ``scripts/device/vllm/``).
Writes ``OUT/bf16/{mlp,attention,extra_ops}.csv`` and ``OUT/provenance.json``.

What is timed (vLLM 0.24's Qwen3 as its model runner calls it; files in the vLLM wheel):

* ``attn_pre_proj`` = the fused QKV GEMM (``QKVParallelLinear``: 1024 -> 2048 + 1024 + 1024, one
  ``F.linear``); ``attn_post_proj`` = ``o_proj`` (2048 -> 1024); ``mlp_up_proj`` = the merged
  gate/up GEMM (1024 -> 6144); ``mlp_down_proj`` (3072 -> 1024); ``emb`` = ``F.embedding``.
* ``input_layernorm`` = ``torch.ops._C.rms_norm``; ``post_attention_layernorm`` =
  ``torch.ops._C.fused_add_rms_norm`` (vLLM adds the residual inside the norm); ``add`` = one
  residual add, kept because Vidur's composition has it; ``mlp_act`` = ``torch.ops._C.silu_and_mul``;
  ``attn_rope`` = per-head q/k RMSNorm (``rms_norm`` on [tokens x heads, 128]) + the neox
  ``rotary_embedding`` op, in place on q and k (``models/qwen3.py``'s forward). Under
  torch.compile vLLM lets Inductor generate (and fuse) these element-wise kernels instead; the
  CUDA ops are their eager equivalents, an approximation stated in ``provenance.json``.
* ``attn_kv_cache_save`` = ``reshape_and_cache_flash`` into a paged cache of block 16 laid out
  ``[blocks, 16, kv_heads, head_dim]``, slots at random blocks; ``attn_prefill`` /
  ``attn_decode`` = ``flash_attn_varlen_func(..., block_table=..., seqused_k=..., causal=True,
  fa_version=3)`` (``v1/attention/backends/flash_attn.py``); ``attn_input_reshape`` /
  ``attn_output_reshape`` = the views vLLM takes (no kernel: they time as the empty interval).
* Shapes are not padded: vLLM pads a whole step to a CUDA-graph size, which Vidur does not model;
  the step profile (``simfid profile fit --server vllm``) measures the padded steps instead.
"""

import argparse
import json
import os
import random
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import torch  # noqa: E402

import profile_ops as po  # noqa: E402

ATTENTION_BACKEND = "VLLM_FLASH_ATTN_3"


class VllmOps:
    """vLLM's kernels and the weights they need, for one dtype."""

    def __init__(self, dims, dtype, device):
        import vllm._custom_ops as ops  # registers torch.ops._C / _C_cache_ops
        from vllm.vllm_flash_attn import flash_attn_varlen_func

        self.ops, self.fa = ops, flash_attn_varlen_func
        self.d, self.dtype, self.device = dims, dtype, device
        d = dims
        w = lambda o, i: torch.randn(o, i, device=device, dtype=dtype) * 0.02  # noqa: E731
        self.q_size, self.kv_size = d.n_q * d.head_dim, d.n_kv * d.head_dim
        self.w_qkv = w(self.q_size + 2 * self.kv_size, d.hidden)
        self.w_o = w(d.hidden, self.q_size)
        self.w_gate_up = w(2 * d.inter, d.hidden)
        self.w_down = w(d.hidden, d.inter)
        self.w_emb = w(d.vocab, d.hidden)
        self.norm_w = torch.ones(d.hidden, device=device, dtype=dtype)
        self.head_norm_w = torch.ones(d.head_dim, device=device, dtype=dtype)
        # The neox rotary cache as vLLM's RotaryEmbedding builds it: [max_pos, head_dim] of cos|sin.
        inv = 1.0 / (d.rope_theta ** (torch.arange(0, d.head_dim, 2, device=device, dtype=torch.float32) / d.head_dim))
        t = torch.arange(d.max_pos, device=device, dtype=torch.float32)
        freqs = torch.outer(t, inv)
        self.cos_sin = torch.cat((freqs.cos(), freqs.sin()), dim=-1).to(dtype)

    def token_closures(self, n_tokens, max_seqs):
        d, dev, dt, ops = self.d, self.device, self.dtype, self.ops
        T = n_tokens
        F = torch.nn.functional
        ids = torch.randint(0, d.vocab, (T,), device=dev)
        positions = torch.randint(0, 4096, (T,), device=dev)
        x = torch.randn(T, d.hidden, device=dev, dtype=dt)
        x2 = torch.randn(T, d.hidden, device=dev, dtype=dt)
        resid = torch.randn(T, d.hidden, device=dev, dtype=dt)
        out = torch.empty(T, d.hidden, device=dev, dtype=dt)
        qkv = torch.randn(T, self.q_size + 2 * self.kv_size, device=dev, dtype=dt)
        attn_out = torch.randn(T, self.q_size, device=dev, dtype=dt)
        gate_up = torch.randn(T, 2 * d.inter, device=dev, dtype=dt)
        act_out = torch.empty(T, d.inter, device=dev, dtype=dt)
        mid = torch.randn(T, d.inter, device=dev, dtype=dt)
        q_heads = torch.empty(T * d.n_q, d.head_dim, device=dev, dtype=dt)
        k_heads = torch.empty(T * d.n_kv, d.head_dim, device=dev, dtype=dt)
        q_rope = torch.randn(T, self.q_size, device=dev, dtype=dt)
        k_rope = torch.randn(T, self.kv_size, device=dev, dtype=dt)
        rows = min(T, max_seqs)  # the LM head sees one row per sequence
        logits_idx = torch.arange(rows, device=dev)

        def qk_norm():
            q, k, _v = qkv.split([self.q_size, self.kv_size, self.kv_size], dim=-1)
            ops.rms_norm(q_heads, q.reshape(-1, d.head_dim), self.head_norm_w, d.eps)
            ops.rms_norm(k_heads, k.reshape(-1, d.head_dim), self.head_norm_w, d.eps)
            return q_heads, k_heads

        def rope_only():
            ops.rotary_embedding(positions, q_rope, k_rope, d.head_dim, self.cos_sin, True)

        def attn_rope():
            qk_norm()
            rope_only()

        def post_norm():
            ops.fused_add_rms_norm(x2, resid, self.norm_w, d.eps)

        def lm_head():
            return F.linear(x[logits_idx], self.w_emb).argmax(dim=-1)

        mlp = {
            "emb": lambda: F.embedding(ids, self.w_emb),
            "input_layernorm": lambda: ops.rms_norm(out, x, self.norm_w, d.eps),
            "attn_pre_proj": lambda: F.linear(x, self.w_qkv),
            "attn_rope": attn_rope,
            "attn_post_proj": lambda: F.linear(attn_out, self.w_o),
            "post_attention_layernorm": post_norm,
            "mlp_up_proj": lambda: F.linear(x, self.w_gate_up),
            "mlp_act": lambda: torch.ops._C.silu_and_mul(act_out, gate_up),
            "mlp_down_proj": lambda: F.linear(mid, self.w_down),
            "add": lambda: x + x2,
        }
        extra = {
            "attn_qk_norm": qk_norm,
            "rope_only": rope_only,
            "final_norm": lambda: ops.rms_norm(out, x, self.norm_w, d.eps),
            "lm_head": lm_head,
        }
        return mlp, extra, rows


class PagedFlash:
    """One layer's paged KV cache (block 16) and FlashAttention 3 over it."""

    def __init__(self, ops, dims, block_size, num_blocks, dtype, device, seed):
        self.ops, self.d, self.dtype, self.device = ops, dims, dtype, device
        self.bs, self.num_blocks = block_size, num_blocks
        shape = (num_blocks, block_size, dims.n_kv, dims.head_dim)
        self.k_cache = torch.randn(shape, device=device, dtype=dtype)
        self.v_cache = torch.randn(shape, device=device, dtype=dtype)
        self.scale_one = torch.ones((), device=device, dtype=torch.float32)
        self.rng = random.Random(seed)
        self.scale = dims.head_dim ** -0.5

    def closures(self, q_lens, kv_lens):
        """The attention operators of one step: sequence i has q_lens[i] new tokens after
        kv_lens[i] cached ones."""
        d, dev, dt = self.d, self.device, self.dtype
        n = len(q_lens)
        T = sum(q_lens)
        seq_lens = [q + k for q, k in zip(q_lens, kv_lens)]
        blocks_per_seq = [(s + self.bs - 1) // self.bs for s in seq_lens]
        width = max(blocks_per_seq)
        picks = self.rng.sample(range(self.num_blocks), sum(blocks_per_seq))
        table = torch.zeros(n, width, dtype=torch.int32)
        slots, at = [], 0
        for i, nb in enumerate(blocks_per_seq):
            blocks = picks[at:at + nb]
            at += nb
            table[i, :nb] = torch.tensor(blocks, dtype=torch.int32)
            for p in range(kv_lens[i], seq_lens[i]):  # the new tokens' slots
                slots.append(blocks[p // self.bs] * self.bs + p % self.bs)
        block_table = table.to(dev)
        slot_mapping = torch.tensor(slots, dtype=torch.int64, device=dev)
        cu_q = torch.tensor([0] + list(_cumsum(q_lens)), dtype=torch.int32, device=dev)
        seqused_k = torch.tensor(seq_lens, dtype=torch.int32, device=dev)
        q = torch.randn(T, d.n_q, d.head_dim, device=dev, dtype=dt)
        k = torch.randn(T, d.n_kv, d.head_dim, device=dev, dtype=dt)
        v = torch.randn(T, d.n_kv, d.head_dim, device=dev, dtype=dt)
        out = torch.empty(T, d.n_q, d.head_dim, device=dev, dtype=dt)
        flat_q = torch.randn(T, d.n_q * d.head_dim, device=dev, dtype=dt)
        max_q, max_k = max(q_lens), max(seq_lens)

        def kv_cache_save():
            self.ops.reshape_and_cache_flash(k, v, self.k_cache, self.v_cache, slot_mapping, "auto",
                                             self.scale_one, self.scale_one)

        def attention():
            self.ops_fa(q, max_q, cu_q, max_k, seqused_k, block_table, out)

        return {
            "attn_input_reshape": lambda: flat_q.view(T, d.n_q, d.head_dim),
            "attn_kv_cache_save": kv_cache_save,
            "attn": attention,
            "attn_output_reshape": lambda: out.view(T, -1),
        }

    def bind_fa(self, fa):
        k_cache, v_cache, scale = self.k_cache, self.v_cache, self.scale

        def run(q, max_q, cu_q, max_k, seqused_k, block_table, out):
            fa(q=q, k=k_cache, v=v_cache, out=out, cu_seqlens_q=cu_q, max_seqlen_q=max_q,
               seqused_k=seqused_k, max_seqlen_k=max_k, softmax_scale=scale, causal=True,
               block_table=block_table, fa_version=3)

        self.ops_fa = run


def _cumsum(xs):
    s = 0
    for x in xs:
        s += x
        yield s


def prefill_points(max_chunk, max_model_len):
    chunks = [1, 16, 32] + list(range(64, max_chunk + 1, 64))
    kvs = [0, 512, 1024, 2048, 4096, 6144, 8192, 12288, 16384, 24576, 32768]
    return [(c, kv) for c in chunks for kv in kvs if c + kv <= max_model_len]


def decode_points(max_seqs, max_model_len, kv_capacity):
    batches = [b for b in list(range(1, 9)) + [12, 16, 24, 32, 48, 64, 96, 128, 192, 256] if b <= max_seqs]
    kvs = [64, 256, 512, 1024, 2048, 4096, 8192, 16384]
    return [(b, kv) for b in batches for kv in kvs if kv < max_model_len and b * (kv + 1) <= kv_capacity]


def profile(args, dims, device):
    dtype = torch.bfloat16
    budget = po.Budget(args.budget_s)
    timer = po.Timer(device, args.reps, args.warmup)
    attn_timer = po.Timer(device, args.attn_reps, args.warmup)
    vo = VllmOps(dims, dtype, device)
    info = {"truncated": []}
    torch.manual_seed(args.seed)

    grid = po.vidur_token_grid(args.max_tokens)
    mlp_rows, extra_rows = [], []
    with torch.inference_mode():
        for i, n in enumerate(grid):
            if budget.left() < args.budget_s * 0.6:
                info["truncated"].append(f"mlp: stopped at num_tokens {n} ({i}/{len(grid)} points)")
                break
            mlp_ops, extra_ops, rows = vo.token_closures(n, args.max_num_seqs)
            row = po.flatten({op: po.summarize(timer.sample(mlp_ops[op])) for op in po.MLP_OPS})
            row.update(n_head=dims.n_q, n_kv_head=dims.n_kv, n_embd=dims.hidden, n_expanded_embd=dims.inter,
                       vocab_size=dims.vocab, use_gated_mlp=True, num_tokens=n, num_tensor_parallel_workers=1)
            mlp_rows.append(row)
            xrow = po.flatten({op: po.summarize(timer.sample(extra_ops[op])) for op in po.EXTRA_OPS})
            xrow.update(n_embd=dims.hidden, vocab_size=dims.vocab, num_tokens=n, lm_head_rows=rows)
            extra_rows.append(xrow)

    kv_capacity = args.num_blocks * args.block_size
    pf = PagedFlash(vo.ops, dims, args.block_size, args.num_blocks, dtype, device, args.seed)
    pf.bind_fa(vo.fa)
    pre = [("prefill", c, kv) for c, kv in prefill_points(args.max_chunk, args.max_model_len)]
    dec = [("decode", b, kv) for b, kv in decode_points(args.max_num_seqs, args.max_model_len, kv_capacity)]
    order = [p for pair in zip(pre, dec) for p in pair] + pre[len(dec):] + dec[len(pre):]
    attn_rows, kernels = [], {}
    with torch.inference_mode():
        for i, (kind, a, kv) in enumerate(order):
            if budget.left() <= 0:
                info["truncated"].append(f"attention: stopped after {i}/{len(order)} points")
                break
            if kind == "prefill":
                fns = pf.closures([a], [kv])
                batch, chunk = 1, a
            else:
                fns = pf.closures([1] * a, [kv] * a)
                batch, chunk = a, 0
            stats = {op: po.summarize(attn_timer.sample(fns[op]))
                     for op in ("attn_input_reshape", "attn_kv_cache_save", "attn_output_reshape")}
            attn = po.summarize(attn_timer.sample(fns["attn"]))
            stats["attn_prefill"] = attn if kind == "prefill" else po.zero_stats()
            stats["attn_decode"] = attn if kind == "decode" else po.zero_stats()
            if kind not in kernels:
                kernels[kind] = {"point": {"batch_size": batch, "prefill_chunk_size": chunk, "kv_cache_size": kv},
                                 "kernels": po.kernel_names(fns["attn"], device)}
            row = po.flatten({op: stats[op] for op in po.ATTN_OPS})
            row.update(n_embd=dims.hidden, n_q_head=dims.n_q, n_kv_head=dims.n_kv, block_size=args.block_size,
                       num_tensor_parallel_workers=1, max_model_len=args.max_model_len, batch_size=batch,
                       prefill_chunk_size=chunk, kv_cache_size=kv, is_prefill=(kind == "prefill"),
                       attention_backend=ATTENTION_BACKEND)
            attn_rows.append(row)
    out_dir = os.path.join(args.out, "bf16")
    os.makedirs(out_dir, exist_ok=True)
    po.write_csv(os.path.join(out_dir, "mlp.csv"), po.MLP_HEADER, mlp_rows)
    po.write_csv(os.path.join(out_dir, "attention.csv"), po.ATTN_HEADER, attn_rows)
    po.write_csv(os.path.join(out_dir, "extra_ops.csv"), po.EXTRA_HEADER, extra_rows)
    info.update(mlp_points=len(mlp_rows), mlp_points_planned=len(grid), attention_points=len(attn_rows),
                attention_points_planned=len(order), attention_kernels=kernels,
                sleep_lead_failures=timer.lead_failures + attn_timer.lead_failures,
                seconds=round(time.time() - budget.t0, 1))
    print(f"profile_ops_vllm: {len(mlp_rows)}/{len(grid)} token points, {len(attn_rows)}/{len(order)} "
          f"attention points in {info['seconds']} s -> {out_dir}", flush=True)
    return info


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", required=True)
    ap.add_argument("--budget-s", type=float, default=240.0)
    ap.add_argument("--reps", type=int, default=20)
    ap.add_argument("--attn-reps", type=int, default=10)
    ap.add_argument("--warmup", type=int, default=3)
    ap.add_argument("--max-tokens", type=int, default=2048, help="largest num_tokens of mlp.csv")
    ap.add_argument("--max-chunk", type=int, default=2048, help="largest prefill chunk of attention.csv")
    ap.add_argument("--max-model-len", type=int, default=40960)
    ap.add_argument("--max-num-seqs", type=int, default=256)
    ap.add_argument("--block-size", type=int, default=16)
    ap.add_argument("--num-blocks", type=int, default=39943, help="the goldens' KV cache: 639,088 tokens / 16")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--quick", action="store_true", help="a few points of each kind: a smoke test")
    args = ap.parse_args(argv)
    if args.quick:
        args.reps, args.attn_reps, args.warmup = 3, 2, 1
        args.max_tokens, args.max_chunk, args.max_model_len = 64, 64, 1024
    device = torch.device("cuda")
    if not torch.cuda.is_available():
        sys.exit("profile_ops_vllm: needs a CUDA GPU")
    dims = po.Dims(dict(po.QWEN3_06B))
    t0 = time.time()
    env = po.environment(device)
    try:
        import vllm

        env["vllm"] = vllm.__version__
    except Exception as e:  # noqa: BLE001
        env["vllm"] = f"(import failed: {e})"
    prov = {
        "what": "Qwen3-0.6B operator timings with vLLM 0.24's kernels, for Vidur (mlp.csv, attention.csv)",
        "model": {"name": "Qwen/Qwen3-0.6B", "hidden_size": dims.hidden, "intermediate_size": dims.inter,
                  "num_attention_heads": dims.n_q, "num_key_value_heads": dims.n_kv, "head_dim": dims.head_dim,
                  "vocab_size": dims.vocab},
        "attention_backend": ATTENTION_BACKEND + ": vllm_flash_attn.flash_attn_varlen_func(fa_version=3) over a "
                             "paged cache of block 16; reshape_and_cache_flash for the KV writes",
        "elementwise_ops": "vLLM's CUDA custom ops (rms_norm, fused_add_rms_norm, rotary_embedding, silu_and_mul); "
                           "under torch.compile vLLM runs Inductor-generated equivalents instead",
        "kv_cache": {"block_size": args.block_size, "num_blocks": args.num_blocks},
        "timing": {"method": "cuda events behind a sleep kernel", "reps": args.reps, "attn_reps": args.attn_reps,
                   "warmup": args.warmup, "unit": "ms", "std": "population (ddof=0)"},
        "environment": env,
    }
    prov["bf16"] = profile(args, dims, device)
    prov["seconds"] = round(time.time() - t0, 1)
    with open(os.path.join(args.out, "provenance.json"), "w") as f:
        json.dump(prov, f, indent=2)
    print(f"profile_ops_vllm: done in {prov['seconds']} s")


if __name__ == "__main__":
    main()
