// The BPE model of a Hugging Face tokenizer.json: turns one pre-token into token ids.
//
// A pre-token is first split into symbols: its bytes (byte-level tokenizers, whose vocabulary
// keys are stored here as the raw bytes they stand for) or its UTF-8 characters (a byte that
// is not part of a well-formed character is a symbol of its own). A symbol missing from the
// vocabulary becomes its <0xAB> byte tokens (byte fallback, when every byte has one), else the
// unknown token (consecutive unknowns fused into one with fuse_unk), else it is dropped, as in
// Hugging Face tokenizers. Then the adjacent pair with the lowest merge rank is merged,
// leftmost first among equal ranks, until no pair has a merge:
//
//   merges ["h e", "l l", "he ll", "hell o"], pre-token "hello":
//   h e l l o -> he l l o -> he ll o -> hell o -> hello
//
// With ignore_merges (Llama 3), a pre-token that is itself in the vocabulary is one token
// without merging. Cost: O(n log n) in the symbols of the pre-token (a priority queue of pairs).
//
// Long pre-tokens (SentencePiece-style tokenizers without a pre-tokenizer hand over whole
// lines or texts) are first cut where no merge can ever join the two sides: between adjacent
// symbols x, y (both in the vocabulary as themselves) when no merge has a left part ending in
// x and a right part starting with y. Merging never crosses such a cut, so merging the parts
// separately gives the same tokens; the parts ("▁word" units for SentencePiece-style
// vocabularies, which have no merge of "e" with "▁...") then repeat and hit the cache.
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"

namespace mswa {

// Immutable after construction; Tokenize may be called from any number of threads at once.
class BpeModel {
 public:
  struct Options {
    // Symbols are single bytes, and vocabulary keys are raw bytes (see the file comment).
    bool byte_level = false;
    // Symbols missing from the vocabulary become their <0xAB> tokens.
    bool byte_fallback = false;
    // Consecutive unknown symbols become one unknown token.
    bool fuse_unk = false;
    // A pre-token found whole in the vocabulary is one token.
    bool ignore_merges = false;
    // The unknown token, -1 when there is none (unknown symbols are then dropped).
    int32_t unk_id = -1;
  };
  // One merge rule: left + right -> result. Rank is the position in the merges list.
  struct Merge {
    int32_t left;
    int32_t right;
    int32_t result;
  };

  // `vocab`: symbol string -> id. `merges` in rank order; a later duplicate of a pair replaces
  // the earlier one (as Hugging Face tokenizers' map does).
  BpeModel(const Options& options, absl::flat_hash_map<std::string, int32_t> vocab,
           const std::vector<Merge>& merges);

  // A memo of merged parts for one caller (one Encode of a text): texts repeat their words.
  // Not thread-safe; bounded in entries and in the length of the parts it keeps.
  class Cache {
   public:
    // The ids of `part` if cached, appended to `out`.
    bool Find(std::string_view part, std::vector<int32_t>* out) const;
    void Insert(std::string_view part, const int32_t* ids, size_t n);

   private:
    static constexpr size_t kMaxEntries = 1 << 16;
    static constexpr size_t kMaxPartBytes = 64;
    absl::flat_hash_map<std::string, std::pair<uint32_t, uint32_t>> spans_;  // offset, count
    std::vector<int32_t> ids_;
  };

  // Appends the ids of `pre_token` ("" gives none). `cache` may be null.
  void Tokenize(std::string_view pre_token, Cache* cache, std::vector<int32_t>* out) const;

  // The id of a vocabulary key (raw bytes for byte-level models), -1 when absent.
  int32_t TokenId(std::string_view symbol) const;

  const Options& options() const { return options_; }

 private:
  struct MergeValue {
    int32_t rank;
    int32_t result;
  };
  static uint64_t PairKey(int32_t left, int32_t right) {
    return (static_cast<uint64_t>(static_cast<uint32_t>(left)) << 32) |
           static_cast<uint32_t>(right);
  }
  // Byte length of the symbol at `pos` (see the file comment) and its code point or byte.
  size_t Unit(std::string_view word, size_t pos, uint32_t* value) const;
  // True when the unit `value` at `pos` is in the vocabulary as itself.
  bool InVocab(std::string_view word, size_t pos, size_t len, uint32_t value) const;
  // Appends the parts of `word` that merge independently (see the file comment).
  void Cut(std::string_view word, std::vector<std::string_view>* parts) const;
  // The merge loop over one part.
  void MergeAll(std::string_view part, std::vector<int32_t>* out) const;
  bool Crossable(uint32_t left_last, uint32_t right_first) const {
    if (left_last < 128 && right_first < 128) return ascii_crossable_[left_last * 128 + right_first];
    return crossable_.contains(static_cast<uint64_t>(left_last) << 32 | right_first);
  }

  Options options_;
  absl::flat_hash_map<std::string, int32_t> vocab_;
  absl::flat_hash_map<uint64_t, MergeValue> merges_;
  // Id of the one-byte symbol b (byte-level: any byte; otherwise ASCII only), -1 if absent.
  std::array<int32_t, 256> single_byte_ids_;
  // Id of "<0xAB>" for byte b when byte_fallback, else -1.
  std::array<int32_t, 256> fallback_ids_;
  // (last unit of a merge's left part, first unit of its right part): units are code points,
  // bytes for byte-level models. ASCII pairs in the bitmap, the rest in the set.
  std::vector<bool> ascii_crossable_;
  absl::flat_hash_set<uint64_t> crossable_;
};

}  // namespace mswa
