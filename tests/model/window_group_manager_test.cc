#include "model/runtime/kv/window_group_manager.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <set>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "model/runtime/kv_layout.h"
#include "tests/model/kv_oracle.h"

namespace mswa {
namespace {

WindowGroupManager Make(int64_t window, int32_t blocks, int64_t block_size, int64_t max_chunk,
                        int64_t max_model_len = 64) {
  WindowGroupOptions options;
  options.window = window;
  options.num_blocks = blocks;
  options.block_size = block_size;
  options.max_chunk = max_chunk;
  options.max_model_len = max_model_len;
  return WindowGroupManager(options);
}

// Logical blocks the manager holds: slot b % R of the ring, for the last R logical blocks.
std::set<int64_t> LiveBlocks(const WindowGroupManager& m, int64_t seq) {
  std::set<int64_t> live;
  const int64_t end = m.end_block(seq);
  const int32_t* table = m.BlockTable(seq);
  for (int64_t b = std::max<int64_t>(0, end - m.ring_size()); b < end; ++b) {
    if (table[b % m.ring_size()] != -1) live.insert(b);
  }
  return live;
}

std::set<int64_t> AsSet(LogicalBlockRange r) {
  std::set<int64_t> s;
  for (int64_t b = r.begin; b < r.end; ++b) s.insert(b);
  return s;
}

// Grows `seq` by n positions from `len` (the coordinator's job in KvCacheManager).
void Grow(WindowGroupManager& m, int64_t seq, int64_t& len, int64_t n) {
  ASSERT_TRUE(m.CheckAppend(seq, len + n).ok()) << m.CheckAppend(seq, len + n);
  len += n;
  m.Append(seq, len);
}

TEST(WindowLimits, FiniteAndUnbounded) {
  struct Row {
    int64_t window, chunk, block, max_len;
    WindowLimits want;
  };
  const std::vector<Row> rows = {
      {4, 2, 2, 21, {4, 4, -1}},    // R = ceil(5 / 2) + 1
      {0, 2, 2, 21, {11, -1, 21}},  // ceil(21 / 2) slots, at most 21 tokens
      {1, 1, 1, 9, {2, 2, -1}},     // ceil(1 / 1) + 1
      {64, 16, 16, 100, {6, 6, -1}},  // kv_layout.h's example
      {0, 16, 16, 32, {2, -1, 32}},
  };
  for (const Row& r : rows) {
    const WindowLimits got = WindowLimits::For(r.window, r.chunk, r.block, r.max_len);
    SCOPED_TRACE(absl::StrCat("W ", r.window, " C ", r.chunk, " B ", r.block));
    EXPECT_EQ(got.ring_size, r.want.ring_size);
    EXPECT_EQ(got.max_live, r.want.max_live);
    EXPECT_EQ(got.max_length, r.want.max_length);
  }
}

TEST(WindowGroupManager, BlocksNeeded) {
  struct Row {
    int64_t window, max_tokens, want;
  };
  // B = 2, C = 2, max_model_len 21: R = 4 for W = 4.
  const std::vector<Row> rows = {
      {4, -1, 4}, {4, 0, 0}, {4, 1, 1}, {4, 3, 2}, {4, 8, 4}, {4, 100, 4},
      {0, -1, -1}, {0, 0, 0}, {0, 3, 2}, {0, 21, 11},
  };
  for (const Row& r : rows) {
    EXPECT_EQ(Make(r.window, 8, 2, 2, 21).BlocksNeeded(r.max_tokens), r.want)
        << "W " << r.window << " max_tokens " << r.max_tokens;
    if (r.max_tokens >= 0) {
      EXPECT_EQ(r.want, BlocksForLength(r.window, r.max_tokens, 2, 2));  // kv_layout.h agrees
    }
  }
}

// The prefix-hit rule: resuming after a cached prefix of P positions needs the blocks holding
// positions max(0, P - W + 1) .. P - 1 (the query at P sees P - W + 1 .. P); unbounded: all
// blocks 0 .. ceil(P / B) - 1.
TEST(WindowGroupManager, NeededBlocksForPrefixHit) {
  struct Row {
    int64_t window, block, prefix;
    LogicalBlockRange want;
  };
  const std::vector<Row> rows = {
      {4, 2, 10, {3, 5}},   // sees 7..10: positions 7..9 in blocks 3, 4
      {4, 2, 0, {0, 0}},    // nothing computed, nothing needed
      {4, 2, 3, {0, 2}},    // window not yet full: 0..2
      {4, 2, 4, {0, 2}},    // sees 1..4: 1..3 in blocks 0, 1
      {4, 2, 5, {1, 3}},    // sees 2..5: blocks 1, 2 (block 2 partial)
      {1, 2, 10, {5, 5}},   // W = 1 sees only itself
      {2, 4, 8, {1, 2}},    // sees 7..8: position 7 in block 1
      {3, 4, 8, {1, 2}},    // W = B - 1
      {4, 4, 8, {1, 2}},    // W = B: 5..7
      {5, 4, 8, {1, 2}},    // W = B + 1: 4..7
      {6, 4, 8, {0, 2}},    // W = B + 2: 3..7 reaches block 0
      {16, 4, 8, {0, 2}},   // W >= P: everything
      {0, 4, 8, {0, 2}},    // unbounded
      {0, 4, 9, {0, 3}},
      {0, 2, 21, {0, 11}},
  };
  for (const Row& r : rows) {
    const LogicalBlockRange got = Make(r.window, 8, r.block, 2).NeededBlocks(r.prefix);
    EXPECT_EQ(got, r.want) << "W " << r.window << " B " << r.block << " P " << r.prefix
                           << ": got [" << got.begin << ", " << got.end << ")";
  }
  // The literal statement, swept.
  for (int64_t block : {1, 2, 3, 4}) {
    for (int64_t window : {0, 1, 2, 3, 4, 5, 7, 8, 9}) {
      const WindowGroupManager m = Make(window, 8, block, 2);
      for (int64_t p = 1; p <= 40; ++p) {
        const int64_t first = window == 0 ? 0 : std::max<int64_t>(0, p - window + 1);
        EXPECT_EQ(m.NeededBlocks(p), (LogicalBlockRange{first / block, (p - 1) / block + 1}))
            << "W " << window << " B " << block << " P " << p;
      }
    }
  }
}

TEST(WindowGroupManager, CheckReserve) {
  struct Row {
    int64_t window;
    int32_t pool;
    int64_t others;  // blocks already reserved by another sequence of others tokens
    int64_t max_tokens;
    absl::StatusCode want;
  };
  // B = 2, C = 2, max_model_len 12; W = 4: R = 4.
  const std::vector<Row> rows = {
      {4, 8, 0, -1, absl::StatusCode::kOk},
      {4, 3, 0, -1, absl::StatusCode::kInvalidArgument},   // R = 4 > pool 3
      {4, 3, 0, 1000, absl::StatusCode::kInvalidArgument},
      {4, 3, 0, 6, absl::StatusCode::kOk},                 // min(R, 3) = 3
      {4, 8, 12, 8, absl::StatusCode::kOk},                // 4 + 4 <= 8
      {4, 8, 12, 9, absl::StatusCode::kOk},
      {4, 6, 12, 8, absl::StatusCode::kResourceExhausted},  // 4 + 4 > 6
      {4, 8, 0, 100, absl::StatusCode::kOk},               // finite: any length
      {0, 6, 0, 12, absl::StatusCode::kOk},
      {0, 6, 0, 13, absl::StatusCode::kInvalidArgument},   // > max_model_len
      {0, 6, 0, -1, absl::StatusCode::kInvalidArgument},   // unknown length: no bound
      {0, 6, 2, 10, absl::StatusCode::kOk},                // 1 + 5 <= 6
      {0, 6, 4, 10, absl::StatusCode::kResourceExhausted},  // 2 + 5 > 6
  };
  for (size_t i = 0; i < rows.size(); ++i) {
    const Row& r = rows[i];
    WindowGroupManager m = Make(r.window, r.pool, 2, 2, 12);
    if (r.others > 0) m.Reserve(99, r.others);
    EXPECT_EQ(m.CheckReserve(r.max_tokens).code(), r.want) << "row " << i;
  }
}

// B = 2, W = 4, one token per step: block b (positions 2b, 2b+1) leaves exactly when the next
// query n has n - 4 >= 2b + 1, i.e. n = 5, 7, 9, ... (n = W - 1 and n = W keep block 0).
TEST(WindowGroupManager, FreesBlockExactlyWhenItsLastTokenLeaves) {
  WindowGroupManager m = Make(4, 4, 2, 1);
  m.Reserve(7, -1);
  int64_t len = 0;
  for (int64_t n = 1; n <= 20; ++n) {
    Grow(m, 7, len, 1);
    EXPECT_EQ(m.FreeOutOfWindow(7, len), (n >= 5 && n % 2 == 1) ? 1 : 0) << "n = " << n;
  }
  // W = 1 sees only itself: a block goes as soon as the next query moves past it.
  WindowGroupManager one = Make(1, 2, 2, 1);
  one.Reserve(7, -1);
  len = 0;
  for (int64_t n = 1; n <= 10; ++n) {
    Grow(one, 7, len, 1);
    EXPECT_EQ(one.FreeOutOfWindow(7, len), n % 2 == 0 ? 1 : 0) << "n = " << n;
    EXPECT_EQ(one.live_blocks(7), n % 2 == 0 ? 0 : 1) << "n = " << n;
  }
}

// Sweep block sizes, windows at the edges (1, B - 1, B, B + 1, ...; 0 = unbounded) and chunk
// sizes; after every step the live blocks must be exactly the brute-force set, exactly
// NeededBlocks (so a sequence resumed from a prefix hit holds what one that computed the
// prefix holds), and never more than R.
TEST(WindowGroupManager, FreesBlocksBehindWindow) {
  for (int64_t block : {1, 2, 3, 4}) {
    for (int64_t window : {0, 1, 2, 3, 4, 5, 7, 8, 9}) {
      for (int64_t chunk : {1, 2, 3, 5}) {
        const int64_t kLen = 48;
        // The pool holds exactly one sequence's bound: proves the bound suffices.
        const int64_t bound = window == 0 ? (kLen + block - 1) / block
                                          : MaxBlocksPerSequence(window, chunk, block);
        WindowGroupManager m = Make(window, static_cast<int32_t>(bound), block, chunk, kLen);
        ASSERT_TRUE(m.CheckReserve(window == 0 ? kLen : -1).ok());
        m.Reserve(1, window == 0 ? kLen : -1);
        int64_t len = 0, live_before = 0;
        for (int64_t step = 0; len < kLen; ++step) {
          Grow(m, 1, len, std::min(1 + step % chunk, kLen - len));
          EXPECT_LE(m.live_blocks(1), bound);
          const int64_t grown = m.live_blocks(1) - live_before;
          const int64_t freed = m.FreeOutOfWindow(1, len);
          EXPECT_EQ(m.live_blocks(1), live_before + grown - freed);
          live_before = m.live_blocks(1);
          const std::string where = absl::StrCat("B ", block, " W ", window, " C ", chunk,
                                                 " n ", len);
          EXPECT_EQ(LiveBlocks(m, 1), NeededBlocksOracle(len, window, block)) << where;
          EXPECT_EQ(LiveBlocks(m, 1), AsSet(m.NeededBlocks(len))) << where;
          ASSERT_TRUE(m.CheckInvariants().ok()) << m.CheckInvariants();
        }
        EXPECT_EQ(m.blocks_freed_by_window() + m.live_blocks(1), (kLen + block - 1) / block);
        m.Release(1);
        EXPECT_EQ(m.pool().num_free(), bound);
        EXPECT_EQ(m.reserved_blocks(), 0);
      }
    }
  }
}

// Prefix caching at the group level: blocks hashed while live survive release in the LRU, and
// a sequence adopting them looks exactly like one that computed the prefix (B = 2, W = 4).
TEST(WindowGroupManager, AdoptPrefixResumesWhereTheWindowLeftOff) {
  WindowGroupManager m = Make(4, 8, 2, 2);
  const std::vector<uint64_t> chain = {11, 12, 13, 14, 15, 16};  // stand-ins for chain hashes
  m.Reserve(1, -1);
  int64_t len = 0;
  for (int i = 0; i < 5; ++i) {
    Grow(m, 1, len, 2);
    for (int64_t b = 0; b < len / 2; ++b) m.HashBlock(1, b, chain[b]);  // no-op unless live
    m.FreeOutOfWindow(1, len);
  }
  EXPECT_EQ(m.pool().num_hashed(), 5);  // blocks 0..2 were cached on their way out
  m.Release(1);
  EXPECT_EQ(m.pool().num_cached(), 5);
  EXPECT_TRUE(m.HasPrefix(10, chain));   // sees 7..10: blocks 3, 4
  EXPECT_TRUE(m.HasPrefix(8, chain));
  EXPECT_FALSE(m.HasPrefix(12, chain));  // block 5 was never computed
  m.Reserve(2, -1);
  m.AdoptPrefix(2, 10, chain);
  EXPECT_EQ(m.live_range(2), (LogicalBlockRange{3, 5}));
  EXPECT_EQ(LiveBlocks(m, 2), NeededBlocksOracle(10, 4, 2));
  EXPECT_EQ(m.block_at(2, 3), m.pool().Lookup(14));
  EXPECT_EQ(m.pool().ref_count(m.block_at(2, 4)), 1);
  EXPECT_EQ(m.pool().num_cached(), 3);
  ASSERT_TRUE(m.CheckInvariants().ok()) << m.CheckInvariants();
  len = 10;
  Grow(m, 2, len, 2);  // block 5 is fresh and unhashed
  EXPECT_EQ(m.pool().hash(m.block_at(2, 5)), 0u);
  EXPECT_EQ(m.FreeOutOfWindow(2, len), 1);  // block 3 back to the LRU
  EXPECT_EQ(m.pool().num_cached(), 4);
  ASSERT_TRUE(m.CheckInvariants().ok()) << m.CheckInvariants();
}

// One 100,000-token stream, one token per step, in a pool of exactly R blocks: once the window
// is full the live count repeats with period B (it depends only on the alignment of the window
// to the blocks), and the ring never collides.
TEST(WindowGroupManager, LongStreamKeepsLiveBlocksBounded) {
  const int64_t W = 7, B = 4, C = 1;
  const int64_t R = MaxBlocksPerSequence(W, C, B);  // ceil(7 / 4) + 1 = 3
  WindowGroupManager m = Make(W, static_cast<int32_t>(R), B, C);
  m.Reserve(1, -1);
  std::vector<int64_t> live_at(B, -1);  // steady-state live count by n % B
  int64_t freed = 0, len = 0;
  for (int64_t n = 1; n <= 100000; ++n) {
    Grow(m, 1, len, 1);
    freed += m.FreeOutOfWindow(1, len);
    const int64_t live = m.live_blocks(1);
    ASSERT_LE(live, R);
    if (n >= W + B) {
      if (live_at[n % B] == -1) live_at[n % B] = live;
      ASSERT_EQ(live, live_at[n % B]) << "n = " << n;
    }
    if (n % 997 == 0 || n < 100) {
      ASSERT_TRUE(m.CheckInvariants().ok()) << m.CheckInvariants();
      ASSERT_EQ(LiveBlocks(m, 1), NeededBlocksOracle(n, W, B)) << "n = " << n;
    }
  }
  EXPECT_EQ(freed + m.live_blocks(1), 100000 / B);
  EXPECT_EQ(m.blocks_freed_by_window(), freed);
}

TEST(WindowGroupManager, AppendBeyondReservationIsRefused) {
  WindowGroupManager m = Make(4, 8, 2, 2);  // R = 4
  m.Reserve(1, -1);
  int64_t len = 0;
  for (int i = 0; i < 4; ++i) Grow(m, 1, len, 2);  // FreeOutOfWindow skipped: 4 live
  EXPECT_EQ(m.CheckAppend(1, 10).code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_TRUE(m.CheckAppend(1, 8).ok());  // no new block
  EXPECT_EQ(m.FreeOutOfWindow(1, len), 2);  // query 8 sees 5..8
  EXPECT_TRUE(m.CheckAppend(1, 10).ok());
}

// CheckInvariants is only worth its name if it sees damage: a reference no table accounts for,
// and a block allocated outside every table.
TEST(WindowGroupManager, CheckInvariantsSeesAnUnaccountedReference) {
  WindowGroupManager m = Make(4, 8, 2, 2);
  m.Reserve(1, -1);
  int64_t len = 0;
  Grow(m, 1, len, 2);
  ASSERT_TRUE(m.CheckInvariants().ok()) << m.CheckInvariants();
  m.pool().Ref(m.BlockTable(1)[0]);
  EXPECT_EQ(m.CheckInvariants().code(), absl::StatusCode::kInternal);
  m.pool().Unref(m.BlockTable(1)[0]);
  ASSERT_TRUE(m.CheckInvariants().ok()) << m.CheckInvariants();
  m.pool().Allocate();  // held by no table
  EXPECT_EQ(m.CheckInvariants().code(), absl::StatusCode::kInternal);
}

}  // namespace
}  // namespace mswa
