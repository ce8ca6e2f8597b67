#include "model/tokenizer/bpe_model.h"

#include <cstdio>
#include <queue>
#include <utility>

#include "absl/strings/string_view.h"
#include "model/tokenizer/utf8.h"

namespace mswa {
namespace {

// A symbol of the word being merged; merged-away symbols are unlinked and marked dead.
struct Symbol {
  int32_t id;
  int32_t prev;
  int32_t next;
  bool alive;
};

// A candidate merge of the symbol at `pos` with its right neighbour.
struct Candidate {
  int32_t rank;
  int32_t pos;
  int32_t result;
};

// Orders the priority queue: lowest rank first, then leftmost.
struct LaterCandidate {
  bool operator()(const Candidate& a, const Candidate& b) const {
    return a.rank != b.rank ? a.rank > b.rank : a.pos > b.pos;
  }
};

// Pre-tokens at most this long are merged whole, without looking for cuts.
constexpr size_t kCutMinBytes = 24;

// First and last unit (code point, or byte when `bytes`) of a vocabulary string.
uint32_t FirstUnit(std::string_view s, bool bytes) {
  uint32_t cp = static_cast<unsigned char>(s[0]);
  if (!bytes) DecodeUtf8(s, 0, &cp);
  return cp;
}

uint32_t LastUnit(std::string_view s, bool bytes) {
  size_t start = s.size() - 1;
  uint32_t cp = static_cast<unsigned char>(s[start]);
  if (bytes) return cp;
  while (start > 0 && s.size() - start < 4 &&
         (static_cast<unsigned char>(s[start]) & 0xC0) == 0x80) {
    --start;
  }
  DecodeUtf8(s, start, &cp);
  return cp;
}

}  // namespace

bool BpeModel::Cache::Find(std::string_view part, std::vector<int32_t>* out) const {
  if (part.size() > kMaxPartBytes) return false;
  const auto it = spans_.find(absl::string_view(part.data(), part.size()));
  if (it == spans_.end()) return false;
  const auto begin = ids_.begin() + it->second.first;
  out->insert(out->end(), begin, begin + it->second.second);
  return true;
}

void BpeModel::Cache::Insert(std::string_view part, const int32_t* ids, size_t n) {
  if (part.size() > kMaxPartBytes || spans_.size() >= kMaxEntries) return;
  const uint32_t offset = static_cast<uint32_t>(ids_.size());
  ids_.insert(ids_.end(), ids, ids + n);
  spans_.emplace(std::string(part), std::make_pair(offset, static_cast<uint32_t>(n)));
}

BpeModel::BpeModel(const Options& options, absl::flat_hash_map<std::string, int32_t> vocab,
                   const std::vector<Merge>& merges)
    : options_(options), vocab_(std::move(vocab)) {
  merges_.reserve(merges.size());
  for (size_t rank = 0; rank < merges.size(); ++rank) {
    const Merge& m = merges[rank];
    merges_[PairKey(m.left, m.right)] = {static_cast<int32_t>(rank), m.result};
  }
  single_byte_ids_.fill(-1);
  fallback_ids_.fill(-1);
  for (int b = 0; b < 256; ++b) {
    if (options_.byte_level || b < 0x80) {
      single_byte_ids_[b] = TokenId(std::string(1, static_cast<char>(b)));
    }
    if (options_.byte_fallback) {
      char name[8];
      std::snprintf(name, sizeof(name), "<0x%02X>", b);
      fallback_ids_[b] = TokenId(name);
    }
  }
  std::vector<std::string_view> strings;
  for (const auto& [token, id] : vocab_) {
    if (static_cast<size_t>(id) >= strings.size()) strings.resize(id + 1);
    strings[id] = token;
  }
  ascii_crossable_.assign(128 * 128, false);
  for (const Merge& m : merges) {
    const std::string_view left = strings[m.left], right = strings[m.right];
    if (left.empty() || right.empty()) continue;  // keys outside the byte-level alphabet
    const uint32_t x = LastUnit(left, options_.byte_level);
    const uint32_t y = FirstUnit(right, options_.byte_level);
    if (x < 128 && y < 128) {
      ascii_crossable_[x * 128 + y] = true;
    } else {
      crossable_.insert(static_cast<uint64_t>(x) << 32 | y);
    }
  }
}

int32_t BpeModel::TokenId(std::string_view symbol) const {
  const auto it = vocab_.find(absl::string_view(symbol.data(), symbol.size()));
  return it == vocab_.end() ? -1 : it->second;
}

size_t BpeModel::Unit(std::string_view word, size_t pos, uint32_t* value) const {
  *value = static_cast<unsigned char>(word[pos]);
  if (options_.byte_level) return 1;
  const size_t len = DecodeUtf8(word, pos, value);
  return len == 0 ? 1 : len;  // an invalid byte: its value is its byte, never in the vocabulary
}

bool BpeModel::InVocab(std::string_view word, size_t pos, size_t len, uint32_t value) const {
  if (len == 1) return single_byte_ids_[static_cast<unsigned char>(word[pos])] >= 0;
  return TokenId(word.substr(pos, len)) >= 0;
}

void BpeModel::Cut(std::string_view word, std::vector<std::string_view>* parts) const {
  size_t part_start = 0;
  uint32_t prev = 0;
  bool prev_in_vocab = false;
  for (size_t pos = 0; pos < word.size();) {
    uint32_t value;
    const size_t len = Unit(word, pos, &value);
    const bool in_vocab = InVocab(word, pos, len, value);
    if (pos > 0 && prev_in_vocab && in_vocab && !Crossable(prev, value)) {
      parts->push_back(word.substr(part_start, pos - part_start));
      part_start = pos;
    }
    prev = value;
    prev_in_vocab = in_vocab;
    pos += len;
  }
  parts->push_back(word.substr(part_start));
}

void BpeModel::Tokenize(std::string_view word, Cache* cache, std::vector<int32_t>* out) const {
  if (word.empty()) return;
  if (options_.ignore_merges) {
    const int32_t id = TokenId(word);
    if (id >= 0) {
      out->push_back(id);
      return;
    }
  }
  std::vector<std::string_view> parts;
  if (word.size() > kCutMinBytes) {
    Cut(word, &parts);
  } else {
    parts.push_back(word);
  }
  for (const std::string_view part : parts) {
    if (cache != nullptr && cache->Find(part, out)) continue;
    const size_t before = out->size();
    MergeAll(part, out);
    if (cache != nullptr) cache->Insert(part, out->data() + before, out->size() - before);
  }
}

void BpeModel::MergeAll(std::string_view word, std::vector<int32_t>* out) const {
  std::vector<Symbol> symbols;
  symbols.reserve(word.size());
  const auto add = [&symbols](int32_t id) {
    const int32_t index = static_cast<int32_t>(symbols.size());
    symbols.push_back({id, index - 1, -1, true});
    if (index > 0) symbols[index - 1].next = index;
  };
  // The unknown token waiting to be added: it is extended while unknowns continue (fuse_unk)
  // and added before the next known symbol or at the end.
  bool unk_pending = false;
  for (size_t pos = 0; pos < word.size();) {
    const unsigned char lead = static_cast<unsigned char>(word[pos]);
    const size_t len = options_.byte_level ? 1 : Utf8UnitLength(word, pos);
    const int32_t id = len == 1 ? single_byte_ids_[lead] : TokenId(word.substr(pos, len));
    if (id >= 0) {
      if (unk_pending) add(options_.unk_id);
      unk_pending = false;
      add(id);
    } else {
      bool fell_back = false;
      if (options_.byte_fallback) {
        fell_back = true;
        for (size_t i = pos; i < pos + len; ++i) {
          fell_back = fell_back && fallback_ids_[static_cast<unsigned char>(word[i])] >= 0;
        }
        if (fell_back) {
          for (size_t i = pos; i < pos + len; ++i) {
            add(fallback_ids_[static_cast<unsigned char>(word[i])]);
          }
        }
      }
      if (!fell_back && options_.unk_id >= 0) {
        if (unk_pending && !options_.fuse_unk) add(options_.unk_id);
        unk_pending = true;
      }
    }
    pos += len;
  }
  if (unk_pending) add(options_.unk_id);

  std::priority_queue<Candidate, std::vector<Candidate>, LaterCandidate> queue;
  const auto push_pair = [&](int32_t pos) {
    const int32_t next = symbols[pos].next;
    if (next < 0) return;
    const auto it = merges_.find(PairKey(symbols[pos].id, symbols[next].id));
    if (it != merges_.end()) queue.push({it->second.rank, pos, it->second.result});
  };
  for (int32_t pos = 0; pos + 1 < static_cast<int32_t>(symbols.size()); ++pos) push_pair(pos);
  while (!queue.empty()) {
    const Candidate top = queue.top();
    queue.pop();
    Symbol& left = symbols[top.pos];
    if (!left.alive || left.next < 0) continue;
    // Stale when either side has been merged since the candidate was queued.
    const auto it = merges_.find(PairKey(left.id, symbols[left.next].id));
    if (it == merges_.end() || it->second.result != top.result) continue;
    Symbol& right = symbols[left.next];
    left.id = top.result;
    right.alive = false;
    left.next = right.next;
    if (right.next >= 0) symbols[right.next].prev = top.pos;
    if (left.prev >= 0) push_pair(left.prev);
    push_pair(top.pos);
  }
  for (const Symbol& s : symbols) {
    if (s.alive) out->push_back(s.id);
  }
}

}  // namespace mswa
