// HfTokenizer on tiny hand-written tokenizer.json files: one component at a time, and the
// errors for files it cannot load. Expected splits follow the Hugging Face tokenizers
// documentation and sources (e.g. "the-final--countdown" for the Split behaviors).
#include "model/tokenizer/hf_tokenizer.h"

#include <unistd.h>

#include <cstdint>
#include <filesystem>
#include <fstream>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/status/status.h"
#include "gtest/gtest.h"
#include "model/tokenizer/tokenizer.h"
#include "nlohmann/json.hpp"

namespace mswa {
namespace {

using json = nlohmann::json;
using Strings = std::vector<std::string>;
using Ids = std::vector<int32_t>;

constexpr char kMark[] = "\xE2\x96\x81";  // "▁"

// A BPE model whose vocabulary is `tokens` (ids in order) with `merges`.
json Bpe(const Strings& tokens, const json& merges = json::array()) {
  json vocab = json::object();
  for (size_t i = 0; i < tokens.size(); ++i) vocab[tokens[i]] = i;
  return {{"type", "BPE"}, {"vocab", vocab}, {"merges", merges}, {"dropout", nullptr},
          {"unk_token", nullptr}, {"continuing_subword_prefix", nullptr},
          {"end_of_word_suffix", nullptr}, {"fuse_unk", false}, {"byte_fallback", false}};
}

// A tokenizer.json document around `model`; components are set by the caller.
json Doc(const json& model) {
  return {{"version", "1.0"},         {"added_tokens", json::array()}, {"normalizer", nullptr},
          {"pre_tokenizer", nullptr}, {"post_processor", nullptr},     {"decoder", nullptr},
          {"model", model}};
}

json Added(int32_t id, const std::string& content, bool special, const json& flags = {}) {
  json token = {{"id", id},          {"content", content}, {"single_word", false},
                {"lstrip", false},   {"rstrip", false},    {"normalized", false},
                {"special", special}};
  for (const auto& [key, value] : flags.items()) token[key] = value;
  return token;
}

absl::StatusOr<std::unique_ptr<HfTokenizer>> Load(const json& doc, const json& config = nullptr) {
  return HfTokenizer::FromJson(doc.dump(), config.is_null() ? "" : config.dump(), "tiny");
}

std::unique_ptr<HfTokenizer> MustLoad(const json& doc, const json& config = nullptr) {
  absl::StatusOr<std::unique_ptr<HfTokenizer>> t = Load(doc, config);
  EXPECT_TRUE(t.ok()) << t.status();
  return t.ok() ? std::move(*t) : nullptr;
}

// Every single character of `text` (ASCII) as a vocabulary, so any text encodes.
Strings Chars(const std::string& text) {
  Strings out;
  for (const char c : text) {
    if (std::find(out.begin(), out.end(), std::string(1, c)) == out.end()) {
      out.push_back(std::string(1, c));
    }
  }
  return out;
}

// A pre-tokenizer test: character vocabulary, `pre_tokenizer`, returns the pre-tokens.
Strings PreTokens(const json& pre_tokenizer, const std::string& text,
                  const json& normalizer = nullptr) {
  json doc = Doc(Bpe(Chars("abcdefghijklmnopqrstuvwxyz-")));
  doc["pre_tokenizer"] = pre_tokenizer;
  doc["normalizer"] = normalizer;
  std::unique_ptr<HfTokenizer> t = MustLoad(doc);
  return t != nullptr ? t->PreTokens(text) : Strings{};
}

// ---- model ---------------------------------------------------------------------------------

TEST(HfTokenizerBpe, MergesByRankInBothMergeForms) {
  const Strings vocab = {"h", "e", "l", "o", "he", "ll", "hell", "hello"};
  for (const json& merges :
       {json::array({"h e", "l l", "he ll", "hell o"}),
        json::array({json::array({"h", "e"}), json::array({"l", "l"}),
                     json::array({"he", "ll"}), json::array({"hell", "o"})})}) {
    std::unique_ptr<HfTokenizer> t = MustLoad(Doc(Bpe(vocab, merges)));
    ASSERT_NE(t, nullptr);
    EXPECT_EQ(t->Encode("hello"), Ids({7}));
    EXPECT_EQ(t->Encode("hell"), Ids({6}));
    EXPECT_EQ(t->Encode("lol"), Ids({2, 3, 2}));
  }
}

TEST(HfTokenizerBpe, LowestRankMergesFirst) {
  const Strings vocab = {"a", "b", "c", "ab", "bc"};
  EXPECT_EQ(MustLoad(Doc(Bpe(vocab, {"b c", "a b"})))->Encode("abc"), Ids({0, 4}));
  EXPECT_EQ(MustLoad(Doc(Bpe(vocab, {"a b", "b c"})))->Encode("abc"), Ids({3, 2}));
  // Equal ranks (the same pair twice): leftmost first. "aaa" -> aa a.
  EXPECT_EQ(MustLoad(Doc(Bpe({"a", "aa"}, {"a a"})))->Encode("aaa"), Ids({1, 0}));
}

TEST(HfTokenizerBpe, IgnoreMergesTakesWholeVocabularyWords) {
  json model = Bpe({"a", "b", "ab", "aab"}, {"a b"});
  EXPECT_EQ(MustLoad(Doc(model))->Encode("aab"), Ids({0, 2}));
  model["ignore_merges"] = true;
  EXPECT_EQ(MustLoad(Doc(model))->Encode("aab"), Ids({3}));
}

TEST(HfTokenizerBpe, ByteFallbackThenUnknown) {
  json model = Bpe({"<unk>", "<0xC3>", "<0xA9>", "a"});
  model["unk_token"] = "<unk>";
  model["byte_fallback"] = true;
  std::unique_ptr<HfTokenizer> t = MustLoad(Doc(model));
  EXPECT_EQ(t->Encode("a\xC3\xA9"), Ids({3, 1, 2}));  // "aé": é as its two bytes
  EXPECT_EQ(t->Encode("\xC3\xBC"), Ids({0}));         // "ü": 0xBC has no token, so unk
  EXPECT_EQ(t->kind(), "tokenizer.json (BPE, byte fallback)");
}

TEST(HfTokenizerBpe, UnknownsFuseOrDrop) {
  json model = Bpe({"<unk>", "a"});
  model["unk_token"] = "<unk>";
  EXPECT_EQ(MustLoad(Doc(model))->Encode("xya"), Ids({0, 0, 1}));
  model["fuse_unk"] = true;
  EXPECT_EQ(MustLoad(Doc(model))->Encode("xyaz"), Ids({0, 1, 0}));
  model["unk_token"] = nullptr;  // no unknown token: unknown characters are dropped
  EXPECT_EQ(MustLoad(Doc(model))->Encode("xya"), Ids({1}));
  EXPECT_EQ(MustLoad(Doc(model))->kind(), "tokenizer.json (BPE)");
}

TEST(HfTokenizerBpe, InvalidUtf8BecomesByteFallbackTokens) {
  Strings vocab = {"a"};
  char name[8];
  for (int b = 0; b < 256; ++b) {
    std::snprintf(name, sizeof(name), "<0x%02X>", b);
    vocab.push_back(name);
  }
  json doc = Doc(Bpe(vocab));
  doc["model"]["byte_fallback"] = true;
  doc["decoder"] = {{"type", "ByteFallback"}};
  std::unique_ptr<HfTokenizer> t = MustLoad(doc);
  const std::string text = "a\xFF\xE2\x82" "a";  // a bad byte, then a truncated "€"
  EXPECT_EQ(t->Encode(text), Ids({0, 1 + 0xFF, 1 + 0xE2, 1 + 0x82, 0}));
  EXPECT_EQ(t->Decode(t->Encode(text)), text);
}

// ---- pre-tokenizers --------------------------------------------------------------------------

json Split(const std::string& behavior, bool invert = false) {
  return {{"type", "Split"}, {"pattern", {{"String", "-"}}}, {"behavior", behavior},
          {"invert", invert}};
}

TEST(HfTokenizerPreTokenizer, SplitBehaviors) {
  const std::string text = "the-final--countdown";
  EXPECT_EQ(PreTokens(Split("Removed"), text), Strings({"the", "final", "countdown"}));
  EXPECT_EQ(PreTokens(Split("Isolated"), text),
            Strings({"the", "-", "final", "-", "-", "countdown"}));
  EXPECT_EQ(PreTokens(Split("MergedWithPrevious"), text),
            Strings({"the-", "final-", "-", "countdown"}));
  EXPECT_EQ(PreTokens(Split("MergedWithNext"), text),
            Strings({"the", "-final", "-", "-countdown"}));
  EXPECT_EQ(PreTokens(Split("Contiguous"), text), Strings({"the", "-", "final", "--", "countdown"}));
  // invert: the words are the matches, so Removed keeps the dashes.
  json words = {{"type", "Split"}, {"pattern", {{"Regex", "[a-z]+"}}}, {"behavior", "Removed"},
                {"invert", true}};
  EXPECT_EQ(PreTokens(words, text), Strings({"the", "final", "countdown"}));
  words["invert"] = false;
  EXPECT_EQ(PreTokens(words, text), Strings({"-", "--"}));
}

TEST(HfTokenizerPreTokenizer, SplitRegexWithUnicodeProperties) {
  const json split = {{"type", "Split"},
                      {"pattern", {{"Regex", R"(\p{L}+|\p{N}{1,3}|\s+)"}}},
                      {"behavior", "Isolated"}, {"invert", false}};
  EXPECT_EQ(PreTokens(split, "caf\xC3\xA9 1234567"),
            Strings({"caf\xC3\xA9", " ", "123", "456", "7"}));
}

TEST(HfTokenizerPreTokenizer, MetaspacePrependSchemes) {
  json metaspace = {{"type", "Metaspace"}, {"replacement", kMark}, {"prepend_scheme", "always"},
                    {"split", true}};
  const std::string m = kMark;
  EXPECT_EQ(PreTokens(metaspace, "hello world"), Strings({m + "hello", m + "world"}));
  EXPECT_EQ(PreTokens(metaspace, " hello"), Strings({m + "hello"}));  // no second mark
  metaspace["split"] = false;
  EXPECT_EQ(PreTokens(metaspace, "hello world"), Strings({m + "hello" + m + "world"}));
  metaspace["prepend_scheme"] = "never";
  EXPECT_EQ(PreTokens(metaspace, "hello world"), Strings({"hello" + m + "world"}));
  // The older form: add_prefix_space instead of prepend_scheme.
  metaspace.erase("prepend_scheme");
  metaspace["add_prefix_space"] = true;
  EXPECT_EQ(PreTokens(metaspace, "hi"), Strings({m + "hi"}));
}

TEST(HfTokenizerPreTokenizer, MetaspaceFirstOnlyPrependsAtTheStartOfTheText) {
  json doc = Doc(Bpe(Chars("abcdefghijklmnopqrstuvwxyz")));
  doc["added_tokens"] = {Added(100, "<s>", true)};
  doc["pre_tokenizer"] = {{"type", "Metaspace"}, {"replacement", kMark},
                          {"prepend_scheme", "first"}, {"split", true}};
  std::unique_ptr<HfTokenizer> t = MustLoad(doc);
  const std::string m = kMark;
  EXPECT_EQ(t->PreTokens("hi<s>there"), Strings({m + "hi", "<s>", "there"}));
  EXPECT_EQ(t->PreTokens("<s>there"), Strings({"<s>", "there"}));
  EXPECT_TRUE(t->strips_leading_space());
  doc["pre_tokenizer"]["prepend_scheme"] = "always";
  EXPECT_EQ(MustLoad(doc)->PreTokens("hi<s>there"), Strings({m + "hi", "<s>", m + "there"}));
}

TEST(HfTokenizerPreTokenizer, Digits) {
  json digits = {{"type", "Digits"}, {"individual_digits", true}};
  EXPECT_EQ(PreTokens(digits, "ab123c"), Strings({"ab", "1", "2", "3", "c"}));
  digits["individual_digits"] = false;
  EXPECT_EQ(PreTokens(digits, "ab123c"), Strings({"ab", "123", "c"}));
}

TEST(HfTokenizerPreTokenizer, SequenceAppliesInOrder) {
  const json sequence = {
      {"type", "Sequence"},
      {"pretokenizers", {Split("Removed"), {{"type", "Digits"}, {"individual_digits", true}}}}};
  EXPECT_EQ(PreTokens(sequence, "ab12-c3"), Strings({"ab", "1", "2", "c", "3"}));
}

// A byte-level BPE over the 256 byte symbols, with a few merges.
json ByteLevelDoc(bool add_prefix_space, bool use_regex) {
  Strings vocab;
  int next = 256;
  for (int b = 0; b < 256; ++b) {
    // GPT-2's byte -> character map (see hf_tokenizer.cc): printable Latin-1 stays.
    const bool printable = (b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || b >= 0xAE;
    std::string ch;
    const int cp = printable ? b : next++;
    if (cp < 0x80) {
      ch.push_back(static_cast<char>(cp));
    } else {
      ch.push_back(static_cast<char>(0xC0 | (cp >> 6)));
      ch.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
    }
    vocab.push_back(ch);
  }
  vocab.push_back("\xC4\xA0h");  // "Ġh"
  vocab.push_back("\xC4\xA0hi");  // "Ġhi"
  json doc = Doc(Bpe(vocab, {"\xC4\xA0 h", "\xC4\xA0h i"}));
  doc["pre_tokenizer"] = {{"type", "ByteLevel"}, {"add_prefix_space", add_prefix_space},
                          {"trim_offsets", true}, {"use_regex", use_regex}};
  doc["decoder"] = {{"type", "ByteLevel"}, {"add_prefix_space", true}, {"trim_offsets", true},
                    {"use_regex", true}};
  return doc;
}

TEST(HfTokenizerPreTokenizer, ByteLevel) {
  std::unique_ptr<HfTokenizer> t = MustLoad(ByteLevelDoc(false, true));
  ASSERT_NE(t, nullptr);
  EXPECT_EQ(t->kind(), "tokenizer.json (byte-level BPE)");
  EXPECT_EQ(t->PreTokens("hi hi!  you're"), Strings({"hi", " hi", "!", " ", " you", "'re"}));
  EXPECT_EQ(t->Encode(" hi"), Ids({257}));
  EXPECT_EQ(t->TokenBytes(257), " hi");
  EXPECT_EQ(t->TokenBytes(t->TokenId("\xC4\x8A")), "\n");  // "Ċ"
  EXPECT_FALSE(t->strips_leading_space());
  // Raw bytes, valid UTF-8 or not, are each one symbol.
  const std::string bad = "a\xFF\xC3";
  EXPECT_EQ(t->Decode(t->Encode(bad)), bad);

  t = MustLoad(ByteLevelDoc(true, false));
  EXPECT_EQ(t->PreTokens("hi hi"), Strings({" hi hi"}));
  EXPECT_EQ(t->Encode("hi"), Ids({257}));
  EXPECT_TRUE(t->strips_leading_space());
  EXPECT_EQ(t->Decode(t->Encode("hi")), "hi");
}

TEST(HfTokenizerPreTokenizer, EncodesFromManyThreadsAtOnce) {
  std::unique_ptr<HfTokenizer> t = MustLoad(ByteLevelDoc(false, true));
  ASSERT_NE(t, nullptr);
  std::string text;
  for (int i = 0; i < 200; ++i) text += "hi there, " + std::to_string(i) + "!\n";
  const Ids expected = t->Encode(text);
  std::vector<Ids> results(4);
  std::vector<std::thread> threads;
  for (Ids& result : results) {
    threads.emplace_back([&t, &text, &result] {
      for (int i = 0; i < 20; ++i) result = t->Encode(text);
    });
  }
  for (std::thread& thread : threads) thread.join();
  for (const Ids& result : results) EXPECT_EQ(result, expected);
}

TEST(HfTokenizerPreTokenizer, ByteLevelMustBeLast) {
  json doc = ByteLevelDoc(false, true);
  doc["pre_tokenizer"] = {{"type", "Sequence"},
                          {"pretokenizers", {doc["pre_tokenizer"], Split("Isolated")}}};
  const absl::Status status = Load(doc).status();
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(status.message().find("ByteLevel must be the last"), std::string::npos) << status;
}

// ---- normalizers -----------------------------------------------------------------------------

TEST(HfTokenizerNormalizer, Components) {
  const json none = nullptr;
  const auto normalized = [&](const json& normalizer, const std::string& text) {
    const Strings pieces = PreTokens(none, text, normalizer);
    return pieces.empty() ? std::string() : pieces[0];
  };
  EXPECT_EQ(normalized({{"type", "Lowercase"}}, "HeLLo \xC3\x89 \xC4\xB0"),
            "hello \xC3\xA9 i\xCC\x87");  // É -> é, İ -> i + combining dot
  EXPECT_EQ(normalized({{"type", "NFC"}}, "cafe\xCC\x81"), "caf\xC3\xA9");
  EXPECT_EQ(normalized({{"type", "NFD"}}, "caf\xC3\xA9"), "cafe\xCC\x81");
  EXPECT_EQ(normalized({{"type", "NFKC"}}, "\xEF\xAC\x81" "x"), "fix");  // the "ﬁ" ligature
  EXPECT_EQ(normalized({{"type", "Prepend"}, {"prepend", kMark}}, "a"), std::string(kMark) + "a");
  EXPECT_EQ(normalized({{"type", "Replace"}, {"pattern", {{"Regex", " +"}}}, {"content", "_"}},
                       "a  b c"),
            "a_b_c");
  EXPECT_EQ(normalized({{"type", "Strip"}, {"strip_left", true}, {"strip_right", false}},
                       " \xE3\x80\x80" "a "),
            "a ");
  EXPECT_EQ(normalized({{"type", "Sequence"},
                        {"normalizers",
                         {{{"type", "Prepend"}, {"prepend", kMark}},
                          {{"type", "Replace"}, {"pattern", {{"String", " "}}},
                           {"content", kMark}}}}},
                       "a b"),
            std::string(kMark) + "a" + kMark + "b");
  // Invalid UTF-8 passes through; the well-formed runs around it are normalized.
  EXPECT_EQ(normalized({{"type", "NFC"}}, "e\xCC\x81\xFF" "e\xCC\x81"), "\xC3\xA9\xFF\xC3\xA9");
}

TEST(HfTokenizerNormalizer, PrependMarkMeansDecodeStripsTheSpace) {
  json doc = Doc(Bpe({"a", "b", kMark, std::string(kMark) + "a"}, {std::string(kMark) + " a"}));
  doc["normalizer"] = {{"type", "Sequence"},
                       {"normalizers",
                        {{{"type", "Prepend"}, {"prepend", kMark}},
                         {{"type", "Replace"}, {"pattern", {{"String", " "}}},
                          {"content", kMark}}}}};
  doc["decoder"] = {{"type", "Sequence"},
                    {"decoders",
                     {{{"type", "Replace"}, {"pattern", {{"String", kMark}}}, {"content", " "}},
                      {{"type", "ByteFallback"}},
                      {{"type", "Fuse"}},
                      {{"type", "Strip"}, {"content", " "}, {"start", 1}, {"stop", 0}}}}};
  std::unique_ptr<HfTokenizer> t = MustLoad(doc);
  EXPECT_TRUE(t->strips_leading_space());
  EXPECT_EQ(t->Encode("a b"), Ids({3, 2, 1}));
  EXPECT_EQ(t->TokenBytes(3), " a");
  EXPECT_EQ(t->Decode(t->Encode("a b")), "a b");
  EXPECT_EQ(t->Decode(t->Encode(" a")), " a");
}

// ---- added tokens ----------------------------------------------------------------------------

TEST(HfTokenizerAddedTokens, LongestMatchFirstAndSpecialLiteralsMatch) {
  json doc = Doc(Bpe(Chars("abcxyz<>/s")));
  doc["added_tokens"] = {Added(100, "ab", false), Added(101, "abc", false),
                         Added(102, "<s>", true)};
  std::unique_ptr<HfTokenizer> t = MustLoad(doc);
  EXPECT_EQ(t->PreTokens("xabcx<s>ab"), Strings({"x", "abc", "x", "<s>", "ab"}));
  EXPECT_TRUE(t->IsSpecial(102));
  EXPECT_FALSE(t->IsSpecial(100));
  EXPECT_EQ(t->TokenBytes(102), "");
  EXPECT_EQ(t->TokenBytes(101), "abc");
  EXPECT_EQ(t->vocab_size(), 103);
}

TEST(HfTokenizerAddedTokens, StripAndSingleWordFlags) {
  json doc = Doc(Bpe(Chars("abcdefghijklmnopqrstuvwxyz <>")));
  doc["added_tokens"] = {Added(100, "<m>", true, {{"lstrip", true}, {"rstrip", true}}),
                         Added(101, "ab", false, {{"single_word", true}})};
  std::unique_ptr<HfTokenizer> t = MustLoad(doc);
  EXPECT_EQ(t->Encode("hi  <m>  there").size(), 2u + 1u + 5u);  // "hi", <m>, "there"
  EXPECT_EQ(t->PreTokens("xab ab aby"), Strings({"xab ", "ab", " aby"}));
}

TEST(HfTokenizerAddedTokens, NormalizedTokensMatchAfterNormalization) {
  json doc = Doc(Bpe(Chars("abcdefghijklmnopqrstuvwxyz ")));
  doc["normalizer"] = {{"type", "Lowercase"}};
  doc["added_tokens"] = {Added(100, "hello", false, {{"normalized", true}})};
  std::unique_ptr<HfTokenizer> t = MustLoad(doc);
  EXPECT_EQ(t->PreTokens("say HELLO"), Strings({"say ", "hello"}));
}

// ---- post-processor, tokenizer_config.json --------------------------------------------------

json WithSpecials() {
  json doc = Doc(Bpe({"<s>", "</s>", "a"}));
  doc["added_tokens"] = {Added(0, "<s>", true), Added(1, "</s>", true)};
  return doc;
}

TEST(HfTokenizerSpecialTokens, BosFromTemplateEosFromConfig) {
  json doc = WithSpecials();
  doc["post_processor"] = {
      {"type", "TemplateProcessing"},
      {"single", {{{"SpecialToken", {{"id", "<s>"}, {"type_id", 0}}}},
                  {{"Sequence", {{"id", "A"}, {"type_id", 0}}}}}},
      {"pair", json::array()},
      {"special_tokens", {{"<s>", {{"id", "<s>"}, {"ids", {0}}, {"tokens", {"<s>"}}}}}}};
  std::unique_ptr<HfTokenizer> t = MustLoad(doc);
  EXPECT_EQ(t->bos_id(), 0);
  EXPECT_EQ(t->eos_id(), -1);  // no tokenizer_config.json
  EXPECT_FALSE(t->appends_eos());
  EXPECT_EQ(t->Encode("a<s>a"), Ids({2, 0, 2}));  // Encode adds nothing; literals match

  t = MustLoad(doc, {{"add_bos_token", false}, {"eos_token", {{"content", "</s>"}}}});
  EXPECT_EQ(t->bos_id(), -1);
  EXPECT_EQ(t->eos_id(), 1);

  doc["post_processor"] = nullptr;
  t = MustLoad(doc, {{"add_bos_token", true}, {"bos_token", "<s>"}, {"eos_token", "</s>"},
                     {"add_eos_token", true}});
  EXPECT_EQ(t->bos_id(), 0);
  EXPECT_TRUE(t->appends_eos());
}

TEST(HfTokenizerSpecialTokens, RobertaAndSequenceProcessors) {
  json doc = WithSpecials();
  const json roberta = {{"type", "RobertaProcessing"}, {"sep", {"</s>", 1}},
                        {"cls", {"<s>", 0}},           {"trim_offsets", true},
                        {"add_prefix_space", false}};
  doc["post_processor"] = {{"type", "Sequence"},
                           {"processors",
                            {{{"type", "ByteLevel"}, {"add_prefix_space", false},
                              {"trim_offsets", false}, {"use_regex", false}},
                             roberta}}};
  std::unique_ptr<HfTokenizer> t = MustLoad(doc);
  EXPECT_EQ(t->bos_id(), 0);
  EXPECT_TRUE(t->appends_eos());
}

// ---- decoders --------------------------------------------------------------------------------

TEST(HfTokenizerDecoder, TokenBytesFollowTheDecoderChain) {
  json doc = Doc(Bpe({"<0x41>", std::string(kMark) + "x", "yz"}));
  EXPECT_EQ(MustLoad(doc)->TokenBytes(0), "<0x41>");  // no decoder: the token string
  doc["decoder"] = {{"type", "Sequence"},
                    {"decoders",
                     {{{"type", "ByteFallback"}},
                      {{"type", "Metaspace"}, {"replacement", kMark},
                       {"prepend_scheme", "always"}, {"split", true}},
                      {{"type", "Strip"}, {"content", "z"}, {"start", 0}, {"stop", 1}}}}};
  std::unique_ptr<HfTokenizer> t = MustLoad(doc);
  EXPECT_EQ(t->TokenBytes(0), "A");
  EXPECT_EQ(t->TokenBytes(1), " x");
  EXPECT_EQ(t->TokenBytes(2), "y");  // a Strip before any Fuse acts on each token
}

// ---- errors ----------------------------------------------------------------------------------

// InvalidArgument whose message contains `part`.
::testing::AssertionResult FailsWith(const json& doc, const std::string& part) {
  const absl::Status status = Load(doc).status();
  if (status.code() == absl::StatusCode::kInvalidArgument &&
      status.message().find(part) != std::string::npos) {
    return ::testing::AssertionSuccess();
  }
  return ::testing::AssertionFailure() << status;
}

TEST(HfTokenizerErrors, BadFilesGiveClearErrors) {
  const absl::Status bad_json = HfTokenizer::FromJson("{\"model\": ", "", "dir").status();
  EXPECT_EQ(bad_json.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(bad_json.message().find("dir/tokenizer.json is not valid JSON"), std::string::npos);
  const absl::Status bad_config = HfTokenizer::FromJson(Doc(Bpe({"a"})).dump(), "[", "dir").status();
  EXPECT_NE(bad_config.message().find("dir/tokenizer_config.json is not valid JSON"),
            std::string::npos)
      << bad_config;
  EXPECT_TRUE(FailsWith(json::object(), "model is missing"));

  json doc = Doc(Bpe({"a"}));
  doc["pre_tokenizer"] = {{"type", "Whitespace"}};
  EXPECT_TRUE(FailsWith(doc, "pre_tokenizer type \"Whitespace\" is not supported"));
  doc = Doc(Bpe({"a"}));
  doc["normalizer"] = {{"type", "BertNormalizer"}};
  EXPECT_TRUE(FailsWith(doc, "normalizer type \"BertNormalizer\" is not supported"));
  doc = Doc(Bpe({"a"}));
  doc["decoder"] = {{"type", "WordPiece"}};
  EXPECT_TRUE(FailsWith(doc, "decoder type \"WordPiece\" is not supported"));
  doc = Doc(Bpe({"a"}));
  doc["pre_tokenizer"] = {{"type", "Split"}, {"pattern", {{"Regex", "(unclosed"}}},
                          {"behavior", "Isolated"}};
  EXPECT_TRUE(FailsWith(doc, "does not compile"));

  json model = Bpe({"a"});
  model.erase("vocab");
  EXPECT_TRUE(FailsWith(Doc(model), "\"vocab\" is missing"));
  EXPECT_TRUE(FailsWith(Doc(Bpe({"a", "b"}, {"a b"})), "\"ab\" is not in the vocabulary"));
  EXPECT_TRUE(FailsWith(Doc(Bpe({"a", "b"}, {"a b c"})), "must be two tokens"));
  model = Bpe({"a"});
  model["type"] = "WordPiece";
  EXPECT_TRUE(FailsWith(Doc(model), "type \"WordPiece\" is not supported (supported: BPE)"));
  model = Bpe({"a"});
  model["continuing_subword_prefix"] = "##";
  EXPECT_TRUE(FailsWith(Doc(model), "\"continuing_subword_prefix\" \"##\" is not supported"));
  model = Bpe({"a"});
  model["dropout"] = 0.1;
  EXPECT_TRUE(FailsWith(Doc(model), "dropout"));
  model = Bpe({"a"});
  model["unk_token"] = "<unk>";
  EXPECT_TRUE(FailsWith(Doc(model), "\"unk_token\" \"<unk>\" is not in the vocabulary"));

  const absl::Status eos =
      HfTokenizer::FromJson(Doc(Bpe({"a"})).dump(), R"({"eos_token": "</s>"})", "dir").status();
  EXPECT_NE(eos.message().find("\"eos_token\" \"</s>\" is not a token of tokenizer.json"),
            std::string::npos)
      << eos;
}

TEST(HfTokenizerErrors, MissingFileIsNotFound) {
  const absl::Status status = HfTokenizer::Load("/nonexistent/model").status();
  EXPECT_EQ(status.code(), absl::StatusCode::kNotFound);
  EXPECT_NE(status.message().find("/nonexistent/model/tokenizer.json"), std::string::npos);
}

// ---- LoadTokenizer ---------------------------------------------------------------------------

TEST(HfTokenizerLoad, LoadTokenizerReadsBothFiles) {
  const std::string dir =
      ::testing::TempDir() + "mswa_hf_tokenizer_load_" + std::to_string(getpid());
  std::filesystem::create_directories(dir);
  std::ofstream(dir + "/tokenizer.json") << WithSpecials().dump();
  std::ofstream(dir + "/tokenizer_config.json")
      << json({{"bos_token", "<s>"}, {"add_bos_token", true}, {"eos_token", "</s>"}}).dump();
  TokenizerSpec spec;
  spec.type = TokenizerSpec::Type::kHfJson;
  spec.model_file = "tokenizer.json";
  absl::StatusOr<std::unique_ptr<Tokenizer>> t = LoadTokenizer(spec, dir);
  ASSERT_TRUE(t.ok()) << t.status();
  EXPECT_EQ((*t)->bos_id(), 0);
  EXPECT_EQ((*t)->eos_id(), 1);
  EXPECT_EQ((*t)->Encode("aa"), Ids({2, 2}));
  std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace mswa
