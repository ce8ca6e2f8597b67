#include "model/runtime/rope.h"

#include <cmath>
#include <vector>

namespace mswa {

RopeTables MakeRopeTablesAt(const int64_t* positions, int64_t n, int64_t head_dim, double theta,
                            at::ScalarType dtype) {
  const int64_t half = head_dim / 2;
  at::Tensor c = at::empty({n, half}, at::TensorOptions().dtype(at::kDouble));
  at::Tensor s = at::empty({n, half}, at::TensorOptions().dtype(at::kDouble));
  double* cp = c.data_ptr<double>();
  double* sp = s.data_ptr<double>();
  for (int64_t i = 0; i < half; ++i) {
    const double inv_freq = std::pow(theta, -2.0 * static_cast<double>(i) / head_dim);
    for (int64_t t = 0; t < n; ++t) {
      // fmod by 2*pi in fp64 keeps the argument small; the product itself is exact to ~1e-16
      // relative, i.e. ~1e-9 rad at position 10^7.
      const double angle =
          std::fmod(static_cast<double>(positions[t]) * inv_freq, 6.283185307179586476925);
      cp[t * half + i] = std::cos(angle);
      sp[t * half + i] = std::sin(angle);
    }
  }
  return RopeTables{c.to(dtype), s.to(dtype)};
}

RopeTables MakeRopeTables(int64_t start_pos, int64_t num_positions, int64_t head_dim,
                          double theta, at::ScalarType dtype) {
  std::vector<int64_t> positions(num_positions);
  for (int64_t t = 0; t < num_positions; ++t) positions[t] = start_pos + t;
  return MakeRopeTablesAt(positions.data(), num_positions, head_dim, theta, dtype);
}

at::Tensor ApplyRope(const at::Tensor& x, const RopeTables& tables) {
  const int64_t half = x.size(2) / 2;
  at::Tensor x1 = x.narrow(2, 0, half);     // [T, heads, D/2]
  at::Tensor x2 = x.narrow(2, half, half);  // [T, heads, D/2]
  at::Tensor cos = tables.cos.unsqueeze(1);  // [T, 1, D/2]
  at::Tensor sin = tables.sin.unsqueeze(1);
  return at::cat({x1 * cos - x2 * sin, x2 * cos + x1 * sin}, 2);
}

}  // namespace mswa
