"""hf_reference.py selftest: checks the reference itself (slow path, switch flips, check fails when
it should, the facts per family as assertions); needs no engine.
"""
import argparse
import copy
import json
import math
import os
import shutil
import tempfile

import numpy as np

from hf_check import cmd_check, compare, self_oracle
from hf_families import describe, rope_inv_freq
from hf_forward import forward, forward_slow, load_model, log_softmax
from hf_safetensors import read_safetensors, write_safetensors
from hf_variants import VARIANTS, make


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
