// libmswa_spm.so: see sentencepiece_shim.h for why this exists. Compiled with hidden visibility;
// only mswa_spm_api is exported.
#include "model/tokenizer/sentencepiece_shim.h"

#include <sentencepiece_processor.h>

#include <cstdlib>
#include <cstring>
#include <exception>
#include <string>
#include <vector>

namespace {

using sentencepiece::SentencePieceProcessor;

const SentencePieceProcessor* P(const void* p) { return static_cast<const SentencePieceProcessor*>(p); }

char* CopyString(const std::string& s, size_t* len) {
  char* out = static_cast<char*>(std::malloc(s.size() + 1));
  if (out == nullptr) return nullptr;
  std::memcpy(out, s.data(), s.size());
  out[s.size()] = '\0';
  if (len != nullptr) *len = s.size();
  return out;
}

void* Load(const char* path, char** error) {
  auto* processor = new SentencePieceProcessor();
  std::string message;
  try {
    const auto status = processor->Load(path);
    if (!status.ok()) message = status.ToString();
  } catch (const std::exception& e) {  // a directory or read error throws std::ios_failure
    message = e.what();
  }
  if (message.empty()) return processor;
  delete processor;
  if (error != nullptr) *error = CopyString(message, nullptr);
  return nullptr;
}

void Destroy(void* p) { delete static_cast<SentencePieceProcessor*>(p); }
void FreeBuffer(void* b) { std::free(b); }
int PieceSize(const void* p) { return P(p)->GetPieceSize(); }

int PieceKind(const void* p, int id) {
  if (P(p)->IsControl(id)) return kMswaSpmControl;
  if (P(p)->IsUnknown(id)) return kMswaSpmUnknown;
  if (P(p)->IsByte(id)) return kMswaSpmByte;
  return kMswaSpmNormal;
}

char* Piece(const void* p, int id, size_t* len) {
  if (P(p)->IsUnknown(id)) return CopyString(P(p)->DecodeIds({id}), len);
  return CopyString(P(p)->IdToPiece(id), len);
}

int BosId(const void* p) { return P(p)->bos_id(); }
int EosId(const void* p) { return P(p)->eos_id(); }

int32_t* Encode(const void* p, const char* text, size_t len, size_t* n) {
  *n = 0;
  std::vector<int> ids;
  if (!P(p)->Encode(std::string(text, len), &ids).ok() || ids.empty()) return nullptr;
  auto* out = static_cast<int32_t*>(std::malloc(ids.size() * sizeof(int32_t)));
  if (out == nullptr) return nullptr;
  for (size_t i = 0; i < ids.size(); ++i) out[i] = ids[i];
  *n = ids.size();
  return out;
}

const MswaSpmApi kApi = {Load, Destroy, FreeBuffer, PieceSize, PieceKind,
                         Piece, BosId, EosId, Encode};

}  // namespace

extern "C" __attribute__((visibility("default"))) const MswaSpmApi* mswa_spm_api(void) {
  return &kApi;
}
