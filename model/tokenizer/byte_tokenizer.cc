#include "model/tokenizer/byte_tokenizer.h"

namespace mswa {

std::vector<int32_t> ByteTokenizer::Encode(std::string_view text) const {
  std::vector<int32_t> ids;
  ids.reserve(text.size());
  // Through unsigned char: bytes >= 0x80 must become 128..255, not negative ids.
  for (const char c : text) ids.push_back(static_cast<unsigned char>(c));
  return ids;
}

std::string ByteTokenizer::TokenBytes(int32_t id) const {
  if (id < 0 || id > 255) return "";
  return std::string(1, static_cast<char>(id));
}

std::string ByteTokenizer::Decode(const std::vector<int32_t>& ids) const {
  std::string text;
  text.reserve(ids.size());
  for (const int32_t id : ids) {
    if (id >= 0 && id <= 255) text.push_back(static_cast<char>(id));
  }
  return text;
}

}  // namespace mswa
