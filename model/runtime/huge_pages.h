// Memory that every step reads end to end, on 2 MiB pages where the OS offers them (Linux's
// transparent huge pages, "always" or "madvise" mode). A decode step streams all of a model's
// weights; on 4 KiB pages each page is a TLB miss and a page walk (a 27 MB model is 6,600 pages
// against an STLB of about 2,000 entries), and a KV pool first touched in 4 KiB pages costs a
// page fault every 4 KiB of new context. Huge pages are a hint: where the OS declines, memory
// works as before.
#pragma once

#include <ATen/ATen.h>

#include <cstddef>
#include <vector>

namespace mswa {

// The huge page size these functions align to.
inline constexpr size_t kHugePageBytes = size_t{2} << 20;

// Asks the OS to back [p, p + bytes) with huge pages (only the 2 MiB-aligned pages inside it
// can be). No effect, and no error, where the OS has none.
void AdviseHugePages(void* p, size_t bytes);

// Moves the data of each defined tensor in `tensors` into one buffer aligned to 2 MiB and
// advised for huge pages, one tensor after another (each old buffer is released before the
// next copy, so loading needs one tensor's worth of extra memory, not the model's). Each tensor
// keeps its sizes, type and values; every tensor must be contiguous and on the CPU, and no two
// may share storage. Tensors that alias one of these elsewhere keep the old copy, so take the
// aliases after this. Returns false, leaving every tensor as it was, when the buffer cannot be
// allocated.
bool MoveToHugePages(const std::vector<at::Tensor*>& tensors);

}  // namespace mswa
