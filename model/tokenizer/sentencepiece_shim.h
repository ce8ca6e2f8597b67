// The C interface of libmswa_spm.so, a thin wrapper of libsentencepiece.
//
// Why a separately loaded shim: Debian's libsentencepiece embeds protobuf-lite 3.14 and exports
// those symbols, while LibTorch and gRPC need the system libprotobuf 3.21 in the same process.
// Linked normally, whichever comes first in the load order wins for both and the process aborts
// (a crash in libprotobuf's static initializers, or sentencepiece's protobuf version check).
// The tokenizer therefore dlopen()s this shim with RTLD_LOCAL | RTLD_DEEPBIND: sentencepiece
// binds to its own protobuf copy and stays invisible to everything else. Only plain C types
// cross this boundary.
#pragma once

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

enum MswaSpmPieceKind { kMswaSpmNormal = 0, kMswaSpmControl = 1, kMswaSpmUnknown = 2, kMswaSpmByte = 3 };

// Every string or array returned is malloc()ed; release it with free_buffer.
struct MswaSpmApi {
  // The processor for `path`, or NULL with *error set to a message.
  void* (*load)(const char* path, char** error);
  void (*destroy)(void* processor);
  void (*free_buffer)(void* buffer);
  int (*piece_size)(const void* processor);
  int (*piece_kind)(const void* processor, int id);
  // The piece text (for unknown pieces: how DecodeIds renders them), length in *len.
  char* (*piece)(const void* processor, int id, size_t* len);
  int (*bos_id)(const void* processor);
  int (*eos_id)(const void* processor);
  // Token ids of text[0..len), count in *n (NULL with *n = 0 on failure or empty output).
  int32_t* (*encode)(const void* processor, const char* text, size_t len, size_t* n);
};

// The one exported symbol.
const struct MswaSpmApi* mswa_spm_api(void);

#ifdef __cplusplus
}
#endif
