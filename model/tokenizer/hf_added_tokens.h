// Added tokens of tokenizer.json ("added_tokens"), found in text before the model sees it.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "model/tokenizer/pcre2_regex.h"

namespace mswa::hf {

// One entry of "added_tokens". "special" tokens have no bytes (TokenBytes gives ""); "normalized"
// ones are matched in normalized text, the others in the raw text.
struct AddedToken {
  std::string content;
  int32_t id;
  bool special;
  bool lstrip;
  bool rstrip;
  bool single_word;
  bool normalized;
};

// A stretch of the text: an added token (token >= 0) or text to tokenize, [begin, end).
struct Segment {
  size_t begin;
  size_t end;
  int32_t token;
};

// Finds added tokens in text as Hugging Face's AddedVocabulary does with its leftmost-longest
// Aho-Corasick automaton: scanning left to right, the match that starts first wins, and the
// longest among those starting there ("abc" before "ab"). Then, as there:
//   single_word  the match counts only with no word character (\w) right before or after it;
//                a match that does not count is skipped whole;
//   lstrip       whitespace before it joins the token (not beyond the previous token);
//   rstrip       whitespace after it joins the token.
// A trie walked from each position: O(text length x longest token).
class AddedTokenMatcher {
 public:
  AddedTokenMatcher();

  // `token` must outlive the matcher; `pattern` is what is searched for (the content, or the
  // normalized content for "normalized" tokens). Empty patterns are ignored; of two tokens with
  // the same pattern the first wins.
  void Add(const std::string& pattern, const AddedToken* token);
  bool empty() const;
  // True when some token is single_word (Split then needs `word_char`).
  bool needs_word_regex() const { return needs_word_regex_; }

  // Appends the segments of `text` in order: tokens and the text between them. `word_char`
  // matches one word character (\w); it may be null when !needs_word_regex().
  void Split(std::string_view text, const Pcre2Regex* word_char, std::vector<Segment>* out) const;

 private:
  struct Node {
    std::vector<std::pair<unsigned char, int32_t>> children;
    const AddedToken* token = nullptr;
  };

  int32_t Child(int32_t node, unsigned char byte) const;
  // The longest token starting at `pos` (null if none); its end in `*stop`.
  const AddedToken* LongestAt(std::string_view text, size_t pos, size_t* stop) const;

  std::vector<Node> nodes_;  // [0] is the root
  bool needs_word_regex_ = false;
};

}  // namespace mswa::hf
