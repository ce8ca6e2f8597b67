// mswa-client info: the served model as GetModelInfo reports it (architecture, windows per
// layer, window groups and KV bounds, limits), as text or JSON.
#include <cstdint>
#include <iostream>
#include <string>

#include "absl/flags/flag.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "client/cli/cli.h"

namespace mswa::client::cli {
namespace {

std::string WindowName(int64_t window) { return window == 0 ? "full" : absl::StrCat(window); }

// One layer's per-head windows, run-length encoded: "128 x4, full x4".
std::string LayerWindowsText(const mswa::v1::LayerWindows& layer) {
  std::vector<std::string> runs;
  for (int i = 0; i < layer.windows_size();) {
    int j = i;
    while (j < layer.windows_size() && layer.windows(j) == layer.windows(i)) ++j;
    runs.push_back(absl::StrCat(WindowName(layer.windows(i)), " x", j - i));
    i = j;
  }
  return absl::StrJoin(runs, ", ");
}

}  // namespace

int RunInfo(MswaClient& client) {
  mswa::v1::GetModelInfoResponse info;
  const grpc::Status status = client.GetModelInfo(&info);
  if (!status.ok()) return RpcError(status);
  if (absl::GetFlag(FLAGS_json)) {
    std::cout << ToJson(info) << "\n";
    return 0;
  }
  std::cout << absl::StrFormat("model:        %s (%s) on %s, %s%s\n", info.model_name(),
                               info.model_type(), info.device(), info.dtype(),
                               info.activation_dtype() == "bfloat16" ? " (bfloat16 activations)" : "");
  if (!info.product_kernel().empty()) {
    std::cout << absl::StrFormat("products:     %s kernel\n", info.product_kernel());
  }
  std::cout << absl::StrFormat("parameters:   %d (%.1f M)\n", info.num_parameters(),
                               static_cast<double>(info.num_parameters()) / 1e6);
  std::string eos = absl::StrCat(info.eos_token_id());
  if (info.eos_token_ids_size() > 1) eos = absl::StrJoin(info.eos_token_ids(), ",");
  std::cout << absl::StrFormat("tokenizer:    %s, vocab %d, bos %d, eos %s\n", info.tokenizer(),
                               info.vocab_size(), info.bos_token_id(), eos);
  std::cout << absl::StrFormat(
      "layers:       %d, hidden %d, intermediate %d, heads %d (kv %d), head_dim %d\n",
      info.num_layers(), info.hidden_size(), info.intermediate_size(),
      info.num_attention_heads(), info.num_key_value_heads(), info.head_dim());
  // Consecutive layers with the same windows share a line.
  std::cout << "windows (keys a query sees, per query head; full = unbounded):\n";
  for (int i = 0; i < info.attention_windows_size();) {
    const std::string text = LayerWindowsText(info.attention_windows(i));
    int j = i + 1;
    while (j < info.attention_windows_size() &&
           LayerWindowsText(info.attention_windows(j)) == text) {
      ++j;
    }
    const std::string layers = j - i == 1 ? absl::StrCat("layer ", i)
                                          : absl::StrCat("layers ", i, "-", j - 1);
    std::cout << absl::StrFormat("  %-14s %s\n", layers + ":", text);
    i = j;
  }
  if (info.native_windows_size() > 0) {
    std::cout << "  (an MSWA schedule replaces the windows the model was trained with)\n";
  }
  for (const mswa::v1::KvBytesAtLength& k : info.kv_bytes_at_length()) {
    std::cout << absl::StrFormat("KV at %6d tokens: %s per sequence (full attention: %s)\n", k.tokens(),
                                 mswa::client::FormatBytes(k.bytes()),
                                 mswa::client::FormatBytes(k.full_attention_bytes()));
  }
  std::cout << absl::StrFormat("KV cache:     %s, %s, block size %d tokens, prefix caching %s\n",
                               mswa::client::FormatBytes(info.kv_cache_bytes()), info.kv_dtype(),
                               info.kv_block_size(), info.prefix_caching() ? "on" : "off");
  if (info.window_groups_size() > 0) {
    std::cout << absl::StrFormat("  %-8s %8s %18s %12s\n", "window", "kv_heads",
                                 "max blocks/seq", "total blocks");
    for (const mswa::v1::WindowGroupInfo& g : info.window_groups()) {
      std::cout << absl::StrFormat("  %-8s %8d %18s %12d\n", WindowName(g.window()), g.kv_heads(),
                                   g.window() == 0 ? std::string("-")
                                                   : absl::StrCat(g.max_blocks_per_sequence()),
                                   g.total_blocks());
    }
  }
  std::cout << "KV bound:     "
            << (info.kv_bytes_per_sequence_bound() > 0
                    ? absl::StrCat(mswa::client::FormatBytes(info.kv_bytes_per_sequence_bound()),
                                   " per sequence, whatever its length")
                    : std::string("none (some window is unbounded)"))
            << "\n";
  std::cout << absl::StrFormat(
      "limits:       max_tokens %d, waiting requests %d, tokens per step %d, sequence length %s\n",
      info.max_tokens_limit(), info.max_waiting_requests(), info.max_tokens_per_step(),
      info.max_sequence_length() > 0 ? absl::StrCat(info.max_sequence_length()) : "no limit");
  if (info.max_score_bytes() > 0) {  // servers that report their input limits
    std::cout << absl::StrFormat(
        "input limits: prompt %s or %d token ids, score %s, stream chunk %s, tokenize %s, "
        "idle stream %s\n",
        mswa::client::FormatBytes(info.max_prompt_bytes()), info.max_prompt_tokens(),
        mswa::client::FormatBytes(info.max_score_bytes()),
        mswa::client::FormatBytes(info.max_stream_chunk_bytes()),
        mswa::client::FormatBytes(info.max_tokenize_bytes()),
        info.stream_idle_timeout_seconds() > 0
            ? absl::StrCat(info.stream_idle_timeout_seconds(), " s")
            : std::string("no timeout"));
  }
  return 0;
}

}  // namespace mswa::client::cli
