#include "model/runtime/huge_pages.h"

#include <cstdint>
#include <cstdlib>
#include <memory>

#if defined(__linux__)
#include <sys/mman.h>
#include <unistd.h>
#endif

namespace mswa {
namespace {

// Asks the OS to back [p, p + bytes) with huge pages (only the 2 MiB-aligned pages inside it
// can be). No effect, and no error, where the OS has none.
void AdviseHugePages(void* p, size_t bytes) {
#if defined(MADV_HUGEPAGE)
  // madvise takes whole pages: from the first page boundary inside the range to the last.
  const uintptr_t page = static_cast<uintptr_t>(sysconf(_SC_PAGESIZE));
  const uintptr_t begin = (reinterpret_cast<uintptr_t>(p) + page - 1) / page * page;
  const uintptr_t end = (reinterpret_cast<uintptr_t>(p) + bytes) / page * page;
  if (end > begin) (void)madvise(reinterpret_cast<void*>(begin), end - begin, MADV_HUGEPAGE);
#else
  (void)p;
  (void)bytes;
#endif
}

}  // namespace

bool MoveToHugePages(const std::vector<at::Tensor*>& tensors) {
  // Each tensor at a 64-byte boundary, as LibTorch's own allocations (kernels rely on it for
  // AMX tile rows and aligned loads). Matrices on 4 KiB boundaries measured slower in AMX
  // prompts.
  constexpr size_t kAlign = 64;
  size_t total = 0;
  for (const at::Tensor* t : tensors) {
    if (t->defined()) total += (t->nbytes() + kAlign - 1) / kAlign * kAlign;
  }
  if (total == 0) return true;
  total = (total + kHugePageBytes - 1) / kHugePageBytes * kHugePageBytes;
  // The buffer lives as long as any tensor in it: each holds a reference through its deleter.
  void* raw = std::aligned_alloc(kHugePageBytes, total);
  if (raw == nullptr) return false;
  AdviseHugePages(raw, total);
  std::shared_ptr<void> buffer(raw, std::free);
  char* base = static_cast<char*>(raw);
  size_t offset = 0;
  for (at::Tensor* t : tensors) {
    if (!t->defined()) continue;
    at::Tensor moved = at::from_blob(
        base + offset, t->sizes(), [buffer](void*) {}, t->options());
    moved.copy_(*t);
    offset += (t->nbytes() + kAlign - 1) / kAlign * kAlign;
    *t = moved;  // releases the old copy before the next one is made
  }
  return true;
}

}  // namespace mswa
