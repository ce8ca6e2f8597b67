#include "kernels/window.h"

#include <gtest/gtest.h>

namespace mswa {
namespace {

TEST(InWindow, WindowCountsTheQueryItself) {
  // W = 4 at t = 10: keys 7, 8, 9, 10.
  EXPECT_TRUE(InWindow(10, 10, 4));
  EXPECT_TRUE(InWindow(10, 7, 4));    // distance W - 1: inside
  EXPECT_FALSE(InWindow(10, 6, 4));   // distance W: outside
  EXPECT_FALSE(InWindow(10, 5, 4));   // distance W + 1: outside
}

TEST(InWindow, WindowOneSeesOnlyItself) {
  EXPECT_TRUE(InWindow(5, 5, 1));
  EXPECT_FALSE(InWindow(5, 4, 1));
}

TEST(InWindow, NeverSeesTheFuture) {
  for (int64_t w : {0, 1, 2, 100}) {
    EXPECT_FALSE(InWindow(5, 6, w));
    EXPECT_FALSE(InWindow(0, 1, w));
  }
}

TEST(InWindow, ZeroIsUnbounded) {
  EXPECT_TRUE(InWindow(10000000, 0, 0));
  EXPECT_TRUE(InWindow(3, 3, 0));
}

TEST(InWindow, ExactlyWKeysVisibleOnceTheSequenceIsLongEnough) {
  for (int64_t w : {1, 2, 3, 16, 17}) {
    const int64_t t = 100;
    int64_t visible = 0;
    for (int64_t p = 0; p <= t + 5; ++p) visible += InWindow(t, p, w);
    EXPECT_EQ(visible, w);
  }
}

TEST(OldestVisible, AgreesWithInWindow) {
  for (int64_t w : {0, 1, 2, 5, 64}) {
    for (int64_t t : {0, 1, 3, 4, 5, 63, 64, 65, 1000}) {
      const int64_t oldest = OldestVisible(t, w);
      EXPECT_TRUE(InWindow(t, oldest, w)) << t << " " << w;
      if (oldest > 0) {
        EXPECT_FALSE(InWindow(t, oldest - 1, w)) << t << " " << w;
      }
    }
  }
}

}  // namespace
}  // namespace mswa
