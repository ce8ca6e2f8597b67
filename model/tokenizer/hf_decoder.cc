#include "model/tokenizer/hf_decoder.h"

#include <utility>

#include "absl/strings/str_cat.h"
#include "model/status_macros.h"
#include "model/tokenizer/hf_pre_tokenizer.h"
#include "model/tokenizer/utf8.h"

namespace mswa::hf {
namespace {

// "<0xAB>" -> 0xAB (hex digits of either case, as Hugging Face's ByteFallback decoder).
std::optional<char> ByteFallbackValue(std::string_view token) {
  if (token.size() != 6 || token.substr(0, 3) != "<0x" || token[5] != '>') return std::nullopt;
  int value = 0;
  for (const char c : token.substr(3, 2)) {
    int digit;
    if (c >= '0' && c <= '9') {
      digit = c - '0';
    } else if (c >= 'a' && c <= 'f') {
      digit = c - 'a' + 10;
    } else if (c >= 'A' && c <= 'F') {
      digit = c - 'A' + 10;
    } else {
      return std::nullopt;
    }
    value = value * 16 + digit;
  }
  return static_cast<char>(value);
}

}  // namespace

ByteLevelAlphabet::ByteLevelAlphabet() {
  uint32_t next = 256;
  for (int b = 0; b < 256; ++b) {
    const bool printable = (b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || b >= 0xAE;
    byte_to_char[b] = printable ? static_cast<uint32_t>(b) : next++;
    char_to_byte[byte_to_char[b]] = static_cast<unsigned char>(b);
  }
}

std::optional<std::string> ByteLevelAlphabet::ToBytes(std::string_view token) const {
  std::string bytes;
  for (size_t pos = 0; pos < token.size();) {
    uint32_t cp;
    const size_t len = DecodeUtf8(token, pos, &cp);
    if (len == 0) return std::nullopt;
    const auto it = char_to_byte.find(cp);
    if (it == char_to_byte.end()) return std::nullopt;
    bytes.push_back(static_cast<char>(it->second));
    pos += len;
  }
  return bytes;
}

const ByteLevelAlphabet& Alphabet() {
  static const ByteLevelAlphabet alphabet;
  return alphabet;
}

absl::Status ParseDecoder(const json& obj, const std::string& where, bool* joined,
                          DecoderConfig* config) {
  if (obj.is_null()) return absl::OkStatus();
  ASSIGN_OR_RETURN(const std::string type, TypeOf(obj, where));
  const std::string here = absl::StrCat(where, " (", type, ")");
  DecoderStep step;
  if (type == "Sequence") {
    const auto it = obj.find("decoders");
    if (it == obj.end() || !it->is_array()) return JsonError(here, "\"decoders\" must be a list");
    for (size_t i = 0; i < it->size(); ++i) {
      RETURN_IF_ERROR(ParseDecoder((*it)[i], absl::StrCat(where, ".decoders[", i, "]"), joined,
                                   config));
    }
    return absl::OkStatus();
  } else if (type == "Fuse") {
    *joined = true;
    return absl::OkStatus();
  } else if (type == "ByteLevel") {
    step.kind = DecoderStep::Kind::kByteLevel;
    config->byte_level = true;
  } else if (type == "Replace") {
    step.kind = DecoderStep::Kind::kReplace;
    ASSIGN_OR_RETURN(step.pattern, ParsePattern(obj, here));
    ASSIGN_OR_RETURN(step.content, ReqString(obj, "content", here));
  } else if (type == "ByteFallback") {
    step.kind = DecoderStep::Kind::kByteFallback;
  } else if (type == "Strip") {
    step.kind = DecoderStep::Kind::kStrip;
    ASSIGN_OR_RETURN(step.content, ReqString(obj, "content", here));
    ASSIGN_OR_RETURN(step.start, OptInt(obj, "start", 0, here));
    ASSIGN_OR_RETURN(step.stop, OptInt(obj, "stop", 0, here));
  } else if (type == "Metaspace") {
    step.kind = DecoderStep::Kind::kMetaspace;
    ASSIGN_OR_RETURN(std::optional<std::string> replacement,
                     OptString(obj, "replacement", here));
    step.replacement = replacement.value_or(kMetaspace);
    RETURN_IF_ERROR(ParsePrependScheme(obj, here).status());
  } else {
    return Unsupported(where, type,
                       "ByteLevel, Metaspace, Replace, ByteFallback, Fuse, Strip, Sequence");
  }
  // After the tokens are joined (Fuse, ByteLevel) the remaining steps act on the whole text; of
  // those only the stripping of the first space matters, and strips_leading_space covers it.
  if (!*joined) config->per_token.push_back(std::move(step));
  if (type == "ByteLevel") *joined = true;
  return absl::OkStatus();
}

// `token` put through the per-token decoder steps.
std::string DecodeToken(const std::vector<DecoderStep>& steps, std::string token) {
  for (const DecoderStep& step : steps) {
    switch (step.kind) {
      case DecoderStep::Kind::kByteLevel:
        if (std::optional<std::string> bytes = Alphabet().ToBytes(token)) token = std::move(*bytes);
        break;
      case DecoderStep::Kind::kReplace:
        ReplaceAll(step.pattern, step.content, &token);
        break;
      case DecoderStep::Kind::kByteFallback:
        if (const std::optional<char> byte = ByteFallbackValue(token)) token.assign(1, *byte);
        break;
      case DecoderStep::Kind::kMetaspace: {
        Pattern mark;
        mark.literal = step.replacement;
        ReplaceAll(mark, " ", &token);
        break;
      }
      case DecoderStep::Kind::kStrip: {
        // Up to `start` leading and `stop` trailing copies of the character.
        const std::string& c = step.content;
        if (c.empty()) break;
        for (int64_t i = 0; i < step.start && token.compare(0, c.size(), c) == 0; ++i) {
          token.erase(0, c.size());
        }
        for (int64_t i = 0; i < step.stop && token.size() >= c.size() &&
                            token.compare(token.size() - c.size(), c.size(), c) == 0;
             ++i) {
          token.resize(token.size() - c.size());
        }
        break;
      }
    }
  }
  return token;
}

}  // namespace mswa::hf
