#include "model/runtime/huge_pages.h"

#include <gtest/gtest.h>

#include <cstdint>

namespace mswa {
namespace {

TEST(HugePages, MovedTensorsKeepTheirValuesInOneAlignedBuffer) {
  at::Tensor a = at::randn({33, 17});
  at::Tensor b = at::randint(-128, 127, {5, 7}, at::TensorOptions().dtype(at::kChar));
  at::Tensor c = at::randn({3}).to(at::kBFloat16);
  at::Tensor none;
  const at::Tensor a0 = a.clone(), b0 = b.clone(), c0 = c.clone();
  const void* old_a = a.data_ptr();
  ASSERT_TRUE(MoveToHugePages({&a, &none, &b, &c}));
  EXPECT_FALSE(none.defined());
  EXPECT_NE(a.data_ptr(), old_a);
  EXPECT_TRUE(at::equal(a, a0));
  EXPECT_TRUE(at::equal(b, b0));
  EXPECT_TRUE(at::equal(c, c0));
  EXPECT_EQ(a.scalar_type(), at::kFloat);
  EXPECT_EQ(b.scalar_type(), at::kChar);
  EXPECT_EQ(c.sizes(), c0.sizes());
  const auto addr = [](const at::Tensor& t) { return reinterpret_cast<uintptr_t>(t.data_ptr()); };
  // The first tensor opens the 2 MiB-aligned buffer; the others follow it, 64-byte aligned.
  EXPECT_EQ(addr(a) % kHugePageBytes, 0u);
  EXPECT_EQ(addr(b), addr(a) + (a.nbytes() + 63) / 64 * 64);
  EXPECT_EQ(addr(c) % 64, 0u);
  EXPECT_LT(addr(c), addr(a) + kHugePageBytes);
}

TEST(HugePages, TheBufferLivesAsLongAsAnyTensorInIt) {
  at::Tensor a = at::full({1000}, 3.f), b = at::full({1000}, 4.f);
  ASSERT_TRUE(MoveToHugePages({&a, &b}));
  a = at::Tensor();  // the other tensor still holds the buffer
  b.add_(1.f);
  EXPECT_TRUE(at::equal(b, at::full({1000}, 5.f)));
  at::Tensor view = b.narrow(0, 10, 5);
  b = at::Tensor();
  EXPECT_TRUE(at::equal(view, at::full({5}, 5.f)));
}

TEST(HugePages, NothingToMoveIsFine) {
  at::Tensor none;
  EXPECT_TRUE(MoveToHugePages({}));
  EXPECT_TRUE(MoveToHugePages({&none}));
  EXPECT_FALSE(none.defined());
}

}  // namespace
}  // namespace mswa
