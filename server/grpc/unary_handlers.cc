#include "server/grpc/unary_handlers.h"

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
  const EngineInfo info = engine.Info();
  response->set_model_name(model_name);
  response->set_model_type(info.model_type);
  response->set_vocab_size(info.vocab_size);
  response->set_hidden_size(info.hidden_size);
  response->set_intermediate_size(info.intermediate_size);
  response->set_num_layers(info.num_layers);
  response->set_num_attention_heads(info.num_attention_heads);
  response->set_num_key_value_heads(info.num_key_value_heads);
  response->set_head_dim(info.head_dim);
  response->set_num_parameters(info.num_parameters);
  response->set_tokenizer(info.tokenizer);
  response->set_bos_token_id(static_cast<int32_t>(info.bos_token_id));
  response->set_eos_token_id(info.eos_token_ids.empty() ? -1 : static_cast<int32_t>(info.eos_token_ids[0]));
  for (int64_t id : info.eos_token_ids) response->add_eos_token_ids(static_cast<int32_t>(id));
  for (const auto& layer : info.attention_windows) {
    auto* lw = response->add_attention_windows();
    for (int64_t w : layer) lw->add_windows(w);
  }
  for (const auto& layer : info.native_windows) {
    auto* lw = response->add_native_windows();
    for (int64_t w : layer) lw->add_windows(w);
  }
  response->set_kv_block_size(info.kv_block_size);
  response->set_kv_dtype(info.kv_dtype);
  for (const EngineInfo::WindowGroup& g : info.window_groups) {
    auto* gi = response->add_window_groups();
    gi->set_window(g.window);
    gi->set_kv_heads(g.kv_heads);
    gi->set_max_blocks_per_sequence(g.max_blocks_per_sequence);
    gi->set_total_blocks(g.total_blocks);
  }
  response->set_kv_bytes_per_sequence_bound(info.kv_bytes_per_sequence_bound);
  for (const EngineInfo::KvAtLength& at : info.kv_bytes_at_length) {
    auto* a = response->add_kv_bytes_at_length();
    a->set_tokens(at.tokens);
    a->set_bytes(at.bytes);
    a->set_full_attention_bytes(at.full_attention_bytes);
  }
  response->set_kv_cache_bytes(info.kv_cache_bytes);
  response->set_max_tokens_limit(info.max_new_tokens);
  response->set_max_waiting_requests(info.max_waiting);
  response->set_max_tokens_per_step(static_cast<int32_t>(info.max_tokens_per_step));
  response->set_max_sequence_length(info.max_sequence_length);
  response->set_device(info.device);
  response->set_dtype(info.dtype);
  response->set_activation_dtype(info.activation_dtype);
  response->set_product_kernel(info.product_kernel);
  response->set_prefix_caching(info.prefix_caching);
  response->set_max_prompt_bytes(limits.max_prompt_bytes);
  response->set_max_prompt_tokens(limits.max_prompt_tokens);
  response->set_max_score_bytes(limits.max_score_bytes);
  response->set_max_stream_chunk_bytes(limits.max_stream_chunk_bytes);
  response->set_max_tokenize_bytes(limits.max_tokenize_bytes);
  response->set_stream_idle_timeout_seconds(limits.stream_idle_timeout_seconds);
}

}  // namespace mswa
