// The fp16-pool attention kernel compiled with -march=x86-64-v3 (see kernels/CMakeLists.txt),
// so that its loads use the F16C conversions. Chosen at run time by PagedAttentionCpu.
#include "kernels/attend_cpu.h"

namespace mswa {
MSWA_DEFINE_ATTEND(AttendF16V3, F16)
}  // namespace mswa
