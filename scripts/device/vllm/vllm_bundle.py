#!/usr/bin/env python3
"""Build the offline vLLM bundle for the GPU machine (no network there, 64 MiB per transfer).

    python3 scripts/device/vllm/vllm_bundle.py [--cache DIR] [--out DIR] [--piece-mib N]

1. Downloads (once, into --cache) the wheels of ``requirements.txt`` beside this file from PyPI:
   vLLM 0.24.0 (it pins torch 2.11.0, the GPU image's) and the packages ``vllm serve`` imports
   that the image lacks, for CPython 3.12 on x86-64 Linux.
2. Prunes the vLLM wheel to what serving a dense bf16 model on a Hopper GPU loads: the
   FlashAttention-2 kernel (FA3 is the Hopper default and stays), MoE/MLA/FP8 kernels, the Rust
   frontend, Blackwell-only kernels and other Python versions' extensions are left out (see
   ``DROP``). The wheel is rewritten uncompressed (xz then compresses it much better than
   deflate) with a RECORD that matches its files.
3. Patches one function: ``flashinfer_sampler_supported()`` returns False when flashinfer cannot
   be imported (it is not shipped) instead of raising at engine start. ``VLLM_USE_FLASHINFER_SAMPLER=0``
   avoids that path too; the patch makes the bundle safe without it.
4. Packs every wheel into one ``tar.xz`` stream and cuts it into pieces of at most --piece-mib
   (default 38: a piece, the repository tree (~20 MiB) and the xz-compressed simfid binary fit
   one 64 MiB transfer).
   ``SHA256SUMS`` covers the pieces. ``install.sh`` beside this file joins and installs them.

Pure standard library; deterministic for the same downloads (fixed tar order and mtimes).
"""

import argparse
import base64
import csv
import fnmatch
import hashlib
import io
import lzma
import os
import subprocess
import sys
import tarfile
import zipfile

HERE = os.path.dirname(os.path.abspath(__file__))
REQUIREMENTS = os.path.join(HERE, "requirements.txt")

# Files of the vLLM wheel that serving dense Qwen3 in bf16 on an H100/H200 never loads.
DROP = [
    "vllm/vllm_flash_attn/_vllm_fa2_C.abi3.so",  # FA2: FA3 is chosen on SM 9.x
    "vllm/vllm_flash_attn/cute/*",  # FA4 (needs cutlass-dsl, absent): then reported unavailable
    "vllm/_moe_C_stable_libtorch.abi3.so",  # MoE kernels (import guarded: one warning)
    "vllm/vllm-rs",  # Rust frontend, only with VLLM_USE_RUST_FRONTEND=1
    "vllm/third_party/fmha_sm100/*",  # Blackwell only
    "vllm/third_party/deep_gemm/*",  # FP8 GEMMs: has_deep_gemm() is then False
    "vllm/third_party/flashmla/*",  # MLA models only
    "vllm/_flashmla_C.abi3.so",
    "vllm/_flashmla_extension_C.abi3.so",
    "vllm/_rust_tool_parser.abi3.so",  # tool-call parsing
]

SAMPLER = "vllm/v1/sample/ops/topk_topp_sampler.py"
SAMPLER_OLD = "    from vllm.v1.attention.backends.flashinfer import FlashInferBackend\n"
SAMPLER_NEW = (
    "    try:\n"
    "        from vllm.v1.attention.backends.flashinfer import FlashInferBackend\n"
    "    except ImportError:  # simfid bundle: flashinfer is not shipped\n"
    "        if envs.is_set(\"VLLM_USE_FLASHINFER_SAMPLER\"):\n"
    "            raise\n"
    "        return False\n"
)


def requirements():
    out = []
    for line in open(REQUIREMENTS):
        line = line.split("#", 1)[0].strip()
        if line:
            out.append(line)
    return out


def download(cache):
    """pip download of every pinned wheel for cp312 / manylinux x86-64 (skips what is there)."""
    os.makedirs(cache, exist_ok=True)
    platforms = [f"manylinux_2_{n}_x86_64" for n in range(5, 40)] + ["manylinux2014_x86_64", "manylinux1_x86_64", "any"]
    cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:", "--python-version", "3.12",
           "--implementation", "cp", "--abi", "cp312", "--abi", "abi3", "--abi", "none", "-d", cache,
           "--disable-pip-version-check", "-q"]
    for p in platforms:
        cmd += ["--platform", p]
    subprocess.run(cmd + requirements(), check=True)
    wheels = sorted(f for f in os.listdir(cache) if f.endswith(".whl"))
    names = {w.split("-")[0].lower().replace("_", "-") for w in wheels}
    want = {r.split("==")[0].lower().replace("_", "-") for r in requirements()}
    missing = want - names
    if missing:
        sys.exit(f"vllm_bundle: not downloaded: {', '.join(sorted(missing))}")
    return [os.path.join(cache, w) for w in wheels if w.split("-")[0].lower().replace("_", "-") in want]


def record_hash(data):
    return "sha256=" + base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()


def prune_vllm(src, dst):
    """Writes the pruned, patched, uncompressed vLLM wheel; returns (kept MiB, dropped MiB)."""
    zin = zipfile.ZipFile(src)
    record = next(i.filename for i in zin.infolist() if i.filename.endswith(".dist-info/RECORD"))
    kept, dropped, patched = [], 0, False
    for info in zin.infolist():
        if info.filename == record:
            continue
        if any(fnmatch.fnmatch(info.filename, pat) for pat in DROP):
            dropped += info.file_size
        else:
            kept.append(info)
    rows = []
    with zipfile.ZipFile(dst, "w", compression=zipfile.ZIP_STORED) as zout:
        for info in kept:
            data = zin.read(info)
            if info.filename == SAMPLER:
                text = data.decode()
                if text.count(SAMPLER_OLD) != 1:
                    sys.exit(f"vllm_bundle: {SAMPLER}: the line to patch is not there once")
                data = text.replace(SAMPLER_OLD, SAMPLER_NEW).encode()
                patched = True
            zi = zipfile.ZipInfo(info.filename, date_time=info.date_time)
            zi.external_attr = info.external_attr
            zout.writestr(zi, data, compress_type=zipfile.ZIP_STORED)
            rows.append([info.filename, record_hash(data), str(len(data))])
        buf = io.StringIO()
        csv.writer(buf, lineterminator="\n").writerows(rows + [[record, "", ""]])
        zi = zipfile.ZipInfo(record, date_time=(2026, 1, 1, 0, 0, 0))
        zout.writestr(zi, buf.getvalue())
    if not patched:
        sys.exit(f"vllm_bundle: {SAMPLER} not found in {src}")
    return sum(i.file_size for i in kept) / 2**20, dropped / 2**20


def pack(wheels, out, piece_mib):
    """tar.xz of the wheels (wheels/NAME), cut into part1.tar.xz, part2.tar.xz, ..."""
    os.makedirs(out, exist_ok=True)
    for f in os.listdir(out):
        if f.startswith("part") or f == "SHA256SUMS":
            os.remove(os.path.join(out, f))
    stream = io.BytesIO()
    with lzma.LZMAFile(stream, "wb", preset=6) as xz, tarfile.open(fileobj=xz, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for w in sorted(wheels, key=os.path.basename):
            info = tar.gettarinfo(w, arcname="wheels/" + os.path.basename(w))
            info.mtime, info.uid, info.gid, info.uname, info.gname = 0, 0, 0, "", ""
            with open(w, "rb") as f:
                tar.addfile(info, f)
    data = stream.getvalue()
    size = piece_mib * 2**20
    parts = []
    for i in range(0, len(data), size):
        name = f"part{len(parts) + 1}.tar.xz"
        with open(os.path.join(out, name), "wb") as f:
            f.write(data[i:i + size])
        parts.append((name, hashlib.sha256(data[i:i + size]).hexdigest()))
    with open(os.path.join(out, "SHA256SUMS"), "w") as f:
        for name, h in parts:
            f.write(f"{h}  {name}\n")
    return len(data) / 2**20, [p for p, _ in parts]


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cache", default=os.path.expanduser("~/.cache/simfid-vllm-wheels"),
                    help="download folder (kept between builds)")
    ap.add_argument("--out", default=".vllm-bundle", help="output folder (git-ignored in the repository)")
    ap.add_argument("--piece-mib", type=int, default=38, help="largest piece, MiB")
    args = ap.parse_args()
    wheels = download(args.cache)
    stage = os.path.join(args.out, "stage")
    os.makedirs(stage, exist_ok=True)
    final = []
    for w in wheels:
        if os.path.basename(w).startswith("vllm-"):
            dst = os.path.join(stage, os.path.basename(w))
            kept, dropped = prune_vllm(w, dst)
            print(f"vllm_bundle: vllm wheel pruned: {kept:.0f} MiB kept, {dropped:.0f} MiB left out")
            final.append(dst)
        else:
            final.append(w)
    total, parts = pack(final, args.out, args.piece_mib)
    print(f"vllm_bundle: {len(final)} wheels, {total:.1f} MiB of tar.xz in {len(parts)} pieces: {' '.join(parts)}")
    print(f"vllm_bundle: carry each piece in its own device call; install with scripts/device/vllm/install.sh")


if __name__ == "__main__":
    main()
