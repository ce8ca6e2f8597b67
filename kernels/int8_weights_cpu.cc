// The int8 and q4 weight formats of kernels/small_linear.h: quantizing rows of fp32 weights,
// packing them into the layouts the kernels read, and dequantizing any layout back. Run once at
// load, apart from the products.
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>

#include "kernels/small_linear.h"
#include "kernels/small_linear_q8.h"

namespace mswa {

namespace {

// Each kInt8Group values of each row of w: scale = scale_of(group), q = round(w / scale)
// (nearest even) clamped to [lo, hi].
template <typename ScaleOf>
void QuantizeGroups(const float* w, int64_t out, int64_t in, int8_t* q, float* scales, ScaleOf scale_of,
                    long lo, long hi) {
  const int64_t groups = Int8Groups(in);
#pragma omp parallel for schedule(static) if (out * in > (1 << 16))
  for (int64_t o = 0; o < out; ++o) {
    for (int64_t g = 0; g < groups; ++g) {
      const int64_t begin = g * kInt8Group, end = std::min(in, begin + kInt8Group);
      const float scale = scale_of(w + o * in + begin, w + o * in + end);
      scales[o * groups + g] = scale;
      const float inv = scale != 0.f ? 1.f / scale : 0.f;
      for (int64_t i = begin; i < end; ++i) {
        q[o * in + i] = static_cast<int8_t>(std::clamp(std::lrint(w[o * in + i] * inv), lo, hi));
      }
    }
  }
}

}  // namespace

void QuantizeInt8(const float* w, int64_t out, int64_t in, int8_t* q, float* scales) {
  const auto max_abs_over_127 = [](const float* begin, const float* end) {
    float max_abs = 0.f;
    for (const float* v = begin; v < end; ++v) max_abs = std::max(max_abs, std::fabs(*v));
    return max_abs / 127.f;
  };
  QuantizeGroups(w, out, in, q, scales, max_abs_over_127, -127, 127);
}

void QuantizeQ4(const float* w, int64_t out, int64_t in, int8_t* q, float* scales) {
  const auto largest_over_minus_8 = [](const float* begin, const float* end) {
    float m = 0.f;  // the value of largest magnitude, sign kept
    for (const float* v = begin; v < end; ++v) {
      if (std::fabs(*v) > std::fabs(m)) m = *v;
    }
    return m / -8.f;
  };
  QuantizeGroups(w, out, in, q, scales, largest_over_minus_8, -8, 7);
}


void PackQ4Rows(const int8_t* q, int64_t out, int64_t in, int8_t* packed) {
#pragma omp parallel for schedule(static) if (out * in > (1 << 16))
  for (int64_t o = 0; o < out; ++o) {
    for (int64_t g = 0; g < in / kInt8Group; ++g) {
      const int8_t* v = q + o * in + g * kInt8Group;
      uint8_t* bytes = reinterpret_cast<uint8_t*>(packed + o * (in / 2) + g * (kInt8Group / 2));
      for (int j = 0; j < kInt8Group / 2; ++j) {
        bytes[j] = static_cast<uint8_t>(((v[j] + 8) & 0x0F) | ((v[j + 16] + 8) << 4));
      }
    }
  }
}

namespace {

// Where value i of row o lies in a kTiles16(Q4) matrix: the byte of its tile's group i / 32 and,
// for q4, whether the high nibble; and where the row's scale of group g lies.
struct Tile16Place {
  int64_t byte;
  bool high;
};
Tile16Place Tiles16Value(int64_t o, int64_t i, int64_t groups, bool q4) {
  const int64_t tile = o / kInt8Tile16Rows, lane = o % kInt8Tile16Rows;
  const int64_t g = i / kInt8Group, unit = i % kInt8Group / 4;
  const int64_t group = (tile * groups + g) * (q4 ? kQ4Tile16GroupBytes : kInt8Tile16GroupBytes);
  if (!q4) return {group + 64 * unit + 4 * lane + i % 4, false};
  return {group + 64 * (unit % 4) + 4 * lane + i % 4, unit >= 4};
}
int64_t Tiles16Scale(int64_t o, int64_t g, int64_t groups, bool q4) {
  const int64_t tile = o / kInt8Tile16Rows, lane = o % kInt8Tile16Rows;
  const int64_t group_bytes = q4 ? kQ4Tile16GroupBytes : kInt8Tile16GroupBytes;
  return (tile * groups + g) * group_bytes + kInt8Tile16Rows * kInt8Group / (q4 ? 2 : 1) + 4 * lane;
}

}  // namespace

int64_t Int8TilesBytes(int64_t out, int64_t in, Int8Layout layout) {
  const int64_t group_bytes = layout == Int8Layout::kTiles16Q4 ? kQ4Tile16GroupBytes : kInt8Tile16GroupBytes;
  return (out + kInt8Tile16Rows - 1) / kInt8Tile16Rows * (in / kInt8Group) * group_bytes;
}

void PackInt8Tiles(const int8_t* q, const float* scales, int64_t out, int64_t in, int8_t* tiles,
                   Int8Layout layout) {
  const int64_t groups = in / kInt8Group;
  const bool q4 = layout == Int8Layout::kTiles16Q4;
  // The padding rows: zero weights (for q4, value 0 is the nibble 8: ORed in below) and scales.
  std::memset(tiles, 0, static_cast<size_t>(Int8TilesBytes(out, in, layout)));
  if (q4) {
    for (int64_t o = (out + kInt8Tile16Rows - 1) / kInt8Tile16Rows * kInt8Tile16Rows - 1; o >= out; --o) {
      for (int64_t i = 0; i < in; ++i) {
        const Tile16Place at = Tiles16Value(o, i, groups, true);
        tiles[at.byte] = static_cast<int8_t>(static_cast<uint8_t>(tiles[at.byte]) | (at.high ? 0x80 : 0x08));
      }
    }
  }
#pragma omp parallel for schedule(static) if (out * in > (1 << 16))
  for (int64_t o = 0; o < out; ++o) {
    for (int64_t i = 0; i < in; ++i) {
      const Tile16Place at = Tiles16Value(o, i, groups, q4);
      const int8_t v = q[o * in + i];
      if (!q4) {
        tiles[at.byte] = v;
      } else {
        const uint8_t nibble = static_cast<uint8_t>(v + 8) & 0x0F;
        uint8_t* byte = reinterpret_cast<uint8_t*>(tiles + at.byte);
        *byte |= at.high ? static_cast<uint8_t>(nibble << 4) : nibble;
      }
    }
    for (int64_t g = 0; g < groups; ++g) {
      std::memcpy(tiles + Tiles16Scale(o, g, groups, q4), scales + o * groups + g, sizeof(float));
    }
  }
}

void DequantizeInt8(const Int8Matrix& w, int64_t in, int64_t row_begin, int64_t row_end, float* out) {
  const int64_t groups = Int8Groups(in);
  if (w.layout == Int8Layout::kRowsQ4) {
    for (int64_t o = row_begin; o < row_end; ++o) {
      const uint8_t* bytes = reinterpret_cast<const uint8_t*>(w.q + o * (in / 2));
      float* yr = out + (o - row_begin) * in;
      for (int64_t i = 0; i < in; ++i) {
        const uint8_t byte = bytes[i / kInt8Group * (kInt8Group / 2) + i % (kInt8Group / 2)];
        const int v = (i % kInt8Group < kInt8Group / 2 ? byte & 0x0F : byte >> 4) - 8;
        yr[i] = static_cast<float>(v) * w.scales[o * groups + i / kInt8Group];
      }
    }
    return;
  }
  if (w.layout == Int8Layout::kTiles16 || w.layout == Int8Layout::kTiles16Q4) {
    const bool q4 = w.layout == Int8Layout::kTiles16Q4;
    for (int64_t o = row_begin; o < row_end; ++o) {
      float* yr = out + (o - row_begin) * in;
      for (int64_t i = 0; i < in; ++i) {
        float s;
        std::memcpy(&s, w.q + Tiles16Scale(o, i / kInt8Group, groups, q4), sizeof(s));
        const Tile16Place at = Tiles16Value(o, i, groups, q4);
        const uint8_t byte = static_cast<uint8_t>(w.q[at.byte]);
        const int v = !q4 ? static_cast<int8_t>(byte) : (at.high ? byte >> 4 : byte & 0x0F) - 8;
        yr[i] = static_cast<float>(v) * s;
      }
    }
    return;
  }
  for (int64_t o = row_begin; o < row_end; ++o) {
    const int8_t* qr = w.q + o * in;
    const float* sr = w.scales + o * groups;
    float* yr = out + (o - row_begin) * in;
    for (int64_t i = 0; i < in; ++i) yr[i] = static_cast<float>(qr[i]) * sr[i / kInt8Group];
  }
}

}  // namespace mswa
