"""config.json -> spec for hf_reference.py: the family switches of one forward pass (the facts per
family are listed in hf_reference.py's docstring).
"""
import math

import numpy as np


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
