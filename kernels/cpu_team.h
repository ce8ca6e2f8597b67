// How the CPU kernels share their work among threads, alone or inside a caller's team.
//
// A decode step on a small model is a chain of ~30 kernels of a few microseconds each. Opening
// and closing an OpenMP parallel region per kernel (waking the other threads, then waiting for
// all of them to join) cost about 1.2 us a kernel: on a 6.8 M-parameter Llama at batch 1 the
// products alone ran 7-9% faster inside one region (400 against 440 us a token). So the CPU model
// runs a small step's layers inside ONE region, its "team", and the kernels, called from inside
// an active region, split their work among the team's threads with OpenMP worksharing (an
// orphaned `omp for`, whose implicit barrier ends the kernel) instead of opening a region.
//
// Contract for a kernel called inside a team: every thread of the team calls it, with the same
// arguments, in the same order; it returns on every thread once its outputs are complete (after
// a barrier). Called outside any region, the kernels open their own, as they always did.
#pragma once

#include <omp.h>

namespace mswa {

// Runs body() on every thread of the caller's team when called inside an active parallel region,
// else on a region of its own (of one thread when !worth_threads). body() splits its work with
// worksharing constructs (`#pragma omp for`, `single`), which bind to whichever team runs it.
template <typename Body>
inline void OnTeam(bool worth_threads, const Body& body) {
  if (omp_in_parallel()) {
    body();
    return;
  }
#pragma omp parallel if (worth_threads)
  body();
}

}  // namespace mswa
