#include "model/tokenizer/tokenizer.h"

#include <unistd.h>

#include <cstdint>
#include <filesystem>
#include <fstream>
#include <string>
#include <system_error>
#include <vector>

#include "absl/status/status.h"
#include "gtest/gtest.h"
#include "model/tokenizer/byte_tokenizer.h"
#include "model/tokenizer/sentencepiece_tokenizer.h"
#include "model/tokenizer/streaming_detokenizer.h"

// Debian's sentencepiece headers declare `namespace absl { using std::string_view; }`, which
// collides with Debian Abseil's absl::string_view class; see sentencepiece_tokenizer.cc.
#define absl mswa_sentencepiece_absl
#include <sentencepiece_processor.h>
#include <sentencepiece_trainer.h>
#undef absl

namespace mswa {
namespace {

constexpr char kCrab[] = "\xF0\x9F\xA6\x80";  // U+1F980: not in the training text

// A directory of this process's own under the test temp dir (test processes may run in
// parallel), removed at exit.
const std::string& ScratchDir() {
  struct Scratch {
    Scratch() { std::filesystem::create_directories(path); }
    ~Scratch() {
      std::error_code ignored;
      std::filesystem::remove_all(path, ignored);
    }
    const std::string path =
        ::testing::TempDir() + "mswa_tokenizer_test_" + std::to_string(getpid());
  };
  static const Scratch scratch;
  return scratch.path;
}

// A few KB of text: ASCII words plus Latin-1, CJK and one emoji.
std::string TrainingText() {
  const std::vector<std::string> words = {
      "the",   "quick", "brown",  "fox",     "jumps",  "over",   "lazy",         "dog",
      "token", "cache", "window", "stream",  "naïve",  "café",   "日本語",       "über",
      "señor", "résumé", "attention", "sliding", "model", "server", "😀", "hello"};
  std::string text;
  for (size_t line = 0; line < 100; ++line) {
    for (size_t w = 0; w < 8; ++w) {
      text += words[(line * 7 + w * 5 + w * w) % words.size()];
      text += w + 1 < 8 ? " " : "\n";
    }
  }
  return text;
}

// Trains a tiny BPE model with byte fallback (vocab 256 bytes + 3 specials + ~100 more) and
// returns the .model path. Takes well under a second.
std::string TrainModel(const std::string& name, const std::string& extra_flags) {
  const std::string input = ScratchDir() + "/corpus.txt";
  if (!std::filesystem::exists(input)) std::ofstream(input) << TrainingText();
  const std::string prefix = ScratchDir() + "/" + name;
  const auto status = sentencepiece::SentencePieceTrainer::Train(
      "--input=" + input + " --model_prefix=" + prefix +
      " --vocab_size=360 --model_type=bpe --byte_fallback=true --character_coverage=1.0"
      " --num_threads=1 --minloglevel=1 " +
      extra_flags);
  EXPECT_TRUE(status.ok()) << status.ToString();
  return prefix + ".model";
}

const std::string& DefaultModelPath() {
  static const std::string path = TrainModel("default", "");
  return path;
}

std::unique_ptr<SentencePieceTokenizer> LoadDefault() {
  auto tokenizer = SentencePieceTokenizer::Load(DefaultModelPath());
  EXPECT_TRUE(tokenizer.ok()) << tokenizer.status();
  return tokenizer.ok() ? std::move(tokenizer).value() : nullptr;
}

// sentencepiece's own processor on the same file: the reference.
std::unique_ptr<sentencepiece::SentencePieceProcessor> LoadReference(const std::string& path) {
  auto processor = std::make_unique<sentencepiece::SentencePieceProcessor>();
  const auto status = processor->Load(path);
  EXPECT_TRUE(status.ok()) << status.ToString();
  return processor;
}

std::vector<int> AsInts(const std::vector<int32_t>& ids) { return {ids.begin(), ids.end()}; }

std::string StreamAll(const Tokenizer& tokenizer, const std::vector<int32_t>& ids) {
  StreamingDetokenizer detok(tokenizer);
  std::string text;
  for (const int32_t id : ids) text += detok.Push(id);
  return text + detok.Flush();
}

const std::vector<std::string>& SampleTexts() {
  static const std::vector<std::string> texts = {
      "the quick brown fox",
      "naïve café 日本語 😀",
      std::string("hello ") + kCrab + " world",
      kCrab,
      "漢字 are unseen characters",
      "  extra   spaces  around  ",
      "a",
      "",
  };
  return texts;
}

// ---- ByteTokenizer ------------------------------------------------------------------------------

TEST(ByteTokenizer, EncodesEachByteAsItsValue) {
  EXPECT_EQ(ByteTokenizer().Encode("A\xFF"), (std::vector<int32_t>{65, 255}));
}

TEST(ByteTokenizer, RoundTripsInvalidUtf8AndNulBytes) {
  const ByteTokenizer tokenizer;
  const std::string bytes("a\0b\xFF\x80\xE2\x82 \xC0", 9);
  EXPECT_EQ(tokenizer.Encode(bytes).size(), 9u);
  EXPECT_EQ(tokenizer.Decode(tokenizer.Encode(bytes)), bytes);
}

TEST(ByteTokenizer, SpecialsAndOutOfRangeIdsHaveNoBytes) {
  const ByteTokenizer tokenizer;
  EXPECT_EQ(tokenizer.TokenBytes(0), std::string(1, '\0'));
  EXPECT_EQ(tokenizer.TokenBytes(0xE2), "\xE2");
  EXPECT_EQ(tokenizer.TokenBytes(tokenizer.bos_id()), "");
  EXPECT_EQ(tokenizer.TokenBytes(tokenizer.eos_id()), "");
  EXPECT_EQ(tokenizer.TokenBytes(-1), "");
  EXPECT_EQ(tokenizer.TokenBytes(tokenizer.vocab_size()), "");
  EXPECT_EQ(tokenizer.Decode({256, 'h', 'i', 257, 9999, -3}), "hi");
}

TEST(ByteTokenizer, ReportsVocabularyAndSpecialIds) {
  const ByteTokenizer tokenizer;
  EXPECT_EQ(tokenizer.vocab_size(), 258);
  EXPECT_EQ(tokenizer.bos_id(), 256);
  EXPECT_EQ(tokenizer.eos_id(), 257);
  EXPECT_FALSE(tokenizer.strips_leading_space());
}

// ---- SentencePieceTokenizer ---------------------------------------------------------------------

TEST(SentencePieceTokenizer, EncodeAndDecodeMatchSentencePiece) {
  const auto tokenizer = LoadDefault();
  const auto reference = LoadReference(DefaultModelPath());
  ASSERT_NE(tokenizer, nullptr);
  for (const std::string& text : SampleTexts()) {
    const std::vector<int32_t> ids = tokenizer->Encode(text);
    EXPECT_EQ(AsInts(ids), reference->EncodeAsIds(text)) << text;
    EXPECT_EQ(tokenizer->Decode(ids), reference->DecodeIds(AsInts(ids))) << text;
  }
}

TEST(SentencePieceTokenizer, RoundTripsNormalizedText) {
  const auto tokenizer = LoadDefault();
  ASSERT_NE(tokenizer, nullptr);
  for (const std::string text : {"the quick brown fox", "naïve café 日本語 😀", "漢字 and 🦀"}) {
    EXPECT_EQ(tokenizer->Decode(tokenizer->Encode(text)), text);
  }
}

TEST(SentencePieceTokenizer, EncodesUnseenCharactersAsBytePieces) {
  const auto tokenizer = LoadDefault();
  const auto reference = LoadReference(DefaultModelPath());
  ASSERT_NE(tokenizer, nullptr);
  const std::vector<int32_t> ids = tokenizer->Encode(kCrab);
  // "▁" (the dummy prefix), then the emoji's four bytes.
  ASSERT_EQ(ids.size(), 5u);
  EXPECT_EQ(tokenizer->TokenBytes(ids[0]), " ");
  std::string bytes;
  for (size_t i = 1; i < ids.size(); ++i) {
    EXPECT_TRUE(reference->IsByte(ids[i]));
    bytes += tokenizer->TokenBytes(ids[i]);
  }
  EXPECT_EQ(bytes, kCrab);
}

TEST(SentencePieceTokenizer, TokenBytesFollowPieceKind) {
  const auto tokenizer = LoadDefault();
  const auto reference = LoadReference(DefaultModelPath());
  ASSERT_NE(tokenizer, nullptr);
  const int the = reference->PieceToId("\xe2\x96\x81the");
  ASSERT_NE(the, reference->unk_id());
  EXPECT_EQ(tokenizer->TokenBytes(the), " the");
  EXPECT_EQ(tokenizer->TokenBytes(reference->PieceToId("<0xF0>")), "\xF0");
  EXPECT_EQ(tokenizer->TokenBytes(reference->PieceToId("<0x00>")), std::string(1, '\0'));
  EXPECT_EQ(tokenizer->TokenBytes(tokenizer->bos_id()), "");
  EXPECT_EQ(tokenizer->TokenBytes(tokenizer->eos_id()), "");
  // Unknown renders as sentencepiece's unk surface, as DecodeIds does.
  EXPECT_EQ(tokenizer->TokenBytes(reference->unk_id()), " \xE2\x81\x87 ");
  EXPECT_EQ(tokenizer->TokenBytes(-1), "");
  EXPECT_EQ(tokenizer->TokenBytes(tokenizer->vocab_size()), "");
}

TEST(SentencePieceTokenizer, ReportsModelSpecialsAndDummyPrefix) {
  const auto tokenizer = LoadDefault();
  const auto reference = LoadReference(DefaultModelPath());
  ASSERT_NE(tokenizer, nullptr);
  EXPECT_EQ(tokenizer->vocab_size(), reference->GetPieceSize());
  EXPECT_EQ(tokenizer->vocab_size(), 360);
  EXPECT_EQ(tokenizer->bos_id(), 1);
  EXPECT_EQ(tokenizer->eos_id(), 2);
  EXPECT_TRUE(tokenizer->strips_leading_space());
  // Only the single dummy space goes; specials in front do not change that.
  const int32_t the = reference->PieceToId("\xe2\x96\x81the");
  EXPECT_EQ(tokenizer->Decode({tokenizer->bos_id(), the, the, tokenizer->eos_id()}), "the the");
}

TEST(SentencePieceTokenizer, ModelWithoutDummyPrefixOrSpecialsKeepsLeadingSpace) {
  const std::string path =
      TrainModel("plain", "--add_dummy_prefix=false --bos_id=-1 --eos_id=-1");
  auto loaded = SentencePieceTokenizer::Load(path);
  ASSERT_TRUE(loaded.ok()) << loaded.status();
  const SentencePieceTokenizer& tokenizer = **loaded;
  const auto reference = LoadReference(path);
  EXPECT_FALSE(tokenizer.strips_leading_space());
  EXPECT_EQ(tokenizer.bos_id(), -1);
  EXPECT_EQ(tokenizer.eos_id(), -1);
  const std::vector<int32_t> ids = tokenizer.Encode("the fox");
  EXPECT_EQ(tokenizer.Decode(ids), "the fox");
  EXPECT_EQ(tokenizer.Decode(ids), reference->DecodeIds(AsInts(ids)));
  // Generated ids may well start with a space; it is text, not a dummy prefix.
  std::vector<int32_t> tail = tokenizer.Encode("x the fox");
  ASSERT_EQ(reference->IdToPiece(tail[0]), "x");
  tail.erase(tail.begin());
  EXPECT_EQ(tokenizer.Decode(tail), " the fox");
  EXPECT_EQ(StreamAll(tokenizer, tail), " the fox");
}

TEST(SentencePieceTokenizer, StreamedTextEqualsDecode) {
  const auto tokenizer = LoadDefault();
  const auto reference = LoadReference(DefaultModelPath());
  ASSERT_NE(tokenizer, nullptr);
  for (const std::string& text : SampleTexts()) {
    std::vector<int32_t> ids = tokenizer->Encode(text);
    ids.insert(ids.begin(), tokenizer->bos_id());
    ids.push_back(tokenizer->eos_id());
    EXPECT_EQ(StreamAll(*tokenizer, ids), tokenizer->Decode(ids)) << text;
    EXPECT_EQ(StreamAll(*tokenizer, ids), reference->DecodeIds(AsInts(ids))) << text;
  }
}

TEST(SentencePieceTokenizer, StreamReleasesEmojiOnlyAtItsLastBytePiece) {
  const auto tokenizer = LoadDefault();
  const auto reference = LoadReference(DefaultModelPath());
  ASSERT_NE(tokenizer, nullptr);
  const std::vector<int32_t> ids = tokenizer->Encode(std::string("fox ") + kCrab + " dog");
  StreamingDetokenizer detok(*tokenizer);
  std::vector<std::string> byte_piece_outputs;
  std::string text;
  for (const int32_t id : ids) {
    const std::string out = detok.Push(id);
    if (reference->IsByte(id)) byte_piece_outputs.push_back(out);
    text += out;
  }
  EXPECT_EQ(byte_piece_outputs, (std::vector<std::string>{"", "", "", kCrab}));
  EXPECT_EQ(detok.Flush(), "");
  EXPECT_EQ(text, std::string("fox ") + kCrab + " dog");
}

TEST(SentencePieceTokenizer, InvalidBytePiecesStreamAsRawBytes) {
  const auto tokenizer = LoadDefault();
  const auto reference = LoadReference(DefaultModelPath());
  ASSERT_NE(tokenizer, nullptr);
  // A generated lead byte that never gets its continuation, then a word.
  const std::vector<int32_t> ids = {reference->PieceToId("<0xF0>"),
                                    reference->PieceToId("\xe2\x96\x81the")};
  StreamingDetokenizer detok(*tokenizer);
  EXPECT_EQ(detok.Push(ids[0]), "");
  EXPECT_EQ(detok.Push(ids[1]), "\xF0 the");
  EXPECT_EQ(detok.Flush(), "");
  // Decode agrees with the stream (sentencepiece's DecodeIds would write U+FFFD instead).
  EXPECT_EQ(tokenizer->Decode(ids), "\xF0 the");
}

// ---- LoadTokenizer ------------------------------------------------------------------------------

TEST(LoadTokenizer, BytesSpecGivesByteTokenizer) {
  TokenizerSpec spec;
  spec.type = TokenizerSpec::Type::kBytes;
  auto tokenizer = LoadTokenizer(spec, "/nonexistent");
  ASSERT_TRUE(tokenizer.ok()) << tokenizer.status();
  EXPECT_EQ((*tokenizer)->vocab_size(), 258);
  EXPECT_EQ((*tokenizer)->Decode((*tokenizer)->Encode("\xFFok")), "\xFFok");
}

TEST(LoadTokenizer, SentencePieceSpecLoadsModelFileFromModelDir) {
  const std::filesystem::path model = DefaultModelPath();
  TokenizerSpec spec;
  spec.type = TokenizerSpec::Type::kSentencePiece;
  spec.model_file = model.filename().string();
  auto tokenizer = LoadTokenizer(spec, model.parent_path().string());
  ASSERT_TRUE(tokenizer.ok()) << tokenizer.status();
  EXPECT_EQ((*tokenizer)->vocab_size(), 360);
  EXPECT_TRUE((*tokenizer)->strips_leading_space());
}

TEST(LoadTokenizer, MissingSentencePieceModelIsNotFoundNamingPath) {
  TokenizerSpec spec;
  spec.type = TokenizerSpec::Type::kSentencePiece;
  spec.model_file = "missing.model";
  const auto tokenizer = LoadTokenizer(spec, ScratchDir());
  ASSERT_FALSE(tokenizer.ok());
  EXPECT_EQ(tokenizer.status().code(), absl::StatusCode::kNotFound);
  EXPECT_NE(tokenizer.status().message().find(ScratchDir() + "/missing.model"),
            std::string::npos)
      << tokenizer.status();
}

TEST(LoadTokenizer, GarbageSentencePieceModelIsInvalidArgumentNamingPath) {
  const std::string path = ScratchDir() + "/garbage.model";
  std::ofstream(path) << "this is not a sentencepiece model\n";
  TokenizerSpec spec;
  spec.type = TokenizerSpec::Type::kSentencePiece;
  spec.model_file = "garbage.model";
  const auto tokenizer = LoadTokenizer(spec, ScratchDir());
  ASSERT_FALSE(tokenizer.ok());
  EXPECT_EQ(tokenizer.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(tokenizer.status().message().find(path), std::string::npos) << tokenizer.status();
}

TEST(LoadTokenizer, DirectoryAsSentencePieceModelIsInvalidArgumentNotACrash) {
  // sentencepiece itself throws std::ios_failure on a directory.
  std::filesystem::create_directories(ScratchDir() + "/dir.model");
  TokenizerSpec spec;
  spec.type = TokenizerSpec::Type::kSentencePiece;
  spec.model_file = "dir.model";
  const auto tokenizer = LoadTokenizer(spec, ScratchDir());
  ASSERT_FALSE(tokenizer.ok());
  EXPECT_EQ(tokenizer.status().code(), absl::StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace mswa
