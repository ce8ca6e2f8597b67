"""hf_reference.py check / self-oracle: the engine's log-probs (ENGINE_JSON) against the float64
reference, and ENGINE_JSON written from the reference itself.
"""
import json
import os

import numpy as np

from hf_forward import forward, load_model, log_softmax


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
                # A tie within the tolerance may go either way.
                tie = max(1e-3, tol)
                near_tie = logits[row, top[0]] - logits[row, top[1]] < tie
                if not err <= tol:
                    failures.append(f"generate step {j} (position {row + 1}): token {g}: expected "
                                    f"logprob {exp:.6f}, got {float(got):.6f} (|diff| {err:.3g})")
                if g != top[0] and not (near_tie and logits[row, top[0]] - logits[row, g] < tie):
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
