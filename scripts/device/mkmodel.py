#!/usr/bin/env python3
"""Build a random-weight Qwen3-0.6B checkpoint and a word-level, exact-length tokenizer.

Serving time does not depend on weight values, so the public architecture of Qwen/Qwen3-0.6B
(config.json of the Hugging Face repository) with random weights stands in for the real model.
The tokenizer maps the word ``w<i>`` to token id ``i``: the prompt ``"w1000 w1001 ... "`` of n
words is exactly n tokens, so the prompt lengths of a workload are exact.

    python3 scripts/device/mkmodel.py /tmp/qwen3 --dtype bf16            # the goldens' model
    python3 scripts/device/mkmodel.py /tmp/qwen3-tiny --tiny --device cpu  # CPU self-test

Writes ``OUT/{config.json, model.safetensors, generation_config.json, tokenizer.json, ...}`` and
``OUT/simfid-model.json`` (what was built, for the fixtures' provenance). Needs torch,
transformers (5.x) and tokenizers, which the GPU image has.
"""

import argparse
import json
import os
import sys
import time

# Qwen/Qwen3-0.6B's public config.json (the fields that shape the computation).
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
    tie_word_embeddings=True,
    hidden_act="silu",
    bos_token_id=151643,
    eos_token_id=151645,
)
ROPE_THETA = 1_000_000.0

# A few-MB stand-in with the same vocabulary and special ids, for testing the scripts on a CPU.
TINY_OVERRIDES = dict(
    hidden_size=64,
    intermediate_size=128,
    num_hidden_layers=2,
    num_attention_heads=4,
    num_key_value_heads=2,
    head_dim=16,
)

BOS_ID = QWEN3_06B["bos_token_id"]
EOS_ID = QWEN3_06B["eos_token_id"]
VOCAB = QWEN3_06B["vocab_size"]
UNK = "[UNK]"


def word(i: int) -> str:
    """The vocabulary word of token id ``i``."""
    return f"w{i}"


def build_tokenizer(out: str) -> None:
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    # Ids 0 .. VOCAB-2 are the words w0 .. w151934; the last id is the unknown token.
    vocab = {word(i): i for i in range(VOCAB - 1)}
    vocab[UNK] = VOCAB - 1
    tok = Tokenizer(models.WordLevel(vocab=vocab, unk_token=UNK))
    tok.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    # WordPiece's decoder with a prefix no word carries joins tokens with single spaces.
    tok.decoder = decoders.WordPiece(prefix="##")
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tok,
        unk_token=UNK,
        bos_token=word(BOS_ID),
        eos_token=word(EOS_ID),
        pad_token=word(BOS_ID),
    )
    fast.save_pretrained(out)

    # The whole point: n words are n tokens, with no special token added.
    reloaded = PreTrainedTokenizerFast.from_pretrained(out)
    for n in (1, 7, 2000, 8000):
        prompt = " ".join(word(1000 + i) for i in range(n))
        got = len(reloaded(prompt)["input_ids"])
        if got != n:
            sys.exit(f"mkmodel: tokenizer check failed: {n} words gave {got} tokens")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("out", help="output folder (created)")
    ap.add_argument("--dtype", choices=["bf16", "fp16"], default="bf16")
    ap.add_argument("--device", default="cuda", help="where to initialise the weights (cuda or cpu)")
    ap.add_argument("--tiny", action="store_true", help="a 2-layer toy model for CPU tests")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()

    import torch
    import transformers
    from transformers import GenerationConfig, Qwen3Config, Qwen3ForCausalLM

    t0 = time.time()
    dtype = {"bf16": torch.bfloat16, "fp16": torch.float16}[args.dtype]
    arch = dict(QWEN3_06B, **(TINY_OVERRIDES if args.tiny else {}))
    cfg = Qwen3Config(
        **arch,
        rope_parameters={"rope_type": "default", "rope_theta": ROPE_THETA},
        dtype="bfloat16" if args.dtype == "bf16" else "float16",
    )
    torch.manual_seed(args.seed)
    with torch.device(args.device):
        model = Qwen3ForCausalLM(cfg).to(dtype)
    model.generation_config = GenerationConfig(
        bos_token_id=BOS_ID, eos_token_id=EOS_ID, pad_token_id=BOS_ID, do_sample=False
    )
    os.makedirs(args.out, exist_ok=True)
    model.save_pretrained(args.out)
    build_tokenizer(args.out)

    n_params = sum(p.numel() for p in model.parameters())
    info = {
        "architecture": "Qwen/Qwen3-0.6B" + (" (tiny test variant)" if args.tiny else ""),
        "weights": f"random (torch.manual_seed({args.seed}))",
        "dtype": args.dtype,
        "parameters": n_params,
        "config": arch,
        "rope_theta": ROPE_THETA,
        "tokenizer": "word-level: 'w<i>' is token i; n words = n tokens, no special tokens added",
        "torch": torch.__version__,
        "transformers": transformers.__version__,
        "built_unix": int(time.time()),
        "build_seconds": round(time.time() - t0, 1),
    }
    with open(os.path.join(args.out, "simfid-model.json"), "w") as f:
        json.dump(info, f, indent=2)
    print(f"mkmodel: saved {args.out}: {n_params / 1e6:.1f} M parameters, {args.dtype}, "
          f"{info['build_seconds']} s")


if __name__ == "__main__":
    main()
