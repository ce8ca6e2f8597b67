#include "model/runtime/kv/block_pool.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <iterator>
#include <list>
#include <random>
#include <string>
#include <vector>

namespace mswa {
namespace {

TEST(BlockPool, FreshPoolHandsOutIdsInOrderAndReusesLifo) {
  BlockPool pool(4);
  EXPECT_EQ(pool.num_blocks(), 4);
  EXPECT_EQ(pool.num_free(), 4);
  EXPECT_EQ(pool.Allocate(), 0);
  EXPECT_EQ(pool.Allocate(), 1);
  EXPECT_EQ(pool.Allocate(), 2);
  EXPECT_EQ(pool.num_used(), 3);
  pool.Unref(0);
  pool.Unref(2);
  EXPECT_EQ(pool.Allocate(), 2);  // most recently freed first
  EXPECT_EQ(pool.Allocate(), 0);
  EXPECT_EQ(pool.Allocate(), 3);
  EXPECT_EQ(pool.num_free(), 0);
  EXPECT_TRUE(pool.CheckInvariants().ok()) << pool.CheckInvariants();
  BlockPool empty(0);
  EXPECT_EQ(empty.num_free(), 0);
  EXPECT_FALSE(empty.EvictOne());
  EXPECT_TRUE(empty.CheckInvariants().ok()) << empty.CheckInvariants();
}

// One scripted walk through every transition of the state diagram in the header, in a pool of
// three blocks. Each row is one call and what must hold right after it.
TEST(BlockPool, StateTransitions) {
  enum Kind { kAllocate, kRef, kUnref, kSetHash, kEvict };
  struct Row {
    Kind kind;
    int32_t block;   // argument (kRef, kUnref, kSetHash) or expected result (kAllocate)
    uint64_t hash;   // kSetHash argument
    bool ok;         // kSetHash / kEvict result
    int64_t free;    // num_free() after
    int64_t cached;  // num_cached() after
    std::vector<int32_t> freed;  // on_free calls so far
  };
  const std::vector<Row> rows = {
      {kAllocate, 0, 0, true, 2, 0, {}},
      {kAllocate, 1, 0, true, 1, 0, {}},
      {kRef, 0, 0, true, 1, 0, {}},             // block 0 shared: ref 2
      {kUnref, 0, 0, true, 1, 0, {}},           // ref 1: still held, not freed
      {kSetHash, 0, 100, true, 1, 0, {}},
      {kSetHash, 1, 100, false, 1, 0, {}},      // 100 already names block 0
      {kSetHash, 1, 101, true, 1, 0, {}},
      {kUnref, 1, 0, true, 2, 1, {}},           // hashed: cached, counts as free, not freed
      {kUnref, 0, 0, true, 3, 2, {}},           // LRU now 1 (oldest), 0
      {kRef, 1, 0, true, 2, 1, {}},             // a hit revives block 1
      {kUnref, 1, 0, true, 3, 2, {}},           // LRU now 0 (oldest), 1
      {kAllocate, 2, 0, true, 2, 2, {}},        // the free list comes first
      {kAllocate, 0, 0, true, 1, 1, {0}},       // then the least recently used cached block
      {kEvict, -1, 0, true, 1, 0, {0, 1}},      // evicts block 1 to the free list
      {kEvict, -1, 0, false, 1, 0, {0, 1}},     // nothing cached
      {kUnref, 0, 0, true, 2, 0, {0, 1, 0}},    // unhashed again: straight to the free list
  };
  BlockPool pool(3);
  std::vector<int32_t> freed;
  pool.set_on_free([&](int32_t block) { freed.push_back(block); });
  for (size_t i = 0; i < rows.size(); ++i) {
    const Row& row = rows[i];
    SCOPED_TRACE("row " + std::to_string(i));
    switch (row.kind) {
      case kAllocate:
        EXPECT_EQ(pool.Allocate(), row.block);
        EXPECT_EQ(pool.ref_count(row.block), 1);
        EXPECT_EQ(pool.hash(row.block), 0u);
        break;
      case kRef:
        pool.Ref(row.block);
        break;
      case kUnref:
        pool.Unref(row.block);
        break;
      case kSetHash:
        EXPECT_EQ(pool.SetHash(row.block, row.hash), row.ok);
        break;
      case kEvict:
        EXPECT_EQ(pool.EvictOne(), row.ok);
        break;
    }
    EXPECT_EQ(pool.num_free(), row.free);
    EXPECT_EQ(pool.num_cached(), row.cached);
    EXPECT_EQ(freed, row.freed);
    ASSERT_TRUE(pool.CheckInvariants().ok()) << pool.CheckInvariants();
  }
  // Eviction dropped both hashes; nothing else ever had one.
  EXPECT_EQ(pool.Lookup(100), -1);
  EXPECT_EQ(pool.Lookup(101), -1);
}

TEST(BlockPool, LookupFindsReferencedAndCachedBlocks) {
  BlockPool pool(2);
  const int32_t a = pool.Allocate();
  ASSERT_TRUE(pool.SetHash(a, 7));
  EXPECT_EQ(pool.Lookup(7), a);  // referenced
  pool.Unref(a);
  EXPECT_EQ(pool.Lookup(7), a);  // cached
  EXPECT_EQ(pool.hash(a), 7u);
  pool.Ref(a);
  EXPECT_EQ(pool.ref_count(a), 1);
  EXPECT_EQ(pool.Lookup(7), a);
  EXPECT_EQ(pool.Lookup(8), -1);
  EXPECT_TRUE(pool.CheckInvariants().ok()) << pool.CheckInvariants();
}

// Random calls against a plain reference model (a vector free list and a std::list LRU): every
// block Allocate returns, every on_free call and every count must match.
TEST(BlockPool, ChurnMatchesReferenceModel) {
  const int32_t n = 16;
  BlockPool pool(n);
  std::vector<int32_t> freed;
  pool.set_on_free([&](int32_t block) { freed.push_back(block); });
  std::vector<int32_t> ref(n, 0);
  std::vector<uint64_t> hash(n, 0);
  std::vector<int32_t> free_list;
  for (int32_t b = n - 1; b >= 0; --b) free_list.push_back(b);
  std::list<int32_t> lru;  // front = least recently used
  std::vector<int32_t> want_freed;
  std::mt19937_64 rng(7);
  auto uniform = [&](int64_t lo, int64_t hi) {
    return std::uniform_int_distribution<int64_t>(lo, hi)(rng);
  };
  uint64_t next_hash = 1;
  int64_t evictions = 0, revivals = 0;
  for (int step = 0; step < 20000; ++step) {
    const int64_t op = uniform(0, 3);
    int32_t b = static_cast<int32_t>(uniform(0, n - 1));
    if (op == 1 && !lru.empty() && uniform(0, 1) == 0) {  // aim at a cached block: a cache hit
      b = *std::next(lru.begin(), uniform(0, static_cast<int64_t>(lru.size()) - 1));
    }
    if (op == 0 && !(free_list.empty() && lru.empty())) {
      int32_t want;
      if (free_list.empty()) {
        want = lru.front();
        lru.pop_front();
        hash[want] = 0;
        want_freed.push_back(want);
        ++evictions;
      } else {
        want = free_list.back();
        free_list.pop_back();
      }
      ref[want] = 1;
      ASSERT_EQ(pool.Allocate(), want);
    } else if (op == 1 && (ref[b] > 0 || hash[b] != 0)) {
      if (ref[b] == 0) {
        lru.remove(b);
        ++revivals;
      }
      ++ref[b];
      pool.Ref(b);
    } else if (op == 2 && ref[b] > 0) {
      if (--ref[b] == 0) {
        if (hash[b] != 0) {
          lru.push_back(b);
        } else {
          free_list.push_back(b);
          want_freed.push_back(b);
        }
      }
      pool.Unref(b);
    } else if (op == 3 && ref[b] > 0 && hash[b] == 0) {
      hash[b] = next_hash++;
      ASSERT_TRUE(pool.SetHash(b, hash[b]));
    }
    ASSERT_EQ(freed, want_freed);
    ASSERT_EQ(pool.num_cached(), static_cast<int64_t>(lru.size()));
    ASSERT_EQ(pool.num_free(), static_cast<int64_t>(free_list.size() + lru.size()));
    for (int32_t block = 0; block < n; ++block) {
      ASSERT_EQ(pool.ref_count(block), ref[block]);
      ASSERT_EQ(pool.hash(block), hash[block]);
      if (hash[block] != 0) {
        ASSERT_EQ(pool.Lookup(hash[block]), block);
      }
    }
    if (step % 97 == 0) {
      ASSERT_TRUE(pool.CheckInvariants().ok()) << pool.CheckInvariants();
    }
  }
  ASSERT_TRUE(pool.CheckInvariants().ok()) << pool.CheckInvariants();
  EXPECT_GT(evictions, 100);
  EXPECT_GT(revivals, 100);
}

}  // namespace
}  // namespace mswa
