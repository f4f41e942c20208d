#!/usr/bin/env python3
"""Tests of profile_ops.py's logic on a CPU (needs torch; transformers for the equivalence tests).

    python3 scripts/profile/test_profile_ops.py -v
"""

import csv
import importlib.util
import json
import os
import sys
import tempfile
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import torch  # noqa: E402

import profile_ops as po  # noqa: E402

HAVE_TRANSFORMERS = importlib.util.find_spec("transformers") is not None

# Vidur's headers, written out by hand from its profiles (fixtures/vidur/data/profiling/compute/).
VIDUR_MLP_OPS = ("emb input_layernorm attn_pre_proj attn_rope attn_post_proj post_attention_layernorm "
                 "mlp_up_proj mlp_act mlp_down_proj add").split()
VIDUR_MLP = [f"time_stats.{o}.{s}" for o in VIDUR_MLP_OPS for s in ("min", "max", "mean", "median", "std")] + [
    "n_head", "n_kv_head", "n_embd", "n_expanded_embd", "vocab_size", "use_gated_mlp", "num_tokens",
    "num_tensor_parallel_workers"]
VIDUR_ATTN_OPS = "attn_input_reshape attn_kv_cache_save attn_prefill attn_decode attn_output_reshape".split()
VIDUR_ATTN = [f"time_stats.{o}.{s}" for o in VIDUR_ATTN_OPS for s in ("min", "max", "mean", "median", "std")] + [
    "n_embd", "n_q_head", "n_kv_head", "block_size", "num_tensor_parallel_workers", "max_model_len", "batch_size",
    "prefill_chunk_size", "kv_cache_size", "is_prefill", "attention_backend"]


def read_csv(path):
    with open(path) as f:
        return list(csv.DictReader(f))


class Headers(unittest.TestCase):
    def test_mlp_header_is_vidurs(self):
        self.assertEqual(po.MLP_HEADER, VIDUR_MLP)
        self.assertEqual(len(po.MLP_HEADER), 58)

    def test_attention_header_is_vidurs(self):
        self.assertEqual(po.ATTN_HEADER, VIDUR_ATTN)
        self.assertEqual(len(po.ATTN_HEADER), 36)


class Grids(unittest.TestCase):
    def test_token_grid(self):
        g = po.vidur_token_grid(4096)
        self.assertEqual(g[:9], [1, 2, 3, 4, 5, 6, 7, 8, 16])
        self.assertEqual(len(g), len(set(g)))
        self.assertEqual(g, sorted(g))
        self.assertIn(1016, g)
        self.assertIn(2048, g)
        self.assertEqual(g[-1], 4096)
        self.assertEqual(len(g), 7 + 127 + 65 + 64)
        self.assertEqual(po.vidur_token_grid(100)[-1], 96)

    def test_attention_grids_respect_capacity(self):
        args = po.parse_args(["--out", "/x"])
        s = po.Server(args)
        for b, kv in po.decode_grid(False, s, args.max_model_len):
            self.assertLessEqual(b * (kv + 1), s.kv_capacity)
        for c, kv in po.prefill_grid(False, s, args.max_model_len):
            self.assertLessEqual(c + kv, args.max_model_len)
            self.assertLessEqual(c, s.max_batch_tokens)

    def test_padding_matches_the_server(self):
        s = po.Server(po.parse_args(["--out", "/x"]))
        self.assertEqual(s.shapes(1, 0), (64, 16384))
        self.assertEqual(s.shapes(64, 16384), (64, 16384))
        self.assertEqual(s.shapes(65, 16385), (128, 32768))
        self.assertEqual(s.shapes(5000, 10**6), (2048, 131072))
        if HAVE_TRANSFORMERS:
            from transformers.generation.continuous_batching.utils import pad_to_interval

            for n in list(range(0, 300)) + list(range(16000, 17000, 7)) + [131071, 131072, 131073, 200000]:
                self.assertEqual(s.pad(n, 16384, 131072), pad_to_interval(n, 16384, 131072), n)
                self.assertEqual(s.pad(n, 64, 2048), pad_to_interval(n, 64, 2048), n)


class Stats(unittest.TestCase):
    def test_summary_is_numpy_like(self):
        st = po.summarize([1.0, 2.0, 3.0, 4.0])
        self.assertEqual((st["min"], st["max"], st["mean"], st["median"]), (1.0, 4.0, 2.5, 2.5))
        self.assertAlmostEqual(st["std"], 1.118033988749895)  # ddof=0, as numpy.std


@unittest.skipUnless(HAVE_TRANSFORMERS, "transformers not importable")
class LocalModulesMatchTransformers(unittest.TestCase):
    """The fallback modules compute what transformers' Qwen3 modules compute."""

    def test_rmsnorm_and_rotary(self):
        torch.manual_seed(0)
        dims = po.Dims(dict(po.QWEN3_06B))
        tf = po.Modules(dims, torch.float32, torch.device("cpu"))
        loc = po.Modules(dims, torch.float32, torch.device("cpu"), prefer_transformers=False)
        self.assertEqual((tf.impl, loc.impl), ("transformers", "local"))
        x = torch.randn(1, 7, dims.hidden)
        torch.testing.assert_close(tf.input_layernorm(x), loc.input_layernorm(x))
        pos = torch.arange(7).unsqueeze(0) + 100
        cos_t, sin_t = tf.cos_sin(pos, x)
        cos_l, sin_l = loc.cos_sin(pos, x)
        torch.testing.assert_close(cos_t, cos_l)
        torch.testing.assert_close(sin_t, sin_l)
        q = torch.randn(1, dims.n_q, 7, dims.head_dim)
        k = torch.randn(1, dims.n_kv, 7, dims.head_dim)
        for a, b in zip(tf.apply_rotary(q, k, cos_t, sin_t), loc.apply_rotary(q, k, cos_l, sin_l)):
            torch.testing.assert_close(a, b)
        self.assertEqual(tuple(tf.q_proj.weight.shape), (2048, 1024))  # 16 heads x 128, not 1024 -> 1024


class PagedAttentionShapes(unittest.TestCase):
    def test_closures_run_and_pad(self):
        args = po.parse_args(["--out", "/x", "--quick"])
        server = po.Server(args)
        dims = po.Dims(dict(po.QWEN3_06B))
        pa = po.PagedAttention(dims, server, torch.float32, torch.device("cpu"), 0)
        with torch.inference_mode():
            fns, padded = pa.closures(q_tokens=3, past_tokens=3 * 40, past_per_seq=40, seqs=3)
            self.assertEqual(padded, (64, 256))
            out = fns["attn"]()
            self.assertEqual(tuple(out.shape), (1, dims.n_q, 64, dims.head_dim))
            self.assertEqual(tuple(fns["attn_output_reshape"]().shape), (1, 64, dims.n_q * dims.head_dim))
            fns["attn_kv_cache_save"]()
            self.assertTrue(fns["attn_input_reshape"]().is_contiguous())
            # Real rows see their own past and themselves; padding rows see nothing.
            mask = pa.mask_buf[..., :64, :320]
            self.assertTrue(bool((mask[0, 0, 0, :41] == 0).all()))
            self.assertTrue(bool((mask[0, 0, 10] == torch.finfo(torch.float32).min).all()))


class EndToEnd(unittest.TestCase):
    def test_quick_run_writes_vidur_csvs(self):
        with tempfile.TemporaryDirectory() as d:
            po.main(["--out", d, "--device", "cpu", "--quick", "--dtypes", "bf16"])
            rows = read_csv(os.path.join(d, "bf16", "mlp.csv"))
            self.assertEqual([int(r["num_tokens"]) for r in rows], [1, 8, 64, 256])
            for r in rows:
                self.assertEqual((r["n_head"], r["n_kv_head"], r["n_embd"], r["n_expanded_embd"]),
                                 ("16", "8", "1024", "3072"))
                self.assertEqual(r["use_gated_mlp"], "True")
                for op in VIDUR_MLP_OPS:
                    st = {s: float(r[f"time_stats.{op}.{s}"]) for s in ("min", "median", "max")}
                    self.assertTrue(0 < st["min"] <= st["median"] <= st["max"], (op, st))
            att = read_csv(os.path.join(d, "bf16", "attention.csv"))
            pre = [r for r in att if r["is_prefill"] == "True"]
            dec = [r for r in att if r["is_prefill"] == "False"]
            self.assertTrue(pre and dec)
            for r in pre:
                self.assertEqual(r["batch_size"], "1")
                self.assertGreater(float(r["time_stats.attn_prefill.median"]), 0)
                self.assertEqual(float(r["time_stats.attn_decode.median"]), 0.0)
            for r in dec:
                self.assertEqual(r["prefill_chunk_size"], "0")
                self.assertGreater(float(r["time_stats.attn_decode.median"]), 0)
            with open(os.path.join(d, "provenance.json")) as f:
                prov = json.load(f)
            self.assertEqual(prov["dtypes"]["bf16"]["truncated"], [])


if __name__ == "__main__":
    unittest.main()
