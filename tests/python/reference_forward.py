#!/usr/bin/env python3
"""An independent re-implementation of the MSWA forward pass in PyTorch (Debian python3-torch).

Reads a model directory (config.json + model.safetensors, parsed here by hand so nothing is shared
with the C++ reader) and a logits file written by `mswa-model logits`, recomputes the logits in
float64 and compares. Catches transposes, name-mapping and RoPE-convention errors in the C++ code.

Usage: reference_forward.py MODEL_DIR LOGITS_FILE [--tolerance 1e-4]
Exit status 0 when max |python - c++| <= tolerance.
"""
import json
import math
import struct
import sys

import numpy as np
import torch


def read_safetensors(path):
    with open(path, "rb") as f:
        data = f.read()
    (n,) = struct.unpack("<Q", data[:8])
    header = json.loads(data[8 : 8 + n])
    meta = header.pop("__metadata__", {})
    base = 8 + n
    tensors = {}
    for name, info in header.items():
        begin, end = info["data_offsets"]
        raw = data[base + begin : base + end]
        dtype = info["dtype"]
        if dtype == "F32":
            arr = np.frombuffer(raw, dtype="<f4").astype(np.float64)
        elif dtype == "F16":
            arr = np.frombuffer(raw, dtype="<f2").astype(np.float64)
        elif dtype == "BF16":
            bits = np.frombuffer(raw, dtype="<u2").astype(np.uint32) << 16
            arr = bits.view(np.float32).astype(np.float64)
        else:
            raise ValueError(f"{path}: unsupported dtype {dtype} for {name}")
        tensors[name] = torch.from_numpy(arr.copy()).reshape(info["shape"])
    return tensors, meta


def rms_norm(x, w, eps):
    return x / torch.sqrt((x * x).mean(dim=-1, keepdim=True) + eps) * w


def rope(x, positions, theta):
    # x: (T, heads, D); Llama "rotate half": pairs are (x[i], x[i + D/2]).
    d = x.shape[-1]
    inv_freq = torch.tensor([theta ** (-2.0 * i / d) for i in range(d // 2)], dtype=torch.float64)
    angles = torch.outer(torch.tensor(positions, dtype=torch.float64), inv_freq)  # (T, D/2)
    cos, sin = torch.cos(angles)[:, None, :], torch.sin(angles)[:, None, :]
    x1, x2 = x[..., : d // 2], x[..., d // 2 :]
    return torch.cat([x1 * cos - x2 * sin, x2 * cos + x1 * sin], dim=-1)


def forward(cfg, w, tokens, start_pos):
    T = len(tokens)
    H, KV, D = cfg["num_attention_heads"], cfg["num_key_value_heads"], cfg["head_dim"]
    eps = cfg["rms_norm_eps"]
    positions = [start_pos + i for i in range(T)]
    pos = torch.tensor(positions, dtype=torch.float64)
    dist = pos[:, None] - pos[None, :]  # query - key
    x = w["model.embed_tokens.weight"][torch.tensor(tokens)]
    for l in range(cfg["num_hidden_layers"]):
        p = f"model.layers.{l}."
        h = rms_norm(x, w[p + "input_layernorm.weight"], eps)
        q = (h @ w[p + "self_attn.q_proj.weight"].T).reshape(T, H, D)
        k = (h @ w[p + "self_attn.k_proj.weight"].T).reshape(T, KV, D)
        v = (h @ w[p + "self_attn.v_proj.weight"].T).reshape(T, KV, D)
        q, k = rope(q, positions, cfg["rope_theta"]), rope(k, positions, cfg["rope_theta"])
        rep = H // KV
        k = k.repeat_interleave(rep, dim=1)  # (T, H, D)
        v = v.repeat_interleave(rep, dim=1)
        scores = torch.einsum("qhd,khd->hqk", q, k) / math.sqrt(D)  # (H, T, T)
        win = torch.tensor(cfg["attention_windows"][l], dtype=torch.float64)[:, None, None]
        visible = (dist[None] >= 0) & ((win == 0) | (dist[None] < win))
        scores = scores.masked_fill(~visible, float("-inf"))
        att = torch.softmax(scores, dim=-1)
        out = torch.einsum("hqk,khd->qhd", att, v).reshape(T, H * D)
        x = x + out @ w[p + "self_attn.o_proj.weight"].T
        h2 = rms_norm(x, w[p + "post_attention_layernorm.weight"], eps)
        gate = h2 @ w[p + "mlp.gate_proj.weight"].T
        up = h2 @ w[p + "mlp.up_proj.weight"].T
        x = x + (torch.nn.functional.silu(gate) * up) @ w[p + "mlp.down_proj.weight"].T
    x = rms_norm(x, w["model.norm.weight"], eps)
    head = w["model.embed_tokens.weight"] if cfg["tie_word_embeddings"] else w["lm_head.weight"]
    return x @ head.T


def main():
    args = sys.argv[1:]
    tol = 1e-4
    if "--tolerance" in args:
        i = args.index("--tolerance")
        tol = float(args[i + 1])
        del args[i : i + 2]
    model_dir, logits_file = args
    with open(f"{model_dir}/config.json") as f:
        cfg = json.load(f)
    weights, _ = read_safetensors(f"{model_dir}/model.safetensors")
    out, meta = read_safetensors(logits_file)
    tokens = [int(t) for t in meta["tokens"].split(",")]
    start_pos = int(meta.get("start_pos", "0"))
    expected = forward(cfg, weights, tokens, start_pos)
    got = out["logits"]
    if tuple(got.shape) != tuple(expected.shape):
        print(f"shape mismatch: c++ {tuple(got.shape)} python {tuple(expected.shape)}")
        return 1
    diff = (got - expected).abs().max().item()
    scale = expected.abs().max().item()
    print(f"{model_dir}: {len(tokens)} tokens from position {start_pos}: "
          f"max |c++ - python| = {diff:.3g} (logits up to {scale:.3g}, tolerance {tol:g})")
    return 0 if diff <= tol else 1


if __name__ == "__main__":
    sys.exit(main())
