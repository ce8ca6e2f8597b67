// Weights, which every step reads end to end, on 2 MiB pages where the OS offers them (Linux's
// transparent huge pages, "always" or "madvise" mode). A decode step streams all of a model's
// matrices; on 4 KiB pages each page is a TLB miss and a page walk (a 27 MB model is 6,600
// pages against an STLB of about 2,000 entries). Huge pages are a hint: where the OS declines,
// memory works as before. Not for memory first touched during steps (the KV pools): with THP's
// defrag in "madvise" mode a fault there may compact memory mid-step, which made prompts 25%
// slower (docs/benchmarks.md).
#pragma once

#include <ATen/ATen.h>

#include <cstddef>
#include <vector>

namespace mswa {

// The huge page size the buffer is aligned to.
inline constexpr size_t kHugePageBytes = size_t{2} << 20;

// Moves the data of each defined tensor in `tensors` into one buffer aligned to 2 MiB and
// advised for huge pages, one tensor after another (each old buffer is released before the
// next copy, so loading needs one tensor's worth of extra memory, not the model's). Each tensor
// keeps its sizes, type and values; every tensor must be contiguous and on the CPU, and no two
// may share storage. Tensors that alias one of these elsewhere keep the old copy, so take the
// aliases after this. Returns false, leaving every tensor as it was, when the buffer cannot be
// allocated.
bool MoveToHugePages(const std::vector<at::Tensor*>& tensors);

}  // namespace mswa
