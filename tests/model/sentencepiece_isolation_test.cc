// SentencePiece inside a process that also runs LibTorch and so the system libprotobuf: the
// combination that aborts when libsentencepiece is linked directly (see sentencepiece_shim.h).
#include <gtest/gtest.h>

#include <cstdlib>
#include <fstream>
#include <string>

#include "model/runtime/reference_forward.h"
#include "model/tokenizer/tokenizer.h"
#include "tests/model/test_models.h"

namespace mswa {
namespace {

TEST(SentencePieceIsolation, TokenizesBesideLibTorch) {
  // LibTorch (and libprotobuf with it) is in use in this process.
  ModelConfig c = mswa::testing::TinyConfig();
  ModelWeights w = RandomModelWeights(c, 1);
  ASSERT_EQ(ReferenceForward(w, c, {1, 2, 3}).size(0), 3);

  const std::string dir = ::testing::TempDir() + "/spm_isolation";
  ASSERT_EQ(std::system(("mkdir -p " + dir).c_str()), 0);
  {
    std::ofstream corpus(dir + "/corpus.txt");
    for (int i = 0; i < 200; ++i) corpus << "the window slides over the tokens " << i << " naïve café\n";
  }
  const std::string train = "spm_train --input=" + dir + "/corpus.txt --model_prefix=" + dir +
                            "/tokenizer --vocab_size=300 --model_type=bpe --byte_fallback=true "
                            "--minloglevel=2 > " + dir + "/train.log 2>&1";
  ASSERT_EQ(std::system(train.c_str()), 0) << "spm_train failed; see " << dir << "/train.log";

  TokenizerSpec spec;
  spec.type = TokenizerSpec::Type::kSentencePiece;
  auto tokenizer = LoadTokenizer(spec, dir);
  ASSERT_TRUE(tokenizer.ok()) << tokenizer.status();
  const std::string text = "the window slides 😀 naïve";
  const auto ids = (*tokenizer)->Encode(text);
  EXPECT_GT(ids.size(), 3u);
  EXPECT_EQ((*tokenizer)->Decode(ids), text);
  EXPECT_GE((*tokenizer)->bos_id(), 0);
}

}  // namespace
}  // namespace mswa
