// mswa-train's core: trains the model of config.json (pre-norm RMSNorm, RoPE, per-head windowed
// attention, SwiGLU, GQA, tied embeddings) with LibTorch autograd on text, tokenized by the
// model's tokenizer: bytes (the default) or a SentencePiece model in the model directory.
//
// Attention is blocked so its cost is linear in the sequence length: layer l splits the sequence
// into blocks of S_l = its largest window (the whole sequence for unbounded heads); each query
// block attends to itself and the block before it, masked by InWindow per head:
//     scores [B, H, nb, S, 2S] = q_blocks [B, H, nb, S, D] . [k_prev | k_block]^T
// Everything a query can see lies in those 2S keys because no window exceeds S.
//
// Determinism: batch b of step t is drawn from a generator seeded with (seed, t), so a resumed
// run sees the same data as an uninterrupted one; a checkpoint holds the weights, AdamW's
// moments and the step.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "model/format/config.h"
#include "model/tokenizer/tokenizer.h"
#include "model/format/weights.h"

namespace mswa {

struct TrainOptions {
  int64_t batch_size = 16;
  // Sequences per forward/backward; gradients accumulate over batch_size / micro_batch of them.
  // Small micro-batches keep every activation under glibc's mmap threshold, so memory is reused
  // instead of being faulted in afresh each step (a quarter of the time otherwise).
  int64_t micro_batch = 1;
  int64_t seq_len = 1024;
  int64_t steps = 1000;
  double lr = 3e-3;
  double min_lr_ratio = 0.1;  // cosine decays to lr * min_lr_ratio
  int64_t warmup_steps = 100;
  double weight_decay = 0.1;  // on matrices only (not norms)
  double grad_clip = 1.0;
  uint64_t seed = 0;
  int64_t eval_every = 200;           // steps; 0 = only at the end
  int64_t eval_bytes = 1 << 18;       // bytes of each validation file scored per evaluation
  int64_t checkpoint_every = 200;     // steps; 0 = only at the end
  int64_t log_every = 10;
  absl::Status Validate() const;
};

// A tokenized corpus: the training files' tokens concatenated (each file followed by a newline)
// and the validation texts by name (scored as text, so bits per byte compare across tokenizers).
struct Corpus {
  std::vector<int32_t> train;
  std::vector<std::pair<std::string, std::string>> valid;  // (name, text)
};
absl::StatusOr<Corpus> LoadCorpus(const std::vector<std::string>& train_files,
                                  const std::vector<std::string>& valid_files, const Tokenizer& tokenizer);

class Trainer {
 public:
  // A new model (deterministic init from options.seed) or, when `checkpoint_dir` holds a
  // checkpoint, the state saved there (its config must match). The tokenizer is the config's:
  // a SentencePiece model file must already be in `checkpoint_dir`, and the vocabulary, BOS and
  // EOS of the config must be the tokenizer's.
  static absl::StatusOr<std::unique_ptr<Trainer>> Create(const ModelConfig& config,
                                                        const TrainOptions& options,
                                                        const std::string& checkpoint_dir);
  ~Trainer();

  // One optimizer step on batch `step()`; returns the mean cross-entropy in nats per byte.
  double Step(const Corpus& corpus);
  int64_t step() const;
  double LearningRate(int64_t step) const;

  // Mean negative log-likelihood in nats per byte of `text` (BOS first, every token scored),
  // evaluated in windows of seq_len with enough overlap that each byte sees its full receptive
  // field: the same number the engine's Score gives.
  double EvalNatsPerByte(const std::string& text);

  // Logits [T, V] of the training forward (blocked attention) for `tokens` at positions
  // start_pos.. (tests compare it with the dense reference).
  at::Tensor Logits(const std::vector<int32_t>& tokens, int64_t start_pos = 0);

  // Writes config.json + model.safetensors (fp32) + trainer_state.pt (AdamW moments and step)
  // into `dir`, atomically per file.
  absl::Status SaveCheckpoint(const std::string& dir);
  // The weights as the engine loads them.
  ModelWeights Weights() const;
  const ModelConfig& config() const;
  const Tokenizer& tokenizer() const;

 private:
  struct State;
  explicit Trainer(std::unique_ptr<State> state);
  std::unique_ptr<State> s_;
};

// The tokens a position can depend on through the stack of windows: sum over layers of (largest
// window - 1); -1 when some head is unbounded.
int64_t ReceptiveField(const ModelConfig& config);

}  // namespace mswa
