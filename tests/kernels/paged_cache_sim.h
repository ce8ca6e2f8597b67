// A simulated paged KV cache with the manager's rules and a dense oracle, shared by the CPU and
// CUDA attention kernel tests: random page tables drawn from pools larger than needed, freed
// blocks poisoned with NaN (any read outside a window shows up as NaN), every sequence run
// through chunked prefill, every output row checked against gathered keys with an explicit
// InWindow mask and an fp64 softmax.
#pragma once

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <functional>
#include <limits>
#include <map>
#include <random>
#include <set>
#include <string>
#include <tuple>
#include <vector>

#include "kernels/paged_attention.h"
#include "kernels/window.h"

namespace mswa::testing {

struct Case {
  int64_t head_dim;
  int64_t num_q_heads;
  std::vector<int64_t> kv_windows;  // one per KV head (num_kv_heads = size)
  int64_t block_size;
  std::vector<int64_t> lengths;  // one per sequence, all run in the same calls
  std::vector<int64_t> chunks;   // prefill chunk per sequence
  int64_t decode_after = -1;     // >= 0: positions from here on arrive one token a step (decode)
};

inline std::string Describe(const Case& c) {
  std::string s = "D=" + std::to_string(c.head_dim) + " Hq=" + std::to_string(c.num_q_heads) +
                  " B=" + std::to_string(c.block_size) + " windows=";
  for (int64_t w : c.kv_windows) s += std::to_string(w) + ",";
  s += " len/chunk=";
  for (size_t i = 0; i < c.lengths.size(); ++i) {
    s += std::to_string(c.lengths[i]) + "/" + std::to_string(c.chunks[i]) + ",";
  }
  return s;
}

// A little paged cache with the manager's rules: ring tables, blocks allocated as tokens arrive,
// freed (and NaN-poisoned) as soon as no future query can see them.
class Simulation {
 public:
  explicit Simulation(const Case& c, uint32_t seed) : c_(c), rng_(seed) {
    const int64_t kv = static_cast<int64_t>(c.kv_windows.size());
    std::map<int64_t, int32_t> group_of;
    for (int64_t h = 0; h < kv; ++h) {
      auto it = group_of.find(c.kv_windows[h]);
      if (it == group_of.end()) {
        it = group_of.emplace(c.kv_windows[h], static_cast<int32_t>(windows_.size())).first;
        windows_.push_back(c.kv_windows[h]);
        group_heads_.push_back(0);
      }
      heads_.push_back(KvHeadDesc{c.kv_windows[h], it->second, group_heads_[it->second]++});
    }
    const int64_t max_len = *std::max_element(c.lengths.begin(), c.lengths.end());
    const int64_t max_chunk = *std::max_element(c.chunks.begin(), c.chunks.end());
    int64_t offset = 0;
    for (size_t g = 0; g < windows_.size(); ++g) {
      const int64_t w = windows_[g];
      const int64_t ring = w == 0 ? (max_len + c.block_size - 1) / c.block_size
                                  : (w - 1 + max_chunk + c.block_size - 1) / c.block_size + 1;
      rings_.push_back(ring);
      offsets_.push_back(offset);
      offset += ring;
      // More blocks than all sequences can hold, so ids are scattered.
      const int64_t blocks = ring * static_cast<int64_t>(c.lengths.size()) * 2 + 3;
      storage_k_.emplace_back(blocks * group_heads_[g] * c.block_size * c.head_dim, kNaN);
      storage_v_.emplace_back(blocks * group_heads_[g] * c.block_size * c.head_dim, kNaN);
      std::vector<int32_t> free(blocks);
      for (int32_t b = 0; b < blocks; ++b) free[b] = b;
      std::shuffle(free.begin(), free.end(), rng_);
      free_.push_back(free);
    }
    stride_ = offset;
    tables_.assign(c.lengths.size() * stride_, -1);
    for (size_t g = 0; g < windows_.size(); ++g) {
      pools_.push_back(KvPoolView{storage_k_[g].data(), storage_v_[g].data(),
                                  static_cast<int64_t>(storage_k_[g].size()) /
                                      (group_heads_[g] * c.block_size * c.head_dim),
                                  group_heads_[g]});
    }
  }

  // Makes position `pos` of sequence `s` writable.
  void Allocate(int32_t s, int64_t pos) {
    for (size_t g = 0; g < windows_.size(); ++g) {
      int32_t& slot = tables_[s * stride_ + offsets_[g] + (pos / c_.block_size) % rings_[g]];
      if (pos % c_.block_size == 0 || slot < 0) {
        ASSERT_EQ(slot, -1) << "ring slot still in use: the ring is too small";
        ASSERT_FALSE(free_[g].empty());
        slot = free_[g].back();
        free_[g].pop_back();
      }
    }
  }

  // Frees every block of sequence `s` that no query at position >= next_pos can see.
  void FreeOutOfWindow(int32_t s, int64_t next_pos) {
    for (size_t g = 0; g < windows_.size(); ++g) {
      if (windows_[g] == 0) continue;
      const int64_t oldest = OldestVisible(next_pos, windows_[g]);
      for (int64_t b = 0; (b + 1) * c_.block_size <= oldest; ++b) {
        int32_t& slot = tables_[s * stride_ + offsets_[g] + b % rings_[g]];
        if (slot < 0 || freed_.count({s, static_cast<int64_t>(g), b})) continue;
        Poison(g, slot);
        free_[g].push_back(slot);
        std::shuffle(free_[g].begin(), free_[g].end(), rng_);
        slot = -1;
        freed_.insert({s, static_cast<int64_t>(g), b});
      }
    }
  }

  // Host storage of group g's pools (the CUDA tests mirror it on the device).
  int32_t num_groups() const { return static_cast<int32_t>(windows_.size()); }
  std::vector<float>& storage_k(int32_t g) { return storage_k_[g]; }
  std::vector<float>& storage_v(int32_t g) { return storage_v_[g]; }
  const std::vector<KvPoolView>& pools() const { return pools_; }
  const std::vector<KvHeadDesc>& heads() const { return heads_; }
  const std::vector<int32_t>& tables() const { return tables_; }
  const std::vector<int64_t>& offsets() const { return offsets_; }
  const std::vector<int64_t>& rings() const { return rings_; }

  PagedKvParams Params(const std::vector<int64_t>& positions, const std::vector<int32_t>& seqs) {
    PagedKvParams p;
    p.num_tokens = static_cast<int64_t>(positions.size());
    p.num_q_heads = c_.num_q_heads;
    p.num_kv_heads = static_cast<int64_t>(heads_.size());
    p.head_dim = c_.head_dim;
    p.block_size = c_.block_size;
    p.positions = positions.data();
    p.seq_index = seqs.data();
    p.block_tables = tables_.data();
    p.table_stride = stride_;
    p.table_offsets = offsets_.data();
    p.ring_sizes = rings_.data();
    p.kv_heads = heads_.data();
    p.pools = pools_.data();
    p.num_groups = static_cast<int32_t>(pools_.size());
    return p;
  }

 private:
  static constexpr float kNaN = std::numeric_limits<float>::quiet_NaN();
  void Poison(size_t g, int32_t block) {
    const int64_t n = group_heads_[g] * c_.block_size * c_.head_dim;
    std::fill_n(storage_k_[g].begin() + block * n, n, kNaN);
    std::fill_n(storage_v_[g].begin() + block * n, n, kNaN);
  }

  const Case c_;
  std::mt19937 rng_;
  std::vector<int64_t> windows_, rings_, offsets_;
  std::vector<int32_t> group_heads_;
  std::vector<KvHeadDesc> heads_;
  std::vector<std::vector<float>> storage_k_, storage_v_;
  std::vector<std::vector<int32_t>> free_;
  std::vector<KvPoolView> pools_;
  std::vector<int32_t> tables_;
  std::set<std::tuple<int32_t, int64_t, int64_t>> freed_;
  int64_t stride_ = 0;
};

// Tokens sequence s adds in the step that starts at position `done`.
inline int64_t Chunk(const Case& c, size_t s, int64_t done) {
  return c.decode_after >= 0 && done >= c.decode_after ? 1 : c.chunks[s];
}

// Writes one step's new keys/values into the cache and computes its attention into `out`
// [tokens, num_q_heads, head_dim] (host memory): the kernels under test. q/k/v are the step's
// rows, [tokens, heads, head_dim].
using StepRunner = std::function<void(Simulation& sim, const PagedKvParams& p, const std::vector<float>& q,
                                      const std::vector<float>& k, const std::vector<float>& v,
                                      std::vector<float>* out)>;

// Runs every sequence of `c` through chunked prefill (all sequences' chunks in one call per
// step) and compares every output row with the dense oracle. Returns the max abs error.
// `round` maps each random input to the storage precision under test (identity for fp32).
// `outputs`, when given, receives each sequence's output rows [length, num_q_heads, head_dim].
inline double RunCase(const Case& c, uint32_t seed, const StepRunner& run, float (*round)(float) = nullptr,
               std::vector<std::vector<float>>* outputs = nullptr) {
  const int64_t D = c.head_dim, Hq = c.num_q_heads;
  const int64_t KV = static_cast<int64_t>(c.kv_windows.size());
  const int64_t group = Hq / KV;
  std::mt19937 rng(seed);
  std::normal_distribution<float> normal(0.f, 1.f);
  const size_t S = c.lengths.size();
  // Dense per-sequence tensors: q [T, Hq, D], k/v [T, KV, D].
  std::vector<std::vector<float>> q(S), k(S), v(S);
  for (size_t s = 0; s < S; ++s) {
    q[s].resize(c.lengths[s] * Hq * D);
    k[s].resize(c.lengths[s] * KV * D);
    v[s].resize(c.lengths[s] * KV * D);
    for (auto* a : {&q[s], &k[s], &v[s]}) {
      for (float& x : *a) x = round ? round(normal(rng)) : normal(rng);
    }
  }
  Simulation sim(c, seed);
  if (outputs) {
    outputs->assign(S, {});
    for (size_t s = 0; s < S; ++s) (*outputs)[s].assign(c.lengths[s] * Hq * D, 0.f);
  }
  std::vector<int64_t> done(S, 0);
  double max_err = 0;
  const float scale = 1.f / std::sqrt(static_cast<float>(D));
  while (true) {
    std::vector<int64_t> positions;
    std::vector<int32_t> seqs;
    std::vector<float> q_batch, k_batch, v_batch;
    for (size_t s = 0; s < S; ++s) {
      const int64_t end = std::min(c.lengths[s], done[s] + Chunk(c, s, done[s]));
      for (int64_t t = done[s]; t < end; ++t) {
        sim.Allocate(static_cast<int32_t>(s), t);
        positions.push_back(t);
        seqs.push_back(static_cast<int32_t>(s));
        q_batch.insert(q_batch.end(), q[s].begin() + t * Hq * D, q[s].begin() + (t + 1) * Hq * D);
        k_batch.insert(k_batch.end(), k[s].begin() + t * KV * D, k[s].begin() + (t + 1) * KV * D);
        v_batch.insert(v_batch.end(), v[s].begin() + t * KV * D, v[s].begin() + (t + 1) * KV * D);
      }
    }
    if (positions.empty()) break;
    PagedKvParams p = sim.Params(positions, seqs);
    std::vector<float> out(positions.size() * Hq * D, -7.f);
    run(sim, p, q_batch, k_batch, v_batch, &out);

    for (size_t i = 0; i < positions.size(); ++i) {
      const int64_t t = positions[i];
      const size_t s = seqs[i];
      for (int64_t h = 0; h < Hq; ++h) {
        const int64_t kvh = h / group;
        const int64_t w = c.kv_windows[kvh];
        // Dense oracle in fp64.
        std::vector<double> scores;
        std::vector<int64_t> keys;
        double mx = -1e300;
        for (int64_t pk = 0; pk <= t; ++pk) {
          if (!InWindow(t, pk, w)) continue;
          double dot = 0;
          for (int64_t d = 0; d < D; ++d) {
            dot += static_cast<double>(q[s][(t * Hq + h) * D + d]) * k[s][(pk * KV + kvh) * D + d];
          }
          scores.push_back(dot * scale);
          keys.push_back(pk);
          mx = std::max(mx, scores.back());
        }
        double denom = 0;
        for (double& sc : scores) denom += (sc = std::exp(sc - mx));
        for (int64_t d = 0; d < D; ++d) {
          double expect = 0;
          for (size_t j = 0; j < keys.size(); ++j) {
            expect += scores[j] / denom * v[s][(keys[j] * KV + kvh) * D + d];
          }
          const double got = out[(i * Hq + h) * D + d];
          if (outputs) (*outputs)[s][(t * Hq + h) * D + d] = out[(i * Hq + h) * D + d];
          const double err = std::isnan(got) ? 1e9 : std::abs(got - expect);
          max_err = std::max(max_err, err);
        }
      }
    }
    for (size_t s = 0; s < S; ++s) {
      done[s] = std::min(c.lengths[s], done[s] + Chunk(c, s, done[s]));
      sim.FreeOutOfWindow(static_cast<int32_t>(s), done[s]);
    }
  }
  return max_err;
}

}  // namespace mswa::testing
