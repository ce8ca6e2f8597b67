// mswa-train: trains an MSWA (or SWA / full-attention) model on text files, byte-level or with a
// SentencePiece tokenizer, and writes a model directory mswa-server loads. Checkpoints into
// --out; running the same command again resumes exactly where the last checkpoint left off.
//
//   mswa-train --out models/my-mswa --train a.txt,b.txt --valid v.txt --preset mswa --window 128
//   mswa-train ... --tokenizer spm.model     (windows then count SentencePiece tokens)
#include <ATen/Parallel.h>
#include <malloc.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>
#include <thread>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/flags/usage.h"
#include "absl/strings/str_split.h"
#include "model/train/trainer.h"
#include "model/format/window_schedule.h"

ABSL_FLAG(std::string, out, "", "Model directory to write (and resume from when it has a checkpoint)");
ABSL_FLAG(std::vector<std::string>, train, {}, "Training text files, comma-separated");
ABSL_FLAG(std::vector<std::string>, valid, {}, "Validation text files, comma-separated (bits per byte)");
ABSL_FLAG(std::string, tokenizer, "",
          "SentencePiece .model file (copied into --out as tokenizer.model); empty: bytes");
ABSL_FLAG(std::string, preset, "mswa", "Window preset: full, swa, mswa-h, mswa-l, mswa");
ABSL_FLAG(int64_t, window, 128, "Base window w");
ABSL_FLAG(std::vector<std::string>, head_scales, {}, "Head-group ladder (default 0.25,0.5,1,2)");
ABSL_FLAG(std::vector<std::string>, layer_scales, {}, "Layer-group ladder (default 0.5,0.5,1,2)");
ABSL_FLAG(int64_t, hidden, 256, "Hidden size");
ABSL_FLAG(int64_t, layers, 6, "Decoder layers");
ABSL_FLAG(int64_t, heads, 8, "Query heads");
ABSL_FLAG(int64_t, kv_heads, 0, "Key/value heads (0: = heads)");
ABSL_FLAG(int64_t, intermediate, 0, "MLP size (0: ~8/3 hidden, multiple of 64)");
ABSL_FLAG(int64_t, batch, 16, "Sequences per step");
ABSL_FLAG(int64_t, micro_batch, 1, "Sequences per forward/backward (gradients accumulate)");
ABSL_FLAG(int64_t, seq_len, 1024, "Training sequence length (>= 2x the largest window recommended)");
ABSL_FLAG(int64_t, steps, 1000, "Optimizer steps");
ABSL_FLAG(double, lr, 3e-3, "Peak learning rate (AdamW)");
ABSL_FLAG(int64_t, warmup, 100, "Warmup steps");
ABSL_FLAG(double, weight_decay, 0.1, "AdamW weight decay on matrices");
ABSL_FLAG(uint64_t, seed, 0, "Seed (init and data order)");
ABSL_FLAG(int64_t, eval_every, 200, "Evaluate every N steps (0: at the end)");
ABSL_FLAG(int64_t, eval_bytes, 1 << 18, "Bytes of each validation file per evaluation");
ABSL_FLAG(int64_t, checkpoint_every, 200, "Checkpoint every N steps (0: at the end)");
ABSL_FLAG(int32_t, threads, 0, "Threads (0: every core)");

namespace {

int Fail(const std::string& message, int code = 1) {
  std::fprintf(stderr, "mswa-train: %s\n", message.c_str());
  return code;
}

std::vector<double> Ladder(const std::vector<std::string>& values, std::vector<double> fallback) {
  if (values.empty()) return fallback;
  std::vector<double> out;
  for (const auto& v : values) out.push_back(std::stod(v));
  return out;
}

bool SameBytes(const std::string& a, const std::string& b) {
  std::ifstream fa(a, std::ios::binary), fb(b, std::ios::binary);
  return fa && fb &&
         std::equal(std::istreambuf_iterator<char>(fa), {}, std::istreambuf_iterator<char>(fb), {});
}

std::string Duration(double seconds) {
  const int64_t s = static_cast<int64_t>(seconds);
  char buf[32];
  std::snprintf(buf, sizeof(buf), "%ldh%02ldm%02lds", static_cast<long>(s / 3600),
                static_cast<long>(s / 60 % 60), static_cast<long>(s % 60));
  return buf;
}

}  // namespace

int main(int argc, char** argv) {
  absl::SetProgramUsageMessage(
      "trains an MSWA model (byte-level, or SentencePiece with --tokenizer).\n"
      "  mswa-train --out DIR --train FILES --valid FILES [--preset mswa --window 128 ...]");
  absl::ParseCommandLine(argc, argv);
  using namespace mswa;
  const std::string out = absl::GetFlag(FLAGS_out);
  if (out.empty()) return Fail("--out is required", 2);
  if (absl::GetFlag(FLAGS_train).empty()) return Fail("--train is required", 2);
  // Keep freed activations in the heap for the next step instead of returning them to the OS.
  mallopt(M_MMAP_THRESHOLD, 32 << 20);
  mallopt(M_TRIM_THRESHOLD, 1 << 30);
  const int32_t threads = absl::GetFlag(FLAGS_threads);
  at::set_num_threads(threads > 0 ? threads : static_cast<int>(std::thread::hardware_concurrency()));

  ModelConfig c;
  c.hidden_size = absl::GetFlag(FLAGS_hidden);
  c.num_hidden_layers = absl::GetFlag(FLAGS_layers);
  c.num_attention_heads = absl::GetFlag(FLAGS_heads);
  c.num_key_value_heads = absl::GetFlag(FLAGS_kv_heads) > 0 ? absl::GetFlag(FLAGS_kv_heads) : c.num_attention_heads;
  if (c.num_attention_heads <= 0) return Fail("--heads must be > 0", 2);
  c.head_dim = c.hidden_size / c.num_attention_heads;
  c.intermediate_size = absl::GetFlag(FLAGS_intermediate) > 0 ? absl::GetFlag(FLAGS_intermediate)
                                                               : (8 * c.hidden_size / 3 + 63) / 64 * 64;
  c.tie_word_embeddings = true;
  c.tokenizer.type = TokenizerSpec::Type::kBytes;
  if (const std::string spm = absl::GetFlag(FLAGS_tokenizer); !spm.empty()) {
    // The model directory carries its tokenizer; a resumed run finds it there already.
    namespace fs = std::filesystem;
    std::error_code ec;
    fs::create_directories(out, ec);
    const fs::path dest = fs::path(out) / c.tokenizer.model_file;
    if (!fs::exists(spm)) return Fail("--tokenizer " + spm + " does not exist", 2);
    if (!fs::exists(dest)) {
      if (!fs::copy_file(spm, dest, ec)) return Fail("cannot copy " + spm + " to " + dest.string() + ": " + ec.message());
    } else if (!SameBytes(spm, dest.string())) {
      return Fail(dest.string() + " holds another tokenizer; use a new --out directory", 2);
    }
    c.tokenizer.type = TokenizerSpec::Type::kSentencePiece;
  }
  auto tokenizer = LoadTokenizer(c.tokenizer, out);
  if (!tokenizer.ok()) return Fail(std::string(tokenizer.status().message()), 2);
  c.vocab_size = (*tokenizer)->vocab_size();
  c.bos_token_id = (*tokenizer)->bos_id();
  c.eos_token_ids = {(*tokenizer)->eos_id()};
  if (c.bos_token_id < 0) return Fail("the tokenizer has no BOS piece (train it without --bos_id=-1)", 2);
  WindowScheduleOptions ws;
  ws.preset = absl::GetFlag(FLAGS_preset);
  ws.base_window = absl::GetFlag(FLAGS_window);
  ws.num_layers = c.num_hidden_layers;
  ws.num_heads = c.num_attention_heads;
  ws.num_kv_heads = c.num_key_value_heads;
  ws.head_scales = Ladder(absl::GetFlag(FLAGS_head_scales), ws.head_scales);
  ws.layer_scales = Ladder(absl::GetFlag(FLAGS_layer_scales), ws.layer_scales);
  auto windows = MakeWindowSchedule(ws);
  if (!windows.ok()) return Fail(std::string(windows.status().message()), 2);
  c.attention_windows = *windows;

  TrainOptions o;
  o.batch_size = absl::GetFlag(FLAGS_batch);
  o.micro_batch = absl::GetFlag(FLAGS_micro_batch);
  o.seq_len = absl::GetFlag(FLAGS_seq_len);
  o.steps = absl::GetFlag(FLAGS_steps);
  o.lr = absl::GetFlag(FLAGS_lr);
  o.warmup_steps = absl::GetFlag(FLAGS_warmup);
  o.weight_decay = absl::GetFlag(FLAGS_weight_decay);
  o.seed = absl::GetFlag(FLAGS_seed);
  o.eval_every = absl::GetFlag(FLAGS_eval_every);
  o.eval_bytes = absl::GetFlag(FLAGS_eval_bytes);
  o.checkpoint_every = absl::GetFlag(FLAGS_checkpoint_every);
  if (absl::Status s = o.Validate(); !s.ok()) return Fail(std::string(s.message()), 2);
  if (c.max_window() * 2 > o.seq_len && c.all_windows_finite()) {
    std::fprintf(stderr, "mswa-train: note: the largest window (%ld) is more than half of --seq_len (%ld)\n",
                 static_cast<long>(c.max_window()), static_cast<long>(o.seq_len));
  }

  auto corpus = LoadCorpus(absl::GetFlag(FLAGS_train), absl::GetFlag(FLAGS_valid), **tokenizer);
  if (!corpus.ok()) return Fail(std::string(corpus.status().message()));
  for (const auto& [name, text] : corpus->valid) {
    // Bits per byte count the file's bytes; a tokenizer that drops or rewrites characters
    // (e.g. SentencePiece's default normalization turns newlines into spaces) flatters them.
    const std::string part = text.substr(0, 1 << 16);
    if ((*tokenizer)->Decode((*tokenizer)->Encode(part)) != part) {
      std::fprintf(stderr,
                   "mswa-train: note: the tokenizer does not reproduce %s exactly, so its bits per byte "
                   "are not comparable with a lossless model's (train SentencePiece with "
                   "--normalization_rule_name=identity --remove_extra_whitespaces=false --byte_fallback=true)\n",
                   name.c_str());
    }
  }
  auto trainer = Trainer::Create(c, o, out);
  if (!trainer.ok()) return Fail(std::string(trainer.status().message()));
  Trainer& t = **trainer;
  std::printf("mswa-train: %s, %zu training tokens, %s from step %ld of %ld\n", ws.preset.c_str(),
              corpus->train.size(), t.step() > 0 ? "resuming" : "starting", static_cast<long>(t.step()),
              static_cast<long>(o.steps));
  std::fflush(stdout);

  auto evaluate = [&] {
    for (const auto& [name, text] : corpus->valid) {
      const std::string part = text.substr(0, static_cast<size_t>(o.eval_bytes));
      const double bpb = t.EvalNatsPerByte(part) / std::log(2.0);
      std::printf("eval step %ld: %s %.4f bits/byte (%zu bytes)\n", static_cast<long>(t.step()),
                  name.c_str(), bpb, part.size());
    }
    std::fflush(stdout);
  };
  const auto start = std::chrono::steady_clock::now();
  const int64_t first_step = t.step();
  double loss_sum = 0;
  int64_t loss_n = 0;
  while (t.step() < o.steps) {
    const double loss = t.Step(*corpus);
    loss_sum += loss;
    ++loss_n;
    const int64_t step = t.step();
    if (step % 10 == 0 || step == o.steps) {
      const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
      const double tps = (step - first_step) * o.batch_size * o.seq_len / secs;
      const double eta = (o.steps - step) * o.batch_size * o.seq_len / tps;
      std::printf("step %ld/%ld loss %.4f (%.3f bits/byte) lr %.2e %.0f tokens/s eta %s\n",
                  static_cast<long>(step), static_cast<long>(o.steps), loss_sum / loss_n,
                  loss_sum / loss_n / std::log(2.0), t.LearningRate(step - 1), tps, Duration(eta).c_str());
      std::fflush(stdout);
      loss_sum = 0;
      loss_n = 0;
    }
    if (o.eval_every > 0 && step % o.eval_every == 0) evaluate();
    if ((o.checkpoint_every > 0 && step % o.checkpoint_every == 0) || step == o.steps) {
      if (absl::Status s = t.SaveCheckpoint(out); !s.ok()) return Fail(std::string(s.message()));
    }
  }
  if (o.eval_every == 0 || o.steps % o.eval_every != 0) evaluate();
  if (absl::Status s = t.SaveCheckpoint(out); !s.ok()) return Fail(std::string(s.message()));
  std::printf("wrote %s\n", out.c_str());
  return 0;
}
