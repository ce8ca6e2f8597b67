"""safetensors for hf_reference.py, written and read by hand (nothing shared with the C++ code).
"""
import json
import os
import struct

import numpy as np


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
