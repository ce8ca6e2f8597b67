"""The float64 forward of hf_reference.py: a model directory's weights as canonical per-layer
tensors (load_model), the vectorized forward and an explicit-loop one to check it against.
"""
import json
import math
import os
import sys

import numpy as np

from hf_families import describe
from hf_safetensors import bf16_round, read_model_tensors


def load_model(model_dir):
    with open(os.path.join(model_dir, "config.json")) as f:
        cfg = json.load(f)
    spec = describe(cfg)
    tensors = read_model_tensors(model_dir)
    prefix = next((p for p in spec["prefixes"] if p + "embed_tokens.weight" in tensors), None)
    if prefix is None:
        raise ValueError(f"no embed_tokens.weight under any of {spec['prefixes']}")
    used = set()

    def t(name, shape, required=True):
        full = name if name.startswith(("lm_head", "language_model.lm_head")) else prefix + name
        if full not in tensors:
            if required:
                raise ValueError(f"missing tensor {full}")
            return None
        arr, _ = tensors[full]
        if tuple(arr.shape) != tuple(shape):
            raise ValueError(f"tensor {full}: shape {list(arr.shape)}, expected {list(shape)}")
        used.add(full)
        return arr

    V, E, F, H, KV, D = (spec[k] for k in ("V", "E", "F", "H", "KV", "D"))
    b = spec["bias"]
    w = {"embed": t("embed_tokens.weight", (V, E)), "final_norm": t("norm.weight", (E,))}
    spec["embed_dtype"] = tensors[prefix + "embed_tokens.weight"][1]
    if spec["tie"]:
        w["lm_head"] = w["embed"]
    else:
        name = "lm_head.weight" if "lm_head.weight" in tensors else "language_model.lm_head.weight"
        w["lm_head"] = t(name, (V, E))
    layers = []
    for i in range(spec["L"]):
        p = f"layers.{i}."
        lw = {}
        if spec["fused"]:
            qkv = t(p + "self_attn.qkv_proj.weight", ((H + 2 * KV) * D, E))
            lw["q"], lw["k"], lw["v"] = qkv[:H * D], qkv[H * D:(H + KV) * D], qkv[(H + KV) * D:]
            gu = t(p + "mlp.gate_up_proj.weight", (2 * F, E))
            lw["gate"], lw["up"] = gu[:F], gu[F:]
        else:
            lw["q"] = t(p + "self_attn.q_proj.weight", (H * D, E))
            lw["k"] = t(p + "self_attn.k_proj.weight", (KV * D, E))
            lw["v"] = t(p + "self_attn.v_proj.weight", (KV * D, E))
            lw["gate"] = t(p + "mlp.gate_proj.weight", (F, E))
            lw["up"] = t(p + "mlp.up_proj.weight", (F, E))
        lw["o"] = t(p + "self_attn.o_proj.weight", (E, H * D))
        lw["down"] = t(p + "mlp.down_proj.weight", (E, F))
        for key, n, rows in (("q", "q_proj", H * D), ("k", "k_proj", KV * D),
                             ("v", "v_proj", KV * D), ("o", "o_proj", E)):
            lw["b" + key] = t(p + f"self_attn.{n}.bias", (rows,)) if b[key] else None
        for key, n, rows in (("gate", "gate_proj", F), ("up", "up_proj", F), ("down", "down_proj", E)):
            lw["b" + key] = t(p + f"mlp.{n}.bias", (rows,)) if b["mlp"] else None
        lw["attn_in_norm"] = t(p + "input_layernorm.weight", (E,))
        if spec["four_norms"]:
            lw["attn_out_norm"] = t(p + "post_attention_layernorm.weight", (E,))
            lw["mlp_in_norm"] = t(p + "pre_feedforward_layernorm.weight", (E,))
            lw["mlp_out_norm"] = t(p + "post_feedforward_layernorm.weight", (E,))
        else:
            lw["attn_out_norm"] = lw["mlp_out_norm"] = None
            lw["mlp_in_norm"] = t(p + "post_attention_layernorm.weight", (E,))
        if spec["qk_norm"]:
            lw["q_norm"] = t(p + "self_attn.q_norm.weight", (D,))
            lw["k_norm"] = t(p + "self_attn.k_norm.weight", (D,))
        layers.append(lw)
    w["layers"] = layers
    ignored = [n for n in tensors if n not in used and "vision_tower" not in n
               and "multi_modal_projector" not in n and not (spec["tie"] and n.endswith("lm_head.weight"))]
    if ignored:
        print(f"note: tensors not used by {spec['family']}: {sorted(ignored)[:8]}", file=sys.stderr)
    return cfg, spec, w


def embed_scale_value(spec):
    s = spec["embed_scale"]
    if s is None:
        return None
    if s == "sqrt_hidden_rounded":  # torch.tensor(hidden ** 0.5) then to the weights' dtype
        v = np.float64(np.float32(spec["E"] ** 0.5))
        if spec["embed_dtype"] == "BF16":
            v = bf16_round(np.array([v]))[0]
        elif spec["embed_dtype"] == "F16":
            v = np.float64(np.float16(v))
        return float(v)
    if s == "sqrt_hidden_exact":
        return spec["E"] ** 0.5
    return float(s)


def rms_norm(x, w, eps, offset):
    return x / np.sqrt(np.mean(x * x, axis=-1, keepdims=True) + eps) * (offset + w)


def activation(name, x):
    if name == "silu":
        return x / (1.0 + np.exp(-x))
    if name == "gelu_tanh":
        return 0.5 * x * (1.0 + np.tanh(math.sqrt(2.0 / math.pi) * (x + 0.044715 * x ** 3)))
    raise ValueError(name)


def apply_rope(x, pos, inv, rot, interleaved):
    """x: (T, heads, D). Rotate-half pairs (i, i + rot/2) over the first rot dims."""
    out = x.copy()
    half = rot // 2
    ang = pos[:, None] * inv[None, :half]
    c, s = np.cos(ang)[:, None, :], np.sin(ang)[:, None, :]
    if interleaved:
        a, b = x[..., 0:rot:2], x[..., 1:rot:2]
        out[..., 0:rot:2], out[..., 1:rot:2] = a * c - b * s, b * c + a * s
    else:
        a, b = x[..., :half], x[..., half:rot]
        out[..., :half], out[..., half:rot] = a * c - b * s, b * c + a * s
    return out


def linear(x, w, b):
    y = x @ w.T
    return y if b is None else y + b


def softcap(x, c):
    return x if c is None else c * np.tanh(x / c)


def forward(spec, w, tokens):
    """Logits (T, V) for tokens at positions 0..T-1."""
    T = len(tokens)
    H, KV, D, eps, off = spec["H"], spec["KV"], spec["D"], spec["eps"], spec["norm_offset"]
    pos = np.arange(T, dtype=np.float64)
    x = w["embed"][np.asarray(tokens)].copy()
    es = embed_scale_value(spec)
    if es is not None:
        x = x * es
    t_idx, s_idx = np.arange(T)[:, None], np.arange(T)[None, :]
    for l, lw in enumerate(w["layers"]):
        h = rms_norm(x, lw["attn_in_norm"], eps, off)
        q = linear(h, lw["q"], lw["bq"]).reshape(T, H, D)
        k = linear(h, lw["k"], lw["bk"]).reshape(T, KV, D)
        v = linear(h, lw["v"], lw["bv"]).reshape(T, KV, D)
        if spec["qk_norm"]:
            q = rms_norm(q, lw["q_norm"], eps, spec["qk_norm_offset"])
            k = rms_norm(k, lw["k_norm"], eps, spec["qk_norm_offset"])
        r = spec["rope"][l]
        q = apply_rope(q, pos, r["inv_freq"], r["rot_dim"], spec["rope_interleaved"])
        k = apply_rope(k, pos, r["inv_freq"], r["rot_dim"], spec["rope_interleaved"])
        k, v = np.repeat(k, H // KV, axis=1), np.repeat(v, H // KV, axis=1)
        scores = softcap(np.einsum("thd,shd->hts", q, k) * spec["attn_scale"], spec["attn_softcap"])
        W = spec["windows"][l]
        visible = (s_idx <= t_idx) & ((W == 0) | (s_idx > t_idx - W))
        scores = np.where(visible[None], scores, -np.inf)
        scores -= scores.max(axis=-1, keepdims=True)
        p = np.exp(scores)
        p /= p.sum(axis=-1, keepdims=True)
        a = linear(np.einsum("hts,shd->thd", p, v).reshape(T, H * D), lw["o"], lw["bo"])
        if lw["attn_out_norm"] is not None:
            a = rms_norm(a, lw["attn_out_norm"], eps, off)
        x = x + a
        h = rms_norm(x, lw["mlp_in_norm"], eps, off)
        m = activation(spec["act"], linear(h, lw["gate"], lw["bgate"])) * linear(h, lw["up"], lw["bup"])
        m = linear(m, lw["down"], lw["bdown"])
        if lw["mlp_out_norm"] is not None:
            m = rms_norm(m, lw["mlp_out_norm"], eps, off)
        x = x + m
    x = rms_norm(x, w["final_norm"], eps, off)
    return softcap(x @ w["lm_head"].T, spec["final_softcap"])


def forward_slow(spec, w, tokens):
    """The same model with explicit loops: per-vector norms, per-pair rotations, per-key window
    test (t - p < W), per-head GQA mapping h -> h // (H / KV). Only for the self-test."""
    T = len(tokens)
    H, KV, D, eps, off = spec["H"], spec["KV"], spec["D"], spec["eps"], spec["norm_offset"]
    group = H // KV

    def norm(vec, wt, o):
        ms = sum(float(e) * float(e) for e in vec) / len(vec)
        r = 1.0 / math.sqrt(ms + eps)
        return np.array([float(e) * r * (o + float(g)) for e, g in zip(vec, wt)])

    def act(z):
        if spec["act"] == "silu":
            return np.array([e / (1.0 + math.exp(-e)) for e in z])
        return np.array([0.5 * e * (1.0 + math.tanh(math.sqrt(2 / math.pi) * (e + 0.044715 * e ** 3)))
                         for e in z])

    def rot(vec, t, r):
        out = vec.copy()
        n = r["rot_dim"] // 2
        for i in range(n):
            ang = t * float(r["inv_freq"][i])
            if spec["rope_interleaved"]:
                j0, j1 = 2 * i, 2 * i + 1
            else:
                j0, j1 = i, i + n
            a, b = vec[j0], vec[j1]
            out[j0] = a * math.cos(ang) - b * math.sin(ang)
            out[j1] = b * math.cos(ang) + a * math.sin(ang)
        return out

    def lin(wt, b, vec):
        y = np.array([float(np.dot(row, vec)) for row in wt])
        return y if b is None else y + b

    es = embed_scale_value(spec)
    xs = [w["embed"][tok] * (es if es is not None else 1.0) for tok in tokens]
    for l, lw in enumerate(w["layers"]):
        r, W = spec["rope"][l], spec["windows"][l]
        qs, ks, vs = [], [], []
        for t in range(T):
            h = norm(xs[t], lw["attn_in_norm"], off)
            q = lin(lw["q"], lw["bq"], h)
            k = lin(lw["k"], lw["bk"], h)
            v = lin(lw["v"], lw["bv"], h)
            qh = [q[i * D:(i + 1) * D] for i in range(H)]
            kh = [k[i * D:(i + 1) * D] for i in range(KV)]
            if spec["qk_norm"]:
                qh = [norm(e, lw["q_norm"], spec["qk_norm_offset"]) for e in qh]
                kh = [norm(e, lw["k_norm"], spec["qk_norm_offset"]) for e in kh]
            qs.append([rot(e, t, r) for e in qh])
            ks.append([rot(e, t, r) for e in kh])
            vs.append([v[i * D:(i + 1) * D] for i in range(KV)])
        new = []
        for t in range(T):
            heads = []
            for hh in range(H):
                g = hh // group
                keys, sc = [], []
                for p in range(t + 1):
                    if W and not (t - p < W):
                        continue
                    s = float(np.dot(qs[t][hh], ks[p][g])) * spec["attn_scale"]
                    if spec["attn_softcap"] is not None:
                        s = spec["attn_softcap"] * math.tanh(s / spec["attn_softcap"])
                    keys.append(p)
                    sc.append(s)
                m = max(sc)
                e = [math.exp(s - m) for s in sc]
                z = sum(e)
                heads.append(sum((ei / z) * vs[p][g] for ei, p in zip(e, keys)))
            a = lin(lw["o"], lw["bo"], np.concatenate(heads))
            if lw["attn_out_norm"] is not None:
                a = norm(a, lw["attn_out_norm"], off)
            x = xs[t] + a
            h = norm(x, lw["mlp_in_norm"], off)
            gated = act(lin(lw["gate"], lw["bgate"], h)) * lin(lw["up"], lw["bup"], h)
            mm = lin(lw["down"], lw["bdown"], gated)
            if lw["mlp_out_norm"] is not None:
                mm = norm(mm, lw["mlp_out_norm"], off)
            new.append(x + mm)
        xs = new
    out = []
    for x in xs:
        logits = lin(w["lm_head"], None, norm(x, w["final_norm"], off))
        if spec["final_softcap"] is not None:
            logits = np.array([spec["final_softcap"] * math.tanh(e / spec["final_softcap"]) for e in logits])
        out.append(logits)
    return np.array(out)


def log_softmax(logits):
    m = logits.max(axis=-1, keepdims=True)
    return logits - m - np.log(np.exp(logits - m).sum(axis=-1, keepdims=True))
