#include "model/runtime/rope.h"

#include <cmath>
#include <vector>

namespace mswa {

RopeTables MakeRopeTablesAt(const int64_t* positions, int64_t n, const RopeSpec& rope,
                            at::ScalarType dtype) {
  const std::vector<double> inv_freq = RopeInvFreq(rope);
  const int64_t half = static_cast<int64_t>(inv_freq.size());
  at::Tensor c = at::empty({n, half}, at::TensorOptions().dtype(at::kDouble));
  at::Tensor s = at::empty({n, half}, at::TensorOptions().dtype(at::kDouble));
  double* cp = c.data_ptr<double>();
  double* sp = s.data_ptr<double>();
  for (int64_t i = 0; i < half; ++i) {
    for (int64_t t = 0; t < n; ++t) {
      // fmod by 2*pi in fp64 keeps the argument small; the product itself is exact to ~1e-16
      // relative, i.e. ~1e-9 rad at position 10^7.
      const double angle =
          std::fmod(static_cast<double>(positions[t]) * inv_freq[i], 6.283185307179586476925);
      cp[t * half + i] = std::cos(angle);
      sp[t * half + i] = std::sin(angle);
    }
  }
  return RopeTables{c.to(dtype), s.to(dtype)};
}

RopeTables MakeRopeTablesAt(const int64_t* positions, int64_t n, int64_t head_dim, double theta,
                            at::ScalarType dtype) {
  RopeSpec rope;
  rope.theta = theta;
  rope.rotary_dim = head_dim;
  return MakeRopeTablesAt(positions, n, rope, dtype);
}

RopeTables MakeRopeTables(int64_t start_pos, int64_t num_positions, int64_t head_dim,
                          double theta, at::ScalarType dtype) {
  std::vector<int64_t> positions(num_positions);
  for (int64_t t = 0; t < num_positions; ++t) positions[t] = start_pos + t;
  return MakeRopeTablesAt(positions.data(), num_positions, head_dim, theta, dtype);
}

at::Tensor ApplyRope(const at::Tensor& x, const RopeTables& tables) {
  const int64_t half = tables.cos.size(1);
  if (2 * half < x.size(2)) {
    return at::cat({ApplyRope(x.narrow(2, 0, 2 * half), tables),
                    x.narrow(2, 2 * half, x.size(2) - 2 * half)}, 2);
  }
  at::Tensor x1 = x.narrow(2, 0, half);     // [T, heads, D/2]
  at::Tensor x2 = x.narrow(2, half, half);  // [T, heads, D/2]
  at::Tensor cos = tables.cos.unsqueeze(1);  // [T, 1, D/2]
  at::Tensor sin = tables.sin.unsqueeze(1);
  return at::cat({x1 * cos - x2 * sin, x2 * cos + x1 * sin}, 2);
}

}  // namespace mswa
