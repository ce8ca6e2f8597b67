#include "model/train/trainer.h"

#include <torch/torch.h>

#include <algorithm>
#include <cmath>
#include <fstream>
#include <limits>
#include <map>
#include <random>
#include <sstream>

#include "absl/strings/str_cat.h"
#include "kernels/window.h"
#include "model/runtime/ops.h"
#include "model/runtime/rope.h"
#include "model/status_macros.h"

namespace mswa {
namespace {

// One layer's trainable tensors, HF shapes (see weights.h).
struct LayerParams {
  torch::Tensor input_norm, q, k, v, o, post_norm, gate, up, down;
};

bool ReadFile(const std::string& path, std::string* out) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return false;
  std::stringstream ss;
  ss << in.rdbuf();
  *out = ss.str();
  return true;
}

}  // namespace

absl::Status TrainOptions::Validate() const {
  if (micro_batch < 1 || batch_size % micro_batch != 0) {
    return absl::InvalidArgumentError("the batch size must be a multiple of the micro-batch size");
  }
  if (batch_size < 1 || seq_len < 2 || steps < 0 || warmup_steps < 0) {
    return absl::InvalidArgumentError("batch size >= 1, sequence length >= 2, steps and warmup >= 0");
  }
  if (!(lr > 0) || !(min_lr_ratio >= 0 && min_lr_ratio <= 1) || weight_decay < 0 || !(grad_clip > 0)) {
    return absl::InvalidArgumentError("lr > 0, min_lr_ratio in [0, 1], weight_decay >= 0, grad_clip > 0");
  }
  return absl::OkStatus();
}

int64_t ReceptiveField(const ModelConfig& c) {
  int64_t rf = 0;
  for (const auto& layer : c.attention_windows) {
    int64_t m = 0;
    for (int64_t w : layer) {
      if (w == 0) return -1;
      m = std::max(m, w);
    }
    rf += m - 1;
  }
  return rf;
}

absl::StatusOr<Corpus> LoadCorpus(const std::vector<std::string>& train_files,
                                  const std::vector<std::string>& valid_files, const Tokenizer& tokenizer) {
  Corpus corpus;
  for (const std::string& f : train_files) {
    std::string text;
    if (!ReadFile(f, &text)) return absl::NotFoundError(absl::StrCat("cannot read training file ", f));
    text.push_back('\n');
    const std::vector<int32_t> ids = tokenizer.Encode(text);
    corpus.train.insert(corpus.train.end(), ids.begin(), ids.end());
  }
  if (corpus.train.size() < 2) return absl::InvalidArgumentError("the training files hold no text");
  for (const std::string& f : valid_files) {
    std::string text;
    if (!ReadFile(f, &text)) return absl::NotFoundError(absl::StrCat("cannot read validation file ", f));
    corpus.valid.emplace_back(f, std::move(text));
  }
  return corpus;
}

struct Trainer::State {
  ModelConfig config;
  TrainOptions options;
  std::unique_ptr<Tokenizer> tokenizer;
  torch::Tensor embed, final_norm, lm_head;  // lm_head undefined when tied
  std::vector<LayerParams> layers;
  std::unique_ptr<torch::optim::AdamW> optimizer;
  int64_t step = 0;
  std::map<std::pair<int64_t, int64_t>, torch::Tensor> masks;  // (window, blocks and size) -> mask

  std::vector<torch::Tensor> DecayParams() {
    std::vector<torch::Tensor> p = {embed};
    if (lm_head.defined()) p.push_back(lm_head);
    for (auto& l : layers) {
      for (auto* t : {&l.q, &l.k, &l.v, &l.o, &l.gate, &l.up, &l.down}) p.push_back(*t);
    }
    return p;
  }
  std::vector<torch::Tensor> NormParams() {
    std::vector<torch::Tensor> p = {final_norm};
    for (auto& l : layers) {
      p.push_back(l.input_norm);
      p.push_back(l.post_norm);
    }
    return p;
  }

  // [nb, S, 2S] bool: may query i of block b see key j of [previous block | block b] under
  // `window`? Positions are relative to the segment start; nothing exists before it.
  torch::Tensor Mask(int64_t window, int64_t nb, int64_t S) {
    auto key = std::make_pair(window, nb * 1000003 + S);
    auto it = masks.find(key);
    if (it != masks.end()) return it->second;
    torch::Tensor m = torch::zeros({nb, S, 2 * S}, torch::kBool);
    bool* p = m.data_ptr<bool>();
    for (int64_t b = 0; b < nb; ++b) {
      for (int64_t i = 0; i < S; ++i) {
        for (int64_t j = 0; j < 2 * S; ++j) {
          const int64_t q_pos = b * S + i, k_pos = (b - 1) * S + j;
          p[(b * S + i) * 2 * S + j] = k_pos >= 0 && InWindow(q_pos, k_pos, window);
        }
      }
    }
    masks.emplace(key, m);
    return m;
  }

  // Attention of G heads that share `window` (0 = unbounded) over q, k, v [B, G, T, D]:
  // blocks of S = window tokens, each attending to itself and the block before.
  torch::Tensor BlockedAttention(torch::Tensor q, torch::Tensor k, torch::Tensor v, int64_t window,
                                 double scale) {
    const int64_t B = q.size(0), G = q.size(1), T = q.size(2), D = q.size(3);
    const int64_t S = (window <= 0 || window > T) ? T : window;
    const int64_t nb = (T + S - 1) / S, Tp = nb * S;
    if (Tp != T) {
      auto pad = [&](const torch::Tensor& t) {
        return torch::cat({t, torch::zeros({B, G, Tp - T, D}, t.options())}, 2);
      };
      q = pad(q);
      k = pad(k);
      v = pad(v);
    }
    torch::Tensor qb = q.reshape({B, G, nb, S, D});
    torch::Tensor kb = k.reshape({B, G, nb, S, D}), vb = v.reshape({B, G, nb, S, D});
    torch::Tensor zeros = torch::zeros({B, G, 1, S, D}, k.options());
    torch::Tensor kk = torch::cat({torch::cat({zeros, kb.narrow(2, 0, nb - 1)}, 2), kb}, 3);  // [B,G,nb,2S,D]
    torch::Tensor vv = torch::cat({torch::cat({zeros, vb.narrow(2, 0, nb - 1)}, 2), vb}, 3);
    torch::Tensor scores = torch::matmul(qb, kk.transpose(3, 4)) * scale;  // [B,G,nb,S,2S]
    scores = scores.masked_fill(Mask(window, nb, S).logical_not(), -std::numeric_limits<float>::infinity());
    torch::Tensor out = torch::matmul(torch::softmax(scores, -1), vv);  // [B,G,nb,S,D]
    return out.reshape({B, G, Tp, D}).narrow(2, 0, T);
  }

  // Logits [B, T, V] for tokens [B, T] at positions start .. start + T - 1.
  torch::Tensor Forward(const torch::Tensor& tokens, int64_t start) {
    const ModelConfig& c = config;
    const int64_t B = tokens.size(0), T = tokens.size(1);
    const int64_t H = c.num_attention_heads, KV = c.num_key_value_heads, D = c.head_dim;
    std::vector<int64_t> positions(T);
    for (int64_t t = 0; t < T; ++t) positions[t] = start + t;
    const RopeTables rope = MakeRopeTablesAt(positions.data(), T, c.rope(0), torch::kFloat);
    auto rotate = [&](const torch::Tensor& x) {  // x [B, T, heads, D]
      const int64_t heads = x.size(2);
      torch::Tensor flat = x.transpose(0, 1).reshape({T, B * heads, D});  // [T, B*heads, D]
      return ApplyRope(flat, rope).view({T, B, heads, D}).transpose(0, 1);
    };
    const double scale = 1.0 / std::sqrt(static_cast<double>(D));
    torch::Tensor x = embed.index({tokens});  // [B, T, E]
    for (int64_t l = 0; l < c.num_hidden_layers; ++l) {
      LayerParams& lp = layers[l];
      torch::Tensor h = RmsNormT(x, lp.input_norm, c.rms_norm_eps);
      torch::Tensor q = rotate(torch::matmul(h, lp.q.t()).view({B, T, H, D})).transpose(1, 2);   // [B,H,T,D]
      torch::Tensor k = rotate(torch::matmul(h, lp.k.t()).view({B, T, KV, D})).transpose(1, 2);  // [B,KV,T,D]
      torch::Tensor v = torch::matmul(h, lp.v.t()).view({B, T, KV, D}).transpose(1, 2);          // [B,KV,T,D]
      if (KV != H) {
        k = k.repeat_interleave(H / KV, 1);
        v = v.repeat_interleave(H / KV, 1);
      }
      // Heads are grouped by window; each group is blocked by its own window, so a head with
      // window W costs T x 2W scores, whatever the other heads' windows are.
      std::vector<torch::Tensor> outs(H);
      std::map<int64_t, std::vector<int64_t>> by_window;
      for (int64_t hq = 0; hq < H; ++hq) by_window[c.window(l, hq)].push_back(hq);
      for (const auto& [window, heads] : by_window) {
        torch::Tensor idx = torch::tensor(heads, torch::kLong);
        const int64_t G = static_cast<int64_t>(heads.size());
        torch::Tensor out = BlockedAttention(q.index_select(1, idx), k.index_select(1, idx),
                                             v.index_select(1, idx), window, scale);  // [B,G,T,D]
        for (int64_t i = 0; i < G; ++i) outs[heads[i]] = out.select(1, i);
      }
      torch::Tensor attn = torch::stack(outs, 1).transpose(1, 2).reshape({B, T, H * D});  // [B,T,H*D]
      x = x + torch::matmul(attn, lp.o.t());
      torch::Tensor h2 = RmsNormT(x, lp.post_norm, c.rms_norm_eps);
      x = x + torch::matmul(GatedActivationT(torch::matmul(h2, lp.gate.t()), torch::matmul(h2, lp.up.t()),
                                             c.arch.activation),
                            lp.down.t());
    }
    x = RmsNormT(x, final_norm, c.rms_norm_eps);
    return torch::matmul(x, (lm_head.defined() ? lm_head : embed).t());
  }
};

Trainer::Trainer(std::unique_ptr<State> state) : s_(std::move(state)) {}
Trainer::~Trainer() = default;
int64_t Trainer::step() const { return s_->step; }
const ModelConfig& Trainer::config() const { return s_->config; }
const Tokenizer& Trainer::tokenizer() const { return *s_->tokenizer; }

absl::StatusOr<std::unique_ptr<Trainer>> Trainer::Create(const ModelConfig& config,
                                                         const TrainOptions& options,
                                                         const std::string& checkpoint_dir) {
  RETURN_IF_ERROR(config.Validate());
  RETURN_IF_ERROR(options.Validate());
  if (config.tokenizer.type == TokenizerSpec::Type::kSentencePiece && checkpoint_dir.empty()) {
    return absl::InvalidArgumentError("a SentencePiece model is trained in a model directory that holds its tokenizer");
  }
  ASSIGN_OR_RETURN(std::unique_ptr<Tokenizer> tokenizer, LoadTokenizer(config.tokenizer, checkpoint_dir));
  if (config.vocab_size < tokenizer->vocab_size() || config.bos_token_id != tokenizer->bos_id() ||
      config.first_eos() != tokenizer->eos_id() || tokenizer->bos_id() < 0) {
    return absl::InvalidArgumentError(absl::StrCat(
        "the config's vocabulary (", config.vocab_size, ", BOS ", config.bos_token_id, ", EOS ",
        config.first_eos(), ") must be the tokenizer's (", tokenizer->vocab_size(), ", BOS ",
        tokenizer->bos_id(), ", EOS ", tokenizer->eos_id(), "; BOS must exist)"));
  }
  auto s = std::make_unique<State>();
  s->config = config;
  s->options = options;
  s->tokenizer = std::move(tokenizer);
  std::ifstream state_file(checkpoint_dir + "/trainer_state.pt");
  const bool resume = !checkpoint_dir.empty() && state_file.good();
  ModelWeights w;
  if (resume) {
    ASSIGN_OR_RETURN(ModelConfig saved, LoadModelConfig(checkpoint_dir));
    if (saved.attention_windows != config.attention_windows || saved.hidden_size != config.hidden_size ||
        saved.num_hidden_layers != config.num_hidden_layers) {
      return absl::FailedPreconditionError(absl::StrCat(
          "the checkpoint in ", checkpoint_dir, " is for a different model; use a new --out directory"));
    }
    ASSIGN_OR_RETURN(w, LoadModelWeights(checkpoint_dir, saved, at::kFloat));
  } else {
    // GPT-2-style init: N(0, 0.02), output projections scaled down by sqrt(2 * layers).
    torch::manual_seed(options.seed);
    const double out_std = 0.02 / std::sqrt(2.0 * config.num_hidden_layers);
    ModelWeights shapes = RandomModelWeights(config, 0);
    auto normal = [](const at::Tensor& like, double std) { return torch::randn(like.sizes()) * std; };
    w.embed = normal(shapes.embed, 0.02);
    w.final_norm = torch::ones_like(shapes.final_norm);
    w.lm_head = config.tie_word_embeddings ? w.embed : normal(shapes.lm_head, 0.02);
    for (const auto& l : shapes.layers) {
      LayerWeights n;
      n.input_norm = torch::ones_like(l.input_norm);
      n.post_norm = torch::ones_like(l.post_norm);
      n.q_proj = normal(l.q_proj, 0.02);
      n.k_proj = normal(l.k_proj, 0.02);
      n.v_proj = normal(l.v_proj, 0.02);
      n.o_proj = normal(l.o_proj, out_std);
      n.gate_proj = normal(l.gate_proj, 0.02);
      n.up_proj = normal(l.up_proj, 0.02);
      n.down_proj = normal(l.down_proj, out_std);
      w.layers.push_back(n);
    }
  }
  auto param = [](const at::Tensor& t) { return t.detach().clone().set_requires_grad(true); };
  s->embed = param(w.embed);
  s->final_norm = param(w.final_norm);
  if (!config.tie_word_embeddings) s->lm_head = param(w.lm_head);
  for (const auto& l : w.layers) {
    s->layers.push_back({param(l.input_norm), param(l.q_proj), param(l.k_proj), param(l.v_proj),
                         param(l.o_proj), param(l.post_norm), param(l.gate_proj), param(l.up_proj),
                         param(l.down_proj)});
  }
  std::vector<torch::optim::OptimizerParamGroup> groups;
  groups.emplace_back(s->DecayParams(), std::make_unique<torch::optim::AdamWOptions>(
                                            torch::optim::AdamWOptions(options.lr).betas({0.9, 0.95}).weight_decay(options.weight_decay)));
  groups.emplace_back(s->NormParams(), std::make_unique<torch::optim::AdamWOptions>(
                                           torch::optim::AdamWOptions(options.lr).betas({0.9, 0.95}).weight_decay(0.0)));
  s->optimizer = std::make_unique<torch::optim::AdamW>(groups, torch::optim::AdamWOptions(options.lr));
  if (resume) {
    torch::load(*s->optimizer, checkpoint_dir + "/trainer_state.pt");
    std::ifstream step_file(checkpoint_dir + "/trainer_step.txt");
    step_file >> s->step;
  }
  return std::unique_ptr<Trainer>(new Trainer(std::move(s)));
}

double Trainer::LearningRate(int64_t step) const {
  const TrainOptions& o = s_->options;
  if (step < o.warmup_steps) return o.lr * static_cast<double>(step + 1) / o.warmup_steps;
  const double progress = o.steps > o.warmup_steps
                              ? static_cast<double>(step - o.warmup_steps) / (o.steps - o.warmup_steps)
                              : 1.0;
  const double cosine = 0.5 * (1 + std::cos(M_PI * std::min(1.0, progress)));
  return o.lr * (o.min_lr_ratio + (1 - o.min_lr_ratio) * cosine);
}

double Trainer::Step(const Corpus& corpus) {
  const TrainOptions& o = s_->options;
  const int64_t B = o.batch_size, T = o.seq_len;
  // The batch of step t depends only on (seed, t): a resumed run sees the same data.
  std::mt19937_64 rng(o.seed * 0x9E3779B97F4A7C15ULL + static_cast<uint64_t>(s_->step));
  const int64_t n = static_cast<int64_t>(corpus.train.size());
  torch::Tensor batch = torch::empty({B, T + 1}, torch::kLong);
  int64_t* p = batch.data_ptr<int64_t>();
  for (int64_t b = 0; b < B; ++b) {
    const int64_t start = static_cast<int64_t>(rng() % static_cast<uint64_t>(std::max<int64_t>(1, n - T - 1)));
    for (int64_t t = 0; t <= T; ++t) p[b * (T + 1) + t] = corpus.train[std::min(n - 1, start + t)];
  }
  const double lr = LearningRate(s_->step);
  for (auto& group : s_->optimizer->param_groups()) {
    static_cast<torch::optim::AdamWOptions&>(group.options()).lr(lr);
  }
  s_->optimizer->zero_grad();
  const int64_t M = std::min(o.micro_batch, B);
  double total = 0;
  for (int64_t m0 = 0; m0 < B; m0 += M) {
    torch::Tensor part = batch.narrow(0, m0, M);
    torch::Tensor logits = s_->Forward(part.narrow(1, 0, T), 0);
    torch::Tensor loss = torch::nn::functional::cross_entropy(
        logits.reshape({M * T, -1}), part.narrow(1, 1, T).reshape({M * T}));
    (loss * (static_cast<double>(M) / B)).backward();
    total += loss.item<double>() * M / B;
  }
  std::vector<torch::Tensor> all = s_->DecayParams();
  for (auto& t : s_->NormParams()) all.push_back(t);
  torch::nn::utils::clip_grad_norm_(all, o.grad_clip);
  s_->optimizer->step();
  ++s_->step;
  return total;
}

double Trainer::EvalNatsPerByte(const std::string& text) {
  torch::NoGradGuard no_grad;
  const ModelConfig& c = s_->config;
  std::vector<int64_t> tokens = {c.bos_token_id};
  for (int32_t id : s_->tokenizer->Encode(text)) tokens.push_back(id);
  const int64_t N = static_cast<int64_t>(tokens.size());
  const int64_t L = s_->options.seq_len;
  const int64_t rf = ReceptiveField(c);
  // Each segment re-reads the rf tokens before the ones it scores, so every scored position
  // sees everything its windows reach (exact, as in the engine). Unbounded models: plain
  // segments of L tokens.
  const int64_t overlap = rf < 0 ? 0 : std::min(rf, L / 2);
  double nll = 0;
  int64_t scored = 0;
  for (int64_t first = 0; first + 1 < N;) {  // score predictions of tokens first+1 ..
    const int64_t begin = std::max<int64_t>(0, first - overlap);
    const int64_t end = std::min(N, begin + L + 1);
    torch::Tensor seg = torch::from_blob(tokens.data() + begin, {1, end - begin}, torch::kLong).clone();
    torch::Tensor logp = torch::log_softmax(
        s_->Forward(seg.narrow(1, 0, end - begin - 1), begin).to(torch::kDouble)[0], -1);  // [n, V]
    torch::Tensor rows = logp.narrow(0, first - begin, end - 1 - first);
    torch::Tensor targets = seg[0].narrow(0, first - begin + 1, end - 1 - first).unsqueeze(1);
    nll -= rows.gather(1, targets).sum().item<double>();
    scored += end - 1 - first;
    first = end - 1;
  }
  return scored > 0 ? nll / static_cast<double>(text.size()) : 0.0;
}

at::Tensor Trainer::Logits(const std::vector<int32_t>& tokens, int64_t start_pos) {
  torch::NoGradGuard no_grad;
  torch::Tensor t = torch::empty({1, static_cast<int64_t>(tokens.size())}, torch::kLong);
  for (size_t i = 0; i < tokens.size(); ++i) t.data_ptr<int64_t>()[i] = tokens[i];
  return s_->Forward(t, start_pos)[0];
}

ModelWeights Trainer::Weights() const {
  ModelWeights w;
  auto out = [](const torch::Tensor& t) { return t.detach().clone(); };
  w.embed = out(s_->embed);
  w.final_norm = out(s_->final_norm);
  w.lm_head = s_->lm_head.defined() ? out(s_->lm_head) : w.embed;
  for (const auto& l : s_->layers) {
    LayerWeights n;
    n.input_norm = out(l.input_norm);
    n.q_proj = out(l.q);
    n.k_proj = out(l.k);
    n.v_proj = out(l.v);
    n.o_proj = out(l.o);
    n.post_norm = out(l.post_norm);
    n.gate_proj = out(l.gate);
    n.up_proj = out(l.up);
    n.down_proj = out(l.down);
    w.layers.push_back(n);
  }
  return w;
}

absl::Status Trainer::SaveCheckpoint(const std::string& dir) {
  RETURN_IF_ERROR(WriteModelDirectory(dir, s_->config, Weights(), DType::kF32));
  const std::string state = dir + "/trainer_state.pt";
  try {
    torch::save(*s_->optimizer, state + ".tmp");
  } catch (const std::exception& e) {
    return absl::InternalError(absl::StrCat("cannot write ", state, ": ", e.what()));
  }
  std::ofstream(dir + "/trainer_step.txt.tmp") << s_->step << "\n";
  if (std::rename((state + ".tmp").c_str(), state.c_str()) != 0 ||
      std::rename((dir + "/trainer_step.txt.tmp").c_str(), (dir + "/trainer_step.txt").c_str()) != 0) {
    return absl::InternalError(absl::StrCat("cannot finish the checkpoint in ", dir));
  }
  return absl::OkStatus();
}

}  // namespace mswa
