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
  selftest [WORKDIR]                     check the reference itself (slow path, switch flips, check
                                         fails when it should); needs no engine
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
import sys

# The pieces live in sibling modules: hf_safetensors (the file format, by hand), hf_families
# (config.json -> spec), hf_forward (weights and the float64 forward), hf_check (check,
# self-oracle), hf_variants (make), hf_shapes (make-shape), hf_selftest (selftest). This directory
# is on sys.path when the script runs, and importers such as tests/fuzz/make_corpus.py add it;
# Gen, VARIANTS and SHAPES stay importable from here.
from hf_check import cmd_check, cmd_self_oracle
from hf_selftest import cmd_selftest
from hf_shapes import SHAPES, make_shape
from hf_variants import VARIANTS, Gen, make  # noqa: F401 (Gen: for importers)


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
