"""hf_reference.py make-shape: random weights at the exact shapes of published checkpoints.

The config.json of each shape is the published one field for field; generation_config.json
carries its token ids and sampling defaults. Weights are N(0, 0.02^2) (norm weights: 1 + that,
or that alone for Gemma's (1 + w) norms), stored as BF16 (float32 rounded to nearest even).
No tokenizer is written.
"""
import json
import math
import os
import struct
import zlib

import numpy as np

from hf_variants import dims, write_configs


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
    write_configs(out_dir, cfg, gen)
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
