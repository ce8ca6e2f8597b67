#include "model/format/safetensors.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <exception>
#include <new>
#include <optional>
#include <set>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "model/status_macros.h"
#include "nlohmann/json.hpp"

namespace mswa {
namespace {

using Json = nlohmann::json;

constexpr uint64_t kMaxHeaderBytes = uint64_t{100} << 20;  // the reference reader's limit
constexpr char kMetadataKey[] = "__metadata__";

std::string ShapeString(const std::vector<int64_t>& shape) {
  return absl::StrCat("[", absl::StrJoin(shape, ", "), "]");
}

// A JSON value for an error message, cut short so that a hostile header cannot make the message
// huge.
std::string Brief(const Json& value) {
  constexpr size_t kMaxChars = 60;
  std::string text = value.dump();
  if (text.size() > kMaxChars) text = absl::StrCat(text.substr(0, kMaxChars), "...");
  return text;
}

// Debian's Abseil has its own absl::string_view, which StrCat needs; the public API speaks
// std::string_view.
absl::string_view ToAbsl(std::string_view text) {
  return absl::string_view(text.data(), text.size());
}

absl::Status FileError(const std::string& path, absl::string_view problem) {
  return absl::InvalidArgumentError(absl::StrCat(path, ": ", problem));
}

absl::Status TensorError(const std::string& path, absl::string_view name,
                         absl::string_view problem) {
  return absl::InvalidArgumentError(absl::StrCat(path, ": tensor \"", name, "\": ", problem));
}

// numel(shape) * DTypeSize(dtype) for a shape of non-negative dimensions; nullopt when it does not
// fit in 64 bits (a hostile header can claim [2^62, 2^62]).
std::optional<uint64_t> CheckedByteSize(const std::vector<int64_t>& shape, DType dtype) {
  uint64_t bytes = DTypeSize(dtype);
  for (int64_t dim : shape) {
    if (__builtin_mul_overflow(bytes, static_cast<uint64_t>(dim), &bytes)) return std::nullopt;
  }
  return bytes;
}

// nlohmann stores non-negative integers as unsigned, but "-0" arrives as a signed zero.
std::optional<uint64_t> NonNegativeInteger(const Json& value) {
  if (value.is_number_unsigned()) return value.get<uint64_t>();
  if (value.is_number_integer() && value.get<int64_t>() >= 0) {
    return static_cast<uint64_t>(value.get<int64_t>());
  }
  return std::nullopt;
}

struct ParsedTensor {
  TensorView view;
  uint64_t begin = 0;
  uint64_t end = 0;
};

absl::StatusOr<ParsedTensor> ParseTensor(const std::string& path, const std::string& name,
                                         const Json& entry, const uint8_t* data_section,
                                         uint64_t data_size) {
  if (!entry.is_object()) {
    return TensorError(path, name,
                       absl::StrCat("entry must be an object with dtype, shape and data_offsets, "
                                    "got ",
                                    Brief(entry)));
  }
  ParsedTensor tensor;
  tensor.view.name = name;

  auto dtype_it = entry.find("dtype");
  if (dtype_it == entry.end()) return TensorError(path, name, "missing \"dtype\"");
  if (!dtype_it->is_string()) {
    return TensorError(path, name, absl::StrCat("dtype must be a string, got ", Brief(*dtype_it)));
  }
  absl::StatusOr<DType> dtype = ParseDType(dtype_it->get_ref<const std::string&>());
  if (!dtype.ok()) return TensorError(path, name, dtype.status().message());
  tensor.view.dtype = *dtype;

  auto shape_it = entry.find("shape");
  if (shape_it == entry.end()) return TensorError(path, name, "missing \"shape\"");
  const auto bad_shape = [&] {
    return TensorError(
        path, name,
        absl::StrCat("shape must be an array of non-negative integers, got ", Brief(*shape_it)));
  };
  if (!shape_it->is_array()) return bad_shape();
  for (const Json& dim : *shape_it) {
    std::optional<uint64_t> value = NonNegativeInteger(dim);
    if (!value || *value > static_cast<uint64_t>(INT64_MAX)) return bad_shape();
    tensor.view.shape.push_back(static_cast<int64_t>(*value));
  }

  auto offsets_it = entry.find("data_offsets");
  if (offsets_it == entry.end()) return TensorError(path, name, "missing \"data_offsets\"");
  std::optional<uint64_t> begin, end;
  if (offsets_it->is_array() && offsets_it->size() == 2) {
    begin = NonNegativeInteger((*offsets_it)[0]);
    end = NonNegativeInteger((*offsets_it)[1]);
  }
  if (!begin || !end) {
    return TensorError(path, name,
                       absl::StrCat("data_offsets must be [begin, end] with non-negative "
                                    "integers, got ",
                                    Brief(*offsets_it)));
  }
  const std::string offsets = absl::StrCat("data_offsets [", *begin, ", ", *end, "]");
  if (*begin > *end) {
    return TensorError(path, name, absl::StrCat(offsets, " have begin after end"));
  }
  if (*end > data_size) {
    return TensorError(path, name,
                       absl::StrCat(offsets, " end beyond the data section, which holds ",
                                    data_size, " bytes (file truncated?)"));
  }
  const std::optional<uint64_t> needed = CheckedByteSize(tensor.view.shape, tensor.view.dtype);
  const std::string shape_desc =
      absl::StrCat("shape ", ShapeString(tensor.view.shape), " of ", ToAbsl(DTypeName(*dtype)));
  if (!needed) {
    return TensorError(path, name, absl::StrCat(shape_desc, " needs more than 2^64 bytes"));
  }
  if (*end - *begin != *needed) {
    return TensorError(path, name,
                       absl::StrCat(offsets, " hold ", *end - *begin, " bytes but ", shape_desc,
                                    " needs ", *needed));
  }
  tensor.begin = *begin;
  tensor.end = *end;
  tensor.view.data = data_section + *begin;
  tensor.view.nbytes = static_cast<size_t>(*needed);
  return tensor;
}

absl::StatusOr<std::map<std::string, std::string>> ParseMetadata(const std::string& path,
                                                                 const Json& value) {
  const auto bad = [&](absl::string_view detail) {
    return FileError(
        path, absl::StrCat("\"", kMetadataKey, "\" must be an object of string values; ", detail));
  };
  if (!value.is_object()) return bad(absl::StrCat("got ", Brief(value)));
  std::map<std::string, std::string> metadata;
  for (const auto& [key, item] : value.items()) {
    if (!item.is_string()) return bad(absl::StrCat("key \"", key, "\" holds ", Brief(item)));
    metadata.emplace(key, item.get<std::string>());
  }
  return metadata;
}

struct ParsedHeader {
  std::vector<TensorView> tensors;  // sorted by data offset
  std::map<std::string, std::string> metadata;
};

// `header` is the JSON text; `data_section` and `data_size` the bytes after it.
absl::StatusOr<ParsedHeader> ParseHeader(const std::string& path, std::string_view header,
                                         const uint8_t* data_section, uint64_t data_size) {
  // nlohmann keeps the last of duplicate keys silently; a file that names a tensor twice is
  // ambiguous, so the parse callback records top-level keys (depth 1) to reject it.
  std::set<std::string> keys;
  std::optional<std::string> duplicate;
  const Json::parser_callback_t on_event = [&](int depth, Json::parse_event_t event, Json& parsed) {
    if (event == Json::parse_event_t::key && depth == 1 && !duplicate) {
      std::string key = parsed.get<std::string>();
      if (!keys.insert(key).second) duplicate = std::move(key);
    }
    return true;
  };
  const Json root = Json::parse(header.begin(), header.end(), on_event,
                                /*allow_exceptions=*/false);
  if (root.is_discarded()) return FileError(path, "header is not valid JSON");
  if (!root.is_object()) {
    return FileError(path, absl::StrCat("header must be a JSON object, got ", Brief(root)));
  }
  if (duplicate) {
    return FileError(path, absl::StrCat("key \"", *duplicate, "\" appears twice in the header"));
  }

  ParsedHeader result;
  std::vector<ParsedTensor> tensors;
  for (const auto& [name, entry] : root.items()) {
    if (name == kMetadataKey) {
      ASSIGN_OR_RETURN(result.metadata, ParseMetadata(path, entry));
      continue;
    }
    ASSIGN_OR_RETURN(ParsedTensor tensor, ParseTensor(path, name, entry, data_section, data_size));
    tensors.push_back(std::move(tensor));
  }

  // Stable: tensors at the same offset (zero-size ones) stay in name order, the order of
  // nlohmann objects.
  std::stable_sort(tensors.begin(), tensors.end(),
                   [](const ParsedTensor& a, const ParsedTensor& b) { return a.begin < b.begin; });
  // Empty ranges own no bytes, so they cannot overlap anything.
  const ParsedTensor* previous = nullptr;
  for (const ParsedTensor& tensor : tensors) {
    if (tensor.begin == tensor.end) continue;
    if (previous != nullptr && tensor.begin < previous->end) {
      return TensorError(
          path, tensor.view.name,
          absl::StrCat("data_offsets [", tensor.begin, ", ", tensor.end, "] overlap tensor \"",
                       previous->view.name, "\" at [", previous->begin, ", ", previous->end, "]"));
    }
    previous = &tensor;
  }
  result.tensors.reserve(tensors.size());
  for (ParsedTensor& tensor : tensors) result.tensors.push_back(std::move(tensor.view));
  return result;
}

uint64_t ReadLittleEndian64(const uint8_t* bytes) {
  uint64_t value = 0;
  for (int i = 7; i >= 0; --i) value = (value << 8) | bytes[i];
  return value;
}

// Writes all of `size` bytes, retrying short writes and EINTR. On failure errno is left set.
bool WriteAll(int fd, const void* data, size_t size) {
  const auto* bytes = static_cast<const uint8_t*>(data);
  while (size > 0) {
    const ssize_t written = ::write(fd, bytes, size);
    if (written < 0) {
      if (errno == EINTR) continue;
      return false;
    }
    bytes += written;
    size -= static_cast<size_t>(written);
  }
  return true;
}

// nlohmann's dump() throws on invalid UTF-8; probing each string here keeps exceptions inside this
// file and lets the error name the offending string.
bool IsValidUtf8ForJson(const std::string& text) {
  try {
    (void)Json(text).dump();
    return true;
  } catch (const Json::exception&) {
    return false;
  }
}

}  // namespace

std::string_view DTypeName(DType dtype) {
  switch (dtype) {
    case DType::kF32:
      return "F32";
    case DType::kF16:
      return "F16";
    case DType::kBF16:
      return "BF16";
  }
  return "?";
}

size_t DTypeSize(DType dtype) {
  switch (dtype) {
    case DType::kF32:
      return 4;
    case DType::kF16:
    case DType::kBF16:
      return 2;
  }
  return 0;
}

absl::StatusOr<DType> ParseDType(std::string_view name) {
  for (DType dtype : {DType::kF32, DType::kF16, DType::kBF16}) {
    if (name == DTypeName(dtype)) return dtype;
  }
  return absl::InvalidArgumentError(
      absl::StrCat("unknown dtype \"", ToAbsl(name), "\" (supported: F32, F16, BF16)"));
}

int64_t TensorView::numel() const {
  int64_t count = 1;
  for (int64_t dim : shape) count *= dim;
  return count;
}

absl::StatusOr<std::unique_ptr<SafetensorsFile>> SafetensorsFile::Open(const std::string& path) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return absl::ErrnoToStatus(errno, absl::StrCat(path, ": cannot open"));
  struct stat info;
  if (::fstat(fd, &info) != 0) {
    const int error = errno;
    ::close(fd);
    return absl::ErrnoToStatus(error, absl::StrCat(path, ": cannot stat"));
  }
  if (!S_ISREG(info.st_mode)) {
    ::close(fd);
    return FileError(path, "not a regular file");
  }
  const uint64_t file_size = static_cast<uint64_t>(info.st_size);
  if (file_size < 8) {
    ::close(fd);
    return FileError(path, absl::StrCat("file is truncated: ", file_size,
                                        " bytes, but a safetensors file starts with an 8-byte "
                                        "header length"));
  }

  // The owner exists before the mapping so that every early return below unmaps it.
  std::unique_ptr<SafetensorsFile> file(new SafetensorsFile());
  file->path_ = path;
  // The whole file (header included) is mapped, so the mapping is never empty even when the data
  // section is.
  void* mapping = ::mmap(nullptr, file_size, PROT_READ, MAP_PRIVATE, fd, 0);
  const int mmap_error = errno;
  ::close(fd);
  if (mapping == MAP_FAILED) return absl::ErrnoToStatus(mmap_error, absl::StrCat(path, ": mmap"));
  file->mapping_ = mapping;
  file->mapping_size_ = file_size;

  const auto* bytes = static_cast<const uint8_t*>(mapping);
  const uint64_t header_size = ReadLittleEndian64(bytes);
  if (header_size == 0) return FileError(path, "header length is 0");
  if (header_size > kMaxHeaderBytes) {
    return FileError(path, absl::StrCat("header length ", header_size,
                                        " exceeds the 100 MiB limit (corrupt file?)"));
  }
  if (header_size > file_size - 8) {
    return FileError(path,
                     absl::StrCat("header length ", header_size, " exceeds the ", file_size - 8,
                                  " bytes after the length (file truncated?)"));
  }
  const std::string_view header(reinterpret_cast<const char*>(bytes + 8), header_size);
  const uint8_t* data_section = bytes + 8 + header_size;
  const uint64_t data_size = file_size - 8 - header_size;

  absl::StatusOr<ParsedHeader> parsed;
  try {
    parsed = ParseHeader(path, header, data_section, data_size);
  } catch (const std::bad_alloc&) {
    // A 100 MiB header of tiny values can expand to several GiB of JSON nodes.
    return absl::ResourceExhaustedError(absl::StrCat(path, ": out of memory parsing the header"));
  } catch (const std::exception& e) {
    // Not expected (values are type-checked before use), but no exception may leave this file.
    return absl::InternalError(absl::StrCat(path, ": parsing the header: ", e.what()));
  }
  if (!parsed.ok()) return parsed.status();
  file->tensors_ = std::move(parsed->tensors);
  file->metadata_ = std::move(parsed->metadata);
  return file;
}

SafetensorsFile::~SafetensorsFile() {
  if (mapping_ != nullptr) ::munmap(mapping_, mapping_size_);
}

const TensorView* SafetensorsFile::Find(std::string_view name) const {
  for (const TensorView& tensor : tensors_) {
    if (tensor.name == name) return &tensor;
  }
  return nullptr;
}

absl::Status WriteSafetensors(const std::string& path, const std::vector<TensorToWrite>& tensors,
                              const std::map<std::string, std::string>& metadata) {
  using OrderedJson = nlohmann::ordered_json;
  OrderedJson header = OrderedJson::object();
  if (!metadata.empty()) {
    OrderedJson& entries = header[kMetadataKey] = OrderedJson::object();
    for (const auto& [key, value] : metadata) {
      if (!IsValidUtf8ForJson(key) || !IsValidUtf8ForJson(value)) {
        return absl::InvalidArgumentError(
            absl::StrCat(path, ": metadata key \"", key, "\" or its value is not valid UTF-8"));
      }
      entries[key] = value;
    }
  }

  std::set<std::string_view> names;
  uint64_t offset = 0;
  for (const TensorToWrite& tensor : tensors) {
    const auto error = [&](absl::string_view problem) {
      return TensorError(path, tensor.name, problem);
    };
    if (tensor.name == kMetadataKey) return error("the name is reserved for metadata");
    if (!names.insert(tensor.name).second) return error("appears more than once");
    if (!IsValidUtf8ForJson(tensor.name)) return error("name is not valid UTF-8");
    for (int64_t dim : tensor.shape) {
      if (dim < 0) return error(absl::StrCat("negative dimension in ", ShapeString(tensor.shape)));
    }
    const std::optional<uint64_t> needed = CheckedByteSize(tensor.shape, tensor.dtype);
    const std::string shape_desc =
        absl::StrCat("shape ", ShapeString(tensor.shape), " of ", ToAbsl(DTypeName(tensor.dtype)));
    if (!needed) return error(absl::StrCat(shape_desc, " needs more than 2^64 bytes"));
    if (tensor.nbytes != *needed) {
      return error(
          absl::StrCat("nbytes is ", tensor.nbytes, " but ", shape_desc, " needs ", *needed));
    }
    if (tensor.data == nullptr && tensor.nbytes > 0) return error("data is null");
    header[tensor.name] = {{"dtype", std::string(DTypeName(tensor.dtype))},
                           {"shape", tensor.shape},
                           {"data_offsets", OrderedJson::array({offset, offset + *needed})}};
    offset += *needed;
  }

  // Spaces pad the JSON (still valid JSON) so that the data section starts 8-byte aligned.
  // Tensors are contiguous after that, as the reference reader requires.
  std::string json = header.dump();
  json.resize((json.size() + 7) / 8 * 8, ' ');
  std::string prefix(8, '\0');
  const uint64_t header_size = json.size();
  for (int i = 0; i < 8; ++i) prefix[i] = static_cast<char>((header_size >> (8 * i)) & 0xff);

  const std::string tmp_path = path + ".tmp";
  const int fd = ::open(tmp_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) return absl::ErrnoToStatus(errno, absl::StrCat(tmp_path, ": cannot create"));
  const auto fail = [&](absl::string_view what) {
    const int error = errno;
    ::close(fd);
    ::unlink(tmp_path.c_str());
    return absl::ErrnoToStatus(error, absl::StrCat(tmp_path, ": ", what));
  };
  if (!WriteAll(fd, prefix.data(), prefix.size()) || !WriteAll(fd, json.data(), json.size())) {
    return fail("write failed");
  }
  for (const TensorToWrite& tensor : tensors) {
    if (!WriteAll(fd, tensor.data, tensor.nbytes)) return fail("write failed");
  }
  // Without fsync the rename can reach the disk before the data, leaving an empty file under
  // `path` after a power loss.
  if (::fsync(fd) != 0) return fail("fsync failed");
  if (::close(fd) != 0) {
    const int error = errno;
    ::unlink(tmp_path.c_str());
    return absl::ErrnoToStatus(error, absl::StrCat(tmp_path, ": close failed"));
  }
  if (::rename(tmp_path.c_str(), path.c_str()) != 0) {
    const int error = errno;
    ::unlink(tmp_path.c_str());
    return absl::ErrnoToStatus(error, absl::StrCat("renaming ", tmp_path, " to ", path, " failed"));
  }
  return absl::OkStatus();
}

}  // namespace mswa
