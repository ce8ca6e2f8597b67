// MSWA_CPU_CLONES: compile a hot function for x86-64-v4 (AVX-512), x86-64-v3 (AVX2, FMA, F16C)
// and baseline x86-64 (GCC target_clones); the dynamic loader picks the best the CPU has, so one
// binary runs everywhere and still uses the widest vectors available. (The ISA names "avx512f"
// and "avx2" would leave FMA out of the AVX2 version.) A no-op on other architectures.
#pragma once

#if defined(__x86_64__) && defined(__GNUC__) && !defined(__CUDACC__)
#define MSWA_CPU_CLONES __attribute__((target_clones("arch=x86-64-v4", "arch=x86-64-v3", "default")))
#else
#define MSWA_CPU_CLONES
#endif
