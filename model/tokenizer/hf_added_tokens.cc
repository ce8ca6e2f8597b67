#include "model/tokenizer/hf_added_tokens.h"

#include "model/tokenizer/utf8.h"

namespace mswa::hf {
namespace {

// Start of the unit (character, or invalid byte) that ends just before `pos` (> 0).
size_t PreviousUnit(std::string_view text, size_t pos) {
  size_t prev = pos - 1;
  while (prev > 0 && pos - prev < 4 && (static_cast<unsigned char>(text[prev]) & 0xC0) == 0x80) {
    --prev;
  }
  return Utf8UnitLength(text, prev) == pos - prev ? prev : pos - 1;
}

bool IsWordChar(std::string_view text, size_t pos, const Pcre2Regex& word_char) {
  return word_char.Search(text.substr(pos, Utf8UnitLength(text, pos)));
}

}  // namespace

AddedTokenMatcher::AddedTokenMatcher() { nodes_.emplace_back(); }

bool AddedTokenMatcher::empty() const { return nodes_[0].children.empty(); }

int32_t AddedTokenMatcher::Child(int32_t node, unsigned char byte) const {
  for (const auto& [b, child] : nodes_[node].children) {
    if (b == byte) return child;
  }
  return -1;
}

void AddedTokenMatcher::Add(const std::string& pattern, const AddedToken* token) {
  if (pattern.empty()) return;
  int32_t node = 0;
  for (const char c : pattern) {
    const unsigned char byte = static_cast<unsigned char>(c);
    int32_t child = Child(node, byte);
    if (child < 0) {
      child = static_cast<int32_t>(nodes_.size());
      nodes_[node].children.push_back({byte, child});
      nodes_.emplace_back();
    }
    node = child;
  }
  if (nodes_[node].token == nullptr) nodes_[node].token = token;
  needs_word_regex_ = needs_word_regex_ || token->single_word;
}

const AddedToken* AddedTokenMatcher::LongestAt(std::string_view text, size_t pos,
                                               size_t* stop) const {
  const AddedToken* found = nullptr;
  int32_t node = 0;
  for (size_t i = pos; i < text.size(); ++i) {
    node = Child(node, static_cast<unsigned char>(text[i]));
    if (node < 0) break;
    if (nodes_[node].token != nullptr) {
      found = nodes_[node].token;
      *stop = i + 1;
    }
  }
  return found;
}

void AddedTokenMatcher::Split(std::string_view text, const Pcre2Regex* word_char,
                              std::vector<Segment>* out) const {
  size_t start_offset = 0;  // end of the previous token
  size_t pos = 0;
  while (pos < text.size()) {
    size_t stop = 0;
    const AddedToken* token = LongestAt(text, pos, &stop);
    if (token == nullptr) {
      ++pos;
      continue;
    }
    size_t start = pos;
    pos = stop;
    if (token->single_word && word_char != nullptr) {
      const bool word_before = start > 0 && IsWordChar(text, PreviousUnit(text, start), *word_char);
      const bool word_after = stop < text.size() && IsWordChar(text, stop, *word_char);
      if (word_before || word_after) continue;
    }
    uint32_t cp;
    if (token->lstrip) {
      while (start > start_offset) {
        const size_t prev = PreviousUnit(text, start);
        if (DecodeUtf8(text, prev, &cp) != start - prev || !IsUnicodeWhitespace(cp)) break;
        start = prev;
      }
    }
    if (token->rstrip) {
      while (stop < text.size()) {
        const size_t len = DecodeUtf8(text, stop, &cp);
        if (len == 0 || !IsUnicodeWhitespace(cp)) break;
        stop += len;
      }
      pos = stop;
    }
    if (start > start_offset) out->push_back({start_offset, start, -1});
    out->push_back({start, stop, token->id});
    start_offset = stop;
  }
  if (start_offset < text.size()) out->push_back({start_offset, text.size(), -1});
}

}  // namespace mswa::hf
