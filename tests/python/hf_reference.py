#!/usr/bin/env python3
"""Independent float64 reference for Hugging Face model families, plus a tiny-checkpoint writer.

Nothing here is shared with the C++ code: config.json and safetensors are parsed by hand, and the
forward pass is written from the published Hugging Face definitions (transformers'
`models/<family>/configuration_<family>.py` and `modeling_<family>.py`, `modeling_rope_utils.py`
and `masking_utils.py`), read for the facts and not copied.

Subcommands
  list                                   print the variants, one a line
  make VARIANT OUT_DIR [--seed N]        write a tiny random-weight model directory in HF's layout
  make-shape SHAPE OUT_DIR [--seed N]    write a random-weight directory with the exact config and
                                         tensor shapes of a published checkpoint (gemma-3-270m in
                                         two shards with an index, SmolLM2-135M); BF16, no tokenizer
  check MODEL_DIR ENGINE_JSON [--tolerance 1e-4]
                                         compare the engine's log-probs with the float64 reference
  selftest [WORKDIR]                     check this file itself (slow path, switch flips, check fails
                                         when it should); needs no engine
  self-oracle MODEL_DIR OUT_JSON         write ENGINE_JSON from this reference (to test the harness)

ENGINE_JSON:
  {"score":    {"tokens": [t0..tn], "logprobs": [lp1..lpn]},
   "generate": {"prompt": [p0..], "tokens": [g0..], "logprobs": [l0..]}}
score.logprobs[i] = log p(tokens[i+1] | tokens[0..i]); generate.tokens were picked greedily after the
prompt and generate.logprobs[j] is the log-probability of generate.tokens[j]. Positions start at 0.

Window rule (DESIGN.md section 2, and HF's masking_utils.sliding_window_overlay
`kv_idx > q_idx - sliding_window` on top of causal `kv_idx <= q_idx`): the query at position t sees
keys p with t - W < p <= t; W = 0 is unbounded.

Everything is computed in float64: weights are converted exactly from their stored dtype (F32, F16,
BF16); RoPE angles are float64. The one value rounded to the stored dtype is Gemma's embedding
normalizer sqrt(hidden_size), because HF rounds it (see the Gemma notes below).

Facts per family (what the reference implements, and where it comes from)

llama (configuration_llama.py, modeling_llama.py, modeling_rope_utils.py)
  Pre-norm decoder: x += o_proj(attn(input_layernorm(x))); x += down(silu(gate(h)) * up(h)) with
  h = post_attention_layernorm(x); final model.norm; lm_head (or embed_tokens when
  tie_word_embeddings, default False). RMSNorm: w * x / sqrt(mean(x^2) + rms_norm_eps).
  attention_bias -> biases on q,k,v,o_proj; mlp_bias -> biases on gate,up,down_proj. head_dim
  from config, else hidden_size / num_attention_heads. Attention scale head_dim^-0.5. No window.
  RoPE "rotate half": pairs (x[i], x[i + d/2]), inv_freq[i] = theta^(-2i/d), d = head_dim *
  partial_rotary_factor. rope_scaling (old key "type", new key "rope_type"):
    linear:  inv_freq / factor.
    llama3:  wavelen = 2 pi / inv_freq; low_wl = orig / low_freq_factor; high_wl = orig /
             high_freq_factor (orig = original_max_position_embeddings);
             wavelen < high_wl: unchanged; wavelen > low_wl: inv_freq / factor;
             otherwise s = (orig / wavelen - low_freq_factor) / (high_freq_factor - low_freq_factor)
             and inv_freq = (1 - s) * inv_freq / factor + s * inv_freq.
mistral (configuration_mistral.py, modeling_mistral.py)
  Llama without biases; sliding_window (config default 4096, null = none) on every layer.
  head_dim from config when set, else hidden / heads (RoPE uses head_dim too).
qwen2 (configuration_qwen2.py, modeling_qwen2.py)
  Llama with biases on q,k,v_proj (never on o_proj, never in the MLP). head_dim = hidden / heads.
  The config sets sliding_window = None unless use_sliding_window. Without layer_types, layer i is
  "sliding_attention" iff sliding_window is not None and i >= max_window_layers: the FIRST
  max_window_layers layers are full, the later ones slide (older docstrings said the opposite; the
  code in configuration_qwen2.py and, before layer_types, the layer_idx >= max_window_layers test in
  modeling_qwen2.py agree on this).
qwen3 (configuration_qwen3.py, modeling_qwen3.py)
  qwen2's layer rule, attention_bias (default False) on q,k,v,o; head_dim from config (default
  128); q_norm / k_norm: plain RMSNorm (w * x) over head_dim, per head, after the projection and
  before RoPE.
phi3 (configuration_phi3.py, modular_phi3.py / modeling_phi3.py)
  Fused self_attn.qkv_proj [(H + 2 KV) D, E], split in the order q (H D rows), k (KV D), v (KV D).
  Fused mlp.gate_up_proj [2 F, E]: `gate, up = chunk(2)`, so rows [0, F) are gate and [F, 2F) up;
  out = down(up * silu(gate)). No biases. partial_rotary_factor: RoPE on the first
  d_rot = head_dim * factor dims of each head (rotate half within them), the rest passes through;
  inv_freq uses d_rot. sliding_window (default None) on every layer.
gemma2 (configuration_gemma2.py, modeling_gemma2.py)
  RMSNorm x / sqrt(mean(x^2) + eps) * (1 + w). Four norms per layer:
    x += post_attention_layernorm(attn(input_layernorm(x)))
    x += post_feedforward_layernorm(mlp(pre_feedforward_layernorm(x)))
  Embedding output times normalizer = torch.tensor(hidden_size ** 0.5, dtype=hidden.dtype), i.e.
  sqrt(hidden) rounded to the activation (= stored weight) dtype. MLP down(act(gate) * up) with
  hidden_activation gelu_pytorch_tanh: 0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3))).
  Attention scale query_pre_attn_scalar^-0.5; attn_logit_softcapping c: s = c tanh(s / c) after
  scaling and before the mask; final_logit_softcapping likewise on the logits. Legacy layers
  (no layer_types): layer i slides iff i is EVEN (layer_types default "sliding_attention" if
  (i + 1) % 2 else "full_attention"; older modeling code: `not bool(layer_idx % 2)`).
  Defaults: softcaps 50.0 / 30.0, rms_norm_eps 1e-6, tie_word_embeddings True.
gemma3_text / gemma3 (configuration_gemma3.py, modeling_gemma3.py)
  gemma2's block (four (1+w) norms, rounded embedding scale, GeGLU-tanh, query_pre_attn_scalar),
  plus q_norm / k_norm: (1+w) RMSNorm over head_dim per head, after the projection, BEFORE RoPE.
  Softcapping defaults to None. Legacy layer rule: layer i slides iff (i + 1) % sliding_window_pattern
  != 0 (default pattern 6: five sliding then one full). RoPE per layer type: full_attention layers use
  rope_theta (default 1e6) AND rope_scaling; sliding layers use rope_local_base_freq (default 1e4)
  with plain (default) RoPE. New form: layer_types list and rope_parameters
  {"full_attention": {...}, "sliding_attention": {...}} (a legacy rope_scaling, if also given, is
  merged into full_attention). Multimodal (model_type gemma3): text in text_config; decoder weights
  under `model.language_model.` (current save layout; the original google/gemma-3-*-it uploads use
  `language_model.model.`, both are read here), vision_tower / multi_modal_projector tensors ignored;
  lm_head tied. Missing text_config fields take Gemma3TextConfig defaults.
"""
import argparse
import copy
import json
import math
import os
import shutil
import struct
import sys
import tempfile
import zlib

import numpy as np

# --------------------------------------------------------------------------------------------
# safetensors, written and read by hand
# --------------------------------------------------------------------------------------------

DTYPE_BYTES = {"F32": 4, "F16": 2, "BF16": 2}


def bf16_round(a):
    """float64 -> float32 -> bf16 (round to nearest even) -> float64 value."""
    return bf16_decode(bf16_bits(a))


def bf16_bits(a):
    bits = np.asarray(a, dtype=np.float64).astype(np.float32).view(np.uint32).astype(np.uint64)
    bits = (bits + 0x7FFF + ((bits >> 16) & 1)) >> 16
    return bits.astype(np.uint16)


def bf16_decode(bits):
    return (bits.astype(np.uint32) << 16).view(np.float32).astype(np.float64)


def encode(arr, dtype):
    if dtype == "F32":
        return np.ascontiguousarray(arr, dtype="<f4").tobytes()
    if dtype == "F16":
        return np.ascontiguousarray(arr, dtype="<f2").tobytes()
    if dtype == "BF16":
        return np.ascontiguousarray(bf16_bits(arr), dtype="<u2").tobytes()
    raise ValueError(dtype)


def write_safetensors(path, tensors, dtype):
    """tensors: {name: float64 array}; all stored as `dtype`. Header padded with spaces to 8 bytes."""
    header = {"__metadata__": {"format": "pt"}}
    blobs, offset = [], 0
    for name in sorted(tensors):
        raw = encode(tensors[name], dtype)
        header[name] = {"dtype": dtype, "shape": list(tensors[name].shape),
                        "data_offsets": [offset, offset + len(raw)]}
        blobs.append(raw)
        offset += len(raw)
    text = json.dumps(header, separators=(",", ":")).encode()
    text += b" " * (-len(text) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(text)))
        f.write(text)
        for raw in blobs:
            f.write(raw)
    return offset


def read_safetensors(path):
    """-> {name: (float64 array, dtype)}; validates the header as a careful reader would."""
    with open(path, "rb") as f:
        data = f.read()
    if len(data) < 8:
        raise ValueError(f"{path}: too short for a safetensors file")
    (n,) = struct.unpack("<Q", data[:8])
    if n > len(data) - 8 or n > 100 << 20:
        raise ValueError(f"{path}: header length {n} does not fit the file")
    header = json.loads(data[8:8 + n])
    header.pop("__metadata__", None)
    base, size = 8 + n, len(data) - 8 - n
    out, spans = {}, []
    for name, info in header.items():
        dtype, shape = info["dtype"], info["shape"]
        begin, end = info["data_offsets"]
        if dtype not in DTYPE_BYTES:
            raise ValueError(f"{path}: tensor {name}: unsupported dtype {dtype}")
        count = int(np.prod(shape)) if shape else 1
        if not (0 <= begin <= end <= size) or end - begin != count * DTYPE_BYTES[dtype]:
            raise ValueError(f"{path}: tensor {name}: bad data_offsets {begin}..{end} for {dtype}{shape}")
        spans.append((begin, end, name))
        raw = data[base + begin:base + end]
        if dtype == "F32":
            arr = np.frombuffer(raw, dtype="<f4").astype(np.float64)
        elif dtype == "F16":
            arr = np.frombuffer(raw, dtype="<f2").astype(np.float64)
        else:
            arr = bf16_decode(np.frombuffer(raw, dtype="<u2"))
        out[name] = (arr.reshape(shape), dtype)
    spans.sort()
    for (b0, e0, n0), (b1, e1, n1) in zip(spans, spans[1:]):
        if b1 < e0:
            raise ValueError(f"{path}: tensors {n0} and {n1} overlap")
    return out


def read_model_tensors(model_dir):
    """Single model.safetensors, or shards listed in model.safetensors.index.json."""
    index = os.path.join(model_dir, "model.safetensors.index.json")
    if os.path.exists(index):
        with open(index) as f:
            idx = json.load(f)
        tensors, files = {}, sorted(set(idx["weight_map"].values()))
        for fname in files:
            part = read_safetensors(os.path.join(model_dir, fname))
            for name in part:
                if idx["weight_map"].get(name) != fname:
                    raise ValueError(f"{fname}: tensor {name} is not mapped to this shard in the index")
            tensors.update(part)
        missing = set(idx["weight_map"]) - set(tensors)
        if missing:
            raise ValueError(f"index lists tensors found in no shard: {sorted(missing)[:5]}")
        return tensors
    return read_safetensors(os.path.join(model_dir, "model.safetensors"))


# --------------------------------------------------------------------------------------------
# config.json -> spec (the family switches of one forward pass)
# --------------------------------------------------------------------------------------------

LLAMA_DEFAULTS = dict(rms_norm_eps=1e-6, rope_theta=10000.0, tie_word_embeddings=False,
                      attention_bias=False, mlp_bias=False, hidden_act="silu")
MISTRAL_DEFAULTS = dict(rms_norm_eps=1e-6, rope_theta=10000.0, tie_word_embeddings=False,
                        sliding_window=4096, hidden_act="silu")
QWEN2_DEFAULTS = dict(rms_norm_eps=1e-6, rope_theta=10000.0, tie_word_embeddings=False,
                      use_sliding_window=False, sliding_window=4096, max_window_layers=28,
                      hidden_act="silu")
QWEN3_DEFAULTS = dict(QWEN2_DEFAULTS, head_dim=128, attention_bias=False)
PHI3_DEFAULTS = dict(rms_norm_eps=1e-5, rope_theta=10000.0, tie_word_embeddings=False,
                     sliding_window=None, hidden_act="silu", partial_rotary_factor=1.0)
GEMMA2_DEFAULTS = dict(vocab_size=256000, hidden_size=2304, intermediate_size=9216,
                       num_hidden_layers=26, num_attention_heads=8, num_key_value_heads=4,
                       head_dim=256, hidden_activation="gelu_pytorch_tanh", rms_norm_eps=1e-6,
                       tie_word_embeddings=True, rope_theta=10000.0, attention_bias=False,
                       query_pre_attn_scalar=256, sliding_window=4096,
                       final_logit_softcapping=30.0, attn_logit_softcapping=50.0)
GEMMA3_TEXT_DEFAULTS = dict(vocab_size=262208, hidden_size=2304, intermediate_size=9216,
                            num_hidden_layers=26, num_attention_heads=8, num_key_value_heads=4,
                            head_dim=256, hidden_activation="gelu_pytorch_tanh", rms_norm_eps=1e-6,
                            tie_word_embeddings=True, rope_theta=1_000_000.0, attention_bias=False,
                            query_pre_attn_scalar=256, sliding_window=4096,
                            final_logit_softcapping=None, attn_logit_softcapping=None,
                            rope_scaling=None, rope_local_base_freq=10_000.0,
                            sliding_window_pattern=6)

ACTIVATIONS = {"silu": "silu", "swish": "silu", "gelu_pytorch_tanh": "gelu_tanh"}


def rope_inv_freq(params, rot_dim):
    """inv_freq (float64, rot_dim/2 entries) for one rope parameter dict (modeling_rope_utils.py)."""
    rtype = params.get("rope_type", params.get("type", "default"))
    theta = float(params["rope_theta"])
    inv = 1.0 / theta ** (np.arange(0, rot_dim, 2, dtype=np.float64) / rot_dim)
    if rtype == "default":
        return inv
    if rtype == "linear":
        return inv / float(params["factor"])
    if rtype == "llama3":
        factor = float(params["factor"])
        low, high = float(params["low_freq_factor"]), float(params["high_freq_factor"])
        orig = float(params["original_max_position_embeddings"])
        wavelen = 2 * math.pi / inv
        out = np.where(wavelen > orig / low, inv / factor, inv)
        smooth = (orig / wavelen - low) / (high - low)
        smoothed = (1 - smooth) * out / factor + smooth * out
        medium = ~(wavelen < orig / high) & ~(wavelen > orig / low)
        return np.where(medium, smoothed, out)
    raise ValueError(f"rope type {rtype!r} is not implemented by this reference")


def flat_rope_params(cfg, default_theta):
    """Llama-style single RoPE: rope_parameters (new) or rope_scaling + rope_theta (legacy)."""
    if isinstance(cfg.get("rope_parameters"), dict):
        params = dict(cfg["rope_parameters"])
    else:
        params = dict(cfg.get("rope_scaling") or {})
    if "rope_type" not in params:
        params["rope_type"] = params.pop("type", "default")
    params.setdefault("rope_theta", cfg.get("rope_theta", default_theta))
    return params


def get(cfg, defaults, key):
    v = cfg.get(key, defaults.get(key))
    if v is None and key not in defaults and key not in cfg:
        raise KeyError(f"config.json has no {key!r}")
    return v


def describe(cfg):
    """config.json -> spec dict. Raises on anything the reference does not implement."""
    mt = cfg["model_type"]
    if mt == "gemma3":
        text = dict(cfg.get("text_config") or {})
        spec = describe_gemma(text, "gemma3", GEMMA3_TEXT_DEFAULTS)
        spec["tie"] = bool(cfg.get("tie_word_embeddings", text.get("tie_word_embeddings", True)))
        spec["prefixes"] = ["model.language_model.", "language_model.model."]
        spec["model_type"] = "gemma3"
        return spec
    if mt == "gemma3_text":
        return describe_gemma(cfg, "gemma3_text", GEMMA3_TEXT_DEFAULTS)
    if mt == "gemma2":
        return describe_gemma(cfg, "gemma2", GEMMA2_DEFAULTS)
    if mt in ("llama", "mistral", "qwen2", "qwen3", "phi3"):
        return describe_llama_like(cfg, mt)
    raise ValueError(f"model_type {mt!r} is not covered by this reference")


def base_dims(cfg, defaults):
    g = lambda k: get(cfg, defaults, k)  # noqa: E731
    H = int(g("num_attention_heads"))
    KV = cfg.get("num_key_value_heads") or H
    D = cfg.get("head_dim") or defaults.get("head_dim") or g("hidden_size") // H
    return dict(V=int(g("vocab_size")), E=int(g("hidden_size")), F=int(g("intermediate_size")),
                L=int(g("num_hidden_layers")), H=H, KV=int(KV), D=int(D),
                eps=float(g("rms_norm_eps")))


def describe_llama_like(cfg, mt):
    defaults = {"llama": LLAMA_DEFAULTS, "mistral": MISTRAL_DEFAULTS, "qwen2": QWEN2_DEFAULTS,
                "qwen3": QWEN3_DEFAULTS, "phi3": PHI3_DEFAULTS}[mt]
    spec = dict(family=mt, model_type=mt, prefixes=["model."], **base_dims(cfg, defaults))
    L, D = spec["L"], spec["D"]
    act = get(cfg, defaults, "hidden_act")
    if act not in ACTIVATIONS:
        raise ValueError(f"hidden_act {act!r} not implemented")
    spec.update(norm_offset=0.0, four_norms=False, embed_scale=None, act=ACTIVATIONS[act],
                attn_scale=D ** -0.5, attn_softcap=None, final_softcap=None,
                qk_norm=(mt == "qwen3"), qk_norm_offset=0.0, rope_interleaved=False,
                tie=bool(get(cfg, defaults, "tie_word_embeddings")), fused=(mt == "phi3"))
    attn_bias = bool(cfg.get("attention_bias", defaults.get("attention_bias", False)))
    if mt == "llama":
        mlp_bias = bool(cfg.get("mlp_bias", defaults["mlp_bias"]))
        spec["bias"] = dict(q=attn_bias, k=attn_bias, v=attn_bias, o=attn_bias, mlp=mlp_bias)
    elif mt == "qwen2":
        spec["bias"] = dict(q=True, k=True, v=True, o=False, mlp=False)
    elif mt == "qwen3":
        spec["bias"] = dict(q=attn_bias, k=attn_bias, v=attn_bias, o=attn_bias, mlp=False)
    else:  # mistral, phi3: no biases anywhere
        spec["bias"] = dict(q=False, k=False, v=False, o=False, mlp=False)
    # windows
    if mt == "llama":
        types, W = ["full_attention"] * L, 0
    elif mt in ("mistral", "phi3"):
        sw = cfg.get("sliding_window", defaults["sliding_window"])
        types, W = ["sliding_attention" if sw else "full_attention"] * L, int(sw or 0)
    else:  # qwen2 / qwen3
        sw = cfg.get("sliding_window", defaults["sliding_window"])
        if not cfg.get("use_sliding_window", defaults["use_sliding_window"]):
            sw = None
        mwl = int(cfg.get("max_window_layers", defaults["max_window_layers"]))
        types = cfg.get("layer_types") or [
            "sliding_attention" if sw is not None and i >= mwl else "full_attention" for i in range(L)]
        W = int(sw or 0)
    spec["layer_types"] = list(types)
    spec["windows"] = [W if t == "sliding_attention" else 0 for t in types]
    # rope
    params = flat_rope_params(cfg, defaults["rope_theta"])
    prf = cfg.get("partial_rotary_factor", params.get("partial_rotary_factor",
                                                      defaults.get("partial_rotary_factor", 1.0)))
    rot = int(D * float(prf))
    inv = rope_inv_freq(params, rot)
    spec["rope"] = [dict(inv_freq=inv, rot_dim=rot, params=params) for _ in range(L)]
    return spec


def describe_gemma(cfg, family, defaults):
    g = lambda k: cfg.get(k, defaults.get(k))  # noqa: E731
    spec = dict(family=family, model_type=family, prefixes=["model."], **base_dims(cfg, defaults))
    L, D = spec["L"], spec["D"]
    act = g("hidden_activation")
    if act not in ACTIVATIONS:
        raise ValueError(f"hidden_activation {act!r} not implemented")
    ab = bool(g("attention_bias"))
    spec.update(norm_offset=1.0, four_norms=True, embed_scale="sqrt_hidden_rounded",
                act=ACTIVATIONS[act], attn_scale=float(g("query_pre_attn_scalar")) ** -0.5,
                attn_softcap=g("attn_logit_softcapping"), final_softcap=g("final_logit_softcapping"),
                qk_norm=(family != "gemma2"), qk_norm_offset=1.0, rope_interleaved=False,
                tie=bool(g("tie_word_embeddings")), fused=False,
                bias=dict(q=ab, k=ab, v=ab, o=ab, mlp=False))
    types = cfg.get("layer_types")
    if not types:
        if family == "gemma2":
            types = ["sliding_attention" if (i + 1) % 2 else "full_attention" for i in range(L)]
        else:
            p = int(g("sliding_window_pattern"))
            types = ["sliding_attention" if (i + 1) % p else "full_attention" for i in range(L)]
    W = int(g("sliding_window") or 0)
    spec["layer_types"] = list(types)
    spec["windows"] = [W if t == "sliding_attention" else 0 for t in types]
    if family == "gemma2":
        params = flat_rope_params(cfg, defaults["rope_theta"])
        per_type = {"full_attention": params, "sliding_attention": params}
    else:
        rp = cfg.get("rope_parameters")
        if isinstance(rp, dict) and ("full_attention" in rp or "sliding_attention" in rp):
            per_type = {k: dict(v) for k, v in rp.items()}
        else:
            per_type = {"full_attention": {"rope_type": "default"},
                        "sliding_attention": {"rope_type": "default"}}
        if cfg.get("rope_scaling"):
            per_type.setdefault("full_attention", {"rope_type": "default"}).update(cfg["rope_scaling"])
        per_type.setdefault("full_attention", {"rope_type": "default"})
        per_type.setdefault("sliding_attention", {"rope_type": "default"})
        per_type["full_attention"].setdefault("rope_theta", cfg.get("rope_theta", 1_000_000.0))
        per_type["sliding_attention"].setdefault("rope_theta",
                                                 cfg.get("rope_local_base_freq", 10_000.0))
        for v in per_type.values():
            if "rope_type" not in v:
                v["rope_type"] = v.pop("type", "default")
    spec["rope"] = [dict(inv_freq=rope_inv_freq(per_type[t], D), rot_dim=D, params=per_type[t])
                    for t in types]
    return spec


# --------------------------------------------------------------------------------------------
# weights -> canonical per-layer tensors
# --------------------------------------------------------------------------------------------

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


# --------------------------------------------------------------------------------------------
# the float64 forward
# --------------------------------------------------------------------------------------------

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


# --------------------------------------------------------------------------------------------
# check: engine JSON vs reference
# --------------------------------------------------------------------------------------------

def compare(spec, w, engine, tol, label):
    """-> (ok, lines). Every failure names family, section, position, expected and got."""
    lines, failures, max_err = [], [], 0.0
    sc = engine.get("score")
    n_score = n_gen = 0
    if sc:
        toks, lps = sc["tokens"], sc["logprobs"]
        if len(lps) != len(toks) - 1:
            return False, [f"{label}: score has {len(toks)} tokens but {len(lps)} logprobs (want n-1)"]
        if any(not 0 <= t < spec["V"] for t in toks):
            return False, [f"{label}: score token outside the vocabulary of {spec['V']}"]
        ref = log_softmax(forward(spec, w, toks))
        for i, got in enumerate(lps):
            exp = float(ref[i, toks[i + 1]])
            err = abs(exp - float(got))
            max_err = max(max_err, err)
            if not err <= tol:
                failures.append(f"score position {i} (predicting token {toks[i + 1]} at position "
                                f"{i + 1}): expected logprob {exp:.6f}, got {float(got):.6f} "
                                f"(|diff| {err:.3g}, window {spec['windows']})")
            n_score += 1
    gen = engine.get("generate")
    if gen:
        prompt, toks, lps = gen["prompt"], gen["tokens"], gen["logprobs"]
        if len(toks) != len(lps) or not prompt:
            return False, [f"{label}: generate needs a prompt and one logprob per token"]
        if toks:
            seq = list(prompt) + list(toks)
            logits = forward(spec, w, seq[:-1])
            ref = log_softmax(logits)
            for j, (g, got) in enumerate(zip(toks, lps)):
                row = len(prompt) - 1 + j
                exp = float(ref[row, g])
                err = abs(exp - float(got))
                max_err = max(max_err, err)
                top = np.argsort(-logits[row])[:2]
                near_tie = logits[row, top[0]] - logits[row, top[1]] < 1e-3
                if not err <= tol:
                    failures.append(f"generate step {j} (position {row + 1}): token {g}: expected "
                                    f"logprob {exp:.6f}, got {float(got):.6f} (|diff| {err:.3g})")
                if g != top[0] and not (near_tie and logits[row, top[0]] - logits[row, g] < 1e-3):
                    failures.append(f"generate step {j} (position {row + 1}): engine picked {g} "
                                    f"(ref logprob {exp:.6f}) but the reference argmax is {top[0]} "
                                    f"(logprob {float(ref[row, top[0]]):.6f})")
                n_gen += 1
    lines.append(f"{label}: max |err| {max_err:.3g} over {n_score} score positions and {n_gen} "
                 f"generated tokens (tolerance {tol:g}); windows {spec['windows']}")
    if failures:
        lines.append(f"{label}: MISMATCH, {len(failures)} failures; first ones:")
        lines.extend(f"  {label}: {f}" for f in failures[:8])
    return not failures, lines


def cmd_check(args):
    cfg, spec, w = load_model(args.model_dir)
    with open(args.engine_json) as f:
        engine = json.load(f)
    label = f"{os.path.basename(os.path.normpath(args.model_dir))} [{spec['family']}]"
    ok, lines = compare(spec, w, engine, args.tolerance, label)
    print("\n".join(lines))
    return 0 if ok else 1


def self_oracle(spec, w, seed=1234, n_score=64, n_prompt=8, n_gen=24):
    """What an engine should write: random score tokens, and a greedy continuation of a prompt."""
    rng = np.random.default_rng(seed)
    toks = [int(t) for t in rng.integers(0, spec["V"], n_score)]
    ref = log_softmax(forward(spec, w, toks))
    score = {"tokens": toks, "logprobs": [float(ref[i, toks[i + 1]]) for i in range(n_score - 1)]}
    seq = [int(t) for t in rng.integers(0, spec["V"], n_prompt)]
    gen_t, gen_l = [], []
    for _ in range(n_gen):
        lp = log_softmax(forward(spec, w, seq)[-1])
        g = int(np.argmax(lp))
        gen_t.append(g)
        gen_l.append(float(lp[g]))
        seq.append(g)
    return {"score": score,
            "generate": {"prompt": seq[:n_prompt], "tokens": gen_t, "logprobs": gen_l}}


def cmd_self_oracle(args):
    _, spec, w = load_model(args.model_dir)
    with open(args.out_json, "w") as f:
        json.dump(self_oracle(spec, w), f)
    return 0


# --------------------------------------------------------------------------------------------
# make: tiny random checkpoints in HF's layout
# --------------------------------------------------------------------------------------------

class Gen:
    """Random weights: projections N(0, s/sqrt(in)); norms N(0, 0.3) for (1+w), 1+N(0, 0.3) else."""

    def __init__(self, rng, gemma_norms):
        self.rng, self.gemma = rng, gemma_norms

    def proj(self, out, inp, s=0.5):
        return self.rng.normal(0.0, s / math.sqrt(inp), (out, inp))

    def norm(self, n):
        w = self.rng.normal(0.0, 0.3, n)
        return w if self.gemma else 1.0 + w

    def bias(self, n, s=0.3):
        return self.rng.normal(0.0, s, n)


def decoder_tensors(g, prefix, d, *, bias=(), mlp_bias=False, four_norms=False, qk_norm=False,
                    fused=False, tie=False, embed_std=1.0, lm_std=0.2):
    V, E, F, L, H, KV, D = (d[k] for k in ("V", "E", "F", "L", "H", "KV", "D"))
    t = {prefix + "embed_tokens.weight": g.rng.normal(0.0, embed_std, (V, E)),
         prefix + "norm.weight": g.norm(E)}
    if not tie:
        t["lm_head.weight"] = g.rng.normal(0.0, lm_std, (V, E))
    for i in range(L):
        p = f"{prefix}layers.{i}."
        q, k, v = g.proj(H * D, E, 1.0), g.proj(KV * D, E, 1.0), g.proj(KV * D, E)
        if fused:
            t[p + "self_attn.qkv_proj.weight"] = np.concatenate([q, k, v])
        else:
            t[p + "self_attn.q_proj.weight"], t[p + "self_attn.k_proj.weight"] = q, k
            t[p + "self_attn.v_proj.weight"] = v
        t[p + "self_attn.o_proj.weight"] = g.proj(E, H * D)
        for name, rows in (("q", H * D), ("k", KV * D), ("v", KV * D), ("o", E)):
            if name in bias:
                t[p + f"self_attn.{name}_proj.bias"] = g.bias(rows)
        gate, up = g.proj(F, E, 1.0), g.proj(F, E, 1.0)
        if fused:
            t[p + "mlp.gate_up_proj.weight"] = np.concatenate([gate, up])
        else:
            t[p + "mlp.gate_proj.weight"], t[p + "mlp.up_proj.weight"] = gate, up
        t[p + "mlp.down_proj.weight"] = g.proj(E, F)
        if mlp_bias:
            t[p + "mlp.gate_proj.bias"], t[p + "mlp.up_proj.bias"] = g.bias(F), g.bias(F)
            t[p + "mlp.down_proj.bias"] = g.bias(E)
        t[p + "input_layernorm.weight"] = g.norm(E)
        t[p + "post_attention_layernorm.weight"] = g.norm(E)
        if four_norms:
            t[p + "pre_feedforward_layernorm.weight"] = g.norm(E)
            t[p + "post_feedforward_layernorm.weight"] = g.norm(E)
        if qk_norm:
            t[p + "self_attn.q_norm.weight"] = g.norm(D)
            t[p + "self_attn.k_norm.weight"] = g.norm(D)
    return t


def dims(V, E, F, L, H, KV, D):
    return dict(V=V, E=E, F=F, L=L, H=H, KV=KV, D=D)


def common_cfg(arch, mt, d, **extra):
    cfg = {"architectures": [arch], "model_type": mt, "vocab_size": d["V"], "hidden_size": d["E"],
           "intermediate_size": d["F"], "num_hidden_layers": d["L"],
           "num_attention_heads": d["H"], "num_key_value_heads": d["KV"],
           "initializer_range": 0.02, "use_cache": True, "transformers_version": "4.56.1"}
    cfg.update(extra)
    return cfg


def v_llama(g):
    d = dims(V=320, E=64, F=96, L=4, H=4, KV=2, D=16)
    cfg = common_cfg("LlamaForCausalLM", "llama", d, head_dim=16, hidden_act="silu",
                     max_position_embeddings=2048, rms_norm_eps=1e-5, rope_theta=10000.0,
                     rope_scaling={"factor": 8.0, "low_freq_factor": 1.0, "high_freq_factor": 4.0,
                                   "original_max_position_embeddings": 32, "rope_type": "llama3"},
                     attention_bias=True, attention_dropout=0.0, mlp_bias=True, pretraining_tp=1,
                     tie_word_embeddings=False, bos_token_id=256, eos_token_id=[257, 259],
                     torch_dtype="bfloat16")
    gen = {"bos_token_id": 256, "eos_token_id": [257, 259], "do_sample": True,
           "temperature": 0.6, "top_p": 0.9, "transformers_version": "4.56.1"}
    t = decoder_tensors(g, "model.", d, bias=("q", "k", "v", "o"), mlp_bias=True)
    return cfg, gen, t, "BF16", 2


def v_llama_linear(g):
    d = dims(V=300, E=64, F=96, L=4, H=4, KV=2, D=16)
    cfg = common_cfg("LlamaForCausalLM", "llama", d, hidden_act="silu", max_position_embeddings=8192,
                     rms_norm_eps=1e-5, rope_theta=10000.0, rope_scaling={"type": "linear", "factor": 4.0},
                     attention_bias=False, attention_dropout=0.0, mlp_bias=False, pretraining_tp=1,
                     tie_word_embeddings=True, bos_token_id=1, eos_token_id=2, pad_token_id=2,
                     torch_dtype="float32")
    gen = {"bos_token_id": 1, "eos_token_id": 2, "pad_token_id": 2, "transformers_version": "4.56.1"}
    return cfg, gen, decoder_tensors(g, "model.", d, tie=True, embed_std=0.22), "F32", 1


def v_mistral(g):
    d = dims(V=400, E=64, F=96, L=4, H=4, KV=2, D=32)
    cfg = common_cfg("MistralForCausalLM", "mistral", d, head_dim=32, hidden_act="silu",
                     max_position_embeddings=32768, rms_norm_eps=1e-5, rope_theta=10000.0,
                     sliding_window=6, attention_dropout=0.0, tie_word_embeddings=False,
                     bos_token_id=1, eos_token_id=2, torch_dtype="float32")
    gen = {"bos_token_id": 1, "eos_token_id": 2, "transformers_version": "4.56.1"}
    return cfg, gen, decoder_tensors(g, "model.", d), "F32", 1


def v_gemma2(g):
    d = dims(V=320, E=72, F=96, L=4, H=4, KV=2, D=32)
    cfg = common_cfg("Gemma2ForCausalLM", "gemma2", d, head_dim=32,
                     hidden_act="gelu_pytorch_tanh", hidden_activation="gelu_pytorch_tanh",
                     max_position_embeddings=8192, rms_norm_eps=1e-6, rope_theta=10000.0,
                     attention_bias=False, attention_dropout=0.0, query_pre_attn_scalar=24,
                     sliding_window=5, attn_logit_softcapping=5.0, final_logit_softcapping=3.0,
                     cache_implementation="hybrid", tie_word_embeddings=True, pad_token_id=0,
                     bos_token_id=2, eos_token_id=1, torch_dtype="bfloat16")
    gen = {"bos_token_id": 2, "eos_token_id": [1, 107], "pad_token_id": 0,
           "cache_implementation": "hybrid", "transformers_version": "4.56.1"}
    g.gemma = True
    t = decoder_tensors(g, "model.", d, four_norms=True, tie=True, embed_std=0.22)
    return cfg, gen, t, "BF16", 1


GEMMA3_DIMS = dims(V=320, E=72, F=96, L=6, H=4, KV=2, D=32)


def gemma3_text_cfg(d, **extra):
    cfg = common_cfg("Gemma3ForCausalLM", "gemma3_text", d, head_dim=32,
                     hidden_activation="gelu_pytorch_tanh", max_position_embeddings=32768,
                     rms_norm_eps=1e-6, attention_bias=False, attention_dropout=0.0,
                     query_pre_attn_scalar=24, sliding_window=4, attn_logit_softcapping=None,
                     final_logit_softcapping=None, cache_implementation="hybrid",
                     tie_word_embeddings=True, pad_token_id=0, bos_token_id=2, eos_token_id=[1, 106])
    cfg.update(extra)
    return cfg


GEMMA3_GEN = {"bos_token_id": 2, "eos_token_id": [1, 106], "pad_token_id": 0, "do_sample": True,
              "top_k": 64, "top_p": 0.95, "cache_implementation": "hybrid",
              "transformers_version": "4.56.1"}


def v_gemma3_text_legacy(g):
    cfg = gemma3_text_cfg(GEMMA3_DIMS, sliding_window_pattern=3, rope_theta=1_000_000.0,
                          rope_scaling={"rope_type": "linear", "factor": 8.0},
                          rope_local_base_freq=10000.0, torch_dtype="bfloat16")
    g.gemma = True
    t = decoder_tensors(g, "model.", GEMMA3_DIMS, four_norms=True, qk_norm=True, tie=True,
                        embed_std=0.22)
    return cfg, dict(GEMMA3_GEN), t, "BF16", 1


def v_gemma3_text_new(g):
    types = ["sliding_attention" if (i + 1) % 3 else "full_attention" for i in range(GEMMA3_DIMS["L"])]
    cfg = gemma3_text_cfg(GEMMA3_DIMS, layer_types=types, rope_parameters={
        "full_attention": {"rope_type": "linear", "factor": 8.0, "rope_theta": 1_000_000.0},
        "sliding_attention": {"rope_type": "default", "rope_theta": 10000.0}},
        dtype="float32", transformers_version="5.0.0")
    g.gemma = True
    t = decoder_tensors(g, "model.", GEMMA3_DIMS, four_norms=True, qk_norm=True, tie=True,
                        embed_std=0.22)
    return cfg, dict(GEMMA3_GEN, transformers_version="5.0.0"), t, "F32", 1


def v_gemma3_multimodal(g):
    d = GEMMA3_DIMS
    # Sparse text_config as in google/gemma-3-4b-it: rope_theta, rope_local_base_freq,
    # sliding_window_pattern (6), rms_norm_eps, hidden_activation, softcapping are left to defaults.
    text = {"model_type": "gemma3_text", "vocab_size": d["V"], "hidden_size": d["E"],
            "intermediate_size": d["F"], "num_hidden_layers": d["L"], "num_attention_heads": d["H"],
            "num_key_value_heads": d["KV"], "head_dim": d["D"], "query_pre_attn_scalar": 24,
            "sliding_window": 4, "rope_scaling": {"factor": 8.0, "rope_type": "linear"}}
    vis = {"hidden_size": 32, "image_size": 28, "intermediate_size": 64,
           "model_type": "siglip_vision_model", "num_attention_heads": 2, "num_hidden_layers": 1,
           "patch_size": 14, "vision_use_head": False}
    cfg = {"architectures": ["Gemma3ForConditionalGeneration"], "model_type": "gemma3",
           "boi_token_index": 300, "eoi_token_index": 301, "image_token_index": 302,
           "eos_token_id": [1, 106], "initializer_range": 0.02, "mm_tokens_per_image": 4,
           "text_config": text, "vision_config": vis, "torch_dtype": "bfloat16",
           "transformers_version": "4.56.1"}
    g.gemma = True
    t = decoder_tensors(g, "model.language_model.", d, four_norms=True, qk_norm=True, tie=True,
                        embed_std=0.22)
    vp, vh = "model.vision_tower.vision_model.", 32
    t[vp + "embeddings.patch_embedding.weight"] = g.rng.normal(0, 0.05, (vh, 3, 14, 14))
    t[vp + "embeddings.patch_embedding.bias"] = g.bias(vh)
    t[vp + "embeddings.position_embedding.weight"] = g.rng.normal(0, 0.05, (4, vh))
    lp = vp + "encoder.layers.0."
    for n in ("layer_norm1", "layer_norm2"):
        t[lp + n + ".weight"], t[lp + n + ".bias"] = 1.0 + g.bias(vh), g.bias(vh)
    for n in ("q_proj", "k_proj", "v_proj", "out_proj"):
        t[lp + "self_attn." + n + ".weight"], t[lp + "self_attn." + n + ".bias"] = g.proj(vh, vh), g.bias(vh)
    t[lp + "mlp.fc1.weight"], t[lp + "mlp.fc1.bias"] = g.proj(64, vh), g.bias(64)
    t[lp + "mlp.fc2.weight"], t[lp + "mlp.fc2.bias"] = g.proj(vh, 64), g.bias(vh)
    t[vp + "post_layernorm.weight"], t[vp + "post_layernorm.bias"] = 1.0 + g.bias(vh), g.bias(vh)
    t["model.multi_modal_projector.mm_input_projection_weight"] = g.rng.normal(0, 0.1, (vh, d["E"]))
    t["model.multi_modal_projector.mm_soft_emb_norm.weight"] = g.bias(vh)
    return cfg, dict(GEMMA3_GEN), t, "BF16", 1


def v_phi3(g):
    d = dims(V=352, E=64, F=96, L=4, H=4, KV=2, D=16)
    cfg = common_cfg("Phi3ForCausalLM", "phi3", d, hidden_act="silu", max_position_embeddings=4096,
                     original_max_position_embeddings=4096, rms_norm_eps=1e-5, rope_theta=10000.0,
                     rope_scaling=None, partial_rotary_factor=0.5, sliding_window=7,
                     attention_bias=False, attention_dropout=0.0, embd_pdrop=0.0, resid_pdrop=0.0,
                     tie_word_embeddings=False, bos_token_id=1, eos_token_id=2, pad_token_id=3,
                     torch_dtype="float32")
    gen = {"bos_token_id": 1, "eos_token_id": [2, 4], "pad_token_id": 3,
           "transformers_version": "4.56.1"}
    return cfg, gen, decoder_tensors(g, "model.", d, fused=True), "F32", 1


def v_qwen2(g):
    d = dims(V=448, E=64, F=96, L=4, H=4, KV=2, D=16)
    cfg = common_cfg("Qwen2ForCausalLM", "qwen2", d, hidden_act="silu", max_position_embeddings=32768,
                     rms_norm_eps=1e-6, rope_theta=10000.0, rope_scaling=None,
                     use_sliding_window=True, sliding_window=5, max_window_layers=2,
                     attention_dropout=0.0, tie_word_embeddings=False, bos_token_id=400,
                     eos_token_id=401, torch_dtype="float32")
    gen = {"bos_token_id": 400, "eos_token_id": [401, 402], "pad_token_id": 401,
           "transformers_version": "4.56.1"}
    return cfg, gen, decoder_tensors(g, "model.", d, bias=("q", "k", "v")), "F32", 1


def v_qwen3(g):
    d = dims(V=480, E=64, F=96, L=4, H=4, KV=2, D=32)
    cfg = common_cfg("Qwen3ForCausalLM", "qwen3", d, head_dim=32, hidden_act="silu",
                     max_position_embeddings=40960, rms_norm_eps=1e-6, rope_theta=1_000_000.0,
                     rope_scaling=None, attention_bias=False, attention_dropout=0.0,
                     use_sliding_window=False, sliding_window=None, max_window_layers=4,
                     tie_word_embeddings=True, bos_token_id=450, eos_token_id=451,
                     torch_dtype="bfloat16")
    gen = {"bos_token_id": 450, "eos_token_id": [451, 452], "pad_token_id": 452, "do_sample": True,
           "temperature": 0.6, "top_k": 20, "top_p": 0.95, "transformers_version": "4.56.1"}
    t = decoder_tensors(g, "model.", d, qk_norm=True, tie=True, embed_std=0.22)
    return cfg, gen, t, "BF16", 1


VARIANTS = {
    "llama": v_llama, "llama_linear": v_llama_linear, "mistral": v_mistral, "gemma2": v_gemma2,
    "gemma3_text_legacy": v_gemma3_text_legacy, "gemma3_text_new": v_gemma3_text_new,
    "gemma3_multimodal": v_gemma3_multimodal, "phi3": v_phi3, "qwen2": v_qwen2, "qwen3": v_qwen3,
}


def make(variant, out_dir, seed=0):
    if variant not in VARIANTS:
        raise SystemExit(f"unknown variant {variant!r}; try: {' '.join(VARIANTS)}")
    rng = np.random.default_rng([seed, zlib.crc32(variant.encode())])
    cfg, gen, tensors, dtype, shards = VARIANTS[variant](Gen(rng, gemma_norms=False))
    os.makedirs(out_dir, exist_ok=True)
    for name in os.listdir(out_dir):
        if name.startswith("model") and (name.endswith(".safetensors") or name.endswith(".json")):
            os.remove(os.path.join(out_dir, name))
    with open(os.path.join(out_dir, "config.json"), "w") as f:
        json.dump(cfg, f, indent=2)
    with open(os.path.join(out_dir, "generation_config.json"), "w") as f:
        json.dump(gen, f, indent=2)
    if shards == 1:
        write_safetensors(os.path.join(out_dir, "model.safetensors"), tensors, dtype)
        return
    names = sorted(tensors)
    layer_of = lambda n: int(n.split(".layers.")[1].split(".")[0]) if ".layers." in n else None  # noqa: E731
    L = max(layer_of(n) for n in names if layer_of(n) is not None) + 1
    first = [n for n in names if n.endswith("embed_tokens.weight")
             or (layer_of(n) is not None and layer_of(n) < L // 2)]
    parts = [first, [n for n in names if n not in first]]
    weight_map, total = {}, 0
    for i, part in enumerate(parts):
        fname = f"model-{i + 1:05d}-of-{len(parts):05d}.safetensors"
        total += write_safetensors(os.path.join(out_dir, fname), {n: tensors[n] for n in part}, dtype)
        weight_map.update({n: fname for n in part})
    with open(os.path.join(out_dir, "model.safetensors.index.json"), "w") as f:
        json.dump({"metadata": {"total_size": total}, "weight_map": dict(sorted(weight_map.items()))},
                  f, indent=2)


# --------------------------------------------------------------------------------------------
# make-shape: random weights at the exact shapes of published checkpoints
# --------------------------------------------------------------------------------------------
# The config.json of each shape is the published one field for field; generation_config.json
# carries its token ids and sampling defaults. Weights are N(0, 0.02^2) (norm weights: 1 + that,
# or that alone for Gemma's (1 + w) norms), stored as BF16 (float32 rounded to nearest even).
# No tokenizer is written.

def shape_tensors(prefix, d, *, four_norms=False, qk_norm=False, tie=True):
    """[(name, shape, is_norm)] of a decoder in HF's names, as decoder_tensors writes them."""
    V, E, F, L, H, KV, D = (d[k] for k in ("V", "E", "F", "L", "H", "KV", "D"))
    out = [(prefix + "embed_tokens.weight", (V, E), False), (prefix + "norm.weight", (E,), True)]
    if not tie:
        out.append(("lm_head.weight", (V, E), False))
    for i in range(L):
        p = f"{prefix}layers.{i}."
        out += [(p + "self_attn.q_proj.weight", (H * D, E), False),
                (p + "self_attn.k_proj.weight", (KV * D, E), False),
                (p + "self_attn.v_proj.weight", (KV * D, E), False),
                (p + "self_attn.o_proj.weight", (E, H * D), False),
                (p + "mlp.gate_proj.weight", (F, E), False),
                (p + "mlp.up_proj.weight", (F, E), False),
                (p + "mlp.down_proj.weight", (E, F), False),
                (p + "input_layernorm.weight", (E,), True),
                (p + "post_attention_layernorm.weight", (E,), True)]
        if four_norms:
            out += [(p + "pre_feedforward_layernorm.weight", (E,), True),
                    (p + "post_feedforward_layernorm.weight", (E,), True)]
        if qk_norm:
            out += [(p + "self_attn.q_norm.weight", (D,), True),
                    (p + "self_attn.k_norm.weight", (D,), True)]
    return sorted(out)


def shape_gemma_3_270m():
    """google/gemma-3-270m (Gemma3ForCausalLM): 268,098,176 parameters, tied, one KV head."""
    d = dims(V=262144, E=640, F=2048, L=18, H=4, KV=1, D=256)
    types = ["full_attention" if (i + 1) % 6 == 0 else "sliding_attention" for i in range(d["L"])]
    cfg = {"_sliding_window_pattern": 6, "architectures": ["Gemma3ForCausalLM"],
           "attention_bias": False, "attention_dropout": 0.0, "attn_logit_softcapping": None,
           "bos_token_id": 2, "eos_token_id": 1, "final_logit_softcapping": None, "head_dim": 256,
           "hidden_activation": "gelu_pytorch_tanh", "hidden_size": 640, "initializer_range": 0.02,
           "intermediate_size": 2048, "layer_types": types, "max_position_embeddings": 32768,
           "model_type": "gemma3_text", "num_attention_heads": 4, "num_hidden_layers": 18,
           "num_key_value_heads": 1, "pad_token_id": 0, "query_pre_attn_scalar": 256,
           "rms_norm_eps": 1e-06, "rope_local_base_freq": 10000.0, "rope_scaling": None,
           "rope_theta": 1000000.0, "sliding_window": 512, "torch_dtype": "bfloat16",
           "transformers_version": "4.55.0.dev0", "use_bidirectional_attention": False,
           "use_cache": True, "vocab_size": 262144}
    gen = {"bos_token_id": 2, "cache_implementation": "hybrid", "do_sample": True,
           "eos_token_id": 1, "pad_token_id": 0, "top_k": 64, "top_p": 0.95,
           "transformers_version": "4.55.0.dev0"}
    t = shape_tensors("model.", d, four_norms=True, qk_norm=True)
    return cfg, gen, t, 0.0, 2


def shape_smollm2_135m():
    """HuggingFaceTB/SmolLM2-135M (LlamaForCausalLM): 134,515,008 parameters, tied, GQA 9:3."""
    d = dims(V=49152, E=576, F=1536, L=30, H=9, KV=3, D=64)
    cfg = {"architectures": ["LlamaForCausalLM"], "attention_bias": False, "attention_dropout": 0.0,
           "bos_token_id": 0, "eos_token_id": 0, "hidden_act": "silu", "hidden_size": 576,
           "initializer_range": 0.041666666666666664, "intermediate_size": 1536,
           "is_llama_config": True, "max_position_embeddings": 8192, "model_type": "llama",
           "num_attention_heads": 9, "num_hidden_layers": 30, "num_key_value_heads": 3,
           "pretraining_tp": 1, "rms_norm_eps": 1e-05, "rope_interleaved": False,
           "rope_scaling": None, "rope_theta": 100000, "tie_word_embeddings": True,
           "torch_dtype": "bfloat16", "transformers_version": "4.40.1", "use_cache": True,
           "vocab_size": 49152}
    gen = {"_from_model_config": True, "bos_token_id": 0, "eos_token_id": 0,
           "transformers_version": "4.40.1"}
    return cfg, gen, shape_tensors("model.", d), 1.0, 1


SHAPES = {"gemma-3-270m": shape_gemma_3_270m, "SmolLM2-135M": shape_smollm2_135m}

CHUNK = 1 << 22  # elements generated at a time


def write_random_bf16(path, entries, rng, norm_mean):
    """Writes entries [(name, shape, is_norm)] as BF16 safetensors in chunks; returns data bytes."""
    header, offset = {"__metadata__": {"format": "pt"}}, 0
    for name, shape, _ in entries:
        n = 2 * math.prod(shape)
        header[name] = {"dtype": "BF16", "shape": list(shape), "data_offsets": [offset, offset + n]}
        offset += n
    text = json.dumps(header, separators=(",", ":")).encode()
    text += b" " * (-len(text) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(text)))
        f.write(text)
        for _, shape, is_norm in entries:
            left = math.prod(shape)
            while left:
                k = min(left, CHUNK)
                x = rng.standard_normal(k, dtype=np.float32)
                x *= np.float32(0.02)
                if is_norm and norm_mean:
                    x += np.float32(norm_mean)
                bits = x.view(np.uint32)
                bits += np.uint32(0x7FFF) + ((bits >> 16) & np.uint32(1))
                (bits >> 16).astype("<u2").tofile(f)
                left -= k
    return offset


def make_shape(shape, out_dir, seed=0):
    if shape not in SHAPES:
        raise SystemExit(f"unknown shape {shape!r}; try: {' '.join(SHAPES)}")
    rng = np.random.default_rng([seed, zlib.crc32(shape.encode())])
    cfg, gen, entries, norm_mean, shards = SHAPES[shape]()
    os.makedirs(out_dir, exist_ok=True)
    for name in os.listdir(out_dir):
        if name.startswith("model") and (name.endswith(".safetensors") or name.endswith(".json")):
            os.remove(os.path.join(out_dir, name))
    with open(os.path.join(out_dir, "config.json"), "w") as f:
        json.dump(cfg, f, indent=2)
    with open(os.path.join(out_dir, "generation_config.json"), "w") as f:
        json.dump(gen, f, indent=2)
    if shards == 1:
        write_random_bf16(os.path.join(out_dir, "model.safetensors"), entries, rng, norm_mean)
        return
    # Contiguous runs in name order, each closed once it holds its share of the bytes.
    total = sum(2 * math.prod(s) for _, s, _ in entries)
    parts, acc = [[]], 0
    for e in entries:
        if acc >= total * len(parts) / shards and len(parts) < shards:
            parts.append([])
        parts[-1].append(e)
        acc += 2 * math.prod(e[1])
    weight_map, written = {}, 0
    for i, part in enumerate(parts):
        fname = f"model-{i + 1:05d}-of-{len(parts):05d}.safetensors"
        written += write_random_bf16(os.path.join(out_dir, fname), part, rng, norm_mean)
        weight_map.update({name: fname for name, _, _ in part})
    with open(os.path.join(out_dir, "model.safetensors.index.json"), "w") as f:
        json.dump({"metadata": {"total_size": written}, "weight_map": dict(sorted(weight_map.items()))},
                  f, indent=2)


# --------------------------------------------------------------------------------------------
# selftest
# --------------------------------------------------------------------------------------------

def flips(spec, w):
    """(name, spec', w') for each family switch that applies: the test must see every one."""
    out = []

    def add(name, fn_spec=None, fn_w=None):
        s, ww = copy.deepcopy(spec), w
        if fn_spec:
            fn_spec(s)
        if fn_w:
            ww = copy.deepcopy(w)
            fn_w(ww)
        out.append((name, s, ww))

    def set_(k, v):
        return lambda s: s.__setitem__(k, v)

    if spec["norm_offset"]:
        add("norm (1+w) -> w", set_("norm_offset", 0.0))
    if spec["four_norms"]:
        add("drop post-attention/post-ffw norms",
            fn_w=lambda ww: [lw.update(attn_out_norm=None, mlp_out_norm=None) for lw in ww["layers"]])
    if spec["embed_scale"]:
        add("no embedding scale", set_("embed_scale", None))
        if spec["embed_dtype"] == "BF16":
            add("embedding scale not rounded to bf16", set_("embed_scale", "sqrt_hidden_exact"))
    add("activation swapped", set_("act", "silu" if spec["act"] == "gelu_tanh" else "gelu_tanh"))
    if abs(spec["attn_scale"] - spec["D"] ** -0.5) > 1e-12:
        add("attention scale head_dim^-0.5", set_("attn_scale", spec["D"] ** -0.5))
    if spec["attn_softcap"]:
        add("no attention softcap", set_("attn_softcap", None))
    if spec["final_softcap"]:
        add("no final softcap", set_("final_softcap", None))
    if spec["qk_norm"]:
        add("no q/k norm", set_("qk_norm", False))
        add("q/k norm offset flipped", set_("qk_norm_offset", 1.0 - spec["qk_norm_offset"]))
    if any(spec["windows"]):
        add("all layers full attention", set_("windows", [0] * spec["L"]))
        add("window + 1", set_("windows", [W + 1 if W else 0 for W in spec["windows"]]))
        add("window - 1", set_("windows", [W - 1 if W else 0 for W in spec["windows"]]))
        if 0 in spec["windows"]:
            W = max(spec["windows"])
            add("sliding/full layers inverted", set_("windows", [0 if x else W for x in spec["windows"]]))
            add("sliding/full pattern shifted by one layer",
                set_("windows", spec["windows"][1:] + spec["windows"][:1]))
    rp = [r["params"] for r in spec["rope"]]
    if any(p.get("rope_type") not in (None, "default") for p in rp):
        def unscaled(s):
            for r in s["rope"]:
                r["inv_freq"] = rope_inv_freq(dict(r["params"], rope_type="default"), r["rot_dim"])
        add("rope scaling ignored", unscaled)
    if any(p.get("rope_type") == "llama3" for p in rp):
        def no_smoothing(s):  # the medium band left unscaled: only the low band divided
            for r in s["rope"]:
                base = rope_inv_freq(dict(r["params"], rope_type="default"), r["rot_dim"])
                r["inv_freq"] = np.where(2 * math.pi / base > r["params"]["original_max_position_embeddings"]
                                         / r["params"]["low_freq_factor"], base / r["params"]["factor"], base)
        add("llama3 medium band not smoothed", no_smoothing)
    if len({float(p["rope_theta"]) for p in rp}) > 1 or len({p["rope_type"] for p in rp}) > 1:
        def same_for_all(s):
            full = next(r for r, t in zip(s["rope"], s["layer_types"]) if t == "full_attention")
            for r in s["rope"]:
                r["inv_freq"] = full["inv_freq"]
        add("global rope (theta + scaling) on every layer", same_for_all)

        def scaled_local(s):
            for r, t in zip(s["rope"], s["layer_types"]):
                if t == "sliding_attention":
                    full = next(x for x, tt in zip(s["rope"], s["layer_types"]) if tt == "full_attention")
                    r["inv_freq"] = rope_inv_freq(dict(full["params"], rope_theta=r["params"]["rope_theta"]),
                                                  r["rot_dim"])
        add("rope scaling also on sliding layers", scaled_local)
    if spec["rope"][0]["rot_dim"] != spec["D"]:
        def full_rot(s):
            for r in s["rope"]:
                r["rot_dim"] = s["D"]
                r["inv_freq"] = rope_inv_freq(r["params"], s["D"])
        add("rotary on all dims", full_rot)
    add("rope interleaved pairs", set_("rope_interleaved", True))
    for key in ("bq", "bk", "bv", "bo", "bgate", "bup", "bdown"):
        if w["layers"][0][key] is not None:
            add(f"bias {key[1:]} dropped", fn_w=lambda ww, key=key: [lw.__setitem__(key, None)
                                                                     for lw in ww["layers"]])
    if spec["fused"]:
        add("gate/up halves swapped",
            fn_w=lambda ww: [lw.update(gate=lw["up"], up=lw["gate"]) for lw in ww["layers"]])
        add("k/v swapped in qkv split",
            fn_w=lambda ww: [lw.update(k=lw["v"], v=lw["k"]) for lw in ww["layers"]])
    return out


def perturb_file(model_dir, fragment, delta):
    """Add delta to element [0, 0] of the first stored tensor whose name contains fragment, in
    whichever file (or shard) holds it. Returns the tensor name."""
    files = ["model.safetensors"]
    index = os.path.join(model_dir, "model.safetensors.index.json")
    if os.path.exists(index):
        with open(index) as f:
            files = sorted(set(json.load(f)["weight_map"].values()))
    for fname in files:
        path = os.path.join(model_dir, fname)
        tensors = read_safetensors(path)
        hit = next((n for n in sorted(tensors) if fragment in n and tensors[n][0].ndim == 2), None)
        if hit:
            dtype = tensors[hit][1]
            arrays = {n: a for n, (a, _) in tensors.items()}
            arrays[hit] = arrays[hit].copy()
            arrays[hit][0, 0] += delta
            write_safetensors(path, arrays, dtype)
            return hit
    raise ValueError(f"no tensor matching {fragment} in {model_dir}")


def cmd_selftest(args):
    work = args.workdir or tempfile.mkdtemp(prefix="hf_reference_selftest_")
    os.makedirs(work, exist_ok=True)
    failures = []
    for variant in VARIANTS:
        d = os.path.join(work, variant)
        make(variant, d)
        cfg, spec, w = load_model(d)
        # 1. vectorized forward == explicit-loop forward
        toks = [int(t) for t in np.random.default_rng(7).integers(0, spec["V"], 20)]
        fast, slow = forward(spec, w, toks), forward_slow(spec, w, toks)
        diff = float(np.abs(fast - slow).max())
        lp = log_softmax(forward(spec, w, toks))
        msg = (f"{variant:20s} fast vs slow {diff:.1e}; logits std {fast.std():.2f}, "
               f"logprob of next token mean {np.mean([lp[i, toks[i + 1]] for i in range(19)]):.2f}")
        if diff > 1e-9:
            failures.append(f"{variant}: fast and slow forward differ by {diff}")
        # 2. check passes on our own oracle JSON
        engine = self_oracle(spec, w)
        ok, lines = compare(spec, w, engine, 1e-4, variant)
        if not ok:
            failures.append(f"{variant}: check fails on its own output: {lines}")
        # 3. every family switch changes the answer by well over the tolerance
        weak, deltas = [], []
        base_s = log_softmax(forward(spec, w, engine["score"]["tokens"]))
        for name, s2, w2 in flips(spec, w):
            other = log_softmax(forward(s2, w2, engine["score"]["tokens"]))
            delta = float(np.abs(other - base_s).max())
            ok2, _ = compare(s2, w2, engine, 1e-4, variant)
            deltas.append(f"{name} {delta:.1e}")
            if delta < 1e-3 or ok2:
                weak.append(f"{name} ({delta:.1e})")
        if weak:
            failures.append(f"{variant}: switches the check would not notice: {weak}")
        # 4. a perturbed weight in the stored file is caught
        d2 = d + "_perturbed"
        shutil.rmtree(d2, ignore_errors=True)
        shutil.copytree(d, d2)
        name = perturb_file(d2, ".layers.1.self_attn.", 0.25)
        _, spec2, w2 = load_model(d2)
        ok3, _ = compare(spec2, w2, engine, 1e-4, variant)
        if ok3:
            failures.append(f"{variant}: a perturbed element of {name} goes unnoticed")
        shutil.rmtree(d2)
        print(msg)
        print("    " + "; ".join(deltas))
    # 5. the check command itself exits non-zero on a bad JSON
    d = os.path.join(work, "qwen2")
    _, spec, w = load_model(d)
    engine = self_oracle(spec, w)
    engine["score"]["logprobs"][40] += 3e-4
    bad = os.path.join(work, "qwen2_bad.json")
    with open(bad, "w") as f:
        json.dump(engine, f)
    if cmd_check(argparse.Namespace(model_dir=d, engine_json=bad, tolerance=1e-4)) == 0:
        failures.append("check accepted a logprob off by 3e-4")
    # 6. the facts, stated as tests
    facts = check_facts(work)
    failures.extend(facts)
    if failures:
        print("SELFTEST FAILED:\n  " + "\n  ".join(failures))
        return 1
    print(f"selftest: all {len(VARIANTS)} variants pass (models in {work})")
    return 0


def check_facts(work):
    """The rules the brief asks about, as assertions on what describe() derives."""
    bad = []

    def spec_of(v):
        with open(os.path.join(work, v, "config.json")) as f:
            return describe(json.load(f))

    expect = {
        "gemma2": [5, 0, 5, 0],                       # even layers slide
        "gemma3_text_legacy": [4, 4, 0, 4, 4, 0],     # (i+1) % 3 != 0 slides
        "gemma3_text_new": [4, 4, 0, 4, 4, 0],
        "gemma3_multimodal": [4, 4, 4, 4, 4, 0],      # default pattern 6
        "qwen2": [0, 0, 5, 5],                        # i >= max_window_layers slides
        "mistral": [6] * 4, "phi3": [7] * 4, "qwen3": [0] * 4, "llama": [0] * 4,
    }
    for v, want in expect.items():
        got = spec_of(v)["windows"]
        if got != want:
            bad.append(f"{v}: windows {got}, expected {want}")
    g3 = spec_of("gemma3_text_legacy")
    g3n = spec_of("gemma3_text_new")
    for a, b in zip(g3["rope"], g3n["rope"]):
        if not np.allclose(a["inv_freq"], b["inv_freq"], rtol=1e-15):
            bad.append("gemma3 legacy and new rope disagree")
    full = g3["rope"][2]["inv_freq"]
    if not np.allclose(full, 1.0 / 1e6 ** (np.arange(0, 32, 2) / 32) / 8.0):
        bad.append("gemma3 global rope is not theta 1e6 / 8")
    if not np.allclose(g3["rope"][0]["inv_freq"], 1.0 / 1e4 ** (np.arange(0, 32, 2) / 32)):
        bad.append("gemma3 local rope is not theta 1e4 unscaled")
    ll = spec_of("llama")["rope"][0]["inv_freq"]
    base = 1.0 / 1e4 ** (np.arange(0, 16, 2) / 16)
    bands = ["high" if 2 * math.pi / f < 8 else "low" if 2 * math.pi / f > 32 else "mid" for f in base]
    if (set(bands) != {"high", "mid", "low"} or not np.isclose(ll[0], base[0])
            or not np.isclose(ll[-1], base[-1] / 8)):
        bad.append(f"llama3 rope bands {bands}")
    ph = spec_of("phi3")["rope"][0]
    if ph["rot_dim"] != 8 or len(ph["inv_freq"]) != 4:
        bad.append("phi3 partial rotary not 8 of 16 dims")
    return bad


# --------------------------------------------------------------------------------------------

def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    sub.add_parser("list")
    p = sub.add_parser("make")
    p.add_argument("variant")
    p.add_argument("out_dir")
    p.add_argument("--seed", type=int, default=0)
    p = sub.add_parser("make-shape")
    p.add_argument("shape", help=" | ".join(SHAPES))
    p.add_argument("out_dir")
    p.add_argument("--seed", type=int, default=0)
    p = sub.add_parser("check")
    p.add_argument("model_dir")
    p.add_argument("engine_json")
    p.add_argument("--tolerance", type=float, default=1e-4)
    p = sub.add_parser("selftest")
    p.add_argument("workdir", nargs="?")
    p = sub.add_parser("self-oracle")
    p.add_argument("model_dir")
    p.add_argument("out_json")
    args = ap.parse_args(argv)
    if args.cmd == "list":
        print("\n".join(VARIANTS))
        return 0
    if args.cmd == "make":
        make(args.variant, args.out_dir, args.seed)
        return 0
    if args.cmd == "make-shape":
        make_shape(args.shape, args.out_dir, args.seed)
        return 0
    try:
        if args.cmd == "check":
            return cmd_check(args)
        if args.cmd == "self-oracle":
            return cmd_self_oracle(args)
    except (ValueError, KeyError, OSError) as e:
        print(f"hf_reference {args.cmd}: {args.model_dir}: {e}", file=sys.stderr)
        return 2
    return cmd_selftest(args)


if __name__ == "__main__":
    sys.exit(main())
