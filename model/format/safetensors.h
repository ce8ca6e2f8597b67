// safetensors (https://github.com/huggingface/safetensors format): a memory-mapped reader and a
// writer. The file is: u64 little-endian header length N, N bytes of JSON header
//   {"__metadata__": {"k": "v", ...}, "name": {"dtype": "F32", "shape": [2, 3],
//    "data_offsets": [begin, end]}, ...}
// then the data section; offsets are relative to the start of the data section.
//
// The reader trusts nothing in the file: every malformed file yields an absl::Status whose message
// names the file and, where there is one, the tensor; it never crashes or reads out of bounds.
#pragma once

#include <cstddef>
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace mswa {

// Element types the model format supports (weights are F32, F16 or BF16).
enum class DType { kF32, kF16, kBF16 };

// "F32" / "F16" / "BF16".
std::string_view DTypeName(DType dtype);
// Bytes per element: 4, 2, 2.
size_t DTypeSize(DType dtype);
// Parses a safetensors dtype string; InvalidArgument naming the dtype for anything else.
absl::StatusOr<DType> ParseDType(std::string_view name);

// One tensor inside a mapped file. `data` points into the mapping and lives as long as the
// SafetensorsFile that produced it. Data is little-endian and may be unaligned.
struct TensorView {
  std::string name;
  DType dtype = DType::kF32;
  std::vector<int64_t> shape;
  const uint8_t* data = nullptr;
  size_t nbytes = 0;

  int64_t numel() const;
};

// A read-only, memory-mapped safetensors file. Thread-safe after Open (immutable).
class SafetensorsFile {
 public:
  // Maps and validates `path`. Errors (all naming `path`):
  //   NotFound            the file does not exist
  //   InvalidArgument     not a regular file; file shorter than 8 bytes; header length 0,
  //                       larger than the file or than 100 MiB; header not JSON or not an
  //                       object; a top-level key twice; a tensor entry missing/wrong-typed
  //                       dtype, shape or data_offsets; unknown dtype; negative dimension;
  //                       begin > end; end beyond the data section; byte size != numel *
  //                       dtype size; two tensors' byte ranges overlap; __metadata__ not an
  //                       object of strings.
  //   other               open/mmap failures as the errno's code (e.g. PermissionDenied).
  // Gaps between tensors and trailing bytes after the last one are accepted.
  static absl::StatusOr<std::unique_ptr<SafetensorsFile>> Open(const std::string& path);
  ~SafetensorsFile();
  SafetensorsFile(const SafetensorsFile&) = delete;
  SafetensorsFile& operator=(const SafetensorsFile&) = delete;

  // Tensors in the order of their data offsets.
  const std::vector<TensorView>& tensors() const { return tensors_; }
  // nullptr when there is no tensor called `name`.
  const TensorView* Find(std::string_view name) const;
  // The "__metadata__" string map (empty when absent).
  const std::map<std::string, std::string>& metadata() const { return metadata_; }
  const std::string& path() const { return path_; }

 private:
  SafetensorsFile() = default;
  std::string path_;
  void* mapping_ = nullptr;
  size_t mapping_size_ = 0;
  std::vector<TensorView> tensors_;
  std::map<std::string, std::string> metadata_;
};

// A tensor to write: `data` holds exactly numel(shape) * DTypeSize(dtype) bytes, little-endian.
struct TensorToWrite {
  std::string name;
  DType dtype = DType::kF32;
  std::vector<int64_t> shape;
  const void* data = nullptr;
  size_t nbytes = 0;
};

// Writes a safetensors file: the header (with "__metadata__" first when `metadata` is non-empty)
// is padded with spaces so the data section starts 8-byte aligned, as the reference
// implementation does; tensors follow contiguously in the given order (the reference reader
// rejects gaps), so a tensor is 8-byte aligned only when the bytes before it are a multiple of 8.
// Writes to `path + ".tmp"`, fsyncs, then renames, so a crash never leaves a half-written file
// under `path`. InvalidArgument for duplicate names, the name "__metadata__", non-UTF-8 strings,
// a negative dimension or a byte size that does not match the shape; I/O failures as the
// errno's code (NotFound, PermissionDenied, ResourceExhausted, ...) naming the path.
absl::Status WriteSafetensors(const std::string& path, const std::vector<TensorToWrite>& tensors,
                              const std::map<std::string, std::string>& metadata = {});

}  // namespace mswa
