// Internal to kernels/: what the AMX kernels share (small_linear_amx_cpu.cc for bfloat16,
// small_linear_q8_tiles16_cpu.cc for int8): whether the CPU has a tile unit and Linux granted
// this process its registers, and the loading of tile shapes.
#pragma once

#if defined(__x86_64__) && defined(__GNUC__) && defined(__linux__)
#define MSWA_AMX_X86 1
#include <cstdint>

namespace mswa {
namespace amx {

// The units, as their bits in CPUID leaf 7's EDX.
enum class Unit { kBf16 = 22, kInt8 = 25 };

// The CPU has AMX-TILE and `unit`, and the OS granted the 8 KiB tile state (asked for once,
// arch_prctl(ARCH_REQ_XCOMP_PERM), Linux 5.16 and later).
bool CpuAndOsHave(Unit unit);

// ldtilecfg's 64-byte operand: palette 1, each tile's bytes per row and rows.
struct alignas(64) TileConfig {
  uint8_t palette = 1;
  uint8_t start_row = 0;
  uint8_t reserved[14] = {};
  uint16_t colsb[16] = {};
  uint8_t rows[16] = {};
};

// Loads the shapes (on every product: other code on the thread, a library's own AMX kernels,
// may have loaded shapes of its own since). Not _tile_loadconfig: GCC 12's declares only the
// first 8 bytes of the configuration read, and at -O1 drops the stores of the shapes as dead
// (the tiles then stay unconfigured and the first tile instruction faults). The whole 64 bytes
// as the operand, and a barrier so that no store the tile loads read is moved past them.
__attribute__((target("amx-tile"))) inline void LoadConfig(const TileConfig& cfg) {
  __asm__ volatile("ldtilecfg %0" : : "m"(cfg) : "memory");
}

}  // namespace amx
}  // namespace mswa

#endif
