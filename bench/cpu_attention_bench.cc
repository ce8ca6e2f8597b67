// The CPU paged attention kernel at decode: one token per sequence attends its whole context,
// over every layer of a model, as a batched decode step does. Each layer has its own pools, so
// with enough layers the keys and values come from memory, not the last-level cache; the
// blocks of every sequence lie at random over its pool (as they do once sequences have come and
// gone). Prints the time of a step (all layers) and the bytes of K and V it reads per second,
// beside the machine's read bandwidth measured in the same run.
//
//   cpu_attention_bench [--seqs 32] [--contexts 100,500,2000] [--layers 30] [--q_heads 9]
//                       [--kv_heads 3] [--head_dim 64] [--kv_cache_dtype float32|float16|bfloat16]
//                       [--threads N] [--repetitions 50] [--prompt N]
// With --prompt N, each sequence's N prompt tokens attend causally instead (prefill: the tile
// kernel), and the figure is GFLOP/s of the scores and the weighted values.
// The defaults are SmolLM2-135M's attention (9 query heads on 3 KV heads of 64 dims, 30 layers)
// at batch 32.
#include <omp.h>

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <numeric>
#include <random>
#include <string>
#include <vector>

#include "bench/bench_probes.h"
#include "kernels/paged_attention.h"

namespace {

using namespace mswa;

struct Options {
  int64_t seqs = 32;
  std::vector<int64_t> contexts = {100, 500, 2000};
  int64_t layers = 30;
  int64_t q_heads = 9;
  int64_t kv_heads = 3;
  int64_t head_dim = 64;
  KvDType kv_dtype = KvDType::kF32;
  int threads = 0;  // 0: OpenMP's default
  int repetitions = 50;
  int64_t prompt = 0;  // > 0: prefill of this many tokens per sequence instead of decode
};

[[noreturn]] void Usage(const char* error) {
  if (error != nullptr) std::fprintf(stderr, "cpu_attention_bench: %s\n", error);
  std::fprintf(error != nullptr ? stderr : stdout,
               "usage: cpu_attention_bench [--seqs 32] [--contexts 100,500,2000] [--layers 30]\n"
               "                           [--q_heads 9] [--kv_heads 3] [--head_dim 64]\n"
               "                           [--kv_cache_dtype float32|float16|bfloat16] [--threads N]\n"
               "                           [--repetitions 50] [--prompt N]\n"
               "Decode attention (one token per sequence over its whole context, every layer) on the\n"
               "paged KV cache: milliseconds per step and GB/s of K and V read, beside the machine's\n"
               "read bandwidth. Defaults: SmolLM2-135M's heads at batch 32. --prompt N: each\n"
               "sequence's N prompt tokens attend causally instead (prefill), in GFLOP/s.\n");
  std::exit(error != nullptr ? 2 : 0);
}

int64_t PositiveInt(const char* flag, const std::string& text) {
  char* end = nullptr;
  const long long v = std::strtoll(text.c_str(), &end, 10);
  if (text.empty() || *end != '\0' || v <= 0) Usage((std::string(flag) + " needs a positive integer").c_str());
  return v;
}

Options Parse(int argc, char** argv) {
  Options o;
  for (int i = 1; i < argc; ++i) {
    const std::string flag = argv[i];
    if (flag == "--help" || flag == "-h") Usage(nullptr);
    if (i + 1 >= argc) Usage((flag + " needs a value").c_str());
    const std::string value = argv[++i];
    if (flag == "--seqs") {
      o.seqs = PositiveInt("--seqs", value);
    } else if (flag == "--contexts") {
      o.contexts.clear();
      for (size_t at = 0; at <= value.size();) {
        const size_t comma = std::min(value.find(',', at), value.size());
        o.contexts.push_back(PositiveInt("--contexts", value.substr(at, comma - at)));
        at = comma + 1;
      }
    } else if (flag == "--layers") {
      o.layers = PositiveInt("--layers", value);
    } else if (flag == "--q_heads") {
      o.q_heads = PositiveInt("--q_heads", value);
    } else if (flag == "--kv_heads") {
      o.kv_heads = PositiveInt("--kv_heads", value);
    } else if (flag == "--head_dim") {
      o.head_dim = PositiveInt("--head_dim", value);
    } else if (flag == "--prompt") {
      o.prompt = PositiveInt("--prompt", value);
    } else if (flag == "--threads") {
      o.threads = static_cast<int>(PositiveInt("--threads", value));
    } else if (flag == "--repetitions") {
      o.repetitions = static_cast<int>(PositiveInt("--repetitions", value));
    } else if (flag == "--kv_cache_dtype") {
      if (value == "float32") {
        o.kv_dtype = KvDType::kF32;
      } else if (value == "float16") {
        o.kv_dtype = KvDType::kF16;
      } else if (value == "bfloat16") {
        o.kv_dtype = KvDType::kBF16;
      } else {
        Usage("--kv_cache_dtype is float32, float16 or bfloat16");
      }
    } else {
      Usage(("unknown flag " + flag).c_str());
    }
  }
  if (o.q_heads % o.kv_heads != 0) Usage("--q_heads must be a multiple of --kv_heads");
  if (o.head_dim > 256) Usage("--head_dim is at most 256");
  return o;
}

const char* DTypeName(KvDType t) {
  switch (t) {
    case KvDType::kF32: return "float32";
    case KvDType::kF16: return "float16";
    case KvDType::kBF16: return "bfloat16";
  }
  return "?";
}

// Mean milliseconds of one step over every layer at context C: a decode step (each sequence's
// token at position C - 1), or with --prompt each sequence's tokens at positions 0 .. C - 1.
double StepMs(const Options& o, int64_t C) {
  constexpr int64_t kBlock = 16;
  const int64_t S = o.seqs, D = o.head_dim, KV = o.kv_heads, HQ = o.q_heads;
  const int64_t elem = o.kv_dtype == KvDType::kF32 ? 4 : 2;
  const int64_t blocks_per_seq = C / kBlock + 1;
  const int64_t blocks = S * blocks_per_seq;
  std::mt19937 rng(7);
  std::vector<int32_t> table(static_cast<size_t>(blocks));
  std::iota(table.begin(), table.end(), 0);
  std::shuffle(table.begin(), table.end(), rng);
  // Pools filled with small values of any type's bit pattern: 0x3c00 is 1.0 in fp16, 0x3c3c a
  // bfloat16 near 0.01, and as fp32 a float near 0.011.
  const size_t pool_bytes = static_cast<size_t>(blocks * KV * kBlock * D * elem);
  std::vector<AlignedBytes> memory;
  std::vector<KvPoolView> pools(o.layers);
  for (int64_t l = 0; l < o.layers; ++l) {
    memory.push_back(AllocateAligned(pool_bytes, 0x3c));
    memory.push_back(AllocateAligned(pool_bytes, 0x3c));
    pools[l] = KvPoolView{memory[memory.size() - 2].get(), memory.back().get(), blocks, KV};
  }
  const int64_t per_seq = o.prompt > 0 ? C : 1;  // query tokens per sequence
  const int64_t T = S * per_seq;
  std::vector<int64_t> positions(T);
  std::vector<int32_t> seq_index(T);
  for (int64_t t = 0; t < T; ++t) {
    positions[t] = C - per_seq + t % per_seq;
    seq_index[t] = static_cast<int32_t>(t / per_seq);
  }
  const int64_t table_offset = 0, ring = blocks_per_seq;
  std::vector<KvHeadDesc> heads(KV);
  for (int64_t h = 0; h < KV; ++h) heads[h] = KvHeadDesc{0, 0, static_cast<int32_t>(h)};
  const int64_t row = (HQ + 2 * KV) * D;
  std::vector<float> q(T * row, 0.01f), out(T * HQ * D);
  auto step = [&] {
    const Clock::time_point t0 = Clock::now();
#pragma omp parallel
    for (int64_t l = 0; l < o.layers; ++l) {
      PagedKvParams p;
      p.num_tokens = T;
      p.num_q_heads = HQ;
      p.num_kv_heads = KV;
      p.head_dim = D;
      p.block_size = kBlock;
      p.positions = positions.data();
      p.seq_index = seq_index.data();
      p.block_tables = table.data();
      p.table_stride = blocks_per_seq;
      p.table_offsets = &table_offset;
      p.ring_sizes = &ring;
      p.kv_heads = heads.data();
      p.pools = &pools[l];
      p.num_groups = 1;
      p.kv_dtype = o.kv_dtype;
      PagedAttentionCpu(p, q.data(), row, 0.125f, out.data());
    }
    return Seconds(t0, Clock::now());
  };
  step();  // first touch of the pools' pages
  double total = 0;
  for (int r = 0; r < o.repetitions; ++r) total += step();
  return total / o.repetitions * 1e3;
}

}  // namespace

int main(int argc, char** argv) {
  const Options o = Parse(argc, argv);
  if (o.threads > 0) omp_set_num_threads(o.threads);
  std::printf("%s attention: %lld sequences, %lld layers, %lld query heads on %lld KV heads of %lld dims, "
              "%s KV, %d threads\n",
              o.prompt > 0 ? "prefill" : "decode", static_cast<long long>(o.seqs), static_cast<long long>(o.layers),
              static_cast<long long>(o.q_heads), static_cast<long long>(o.kv_heads),
              static_cast<long long>(o.head_dim), DTypeName(o.kv_dtype), omp_get_max_threads());
  if (o.prompt > 0) {
    // Multiply-adds of the scores and of the weighted values: every query head, every visible key.
    const double keys = static_cast<double>(o.prompt) * (o.prompt + 1) / 2;
    const double flops = 4.0 * o.layers * o.seqs * o.q_heads * o.head_dim * keys;
    const double ms = StepMs(o, o.prompt);
    std::printf("\n| prompt | ms per step | GFLOP/s |\n|---|---|---|\n| %lld | %.3f | %.1f |\n",
                static_cast<long long>(o.prompt), ms, flops / (ms / 1e3) / 1e9);
    return 0;
  }
  std::printf("read bandwidth %.1f GB/s (512 MiB)\n\n", ReadBandwidth(size_t{512} << 20) / 1e9);
  std::printf("| context | ms per step | K and V read | GB/s |\n|---|---|---|---|\n");
  const int64_t elem = o.kv_dtype == KvDType::kF32 ? 4 : 2;
  for (const int64_t C : o.contexts) {
    const double ms = StepMs(o, C);
    const double bytes = 2.0 * o.layers * o.seqs * C * o.kv_heads * o.head_dim * elem;
    std::printf("| %lld | %.3f | %.1f MB | %.1f |\n", static_cast<long long>(C), ms, bytes / 1e6,
                bytes / (ms / 1e3) / 1e9);
  }
  return 0;
}
