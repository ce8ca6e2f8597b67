// MSWA_CPU_CLONES: compile a hot function for AVX-512, AVX2 and baseline x86-64 (GCC
// target_clones); the dynamic loader picks the best the CPU has, so one binary runs everywhere
// and still uses the widest vectors available. A no-op on other architectures.
#pragma once

#if defined(__x86_64__) && defined(__GNUC__) && !defined(__CUDACC__)
#define MSWA_CPU_CLONES __attribute__((target_clones("avx512f", "avx2", "default")))
#else
#define MSWA_CPU_CLONES
#endif
