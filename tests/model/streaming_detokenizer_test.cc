#include "model/tokenizer/streaming_detokenizer.h"

#include <cstdint>
#include <random>
#include <string>
#include <string_view>
#include <vector>

#include "gtest/gtest.h"
#include "model/tokenizer/byte_tokenizer.h"

namespace mswa {
namespace {

// A fixed table of token bytes, shaped like a SentencePiece vocabulary with byte fallback.
class TableTokenizer final : public Tokenizer {
 public:
  TableTokenizer(std::vector<std::string> table, bool strips_leading_space)
      : table_(std::move(table)), strips_leading_space_(strips_leading_space) {}
  std::vector<int32_t> Encode(std::string_view) const override { return {}; }
  std::string TokenBytes(int32_t id) const override {
    return id >= 0 && id < vocab_size() ? table_[id] : "";
  }
  std::string Decode(const std::vector<int32_t>& ids) const override {
    std::string text;
    for (const int32_t id : ids) text += TokenBytes(id);
    if (strips_leading_space_ && !text.empty() && text[0] == ' ') text.erase(0, 1);
    return text;
  }
  int32_t vocab_size() const override { return static_cast<int32_t>(table_.size()); }
  int32_t bos_id() const override { return 0; }
  int32_t eos_id() const override { return 1; }
  bool strips_leading_space() const override { return strips_leading_space_; }
  std::string kind() const override { return "table"; }

 private:
  std::vector<std::string> table_;
  bool strips_leading_space_;
};

// 0 <s>, 1 </s>, 2 " Hello", 3 " wor", 4 "ld", 5..8 the bytes of U+1F600, 9 " ", 10 "!"
TableTokenizer MakeTable(bool strips_leading_space) {
  return TableTokenizer({"", "", " Hello", " wor", "ld", "\xF0", "\x9F", "\x98", "\x80", " ", "!"},
                        strips_leading_space);
}

// Pushes `ids` one by one; returns every Push output, then the Flush output.
std::vector<std::string> Stream(const Tokenizer& tokenizer, const std::vector<int32_t>& ids) {
  StreamingDetokenizer detok(tokenizer);
  std::vector<std::string> outputs;
  for (const int32_t id : ids) outputs.push_back(detok.Push(id));
  outputs.push_back(detok.Flush());
  return outputs;
}

std::string Concat(const std::vector<std::string>& parts) {
  std::string all;
  for (const std::string& part : parts) all += part;
  return all;
}

// Reference for the random test, decoding forwards (Utf8CompletePrefixLength looks backwards):
// boundary[p] is false exactly when p falls strictly inside a valid multi-byte character.
std::vector<bool> CharacterBoundaries(std::string_view bytes) {
  std::vector<bool> boundary(bytes.size() + 1, false);
  size_t p = 0;
  while (p < bytes.size()) {
    boundary[p] = true;
    const auto at = [&](size_t i) { return static_cast<unsigned char>(bytes[i]); };
    const unsigned char lead = at(p);
    size_t length = 1;
    unsigned char lo = 0x80, hi = 0xBF;  // range of the second byte
    if (lead >= 0xC2 && lead <= 0xDF) length = 2;
    if (lead >= 0xE0 && lead <= 0xEF) length = 3;
    if (lead >= 0xF0 && lead <= 0xF4) length = 4;
    if (lead == 0xE0) lo = 0xA0;
    if (lead == 0xED) hi = 0x9F;
    if (lead == 0xF0) lo = 0x90;
    if (lead == 0xF4) hi = 0x8F;
    bool valid = p + length <= bytes.size();
    for (size_t i = 1; valid && i < length; ++i) {
      const unsigned char b = at(p + i);
      valid = i == 1 ? (b >= lo && b <= hi) : (b >= 0x80 && b <= 0xBF);
    }
    p += valid ? length : 1;
  }
  boundary[bytes.size()] = true;
  return boundary;
}

std::vector<int32_t> ByteIds(std::string_view bytes) { return ByteTokenizer().Encode(bytes); }

TEST(Utf8CompletePrefixLength, CountsAsciiAndCompleteCharacters) {
  EXPECT_EQ(Utf8CompletePrefixLength(""), 0u);
  EXPECT_EQ(Utf8CompletePrefixLength("ab"), 2u);
  EXPECT_EQ(Utf8CompletePrefixLength("a\xC3\xA9"), 3u);               // é
  EXPECT_EQ(Utf8CompletePrefixLength("a\xE2\x82\xAC"), 4u);           // €
  EXPECT_EQ(Utf8CompletePrefixLength("a\xF0\x9F\x98\x80"), 5u);       // U+1F600
  EXPECT_EQ(Utf8CompletePrefixLength("\xF4\x8F\xBF\xBF"), 4u);        // U+10FFFF
}

TEST(Utf8CompletePrefixLength, StopsBeforeIncompleteButValidTail) {
  EXPECT_EQ(Utf8CompletePrefixLength("a\xC3"), 1u);
  EXPECT_EQ(Utf8CompletePrefixLength("a\xE2"), 1u);
  EXPECT_EQ(Utf8CompletePrefixLength("a\xE2\x82"), 1u);
  EXPECT_EQ(Utf8CompletePrefixLength("a\xF0"), 1u);
  EXPECT_EQ(Utf8CompletePrefixLength("a\xF0\x9F"), 1u);
  EXPECT_EQ(Utf8CompletePrefixLength("a\xF0\x9F\x98"), 1u);
  EXPECT_EQ(Utf8CompletePrefixLength("\xF0\x9F\x98"), 0u);
  EXPECT_EQ(Utf8CompletePrefixLength("\xC3\xA9\xE2\x82"), 2u);
}

TEST(Utf8CompletePrefixLength, IncludesBytesThatCanNeverBecomeValid) {
  EXPECT_EQ(Utf8CompletePrefixLength("a\xFF"), 2u);          // never a lead byte
  EXPECT_EQ(Utf8CompletePrefixLength("a\xC0"), 2u);          // only starts overlongs
  EXPECT_EQ(Utf8CompletePrefixLength("a\xF5"), 2u);          // above U+10FFFF
  EXPECT_EQ(Utf8CompletePrefixLength("a\x80"), 2u);          // continuation without lead
  EXPECT_EQ(Utf8CompletePrefixLength("\x80\x80\x80"), 3u);
  EXPECT_EQ(Utf8CompletePrefixLength("a\xE2" "A"), 3u);      // lead, then no continuation
  EXPECT_EQ(Utf8CompletePrefixLength("a\xE0\x80"), 3u);      // overlong
  EXPECT_EQ(Utf8CompletePrefixLength("a\xED\xA0"), 3u);      // surrogate
  EXPECT_EQ(Utf8CompletePrefixLength("a\xF0\x8F\x80"), 4u);  // overlong 4-byte
  EXPECT_EQ(Utf8CompletePrefixLength("a\xF4\x90"), 3u);      // above U+10FFFF
  EXPECT_EQ(Utf8CompletePrefixLength("\xC3\xA9\x80"), 3u);   // complete é, stray continuation
}

TEST(StreamingDetokenizer, ReleasesMultiByteCharactersOnlyWhenComplete) {
  // "é€😀" byte by byte.
  const std::vector<std::string> outputs =
      Stream(ByteTokenizer(), ByteIds("\xC3\xA9\xE2\x82\xAC\xF0\x9F\x98\x80"));
  const std::vector<std::string> expected = {"",   "\xC3\xA9", "", "", "\xE2\x82\xAC",
                                             "",   "",         "", "\xF0\x9F\x98\x80", ""};
  EXPECT_EQ(outputs, expected);
}

TEST(StreamingDetokenizer, ReleasesInvalidBytesAtOnce) {
  EXPECT_EQ(Stream(ByteTokenizer(), ByteIds("\xFF\x80" "a")),
            (std::vector<std::string>{"\xFF", "\x80", "a", ""}));
  // E2 waits, but once "A" shows it can never be completed both are released.
  EXPECT_EQ(Stream(ByteTokenizer(), ByteIds("\xE2" "A")),
            (std::vector<std::string>{"", "\xE2" "A", ""}));
}

TEST(StreamingDetokenizer, FlushReleasesTruncatedCharacter) {
  EXPECT_EQ(Stream(ByteTokenizer(), ByteIds("ok\xE2\x82")),
            (std::vector<std::string>{"o", "k", "", "", "\xE2\x82"}));
}

TEST(StreamingDetokenizer, SpecialsAndOutOfRangeIdsProduceNothing) {
  const ByteTokenizer tokenizer;
  StreamingDetokenizer detok(tokenizer);
  EXPECT_EQ(detok.Push(ByteTokenizer::kBosId), "");
  EXPECT_EQ(detok.Push(-1), "");
  EXPECT_EQ(detok.Push(ByteTokenizer::kVocabSize), "");
  EXPECT_EQ(detok.Push(' '), " ");  // the byte tokenizer has no dummy prefix to strip
  EXPECT_EQ(detok.Push(ByteTokenizer::kEosId), "");
  EXPECT_EQ(detok.Flush(), "");
}

TEST(StreamingDetokenizer, NeverSplitsCharactersAndLosesNoBytesOnRandomInput) {
  const ByteTokenizer tokenizer;
  std::mt19937 rng(7);
  // Bias towards bytes that form (or almost form) multi-byte sequences.
  const std::vector<unsigned char> alphabet = {'a', ' ', 0x00, 0x80, 0x9F, 0xA0, 0xBF, 0xC3,
                                               0xC0, 0xE0, 0xE2, 0xED, 0xF0, 0xF4, 0xF5, 0xFF};
  for (int trial = 0; trial < 200; ++trial) {
    std::string bytes;
    const int length = static_cast<int>(rng() % 24);
    for (int i = 0; i < length; ++i) bytes.push_back(static_cast<char>(alphabet[rng() % 16]));
    const std::vector<std::string> outputs = Stream(tokenizer, ByteIds(bytes));
    EXPECT_EQ(Concat(outputs), bytes);
    const std::vector<bool> boundary = CharacterBoundaries(bytes);
    size_t released = 0;
    for (size_t i = 0; i + 1 < outputs.size(); ++i) {
      released += outputs[i].size();
      // Never splits a valid character, and holds back at most 3 bytes.
      EXPECT_TRUE(boundary[released]) << "after push " << i;
      EXPECT_GE(released + 3, i + 1) << "after push " << i;
    }
  }
}

TEST(StreamingDetokenizer, StripsOnlyTheFirstLeadingSpace) {
  const TableTokenizer tokenizer = MakeTable(/*strips_leading_space=*/true);
  const std::vector<int32_t> ids = {0, 2, 3, 4, 9, 10};  // <s> " Hello" " wor" "ld" " " "!"
  const std::vector<std::string> outputs = Stream(tokenizer, ids);
  EXPECT_EQ(outputs, (std::vector<std::string>{"", "Hello", " wor", "ld", " ", "!", ""}));
  EXPECT_EQ(Concat(outputs), tokenizer.Decode(ids));
}

TEST(StreamingDetokenizer, KeepsLeadingSpaceWhenTokenizerDoesNotStripIt) {
  const TableTokenizer tokenizer = MakeTable(/*strips_leading_space=*/false);
  EXPECT_EQ(Concat(Stream(tokenizer, {2, 3, 4})), " Hello world");
}

TEST(StreamingDetokenizer, EmojiSplitOverByteTokensComesOutWhole) {
  const TableTokenizer tokenizer = MakeTable(/*strips_leading_space=*/true);
  const std::vector<int32_t> ids = {2, 9, 5, 6, 7, 8, 10};  // " Hello" " " F0 9F 98 80 "!"
  const std::vector<std::string> outputs = Stream(tokenizer, ids);
  EXPECT_EQ(outputs,
            (std::vector<std::string>{"Hello", " ", "", "", "", "\xF0\x9F\x98\x80", "!", ""}));
  EXPECT_EQ(Concat(outputs), tokenizer.Decode(ids));
}

TEST(StreamingDetokenizer, LeadingByteTokensAreNotStripped) {
  // The first bytes are the emoji, not a space: nothing is dropped.
  const TableTokenizer tokenizer = MakeTable(/*strips_leading_space=*/true);
  EXPECT_EQ(Concat(Stream(tokenizer, {5, 6, 7, 8, 2})), "\xF0\x9F\x98\x80 Hello");
}

}  // namespace
}  // namespace mswa
