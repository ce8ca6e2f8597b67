#include "kernels/cuda/device.h"

#include <gtest/gtest.h>

#include <vector>

#include "kernels/window.h"

namespace mswa::cuda {
namespace {

TEST(CudaWindowPredicate, MatchesHostAtEveryEdge) {
  if (DeviceCount() == 0) GTEST_SKIP() << "no CUDA device";
  std::vector<int64_t> q, k, w;
  for (int64_t window : {0, 1, 2, 7, 16, 17, 1000}) {
    for (int64_t qp : {0, 1, 15, 16, 17, 1000, 10000000}) {
      for (int64_t d = -2; d <= window + 2; ++d) {
        q.push_back(qp);
        k.push_back(qp - d);
        w.push_back(window);
      }
    }
  }
  std::unique_ptr<bool[]> out(new bool[q.size()]);
  ASSERT_EQ(EvalWindowPredicateOnDevice(q.data(), k.data(), w.data(), q.size(), out.get()), "");
  for (size_t i = 0; i < q.size(); ++i) {
    EXPECT_EQ(out[i], InWindow(q[i], k[i], w[i])) << q[i] << " " << k[i] << " " << w[i];
  }
}

}  // namespace
}  // namespace mswa::cuda
