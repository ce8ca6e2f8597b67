// The shape of the shipped default model (models/mswa-books-small) with its windows: hidden 256,
// 6 layers, 8 heads (head_dim 32), SwiGLU 704, byte vocabulary, tied embeddings, preset mswa at
// w = 128. The benchmarks measure models of this shape with random weights.
#pragma once

#include "model/format/config.h"
#include "model/format/window_schedule.h"

namespace mswa {

inline ModelConfig DefaultShapeConfig() {
  ModelConfig c;
  c.vocab_size = 258;
  c.hidden_size = 256;
  c.intermediate_size = 704;
  c.num_hidden_layers = 6;
  c.num_attention_heads = 8;
  c.num_key_value_heads = 8;
  c.head_dim = 32;
  c.tie_word_embeddings = true;
  c.bos_token_id = 256;
  c.eos_token_ids = {257};
  c.tokenizer.type = TokenizerSpec::Type::kBytes;
  WindowScheduleOptions o;
  o.base_window = 128;
  o.num_layers = c.num_hidden_layers;
  o.num_heads = c.num_attention_heads;
  o.num_kv_heads = c.num_key_value_heads;
  c.attention_windows = MakeWindowSchedule(o).value();
  return c;
}

}  // namespace mswa
