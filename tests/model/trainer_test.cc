#include "model/train/trainer.h"

#include <ATen/Parallel.h>
#include <gtest/gtest.h>

#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>

#include "model/runtime/reference_forward.h"
#include "server/model_loader.h"
#include "tests/model/test_models.h"

namespace mswa {
namespace {

TrainOptions TinyOptions() {
  TrainOptions o;
  o.batch_size = 4;
  o.seq_len = 40;
  o.steps = 60;
  o.lr = 1e-2;
  o.warmup_steps = 5;
  return o;
}

Corpus Repetitive() {
  Corpus c;
  const std::string line = "the cat sat on the mat. ";
  for (int i = 0; i < 200; ++i) {
    for (unsigned char ch : line) c.train.push_back(ch);
  }
  return c;
}

// Nats per byte of `text` as the engine scores it from the model directory `dir`.
double EngineNatsPerByte(const std::string& dir, const std::string& text) {
  EngineOptions eo;
  eo.kv_cache_bytes = 4 << 20;
  auto engine = LoadEngine(dir, eo);
  EXPECT_TRUE(engine.ok()) << engine.status();
  if (!engine.ok()) return -1;
  const auto tokens = (*engine)->tokenizer().Encode(text);
  double nll = -1;
  auto id = (*engine)->SubmitScore(ScoreOptions{}, tokens.size(), [&](EngineEvent e) {
    if (e.finished) nll = e.score.total_nll;
  });
  EXPECT_TRUE(id.ok());
  EXPECT_TRUE((*engine)->FeedScore(*id, tokens, text.size(), true).ok());
  while ((*engine)->Step()) {
  }
  return nll / text.size();
}

// Deterministic float sums for the exact-resume comparison.
struct OneThread {
  OneThread() : before(at::get_num_threads()) { at::set_num_threads(1); }
  ~OneThread() { at::set_num_threads(before); }
  int before;
};

TEST(Trainer, ReceptiveFieldSumsEachLayersLargestWindow) {
  EXPECT_EQ(ReceptiveField(testing::TinyConfig({{4, 4, 8, 8}, {8, 8, 16, 16}})), 7 + 15);
  EXPECT_EQ(ReceptiveField(testing::TinyConfig({{4, 4, 0, 0}, {8, 8, 16, 16}})), -1);
}

TEST(Trainer, BlockedAttentionEqualsTheDenseReference) {
  for (auto windows : std::vector<std::vector<std::vector<int64_t>>>{
           {{4, 4, 8, 8}, {8, 8, 16, 16}}, {{1, 1, 3, 3}, {0, 0, 5, 5}}, {{7, 7, 7, 7}, {2, 2, 2, 2}}}) {
    const ModelConfig c = testing::TinyConfig(windows);
    auto trainer = Trainer::Create(c, TinyOptions(), "");
    ASSERT_TRUE(trainer.ok()) << trainer.status();
    const auto tokens = testing::SomeTokens(37);
    for (int64_t start : {0, 1000}) {
      at::Tensor ours = (*trainer)->Logits(tokens, start);
      at::Tensor ref = ReferenceForward((*trainer)->Weights(), c, tokens, start);
      EXPECT_LT((ours - ref).abs().max().item<double>(), 1e-4) << "start " << start;
    }
  }
}

TEST(Trainer, LossGoesDownOnARepetitiveCorpus) {
  auto trainer = Trainer::Create(testing::TinyConfig(), TinyOptions(), "");
  ASSERT_TRUE(trainer.ok()) << trainer.status();
  const Corpus corpus = Repetitive();
  double first = 0, last = 0;
  for (int i = 0; i < 60; ++i) {
    const double loss = (*trainer)->Step(corpus);
    if (i < 5) first += loss / 5;
    if (i >= 55) last += loss / 5;
  }
  EXPECT_LT(last, 0.5 * first) << "first " << first << " last " << last;
}

TEST(Trainer, AResumedRunContinuesTheSameCurve) {
  OneThread one;
  const ModelConfig c = testing::TinyConfig();
  TrainOptions o = TinyOptions();
  o.steps = 10;
  const Corpus corpus = Repetitive();
  auto straight = Trainer::Create(c, o, "");
  std::vector<double> expected;
  for (int i = 0; i < 10; ++i) expected.push_back((*straight)->Step(corpus));

  const std::string dir = ::testing::TempDir() + "/trainer_resume";
  std::filesystem::remove_all(dir);  // no checkpoint from an earlier run
  auto first = Trainer::Create(c, o, dir);
  ASSERT_TRUE(first.ok()) << first.status();
  for (int i = 0; i < 5; ++i) (*first)->Step(corpus);
  ASSERT_TRUE((*first)->SaveCheckpoint(dir).ok());
  auto resumed = Trainer::Create(c, o, dir);
  ASSERT_TRUE(resumed.ok()) << resumed.status();
  EXPECT_EQ((*resumed)->step(), 5);
  for (int i = 5; i < 10; ++i) EXPECT_NEAR((*resumed)->Step(corpus), expected[i], 1e-5) << "step " << i;
}

TEST(Trainer, TheWrittenModelScoresTheSameInTheEngine) {
  const ModelConfig c = testing::TinyConfig();
  TrainOptions o = TinyOptions();
  o.seq_len = 32;  // shorter than the text: evaluation runs over overlapping segments
  auto trainer = Trainer::Create(c, o, "");
  const Corpus corpus = Repetitive();
  for (int i = 0; i < 20; ++i) (*trainer)->Step(corpus);
  const std::string dir = ::testing::TempDir() + "/trainer_written";
  ASSERT_TRUE((*trainer)->SaveCheckpoint(dir).ok());

  const std::string text = "the cat sat on the mat. the mat sat on the cat. a dog!";
  const double trainer_nats = (*trainer)->EvalNatsPerByte(text);
  EXPECT_NEAR(EngineNatsPerByte(dir, text), trainer_nats, 1e-4 * trainer_nats);
}

TEST(Trainer, TrainsWithASentencePieceTokenizerThatShipsInTheModel) {
  const std::string dir = ::testing::TempDir() + "/trainer_spm";
  std::filesystem::remove_all(dir);
  std::filesystem::create_directories(dir);
  {
    std::ofstream corpus(dir + "/corpus.txt");
    for (int i = 0; i < 300; ++i) corpus << "the cat sat on the mat " << i % 7 << ". the dog ran.\n";
  }
  // Lossless settings: identity normalization keeps newlines and spacing, byte fallback covers
  // every character, so bits per byte count exactly the file's bytes.
  const std::string train = "spm_train --input=" + dir + "/corpus.txt --model_prefix=" + dir +
                            "/tokenizer --vocab_size=320 --model_type=bpe --byte_fallback=true "
                            "--normalization_rule_name=identity --remove_extra_whitespaces=false "
                            "--add_dummy_prefix=false --minloglevel=2 > " + dir + "/train.log 2>&1";
  ASSERT_EQ(std::system(train.c_str()), 0) << "spm_train failed; see " << dir << "/train.log";

  ModelConfig c = testing::TinyConfig();
  c.tokenizer.type = TokenizerSpec::Type::kSentencePiece;
  auto tokenizer = LoadTokenizer(c.tokenizer, dir);
  ASSERT_TRUE(tokenizer.ok()) << tokenizer.status();
  c.vocab_size = (*tokenizer)->vocab_size();
  c.bos_token_id = (*tokenizer)->bos_id();
  c.eos_token_ids = {(*tokenizer)->eos_id()};
  auto corpus = LoadCorpus({dir + "/corpus.txt"}, {}, **tokenizer);
  ASSERT_TRUE(corpus.ok()) << corpus.status();
  const std::string line = "the cat sat on the mat 3. the dog ran.\n";
  // Whole words became single tokens: fewer tokens than bytes.
  EXPECT_LT(static_cast<double>(corpus->train.size()), 0.7 * 300 * line.size());

  auto trainer = Trainer::Create(c, TinyOptions(), dir);
  ASSERT_TRUE(trainer.ok()) << trainer.status();
  double first = 0, last = 0;
  for (int i = 0; i < 40; ++i) {
    const double loss = (*trainer)->Step(*corpus);
    if (i < 5) first += loss / 5;
    if (i >= 35) last += loss / 5;
  }
  EXPECT_LT(last, 0.5 * first) << "first " << first << " last " << last;
  ASSERT_TRUE((*trainer)->SaveCheckpoint(dir).ok());
  const std::string text = line + "the mat sat on the cat 5.\n";
  const double trainer_nats = (*trainer)->EvalNatsPerByte(text);
  EXPECT_GT(trainer_nats, 0);
  EXPECT_NEAR(EngineNatsPerByte(dir, text), trainer_nats, 1e-4 * trainer_nats);

  // A config whose vocabulary is not the tokenizer's is refused.
  ModelConfig wrong = c;
  wrong.bos_token_id = c.first_eos();
  EXPECT_EQ(Trainer::Create(wrong, TinyOptions(), dir).status().code(), absl::StatusCode::kInvalidArgument);
}

TEST(Trainer, RejectsACheckpointOfAnotherModel) {
  const std::string dir = ::testing::TempDir() + "/trainer_other";
  std::filesystem::remove_all(dir);
  auto a = Trainer::Create(testing::TinyConfig(), TinyOptions(), dir);
  ASSERT_TRUE((*a)->SaveCheckpoint(dir).ok());
  auto b = Trainer::Create(testing::TinyConfig({{2, 2, 2, 2}, {3, 3, 3, 3}}), TinyOptions(), dir);
  EXPECT_EQ(b.status().code(), absl::StatusCode::kFailedPrecondition);
}

}  // namespace
}  // namespace mswa
