#include "model/tokenizer/sentencepiece_tokenizer.h"

#include <dlfcn.h>
#include <unistd.h>

#include <cstdlib>
#include <exception>
#include <filesystem>
#include <string>
#include <string_view>
#include <system_error>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"

#include "model/tokenizer/sentencepiece_shim.h"

namespace mswa {
namespace {

// U+2581. A char array: Debian's absl::string_view is its own class, not std::string_view.
constexpr char kWordBoundary[] = "\xe2\x96\x81";

// "<0xAB>" -> 0xAB; sentencepiece guarantees this form for IsByte pieces.
char BytePieceValue(const std::string& piece) {
  return static_cast<char>(std::strtol(piece.substr(3, 2).c_str(), nullptr, 16));
}

std::string ExecutableDir() {
  char buf[4096];
  const ssize_t n = readlink("/proc/self/exe", buf, sizeof(buf) - 1);
  if (n <= 0) return ".";
  std::string path(buf, static_cast<size_t>(n));
  return path.substr(0, path.find_last_of('/'));
}

// Loads libmswa_spm.so once per process: $MSWA_SPM_LIBRARY, then beside the executable, then
// ../lib/mswa (installed layout), then where the build put it.
absl::StatusOr<const MswaSpmApi*> LoadShim() {
  static const absl::StatusOr<const MswaSpmApi*> api = []() -> absl::StatusOr<const MswaSpmApi*> {
    std::vector<std::string> candidates;
    if (const char* env = std::getenv("MSWA_SPM_LIBRARY"); env != nullptr && *env != '\0') {
      candidates.push_back(env);
    }
    const std::string exe_dir = ExecutableDir();
    candidates.push_back(exe_dir + "/libmswa_spm.so");
    candidates.push_back(exe_dir + "/../lib/mswa/libmswa_spm.so");
#ifdef MSWA_SPM_BUILD_PATH
    candidates.push_back(MSWA_SPM_BUILD_PATH);
#endif
    std::string tried;
    for (const std::string& path : candidates) {
      std::error_code ec;
      if (!std::filesystem::exists(path, ec)) {
        absl::StrAppend(&tried, " ", path, " (missing);");
        continue;
      }
      // RTLD_DEEPBIND: sentencepiece binds to its own embedded protobuf, never the system one.
      void* handle = dlopen(path.c_str(), RTLD_NOW | RTLD_LOCAL | RTLD_DEEPBIND);
      if (handle == nullptr) {
        absl::StrAppend(&tried, " ", path, " (", dlerror(), ");");
        continue;
      }
      using ApiFn = const MswaSpmApi* (*)();
      auto fn = reinterpret_cast<ApiFn>(dlsym(handle, "mswa_spm_api"));
      if (fn != nullptr) return fn();
      absl::StrAppend(&tried, " ", path, " (no mswa_spm_api);");
    }
    return absl::FailedPreconditionError(
        absl::StrCat("cannot load libmswa_spm.so, the SentencePiece wrapper; tried:", tried,
                     " set MSWA_SPM_LIBRARY to its path"));
  }();
  return api;
}

}  // namespace

SentencePieceTokenizer::~SentencePieceTokenizer() {
  if (processor_ != nullptr) api_->destroy(processor_);
}

absl::StatusOr<std::unique_ptr<SentencePieceTokenizer>> SentencePieceTokenizer::Load(
    const std::string& path) {
  std::error_code ec;
  if (!std::filesystem::exists(path, ec)) {
    return absl::NotFoundError(absl::StrCat("SentencePiece model not found: ", path));
  }
  // sentencepiece reads with an exception-enabled stream: a directory (or a read error) throws
  // std::ios_failure instead of returning a status.
  if (!std::filesystem::is_regular_file(path, ec)) {
    return absl::InvalidArgumentError(
        absl::StrCat("cannot load SentencePiece model ", path, ": not a regular file"));
  }
  absl::StatusOr<const MswaSpmApi*> api = LoadShim();
  if (!api.ok()) return api.status();
  char* error = nullptr;
  void* processor = (*api)->load(path.c_str(), &error);
  if (processor == nullptr) {
    const std::string message = error != nullptr ? error : "unknown error";
    (*api)->free_buffer(error);
    return absl::InvalidArgumentError(
        absl::StrCat("cannot load SentencePiece model ", path, ": ", message));
  }

  std::unique_ptr<SentencePieceTokenizer> tokenizer(new SentencePieceTokenizer());
  tokenizer->api_ = *api;
  tokenizer->processor_ = processor;
  const MswaSpmApi& spm = **api;
  auto piece = [&](int id) {
    size_t len = 0;
    char* p = spm.piece(processor, id, &len);
    std::string out = p != nullptr ? std::string(p, len) : std::string();
    spm.free_buffer(p);
    return out;
  };
  const int size = spm.piece_size(processor);
  tokenizer->token_bytes_.resize(size);
  for (int id = 0; id < size; ++id) {
    std::string& bytes = tokenizer->token_bytes_[id];
    switch (static_cast<MswaSpmPieceKind>(spm.piece_kind(processor, id))) {
      case kMswaSpmControl:
        break;
      case kMswaSpmUnknown:  // whatever --unk_surface the model has, as DecodeIds renders it
        bytes = piece(id);
        break;
      case kMswaSpmByte:
        bytes.assign(1, BytePieceValue(piece(id)));
        break;
      case kMswaSpmNormal:
        bytes = absl::StrReplaceAll(piece(id), {{kWordBoundary, " "}});
        break;
    }
  }
  tokenizer->bos_id_ = spm.bos_id(processor);
  tokenizer->eos_id_ = spm.eos_id(processor);
  // The model proto (and so NormalizerSpec.add_dummy_prefix) is not readable through the
  // installed headers; the dummy prefix shows as the mark at the start of the first piece.
  const std::vector<int32_t> probe = tokenizer->Encode("a");
  tokenizer->strips_leading_space_ =
      !probe.empty() && piece(probe[0]).rfind(kWordBoundary, 0) == 0;
  return tokenizer;
}

std::vector<int32_t> SentencePieceTokenizer::Encode(std::string_view text) const {
  size_t n = 0;
  int32_t* ids = api_->encode(processor_, text.data(), text.size(), &n);
  std::vector<int32_t> out(ids, ids + n);
  api_->free_buffer(ids);
  return out;
}

std::string SentencePieceTokenizer::TokenBytes(int32_t id) const {
  if (id < 0 || id >= vocab_size()) return "";
  return token_bytes_[id];
}

std::string SentencePieceTokenizer::Decode(const std::vector<int32_t>& ids) const {
  std::string text;
  for (const int32_t id : ids) {
    if (id >= 0 && id < vocab_size()) text += token_bytes_[id];
  }
  if (strips_leading_space_ && !text.empty() && text[0] == ' ') text.erase(0, 1);
  return text;
}

}  // namespace mswa
