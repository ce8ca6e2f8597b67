"""A GGUF file (llama architecture) with random weights at a model directory's shape.

    gguf_shape.py CONFIG_JSON OUT.gguf --type f32|bf16|q8_0|q4_0

For measuring llama.cpp beside engine_bench on the same shape (bench/llama_cpp/compare.sh):
speed depends on the shape and the weights' type, not on their values, so the weights are
N(0, 0.02^2) (norms 1) and the vocabulary is placeholder pieces. Every shape is written as
llama.cpp's "llama" architecture (RMSNorm, RoPE, SiLU-gated MLP, grouped-query attention):
a Gemma-shaped file has Gemma's matrix sizes and head_dim but not its extra norms or windows.

The container follows the GGUF specification (version 3): header, metadata key/values, tensor
infos (dimensions innermost first), then the tensors, each aligned to 32 bytes. q8_0 is
llama.cpp's 8-bit type: blocks of 32 values of a row, an fp16 scale max|w|/127 then 32 int8;
a matrix whose rows are not a multiple of 32 long is written f16 instead, as llama-quantize
does. q4_0 is its 4-bit type: blocks of 32, an fp16 scale d = m / -8 (m the value of largest
magnitude) then 16 bytes, value j in the low nibble of byte j and value 16 + j in the high one,
each round(w / d) + 8 in 0..15. With q4_0 the output matrix (the embedding, when tied) is
written q8_0: llama-quantize would write q6_K there, which this script does not encode; q8_0 is
the same bytes per weight as the int8 head mswa-serve keeps with --dtype q4.
"""
import argparse
import json
import struct

import numpy as np

ALIGN = 32
# GGUF metadata value types and ggml tensor types used here.
T_U32, T_I32, T_F32, T_STRING, T_ARRAY = 4, 5, 6, 8, 9
GGML = {"f32": 0, "f16": 1, "q4_0": 2, "q8_0": 8, "bf16": 30}
# llama_ftype: ALL_F32, MOSTLY_Q4_0, MOSTLY_Q8_0, MOSTLY_BF16
FILE_TYPE = {"f32": 0, "q4_0": 2, "q8_0": 7, "bf16": 32}


def gguf_string(s):
    b = s.encode("utf-8")
    return struct.pack("<Q", len(b)) + b


def kv(key, vtype, value):
    out = gguf_string(key) + struct.pack("<I", vtype)
    if vtype == T_U32:
        return out + struct.pack("<I", value)
    if vtype == T_F32:
        return out + struct.pack("<f", value)
    if vtype == T_STRING:
        return out + gguf_string(value)
    etype, items = value
    out += struct.pack("<IQ", etype, len(items))
    if etype == T_STRING:
        return out + b"".join(gguf_string(s) for s in items)
    return out + np.asarray(items, dtype={T_F32: "<f4", T_I32: "<i4"}[etype]).tobytes()


def encode(w, ttype):
    """Row-major fp32 [rows, cols] to the bytes of a ggml tensor of type ttype."""
    if ttype == "f32":
        return w.astype("<f4").tobytes()
    if ttype == "f16":
        return w.astype("<f2").tobytes()
    if ttype == "bf16":
        bits = w.astype("<f4").view("<u4")
        rounded = bits + 0x7FFF + ((bits >> 16) & 1)  # round to nearest even
        return (rounded >> 16).astype("<u2").tobytes()
    blocks = w.reshape(-1, 32)
    if ttype == "q4_0":
        m = blocks[np.arange(len(blocks)), np.abs(blocks).argmax(axis=1)]
        d = m / -8.0
        inv = np.where(d != 0, 1.0 / np.where(d != 0, d, 1.0), 0.0)
        q = np.clip(np.floor(blocks * inv[:, None] + 8.5), 0, 15).astype("u1")
        rec = np.zeros(len(blocks), dtype=[("d", "<f2"), ("qs", "u1", 16)])
        rec["d"] = d.astype("<f2")
        rec["qs"] = q[:, :16] | (q[:, 16:] << 4)
        return rec.tobytes()
    d = np.abs(blocks).max(axis=1) / 127.0
    inv = np.where(d > 0, 1.0 / np.where(d > 0, d, 1.0), 0.0)
    q = np.clip(np.rint(blocks * inv[:, None]), -127, 127).astype("i1")
    rec = np.zeros(len(blocks), dtype=[("d", "<f2"), ("q", "i1", 32)])
    rec["d"] = d.astype("<f2")
    rec["q"] = q
    return rec.tobytes()


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("config")
    ap.add_argument("out")
    ap.add_argument("--type", choices=["bf16", "f32", "q8_0", "q4_0"], default="f32")
    ap.add_argument("--seed", type=int, default=0)
    a = ap.parse_args()
    cfg = json.load(open(a.config))
    V, E, F = cfg["vocab_size"], cfg["hidden_size"], cfg["intermediate_size"]
    L, H = cfg["num_hidden_layers"], cfg["num_attention_heads"]
    KV = cfg.get("num_key_value_heads", H)
    D = cfg.get("head_dim") or E // H
    tie = cfg.get("tie_word_embeddings", cfg.get("model_type", "").startswith("gemma"))

    tensors = [("token_embd.weight", (V, E), False), ("output_norm.weight", (E,), True)]
    if not tie:
        tensors.append(("output.weight", (V, E), False))
    for i in range(L):
        p = f"blk.{i}."
        tensors += [(p + "attn_norm.weight", (E,), True), (p + "attn_q.weight", (H * D, E), False),
                    (p + "attn_k.weight", (KV * D, E), False), (p + "attn_v.weight", (KV * D, E), False),
                    (p + "attn_output.weight", (E, H * D), False), (p + "ffn_norm.weight", (E,), True),
                    (p + "ffn_gate.weight", (F, E), False), (p + "ffn_up.weight", (F, E), False),
                    (p + "ffn_down.weight", (E, F), False)]

    pieces = ["<unk>", "<s>", "</s>"] + [f"<0x{b:02X}>" for b in range(256)]
    pieces += [f"t{i}" for i in range(V - len(pieces))]
    types = [2, 3, 3] + [6] * 256 + [1] * (V - 259)  # unknown, control, byte, normal
    meta = [
        kv("general.architecture", T_STRING, "llama"),
        kv("general.name", T_STRING, "random " + a.config),
        kv("general.file_type", T_U32, FILE_TYPE[a.type]),
        kv("general.alignment", T_U32, ALIGN),
        kv("llama.context_length", T_U32, int(cfg.get("max_position_embeddings", 4096))),
        kv("llama.embedding_length", T_U32, E),
        kv("llama.block_count", T_U32, L),
        kv("llama.feed_forward_length", T_U32, F),
        kv("llama.attention.head_count", T_U32, H),
        kv("llama.attention.head_count_kv", T_U32, KV),
        kv("llama.attention.key_length", T_U32, D),
        kv("llama.attention.value_length", T_U32, D),
        kv("llama.rope.dimension_count", T_U32, D),
        kv("llama.rope.freq_base", T_F32, float(cfg.get("rope_theta", 10000.0))),
        kv("llama.attention.layer_norm_rms_epsilon", T_F32, float(cfg.get("rms_norm_eps", 1e-6))),
        kv("llama.vocab_size", T_U32, V),
        kv("tokenizer.ggml.model", T_STRING, "llama"),
        kv("tokenizer.ggml.tokens", T_ARRAY, (T_STRING, pieces)),
        kv("tokenizer.ggml.scores", T_ARRAY, (T_F32, [0.0] * V)),
        kv("tokenizer.ggml.token_type", T_ARRAY, (T_I32, types)),
        kv("tokenizer.ggml.unknown_token_id", T_U32, 0),
        kv("tokenizer.ggml.bos_token_id", T_U32, 1),
        kv("tokenizer.ggml.eos_token_id", T_U32, 2),
    ]

    rng = np.random.default_rng(a.seed)
    infos, blobs, offset = [], [], 0
    for name, shape, is_norm in tensors:
        ttype = "f32" if is_norm else a.type
        head = name == "output.weight" or (tie and name == "token_embd.weight")
        if ttype == "q4_0" and head:
            ttype = "q8_0"
        if ttype in ("q8_0", "q4_0") and shape[-1] % 32:
            ttype = "f16"  # as llama-quantize falls back for rows q8_0 blocks cannot tile
        w = np.ones(shape, np.float32) if is_norm else \
            (rng.standard_normal(shape, dtype=np.float32) * 0.02)
        data = encode(w.reshape(-1, shape[-1]), ttype)
        dims = list(reversed(shape))
        infos.append(gguf_string(name) + struct.pack("<I", len(dims)) +
                     struct.pack(f"<{len(dims)}Q", *dims) + struct.pack("<IQ", GGML[ttype], offset))
        pad = (-len(data)) % ALIGN
        blobs.append(data + b"\0" * pad)
        offset += len(data) + pad

    with open(a.out, "wb") as f:
        f.write(struct.pack("<IIQQ", 0x46554747, 3, len(tensors), len(meta)))
        for m in meta:
            f.write(m)
        for info in infos:
            f.write(info)
        f.write(b"\0" * ((-f.tell()) % ALIGN))
        for b in blobs:
            f.write(b)


if __name__ == "__main__":
    main()
