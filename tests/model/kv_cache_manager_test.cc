#include "model/runtime/kv_cache_manager.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <map>
#include <random>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "kernels/window.h"
#include "tests/model/kv_oracle.h"

namespace mswa {
namespace {

KvCacheManager Make(std::vector<int64_t> windows, std::vector<int64_t> blocks, int64_t block_size,
                    int64_t max_chunk, int64_t max_model_len = 64) {
  KvCacheConfig config;
  config.block_size = block_size;
  config.max_chunk = max_chunk;
  config.max_model_len = max_model_len;
  config.group_windows = std::move(windows);
  config.blocks_per_group = std::move(blocks);
  absl::StatusOr<KvCacheManager> m = KvCacheManager::Create(std::move(config));
  EXPECT_TRUE(m.ok()) << m.status();
  return std::move(m).value();
}

std::vector<int32_t> Table(const KvCacheManager& m, int64_t seq, int g) {
  const int32_t* t = m.BlockTable(seq, g);
  return std::vector<int32_t>(t, t + m.ring_size(g));
}

// Logical blocks the manager holds: slot b % R of the ring, for the last R logical blocks.
std::set<int64_t> LiveBlocks(const KvCacheManager& m, int64_t seq, int g) {
  std::set<int64_t> live;
  const int64_t end = (m.num_tokens(seq) + m.block_size() - 1) / m.block_size();
  const int32_t* table = m.BlockTable(seq, g);
  for (int64_t b = std::max<int64_t>(0, end - m.ring_size(g)); b < end; ++b) {
    if (table[b % m.ring_size(g)] != -1) live.insert(b);
  }
  return live;
}

TEST(KvCacheManager, RingSizes) {
  // W = 4, C = 2, B = 2: R = ceil(5 / 2) + 1 = 4; unbounded: ceil(21 / 2) = 11.
  KvCacheManager m = Make({4, 0}, {8, 8}, 2, 2, 21);
  EXPECT_EQ(m.num_groups(), 2);
  EXPECT_EQ(m.ring_size(0), 4);
  EXPECT_EQ(m.ring_size(1), 11);
  EXPECT_EQ(m.BlocksNeeded(0, -1), 4);
  EXPECT_EQ(m.BlocksNeeded(0, 3), 2);
  EXPECT_EQ(m.BlocksNeeded(0, 100), 4);
  EXPECT_EQ(m.BlocksNeeded(1, 3), 2);
  EXPECT_EQ(m.BlocksNeeded(1, -1), -1);
}

TEST(KvCacheManager, CreateRejectsBadConfig) {
  KvCacheConfig config;
  config.group_windows = {4, 0};
  config.blocks_per_group = {8};
  EXPECT_EQ(KvCacheManager::Create(config).status().code(), absl::StatusCode::kInvalidArgument);
  config.blocks_per_group = {8, 8};
  config.block_size = 0;
  EXPECT_EQ(KvCacheManager::Create(config).status().code(), absl::StatusCode::kInvalidArgument);
  config.block_size = 16;
  config.group_windows = {-1, 0};
  EXPECT_EQ(KvCacheManager::Create(config).status().code(), absl::StatusCode::kInvalidArgument);
  config.group_windows = {4, 0};
  EXPECT_TRUE(KvCacheManager::Create(config).ok());
}

// The worked example of the header: B = 2, W = 4, C = 2, chunks of 2.
TEST(KvCacheManager, RingTableAfterAppends) {
  KvCacheManager m = Make({4}, {8}, 2, 2);
  ASSERT_TRUE(m.Admit(1, -1).ok());
  EXPECT_EQ(Table(m, 1, 0), (std::vector<int32_t>{-1, -1, -1, -1}));
  ASSERT_TRUE(m.Append(1, 2).ok());  // positions 0, 1 -> logical 0 -> block 0 in slot 0
  EXPECT_EQ(Table(m, 1, 0), (std::vector<int32_t>{0, -1, -1, -1}));
  EXPECT_EQ(m.FreeOutOfWindow(1), 0);
  ASSERT_TRUE(m.Append(1, 2).ok());
  EXPECT_EQ(m.FreeOutOfWindow(1), 0);  // query 4 sees 1..4: logical 0 still needed
  ASSERT_TRUE(m.Append(1, 2).ok());
  EXPECT_EQ(Table(m, 1, 0), (std::vector<int32_t>{0, 1, 2, -1}));
  EXPECT_EQ(m.FreeOutOfWindow(1), 1);  // query 6 sees 3..6: logical 0 goes, block 0 is free
  EXPECT_EQ(Table(m, 1, 0), (std::vector<int32_t>{-1, 1, 2, -1}));
  ASSERT_TRUE(m.Append(1, 2).ok());  // logical 3 reuses block 0 (LIFO) in slot 3
  EXPECT_EQ(m.FreeOutOfWindow(1), 1);
  ASSERT_TRUE(m.Append(1, 2).ok());  // logical 4 wraps to slot 0
  EXPECT_EQ(m.FreeOutOfWindow(1), 1);
  // 10 tokens, next query 10 sees 7..10: logical 3 (block 0) in slot 3, logical 4 (block 1)
  // in slot 0.
  EXPECT_EQ(m.num_tokens(1), 10);
  EXPECT_EQ(Table(m, 1, 0), (std::vector<int32_t>{1, -1, -1, 0}));
  ASSERT_TRUE(m.Append(1, 2).ok());  // logical 5 -> slot 1
  EXPECT_EQ(Table(m, 1, 0), (std::vector<int32_t>{1, 2, -1, 0}));
  EXPECT_EQ(m.live_blocks(1, 0), 3);
  EXPECT_EQ(m.FreeOutOfWindow(1), 1);  // query 12 sees 9..12: logical 3 goes
  EXPECT_EQ(Table(m, 1, 0), (std::vector<int32_t>{1, 2, -1, -1}));
  EXPECT_EQ(m.blocks_freed_by_window(0), 4);
  EXPECT_TRUE(m.CheckInvariants().ok()) << m.CheckInvariants();
}

TEST(KvCacheManager, UnboundedGroupNeverFrees) {
  KvCacheManager m = Make({0}, {10}, 2, 3, 20);
  ASSERT_TRUE(m.Admit(1, 20).ok());
  EXPECT_EQ(m.reservation(1, 0), 10);
  for (int64_t n : {3, 3, 1, 3, 3, 2, 3, 2}) {
    ASSERT_TRUE(m.Append(1, n).ok());
    EXPECT_EQ(m.FreeOutOfWindow(1), 0);
    EXPECT_EQ(m.live_blocks(1, 0), (m.num_tokens(1) + 1) / 2);
    ASSERT_TRUE(m.CheckInvariants().ok()) << m.CheckInvariants();
  }
  EXPECT_EQ(m.num_tokens(1), 20);
  // Ring of ceil(20 / 2) = 10 slots: logical block b in slot b, ids handed out in order.
  EXPECT_EQ(Table(m, 1, 0), (std::vector<int32_t>{0, 1, 2, 3, 4, 5, 6, 7, 8, 9}));
  EXPECT_EQ(m.blocks_freed_by_window(0), 0);
}

TEST(KvCacheManager, AdmissionIsAllOrNothing) {
  // Group 0: W = 4, R = 4, pool 8. Group 1: unbounded, ring 6, pool 6.
  KvCacheManager m = Make({4, 0}, {8, 6}, 2, 2, 12);
  ASSERT_TRUE(m.Admit(1, 12).ok());  // reserves 4 and 6: group 1 is now full
  EXPECT_EQ(m.reserved_blocks(0), 4);
  EXPECT_EQ(m.reserved_blocks(1), 6);
  // Group 0 could take it, group 1 cannot: nothing is reserved anywhere.
  EXPECT_EQ(m.Admit(2, 2).code(), absl::StatusCode::kResourceExhausted);
  EXPECT_EQ(m.reserved_blocks(0), 4);
  EXPECT_EQ(m.reserved_blocks(1), 6);
  EXPECT_EQ(m.num_sequences(), 1);
  EXPECT_EQ(m.reservation(2, 0), -1);
  EXPECT_EQ(m.Admit(1, 2).code(), absl::StatusCode::kAlreadyExists);
  // Never fits, whatever is busy: InvalidArgument, even while busy.
  EXPECT_EQ(m.Admit(3, 13).code(), absl::StatusCode::kInvalidArgument);  // > max_model_len
  EXPECT_EQ(m.Admit(3, -1).code(), absl::StatusCode::kInvalidArgument);  // unknown length
  EXPECT_EQ(m.reserved_blocks(0), 4);
  m.Release(1);
  EXPECT_EQ(m.reserved_blocks(0), 0);
  EXPECT_EQ(m.reserved_blocks(1), 0);
  ASSERT_TRUE(m.Admit(2, 2).ok());
  EXPECT_EQ(m.reservation(2, 0), 1);
  EXPECT_EQ(m.reservation(2, 1), 1);
  ASSERT_TRUE(m.CheckInvariants().ok()) << m.CheckInvariants();

  // A finite group whose pool is smaller than R: short sequences fit, long ones never do.
  KvCacheManager small = Make({4}, {3}, 2, 2);
  EXPECT_EQ(small.Admit(1, -1).code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(small.Admit(1, 1000).code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(small.reserved_blocks(0), 0);
  ASSERT_TRUE(small.Admit(1, 6).ok());  // min(R = 4, 3 blocks)
  EXPECT_EQ(small.reservation(1, 0), 3);
  EXPECT_EQ(small.Admit(2, 1).code(), absl::StatusCode::kResourceExhausted);
}

TEST(KvCacheManager, UnknownLengthStreamsInFiniteGroups) {
  // Finite windows only: a stream of unknown (or longer than max_model_len) length fits in R.
  KvCacheManager m = Make({3, 8}, {3, 6}, 2, 2, 8);
  ASSERT_TRUE(m.Admit(1, -1).ok());
  EXPECT_EQ(m.reservation(1, 0), 3);  // ceil(4 / 2) + 1
  EXPECT_EQ(m.reservation(1, 1), 6);  // ceil(9 / 2) + 1
  for (int i = 0; i < 100; ++i) {
    ASSERT_TRUE(m.Append(1, 2).ok());
    m.FreeOutOfWindow(1);
  }
  EXPECT_EQ(m.num_tokens(1), 200);
  ASSERT_TRUE(m.CheckInvariants().ok()) << m.CheckInvariants();
}

TEST(KvCacheManager, AppendFailsCleanly) {
  KvCacheManager m = Make({4}, {8}, 2, 2);
  EXPECT_EQ(m.Append(9, 1).code(), absl::StatusCode::kNotFound);
  ASSERT_TRUE(m.Admit(1, 5).ok());
  EXPECT_EQ(m.Append(1, 3).code(), absl::StatusCode::kFailedPrecondition);  // > max_chunk
  EXPECT_EQ(m.Append(1, -1).code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(m.num_tokens(1), 0);
  EXPECT_EQ(m.used_blocks(0), 0);
  ASSERT_TRUE(m.Append(1, 0).ok());
  ASSERT_TRUE(m.Append(1, 2).ok());
  ASSERT_TRUE(m.Append(1, 2).ok());
  EXPECT_EQ(m.Append(1, 2).code(), absl::StatusCode::kFailedPrecondition);  // 6 > max_tokens 5
  EXPECT_EQ(m.num_tokens(1), 4);
  EXPECT_EQ(m.used_blocks(0), 2);
  ASSERT_TRUE(m.Append(1, 1).ok());
  EXPECT_EQ(m.num_tokens(1), 5);
  ASSERT_TRUE(m.CheckInvariants().ok()) << m.CheckInvariants();

  // Skipping FreeOutOfWindow lets the live blocks outgrow the reservation: refused, unchanged.
  ASSERT_TRUE(m.Admit(2, -1).ok());
  for (int i = 0; i < 4; ++i) ASSERT_TRUE(m.Append(2, 2).ok());
  EXPECT_EQ(m.live_blocks(2, 0), 4);
  const std::vector<int32_t> before = Table(m, 2, 0);
  EXPECT_EQ(m.Append(2, 2).code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(Table(m, 2, 0), before);
  EXPECT_EQ(m.num_tokens(2), 8);
  EXPECT_EQ(m.FreeOutOfWindow(2), 2);  // query 8 sees 5..8: logical 0 and 1 go
  ASSERT_TRUE(m.Append(2, 2).ok());
  ASSERT_TRUE(m.CheckInvariants().ok()) << m.CheckInvariants();
}

// Append is all-or-nothing across groups too: when one group's reservation would be exceeded,
// no group allocates anything.
TEST(KvCacheManager, AppendIsAllOrNothingAcrossGroups) {
  // Group 0: W = 2, R = ceil(3 / 2) + 1 = 3. Group 1: W = 16, R = 10.
  KvCacheManager m = Make({2, 16}, {3, 10}, 2, 2);
  ASSERT_TRUE(m.Admit(1, -1).ok());
  for (int i = 0; i < 3; ++i) ASSERT_TRUE(m.Append(1, 2).ok());  // FreeOutOfWindow skipped
  EXPECT_EQ(m.live_blocks(1, 0), 3);
  const std::vector<int32_t> before = Table(m, 1, 1);
  EXPECT_EQ(m.Append(1, 2).code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(Table(m, 1, 1), before);  // group 1 had room but took nothing
  EXPECT_EQ(m.used_blocks(1), 3);
  EXPECT_EQ(m.num_tokens(1), 6);
  ASSERT_TRUE(m.CheckInvariants().ok()) << m.CheckInvariants();
  EXPECT_EQ(m.FreeOutOfWindow(1), 2);  // query 6 sees 5..6: logical 0 and 1 go in group 0
  ASSERT_TRUE(m.Append(1, 2).ok());
  EXPECT_EQ(m.used_blocks(1), 4);
  ASSERT_TRUE(m.CheckInvariants().ok()) << m.CheckInvariants();
}

TEST(KvCacheManager, ReleaseReturnsEverythingAndCallsOnFreeOncePerBlock) {
  KvCacheManager m = Make({2, 0}, {6, 16}, 2, 2, 16);
  std::map<std::pair<int, int32_t>, int> freed;
  m.set_on_free([&](int g, int32_t block) { ++freed[{g, block}]; });
  ASSERT_TRUE(m.Admit(1, 16).ok());
  ASSERT_TRUE(m.Admit(2, 16).ok());
  int64_t by_window = 0;
  for (int i = 0; i < 4; ++i) {
    ASSERT_TRUE(m.Append(1, 2).ok());
    ASSERT_TRUE(m.Append(2, 1).ok());
    by_window += m.FreeOutOfWindow(1) + m.FreeOutOfWindow(2);
  }
  EXPECT_EQ(by_window, m.blocks_freed_by_window(0) + m.blocks_freed_by_window(1));
  int64_t calls = 0;
  for (const auto& [key, count] : freed) calls += count;
  EXPECT_EQ(calls, by_window);
  const int64_t used = m.used_blocks(0) + m.used_blocks(1);
  m.Release(1);
  m.Release(2);
  m.Release(2);  // unknown: no-op
  calls = 0;
  for (const auto& [key, count] : freed) calls += count;
  EXPECT_EQ(calls, by_window + used);
  EXPECT_EQ(m.num_sequences(), 0);
  for (int g = 0; g < 2; ++g) {
    EXPECT_EQ(m.used_blocks(g), 0);
    EXPECT_EQ(m.reserved_blocks(g), 0);
  }
  EXPECT_EQ(m.BlockTable(1, 0), nullptr);
  EXPECT_EQ(m.num_tokens(1), -1);
  ASSERT_TRUE(m.CheckInvariants().ok()) << m.CheckInvariants();
}

// Thousands of sequences over three groups (W = 3, 16, unbounded), random lengths and chunks,
// finishing and aborting at random; every call is followed by a full consistency check.
TEST(KvCacheManager, ChurnKeepsInvariants) {
  const std::vector<int64_t> windows = {3, 16, 0};
  const int64_t B = 4, C = 8, kMaxLen = 200;
  KvCacheManager m = Make(windows, {40, 60, 200}, B, C, kMaxLen);
  // Allocated blocks per group, maintained from the ring tables and on_free: a block must be
  // freed exactly once per allocation.
  std::vector<std::set<int32_t>> allocated(windows.size());
  bool double_free = false;
  m.set_on_free([&](int g, int32_t block) {
    if (allocated[g].erase(block) != 1) double_free = true;
  });
  struct Live {
    int64_t max_tokens;
  };
  std::map<int64_t, Live> live;
  std::mt19937_64 rng(20240611);
  auto uniform = [&](int64_t lo, int64_t hi) {
    return std::uniform_int_distribution<int64_t>(lo, hi)(rng);
  };
  int64_t next_id = 0, admitted = 0, finished = 0, aborted = 0, exhausted = 0;
  for (int step = 0; step < 6000; ++step) {
    // Try to admit up to two newcomers per step.
    for (int k = 0; k < 2; ++k) {
      const int64_t max_tokens = uniform(0, 9) == 0 ? -1 : uniform(0, kMaxLen + 20);
      bool invalid = max_tokens < 0 || max_tokens > kMaxLen;
      bool busy = false;
      for (int g = 0; g < m.num_groups(); ++g) {
        const int64_t need = invalid ? 0 : BlocksForLength(windows[g], max_tokens, C, B);
        invalid = invalid || need > m.total_blocks(g);
        busy = busy || need > m.total_blocks(g) - m.reserved_blocks(g);
      }
      const absl::Status s = m.Admit(next_id, max_tokens);
      if (invalid) {
        ASSERT_EQ(s.code(), absl::StatusCode::kInvalidArgument) << s;
      } else if (busy) {
        ASSERT_EQ(s.code(), absl::StatusCode::kResourceExhausted) << s;
        ++exhausted;
      } else {
        ASSERT_TRUE(s.ok()) << s;
        live[next_id] = Live{max_tokens};
        ++admitted;
      }
      ++next_id;
      ASSERT_TRUE(m.CheckInvariants().ok()) << m.CheckInvariants();
    }
    // One engine step: every live sequence appends a chunk, or finishes, or is aborted.
    for (auto it = live.begin(); it != live.end();) {
      const int64_t id = it->first;
      const int64_t left = it->second.max_tokens - m.num_tokens(id);
      if (left == 0 || uniform(0, 99) == 0) {
        ++(left == 0 ? finished : aborted);
        m.Release(id);
        it = live.erase(it);
        ASSERT_TRUE(m.CheckInvariants().ok()) << m.CheckInvariants();
        continue;
      }
      const int64_t n = uniform(1, std::min(C, left));
      ASSERT_TRUE(m.Append(id, n).ok());
      for (int g = 0; g < m.num_groups(); ++g) {
        const int32_t* table = m.BlockTable(id, g);
        for (int64_t slot = 0; slot < m.ring_size(g); ++slot) {
          if (table[slot] != -1) allocated[g].insert(table[slot]);
        }
        EXPECT_LE(m.live_blocks(id, g), m.reservation(id, g));
        if (windows[g] != 0) {
          EXPECT_LE(m.live_blocks(id, g), MaxBlocksPerSequence(windows[g], C, B));
        }
      }
      m.FreeOutOfWindow(id);
      for (int g = 0; g < m.num_groups(); ++g) {
        ASSERT_EQ(LiveBlocks(m, id, g), NeededBlocksOracle(m.num_tokens(id), windows[g], B));
      }
      ASSERT_TRUE(m.CheckInvariants().ok()) << m.CheckInvariants();
      ++it;
    }
    ASSERT_FALSE(double_free);
    for (int g = 0; g < m.num_groups(); ++g) {
      ASSERT_EQ(static_cast<int64_t>(allocated[g].size()), m.used_blocks(g));
    }
  }
  for (const auto& [id, unused] : live) m.Release(id);
  ASSERT_TRUE(m.CheckInvariants().ok()) << m.CheckInvariants();
  EXPECT_FALSE(double_free);
  EXPECT_EQ(m.num_sequences(), 0);
  for (int g = 0; g < m.num_groups(); ++g) {
    EXPECT_EQ(m.used_blocks(g), 0);
    EXPECT_EQ(m.reserved_blocks(g), 0);
    EXPECT_TRUE(allocated[g].empty());
  }
  // The run exercised what it claims to.
  EXPECT_GT(admitted, 1000);
  EXPECT_GT(finished, 100);
  EXPECT_GT(aborted, 100);
  EXPECT_GT(exhausted, 100);
  EXPECT_GT(m.blocks_freed_by_window(0), 1000);
  EXPECT_EQ(m.blocks_freed_by_window(2), 0);
}

TEST(KvCacheManager, PlanBlocksPerGroupSplitsInProportionToTheBound) {
  KvLayout layout;
  layout.groups = {WindowGroup{4, 2, {}}, WindowGroup{0, 1, {}}};
  // head_dim 8, 2-byte elements, B = 2, C = 2, max_model_len 12:
  //   group 0: R = 4 blocks of 2 * 2 heads * 2 * 8 * 2 = 128 bytes -> 512 bytes per sequence
  //   group 1: 6 blocks of 64 bytes                                 -> 384 bytes per sequence
  const int64_t per_seq = 896;
  auto plan = [&](int64_t bytes) { return PlanBlocksPerGroup(layout, 8, 2, 2, 2, 12, bytes); };
  ASSERT_TRUE(plan(per_seq).ok());
  EXPECT_EQ(*plan(per_seq), (std::vector<int64_t>{4, 6}));
  EXPECT_EQ(*plan(3 * per_seq), (std::vector<int64_t>{12, 18}));
  EXPECT_EQ(*plan(5 * per_seq / 2), (std::vector<int64_t>{10, 15}));  // 2.5 sequences' worth

  // Every group runs out at the same concurrency: 3 full-length sequences, then both are busy.
  KvCacheConfig config;
  config.block_size = 2;
  config.max_chunk = 2;
  config.max_model_len = 12;
  config.group_windows = {4, 0};
  config.blocks_per_group = *plan(3 * per_seq);
  absl::StatusOr<KvCacheManager> m = KvCacheManager::Create(config);
  ASSERT_TRUE(m.ok()) << m.status();
  for (int64_t id = 0; id < 3; ++id) ASSERT_TRUE(m->Admit(id, 12).ok());
  EXPECT_EQ(m->Admit(3, 12).code(), absl::StatusCode::kResourceExhausted);
  EXPECT_EQ(m->reserved_blocks(0), m->total_blocks(0));
  EXPECT_EQ(m->reserved_blocks(1), m->total_blocks(1));

  const absl::StatusOr<std::vector<int64_t>> too_small = plan(per_seq - 1);
  EXPECT_EQ(too_small.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(too_small.status().message().find("896 bytes"), std::string::npos)
      << too_small.status();
  EXPECT_EQ(PlanBlocksPerGroup(KvLayout{}, 8, 2, 2, 2, 12, 1 << 20).status().code(),
            absl::StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace mswa
