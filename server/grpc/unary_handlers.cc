#include "server/grpc/unary_handlers.h"

#include "model/runtime/kv_layout.h"
#include "server/api/generate_request.h"
#include "server/status_util.h"

namespace mswa {

namespace v1 = ::mswa::v1;

grpc::Status HandleTokenize(const Engine& engine, const RequestLimits& limits,
                            const v1::TokenizeRequest& request, v1::TokenizeResponse* response) {
  // Before anything is tokenized: the response holds one string per token.
  if (absl::Status s = CheckTokenizeText(limits, static_cast<int64_t>(request.text().size())); !s.ok()) {
    return ToGrpcStatus(s);
  }
  const Tokenizer& tok = engine.tokenizer();
  for (int32_t t : EncodeWithBos(engine, request.text(), request.add_bos())) {
    response->add_token_ids(t);
    response->add_tokens(tok.TokenBytes(t));  // "" for BOS, as for every special
  }
  return grpc::Status::OK;
}

void HandleGetModelInfo(const Engine& engine, const std::string& model_name,
                        const RequestLimits& limits, v1::GetModelInfoResponse* response) {
  const ModelConfig& c = engine.config();
  const EngineOptions& o = engine.options();
  response->set_model_name(model_name);
  response->set_model_type(c.model_type);
  response->set_vocab_size(c.vocab_size);
  response->set_hidden_size(c.hidden_size);
  response->set_intermediate_size(c.intermediate_size);
  response->set_num_layers(c.num_hidden_layers);
  response->set_num_attention_heads(c.num_attention_heads);
  response->set_num_key_value_heads(c.num_key_value_heads);
  response->set_head_dim(c.head_dim);
  response->set_num_parameters(engine.num_parameters());
  response->set_tokenizer(engine.tokenizer().kind());
  response->set_bos_token_id(static_cast<int32_t>(c.bos_token_id));
  response->set_eos_token_id(static_cast<int32_t>(c.first_eos()));
  for (int64_t id : c.eos_token_ids) response->add_eos_token_ids(static_cast<int32_t>(id));
  for (const auto& layer : c.attention_windows) {
    auto* lw = response->add_attention_windows();
    for (int64_t w : layer) lw->add_windows(w);
  }
  if (c.windows_overridden()) {
    for (const auto& layer : c.native_windows) {
      auto* lw = response->add_native_windows();
      for (int64_t w : layer) lw->add_windows(w);
    }
  }
  response->set_kv_block_size(o.block_size);
  response->set_kv_dtype(KvDTypeName(engine.kv_dtype()));
  const KvLayout layout = BuildKvLayout(c);
  const EngineStats stats = engine.stats();
  int64_t bound = 0;
  for (size_t g = 0; g < layout.groups.size(); ++g) {
    auto* gi = response->add_window_groups();
    gi->set_window(layout.groups[g].window);
    gi->set_kv_heads(layout.groups[g].num_heads);
    const int64_t r = layout.groups[g].window == 0
                          ? 0
                          : MaxBlocksPerSequence(layout.groups[g].window, o.max_tokens_per_step, o.block_size);
    gi->set_max_blocks_per_sequence(r);
    if (g < stats.groups.size()) gi->set_total_blocks(stats.groups[g].total_blocks);
    bound += 2 * r * layout.groups[g].num_heads * o.block_size * c.head_dim * KvDTypeBytes(engine.kv_dtype());
  }
  response->set_kv_bytes_per_sequence_bound(c.all_windows_finite() ? bound : 0);
  const KvMemoryOptions kv{o.block_size, o.max_tokens_per_step, KvDTypeBytes(engine.kv_dtype())};
  for (int64_t tokens : {4096, 32768, 131072}) {
    auto* at = response->add_kv_bytes_at_length();
    at->set_tokens(tokens);
    at->set_bytes(KvBytesPerSequence(layout, c.head_dim, kv, tokens));
    at->set_full_attention_bytes(FullAttentionKvBytes(c, kv.bytes_per_element, tokens));
  }
  response->set_kv_cache_bytes(o.kv_cache_bytes);
  response->set_max_tokens_limit(o.max_new_tokens);
  response->set_max_waiting_requests(o.max_waiting);
  response->set_max_tokens_per_step(static_cast<int32_t>(o.max_tokens_per_step));
  response->set_max_sequence_length(c.all_windows_finite() ? 0 : o.max_model_len);
  response->set_device(o.device == ModelDevice::kCuda ? "cuda" : "cpu");
  response->set_dtype(engine.dtype() == at::kChar       ? "int8"
                      : engine.dtype() == at::kBFloat16 ? "bfloat16"
                      : engine.dtype() == at::kHalf   ? "float16"
                                                      : "float32");
  response->set_max_prompt_bytes(limits.max_prompt_bytes);
  response->set_max_prompt_tokens(limits.max_prompt_tokens);
  response->set_max_score_bytes(limits.max_score_bytes);
  response->set_max_stream_chunk_bytes(limits.max_stream_chunk_bytes);
  response->set_max_tokenize_bytes(limits.max_tokenize_bytes);
  response->set_stream_idle_timeout_seconds(limits.stream_idle_timeout_seconds);
}

}  // namespace mswa
