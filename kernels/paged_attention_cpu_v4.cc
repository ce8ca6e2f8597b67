// Attention kernels compiled with -march=x86-64-v4 (see kernels/CMakeLists.txt), chosen at run
// time by PagedAttentionCpu where the CPU has AVX-512:
// - fp16 pools, per token and per tile: loads use the F16C/AVX-512 conversions;
// - fp32 and bf16 pools, per tile (prompts): the softmax's 2^x takes vrndscaleps and vscalefps
//   (vec16.h's Exp2NonPositive), which target_clones cannot pick.
#include "kernels/attend_cpu.h"
#include "kernels/attend_tile_cpu.h"

namespace mswa {
MSWA_DEFINE_ATTEND(AttendF16V4, F16)
MSWA_DEFINE_ATTEND_TILE(AttendTileF16V4, F16)
MSWA_DEFINE_ATTEND_TILE(AttendTileF32V4, float)
MSWA_DEFINE_ATTEND_TILE(AttendTileBF16V4, Bf16)
}  // namespace mswa
