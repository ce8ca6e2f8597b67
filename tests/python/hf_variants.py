"""hf_reference.py make: tiny random checkpoints in HF's layout, one per family variant.
"""
import json
import math
import os
import zlib

import numpy as np

from hf_safetensors import write_safetensors


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


def write_configs(out_dir, cfg, gen):
    """Creates out_dir without earlier weights or index, then writes config.json and
    generation_config.json."""
    os.makedirs(out_dir, exist_ok=True)
    for name in os.listdir(out_dir):
        if name.startswith("model") and (name.endswith(".safetensors") or name.endswith(".json")):
            os.remove(os.path.join(out_dir, name))
    with open(os.path.join(out_dir, "config.json"), "w") as f:
        json.dump(cfg, f, indent=2)
    with open(os.path.join(out_dir, "generation_config.json"), "w") as f:
        json.dump(gen, f, indent=2)


def make(variant, out_dir, seed=0):
    if variant not in VARIANTS:
        raise SystemExit(f"unknown variant {variant!r}; try: {' '.join(VARIANTS)}")
    rng = np.random.default_rng([seed, zlib.crc32(variant.encode())])
    cfg, gen, tensors, dtype, shards = VARIANTS[variant](Gen(rng, gemma_norms=False))
    write_configs(out_dir, cfg, gen)
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
