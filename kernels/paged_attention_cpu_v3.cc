// The fp16-pool attention kernels (per token and per tile) compiled with -march=x86-64-v3 (see
// kernels/CMakeLists.txt), so that their loads use the F16C conversions. Chosen at run time by
// PagedAttentionCpu.
#include "kernels/attend_cpu.h"
#include "kernels/attend_tile_cpu.h"

namespace mswa {
MSWA_DEFINE_ATTEND(AttendF16V3, F16)
MSWA_DEFINE_ATTEND_TILE(AttendTileF16V3, F16)
}  // namespace mswa
