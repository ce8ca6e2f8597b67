// mswa-client score FILE...: streams each file to ScoreStream with a progress line, then prints
// perplexity and bits per byte per file and in total (or JSON lines with --json).
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <fstream>
#include <iostream>
#include <string>
#include <utility>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "client/cli/cli.h"

namespace mswa::client::cli {
namespace {

// Progress of one ScoreStream on stderr: on a terminal an in-place bar (at most 10 updates/s);
// otherwise a plain line at most every 2 s.
class ProgressLine {
 public:
  ProgressLine(std::string name, int64_t bytes_total, bool tty, bool quiet)
      : name_(std::move(name)),
        bytes_total_(bytes_total),
        tty_(tty),
        quiet_(quiet),
        last_(std::chrono::steady_clock::now()) {}

  void Update(const mswa::v1::ScoreProgress& progress) {
    if (quiet_) return;
    const auto now = std::chrono::steady_clock::now();
    if (now - last_ < (tty_ ? std::chrono::milliseconds(100) : std::chrono::seconds(2))) return;
    last_ = now;
    mswa::client::ProgressView view;
    view.bytes_done = progress.bytes_received();
    view.bytes_total = bytes_total_;
    view.tokens = progress.tokens_scored();
    view.tokens_per_second = progress.tokens_per_second();
    view.total_nll = progress.total_nll();
    if (tty_) {
      // \033[K clears what a longer previous line left behind.
      std::cerr << "\r" << mswa::client::FormatScoreProgress(view, 20) << "\033[K" << std::flush;
      shown_ = true;
    } else {
      std::cerr << kProgram << ": " << name_ << ": " << mswa::client::FormatScoreProgress(view, 0)
                << "\n";
    }
  }

  void Clear() {
    if (shown_) std::cerr << "\r\033[K" << std::flush;
    shown_ = false;
  }

 private:
  const std::string name_;
  const int64_t bytes_total_;
  const bool tty_;
  const bool quiet_;
  std::chrono::steady_clock::time_point last_;
  bool shown_ = false;
};

// Size of a regular file behind `fd`, else -1 (pipes, terminals).
int64_t RegularFileSize(int fd) {
  struct stat st;
  if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) return -1;
  return static_cast<int64_t>(st.st_size);
}

struct ScoreTotals {
  int64_t files = 0;
  int64_t tokens = 0;
  int64_t bytes = 0;
  double total_nll = 0;
};

std::string ScoreJson(const std::string& file, const mswa::v1::ScoreResult& r) {
  std::string json = absl::StrCat(
      "{\"file\":", mswa::client::JsonQuote(file), ",\"tokens\":", r.tokens(),
      ",\"bytes\":", r.bytes(), ",\"total_nll\":", mswa::client::JsonNumber(r.total_nll()),
      ",\"perplexity\":", mswa::client::JsonNumber(r.perplexity()),
      ",\"bits_per_byte\":", mswa::client::JsonNumber(r.bits_per_byte()));
  if (r.token_ids_size() > 0 || r.token_logprobs_size() > 0) {
    absl::StrAppend(&json, ",\"token_ids\":[", absl::StrJoin(r.token_ids(), ","),
                    "],\"token_logprobs\":[");
    for (int i = 0; i < r.token_logprobs_size(); ++i) {
      absl::StrAppend(&json, i > 0 ? "," : "", mswa::client::JsonNumber(r.token_logprobs(i)));
    }
    json += "]";
  }
  return json + "}";
}

void PrintPerToken(const mswa::v1::ScoreResult& r) {
  std::cout << "# index token_id logprob\n";
  for (int i = 0; i < r.token_logprobs_size(); ++i) {
    const std::string id = i < r.token_ids_size() ? absl::StrCat(r.token_ids(i)) : "-";
    std::cout << absl::StrFormat("%d %s %.6f\n", i, id, r.token_logprobs(i));
  }
}

}  // namespace

int RunScore(MswaClient& client, const std::vector<std::string>& files) {
  if (files.empty()) return UsageError("score needs at least one FILE ('-' = stdin)");
  // Every file is checked before the first is scored, so a typo in the last one does not cost
  // the time spent on the others.
  for (const std::string& file : files) {
    if (file == "-") continue;
    std::ifstream probe(file, std::ios::binary);
    if (!probe) {
      std::cerr << kProgram << ": cannot open '" << file << "': " << std::strerror(errno) << "\n";
      return 1;
    }
  }
  mswa::v1::ScoreOptions options;
  options.set_add_bos(!absl::GetFlag(FLAGS_no_bos));
  options.set_per_token_logprobs(absl::GetFlag(FLAGS_per_token));
  const bool json = absl::GetFlag(FLAGS_json);
  const bool tty = isatty(STDERR_FILENO) != 0;
  ScoreTotals totals;
  // Chunks no larger than the server accepts (a server configured below 64 KiB); an older
  // server without the field, or a failed call, leaves the default.
  size_t chunk_bytes = mswa::client::MswaClient::kScoreChunkBytes;
  {
    mswa::v1::GetModelInfoResponse info;
    if (client.GetModelInfo(&info).ok()) {
      chunk_bytes = mswa::client::MswaClient::ScoreChunkBytesFor(info.max_stream_chunk_bytes());
    }
  }
  for (const std::string& file : files) {
    std::ifstream stream;
    int64_t size = -1;
    if (file == "-") {
      size = RegularFileSize(STDIN_FILENO);
    } else {
      stream.open(file, std::ios::binary);
      if (!stream) {
        std::cerr << kProgram << ": cannot open '" << file << "': " << std::strerror(errno) << "\n";
        return 1;
      }
      struct stat st;
      if (stat(file.c_str(), &st) == 0 && S_ISREG(st.st_mode)) size = st.st_size;
    }
    std::istream& in = file == "-" ? std::cin : stream;
    // A known size lets models with full-attention layers reserve the stream's KV memory.
    options.set_max_bytes(size > 0 ? size : 0);
    ProgressLine progress(file, size, tty, absl::GetFlag(FLAGS_quiet));
    mswa::v1::ScoreResult result;
    const grpc::Status status = client.ScoreStream(
        in, options, [&](const mswa::v1::ScoreProgress& p) { progress.Update(p); }, &result,
        chunk_bytes);
    progress.Clear();
    if (!status.ok()) return RpcError(status);
    ++totals.files;
    totals.tokens += result.tokens();
    totals.bytes += result.bytes();
    totals.total_nll += result.total_nll();
    if (json) {
      std::cout << ScoreJson(file, result) << "\n" << std::flush;
    } else {
      if (options.per_token_logprobs()) PrintPerToken(result);
      std::cout << absl::StrFormat("%s: %d tokens, %d bytes, perplexity %.6g, bits/byte %.4f\n",
                                   file, result.tokens(), result.bytes(), result.perplexity(),
                                   result.bits_per_byte())
                << std::flush;
    }
  }
  // Totals pool the sums, so they weigh files by size (not a mean of per-file values).
  const double perplexity = totals.tokens > 0
                                ? std::exp(totals.total_nll / static_cast<double>(totals.tokens))
                                : std::nan("");
  const double bits_per_byte =
      totals.bytes > 0 ? totals.total_nll / std::log(2.0) / static_cast<double>(totals.bytes)
                       : std::nan("");
  if (json) {
    std::cout << "{\"total\":true,\"files\":" << totals.files << ",\"tokens\":" << totals.tokens
              << ",\"bytes\":" << totals.bytes
              << ",\"total_nll\":" << mswa::client::JsonNumber(totals.total_nll)
              << ",\"perplexity\":" << mswa::client::JsonNumber(perplexity)
              << ",\"bits_per_byte\":" << mswa::client::JsonNumber(bits_per_byte) << "}\n";
  } else if (totals.files > 1) {
    std::cout << absl::StrFormat(
        "total (%d files): %d tokens, %d bytes, perplexity %.6g, bits/byte %.4f\n", totals.files,
        totals.tokens, totals.bytes, perplexity, bits_per_byte);
  }
  return 0;
}

}  // namespace mswa::client::cli
