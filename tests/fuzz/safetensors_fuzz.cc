// SafetensorsFile::Open on arbitrary file contents. The input is written to an in-memory file
// (memfd) and opened through /proc/self/fd, so every run maps exactly the input bytes.
// Checked: Open never crashes, and every tensor it accepts lies inside the data section, has
// nbytes == numel * dtype size, and no two non-empty tensors overlap.
#include <sys/mman.h>
#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "model/format/safetensors.h"

namespace {

// Writes all of `size` bytes; false on any error.
bool WriteAll(int fd, const uint8_t* data, size_t size) {
  while (size > 0) {
    const ssize_t written = ::write(fd, data, size);
    if (written <= 0) return false;
    data += written;
    size -= static_cast<size_t>(written);
  }
  return true;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const int fd = ::memfd_create("safetensors_fuzz", MFD_CLOEXEC);
  if (fd < 0) std::abort();
  if (!WriteAll(fd, data, size)) std::abort();
  const std::string path = "/proc/self/fd/" + std::to_string(fd);
  absl::StatusOr<std::unique_ptr<mswa::SafetensorsFile>> file = mswa::SafetensorsFile::Open(path);
  ::close(fd);
  if (!file.ok()) return 0;

  // Accepted: the header length is the first 8 bytes (little-endian) and the data section is
  // what follows the header, so every tensor must fit in size - 8 - header bytes.
  uint64_t header = 0;
  for (int i = 7; i >= 0; --i) header = (header << 8) | data[i];
  if (size < 8 || header > size - 8) std::abort();
  const uint64_t data_size = size - 8 - header;
  const mswa::TensorView* previous = nullptr;
  uint64_t sum = 0;
  for (const mswa::TensorView& tensor : (*file)->tensors()) {
    if (tensor.nbytes != static_cast<uint64_t>(tensor.numel()) * mswa::DTypeSize(tensor.dtype)) {
      std::abort();
    }
    if (tensor.nbytes > data_size) std::abort();
    if ((*file)->Find(tensor.name) != &tensor) std::abort();
    if (tensor.nbytes == 0) continue;
    // Tensors come in data-offset order, so ranges are increasing and disjoint.
    if (previous != nullptr && tensor.data < previous->data + previous->nbytes) std::abort();
    sum += tensor.nbytes;
    if (sum > data_size) std::abort();
    // Reads the first and last byte: a range outside the mapping faults here.
    volatile uint8_t touch = tensor.data[0] ^ tensor.data[tensor.nbytes - 1];
    (void)touch;
    previous = &tensor;
  }
  return 0;
}
