#include "model/format/safetensors.h"

#include <unistd.h>

#include <cstdint>
#include <cstring>
#include <fstream>
#include <initializer_list>
#include <iterator>
#include <random>
#include <string>
#include <string_view>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"

namespace mswa {
namespace {

// Removes the files this process created when it exits, so repeated runs leave TempDir clean.
std::vector<std::string>& CreatedPaths() {
  static struct Registry {
    std::vector<std::string> paths;
    ~Registry() {
      for (const std::string& path : paths) ::unlink(path.c_str());
    }
  } registry;
  return registry.paths;
}

// Unique per test and process: ctest runs each test as its own process, possibly in parallel
// with another build's copy of this binary.
std::string TempPath(absl::string_view suffix = "") {
  const ::testing::TestInfo* info = ::testing::UnitTest::GetInstance()->current_test_info();
  std::string path = absl::StrCat(::testing::TempDir(), "safetensors_", info->name(), "_",
                                  ::getpid(), suffix, ".safetensors");
  CreatedPaths().push_back(path);
  return path;
}

void WriteBytes(const std::string& path, const std::string& bytes) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  ASSERT_TRUE(out.good()) << path;
}

std::string ReadBytes(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

std::string LittleEndian64(uint64_t value) {
  std::string bytes(8, '\0');
  for (int i = 0; i < 8; ++i) bytes[i] = static_cast<char>((value >> (8 * i)) & 0xff);
  return bytes;
}

// A file whose header is exactly `json` (no padding), followed by `data`.
std::string FileBytes(const std::string& json, const std::string& data = "") {
  return LittleEndian64(json.size()) + json + data;
}

absl::Status OpenBytes(const std::string& bytes) {
  const std::string path = TempPath();
  WriteBytes(path, bytes);
  return SafetensorsFile::Open(path).status();
}

::testing::AssertionResult IsError(const absl::Status& status, absl::StatusCode code,
                                   std::initializer_list<absl::string_view> facts) {
  if (status.code() != code) {
    return ::testing::AssertionFailure()
           << "expected code " << absl::StatusCodeToString(code) << ", got " << status;
  }
  for (absl::string_view fact : facts) {
    if (status.message().find(fact) == absl::string_view::npos) {
      return ::testing::AssertionFailure() << "message lacks '" << fact << "': " << status;
    }
  }
  return ::testing::AssertionSuccess();
}

::testing::AssertionResult IsInvalid(const absl::Status& status,
                                     std::initializer_list<absl::string_view> facts) {
  return IsError(status, absl::StatusCode::kInvalidArgument, facts);
}

TEST(Safetensors, RoundTripPreservesValuesShapesDtypesAndMetadata) {
  const std::vector<float> matrix = {1.5f, -2.0f, 3.25f, 0.0f, 1e-3f, 7.0f};  // [2, 3]
  const std::vector<uint16_t> half = {0x3c00, 0xc000, 0x7bff};                // [3], 6 bytes
  const std::vector<uint16_t> brain = {0x3f80, 0x4000, 0xbf80, 0x0001};       // [2, 2]
  const float scalar = 42.0f;                                                 // []
  const std::vector<TensorToWrite> tensors = {
      {"model.w", DType::kF32, {2, 3}, matrix.data(), 24},
      {"model.h", DType::kF16, {3}, half.data(), 6},
      {"model.b", DType::kBF16, {2, 2}, brain.data(), 8},
      {"empty", DType::kF32, {0, 4}, nullptr, 0},
      {"scalar", DType::kF32, {}, &scalar, 4},
  };
  const std::string path = TempPath();
  ASSERT_TRUE(WriteSafetensors(path, tensors, {{"format", "pt"}, {"note", "x"}}).ok());
  EXPECT_NE(::access((path + ".tmp").c_str(), F_OK), 0) << "temporary file left behind";

  auto file = SafetensorsFile::Open(path);
  ASSERT_TRUE(file.ok()) << file.status();
  EXPECT_EQ((*file)->path(), path);
  const std::map<std::string, std::string> expected_metadata = {{"format", "pt"}, {"note", "x"}};
  EXPECT_EQ((*file)->metadata(), expected_metadata);
  // Written in the given order, so the offset order is the same.
  ASSERT_EQ((*file)->tensors().size(), tensors.size());
  for (size_t i = 0; i < tensors.size(); ++i) {
    const TensorView& got = (*file)->tensors()[i];
    SCOPED_TRACE(tensors[i].name);
    EXPECT_EQ(got.name, tensors[i].name);
    EXPECT_EQ(got.dtype, tensors[i].dtype);
    EXPECT_EQ(got.shape, tensors[i].shape);
    ASSERT_EQ(got.nbytes, tensors[i].nbytes);
    EXPECT_EQ(got.numel() * static_cast<int64_t>(DTypeSize(got.dtype)),
              static_cast<int64_t>(got.nbytes));
    if (got.nbytes > 0) {
      EXPECT_EQ(std::memcmp(got.data, tensors[i].data, got.nbytes), 0);
    }
  }
  const TensorView* h = (*file)->Find("model.h");
  ASSERT_NE(h, nullptr);
  EXPECT_EQ(h->dtype, DType::kF16);
  EXPECT_EQ((*file)->Find("model.missing"), nullptr);

  // Contiguous tensors: the file is prefix + padded header + 24 + 6 + 8 + 0 + 4 bytes.
  const std::string bytes = ReadBytes(path);
  ASSERT_GE(bytes.size(), 8u);
  uint64_t header_size = 0;
  for (int i = 7; i >= 0; --i) header_size = (header_size << 8) | static_cast<uint8_t>(bytes[i]);
  EXPECT_EQ((8 + header_size) % 8, 0u);
  EXPECT_EQ(bytes.size(), 8 + header_size + 42);
  // __metadata__ comes first, then tensors in the given order.
  const std::string header = bytes.substr(8, header_size);
  EXPECT_EQ(header.rfind("{\"__metadata__\"", 0), 0u) << header;
  EXPECT_LT(header.find("\"model.w\""), header.find("\"model.h\"")) << header;
  EXPECT_LT(header.find("\"model.h\""), header.find("\"model.b\"")) << header;
}

TEST(Safetensors, WriterPadsHeaderWithSpacesToAlignDataStart) {
  const float value = 1.0f;
  for (size_t name_length = 1; name_length <= 9; ++name_length) {
    const std::string path = TempPath(absl::StrCat("_", name_length));
    ASSERT_TRUE(
        WriteSafetensors(path, {{std::string(name_length, 'n'), DType::kF32, {1}, &value, 4}})
            .ok());
    const std::string bytes = ReadBytes(path);
    uint64_t header_size = 0;
    for (int i = 7; i >= 0; --i) header_size = (header_size << 8) | static_cast<uint8_t>(bytes[i]);
    EXPECT_EQ((8 + header_size) % 8, 0u) << "name length " << name_length;
    const std::string header = bytes.substr(8, header_size);
    EXPECT_EQ(header.find_last_not_of(' '), header.rfind('}')) << header;
    auto file = SafetensorsFile::Open(path);
    ASSERT_TRUE(file.ok()) << file.status();
    float read = 0;
    std::memcpy(&read, (*file)->tensors().at(0).data, 4);
    EXPECT_EQ(read, 1.0f);
  }
}

TEST(Safetensors, OpensFileWithoutTensorsAndEmptyDataSection) {
  const std::string path = TempPath();
  ASSERT_TRUE(WriteSafetensors(path, {}).ok());
  auto file = SafetensorsFile::Open(path);
  ASSERT_TRUE(file.ok()) << file.status();
  EXPECT_TRUE((*file)->tensors().empty());
  EXPECT_TRUE((*file)->metadata().empty());

  // Hand-made, unpadded: the file ends right after the header.
  WriteBytes(path, FileBytes("{}"));
  EXPECT_TRUE(SafetensorsFile::Open(path).ok());
}

TEST(Safetensors, AcceptsZeroSizeTensorsAnywhere) {
  const std::string json = R"({"a":{"dtype":"F32","shape":[0],"data_offsets":[4,4]},)"
                           R"("b":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},)"
                           R"("c":{"dtype":"BF16","shape":[0,3],"data_offsets":[8,8]}})";
  const std::string path = TempPath();
  WriteBytes(path, FileBytes(json, std::string(8, '\x01')));
  auto file = SafetensorsFile::Open(path);
  ASSERT_TRUE(file.ok()) << file.status();
  ASSERT_NE((*file)->Find("a"), nullptr);
  EXPECT_EQ((*file)->Find("a")->nbytes, 0u);
  EXPECT_EQ((*file)->Find("a")->numel(), 0);
}

TEST(Safetensors, ListsTensorsInDataOffsetOrder) {
  const std::string json = R"({"a":{"dtype":"F32","shape":[1],"data_offsets":[8,12]},)"
                           R"("b":{"dtype":"F16","shape":[2],"data_offsets":[4,8]},)"
                           R"("c":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}})";
  const std::string path = TempPath();
  WriteBytes(path, FileBytes(json, std::string(12, '\0')));
  auto file = SafetensorsFile::Open(path);
  ASSERT_TRUE(file.ok()) << file.status();
  ASSERT_EQ((*file)->tensors().size(), 3u);
  EXPECT_EQ((*file)->tensors()[0].name, "c");
  EXPECT_EQ((*file)->tensors()[1].name, "b");
  EXPECT_EQ((*file)->tensors()[2].name, "a");
  EXPECT_EQ((*file)->tensors()[1].data - (*file)->tensors()[0].data, 4);
}

TEST(Safetensors, MissingFileIsNotFound) {
  const std::string path = TempPath();
  const absl::Status status = SafetensorsFile::Open(path).status();
  EXPECT_TRUE(IsError(status, absl::StatusCode::kNotFound, {path}));
}

TEST(Safetensors, DirectoryIsRejected) {
  EXPECT_TRUE(IsInvalid(SafetensorsFile::Open(::testing::TempDir()).status(),
                        {::testing::TempDir(), "not a regular file"}));
}

TEST(Safetensors, EmptyFileIsTruncated) {
  const std::string path = TempPath();
  WriteBytes(path, "");
  EXPECT_TRUE(IsInvalid(SafetensorsFile::Open(path).status(), {path, "truncated"}));
}

TEST(Safetensors, FileShorterThanLengthPrefixIsTruncated) {
  EXPECT_TRUE(IsInvalid(OpenBytes(std::string("\x02\0\0\0\0", 5)), {"truncated", "5 bytes"}));
}

TEST(Safetensors, ZeroHeaderLengthIsRejected) {
  EXPECT_TRUE(IsInvalid(OpenBytes(LittleEndian64(0) + "{}"), {"header length is 0"}));
}

TEST(Safetensors, HeaderLongerThanFileIsRejected) {
  EXPECT_TRUE(IsInvalid(OpenBytes(LittleEndian64(10) + "{}"), {"header length 10", "truncated"}));
}

TEST(Safetensors, HeaderOver100MiBIsRejected) {
  EXPECT_TRUE(IsInvalid(OpenBytes(LittleEndian64((uint64_t{100} << 20) + 1) + "{}"), {"100 MiB"}));
  EXPECT_TRUE(IsInvalid(OpenBytes(LittleEndian64(UINT64_MAX) + "{}"), {"100 MiB"}));
}

TEST(Safetensors, NonJsonHeaderIsRejected) {
  EXPECT_TRUE(IsInvalid(OpenBytes(FileBytes(R"({"a": )")), {"not valid JSON"}));
  EXPECT_TRUE(IsInvalid(OpenBytes(FileBytes("{\"\xff\": 1}")), {"not valid JSON"}));
}

TEST(Safetensors, NonObjectHeaderIsRejected) {
  EXPECT_TRUE(IsInvalid(OpenBytes(FileBytes("[1, 2]")), {"must be a JSON object", "[1,2]"}));
}

TEST(Safetensors, DuplicateTensorNameIsRejected) {
  const std::string entry = R"({"dtype":"F32","shape":[1],"data_offsets":[0,4]})";
  EXPECT_TRUE(IsInvalid(
      OpenBytes(FileBytes(absl::StrCat(R"({"w":)", entry, R"(,"w":)", entry, "}"), "abcd")),
      {"\"w\"", "twice"}));
}

TEST(Safetensors, NonObjectEntryIsRejected) {
  EXPECT_TRUE(IsInvalid(OpenBytes(FileBytes(R"({"layer.0.w": 3})")),
                        {"tensor \"layer.0.w\"", "must be an object"}));
}

TEST(Safetensors, MissingDtypeIsRejected) {
  EXPECT_TRUE(IsInvalid(OpenBytes(FileBytes(R"({"w":{"shape":[1],"data_offsets":[0,4]}})", "abcd")),
                        {"tensor \"w\"", "missing \"dtype\""}));
}

TEST(Safetensors, NonStringDtypeIsRejected) {
  EXPECT_TRUE(IsInvalid(
      OpenBytes(FileBytes(R"({"w":{"dtype":4,"shape":[1],"data_offsets":[0,4]}})", "abcd")),
      {"tensor \"w\"", "dtype must be a string"}));
}

TEST(Safetensors, UnknownDtypeListsSupportedOnes) {
  EXPECT_TRUE(
      IsInvalid(OpenBytes(FileBytes(R"({"w":{"dtype":"F64","shape":[1],"data_offsets":[0,8]}})",
                                    std::string(8, '\0'))),
                {"tensor \"w\"", "\"F64\"", "F32, F16, BF16"}));
}

TEST(Safetensors, ShapeMustBeArrayOfNonNegativeIntegers) {
  for (const char* shape : {"[-1]", "[2.5]", "4", "[\"4\"]", "[18446744073709551615]"}) {
    SCOPED_TRACE(shape);
    EXPECT_TRUE(IsInvalid(OpenBytes(FileBytes(absl::StrCat(R"({"w":{"dtype":"F32","shape":)", shape,
                                                           R"(,"data_offsets":[0,4]}})"),
                                              "abcd")),
                          {"tensor \"w\"", "shape must be an array of non-negative integers"}));
  }
  EXPECT_TRUE(
      IsInvalid(OpenBytes(FileBytes(R"({"w":{"dtype":"F32","data_offsets":[0,4]}})", "abcd")),
                {"tensor \"w\"", "missing \"shape\""}));
}

TEST(Safetensors, DataOffsetsMustBeTwoNonNegativeIntegers) {
  for (const char* offsets : {"[0]", "[0,4,8]", "[-1,4]", "[0,\"4\"]", "[0,4.0]", "{}"}) {
    SCOPED_TRACE(offsets);
    EXPECT_TRUE(IsInvalid(
        OpenBytes(FileBytes(
            absl::StrCat(R"({"w":{"dtype":"F32","shape":[1],"data_offsets":)", offsets, "}}"),
            "abcd")),
        {"tensor \"w\"", "data_offsets must be [begin, end]"}));
  }
  EXPECT_TRUE(IsInvalid(OpenBytes(FileBytes(R"({"w":{"dtype":"F32","shape":[1]}})", "abcd")),
                        {"tensor \"w\"", "missing \"data_offsets\""}));
}

TEST(Safetensors, BeginAfterEndIsRejected) {
  EXPECT_TRUE(IsInvalid(
      OpenBytes(FileBytes(R"({"w":{"dtype":"F32","shape":[1],"data_offsets":[4,0]}})", "abcd")),
      {"tensor \"w\"", "[4, 0]", "begin after end"}));
}

TEST(Safetensors, EndBeyondDataSectionIsRejected) {
  EXPECT_TRUE(IsInvalid(
      OpenBytes(FileBytes(R"({"w":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}})", "abcd")),
      {"tensor \"w\"", "[0, 8]", "beyond the data section", "holds 4 bytes"}));
}

TEST(Safetensors, ByteSizeMismatchIsRejected) {
  const std::string path = TempPath();
  WriteBytes(path, FileBytes(R"({"model.norm.weight":{"dtype":"F16","shape":[4],)"
                             R"("data_offsets":[0,12]}})",
                             std::string(12, '\0')));
  EXPECT_EQ(SafetensorsFile::Open(path).status(),
            absl::InvalidArgumentError(absl::StrCat(
                path,
                ": tensor \"model.norm.weight\": data_offsets [0, 12] hold 12 bytes but "
                "shape [4] of F16 needs 8")));
}

TEST(Safetensors, ByteSizeOverflowIsRejected) {
  // 2^62 * 2^62 * 4 bytes wraps to 0 in 64-bit arithmetic, matching the empty range.
  EXPECT_TRUE(IsInvalid(OpenBytes(FileBytes(R"({"w":{"dtype":"F32","shape":[4611686018427387904,)"
                                            R"(4611686018427387904],"data_offsets":[0,0]}})")),
                        {"tensor \"w\"", "more than 2^64 bytes"}));
}

TEST(Safetensors, OverlappingTensorsAreRejected) {
  EXPECT_TRUE(
      IsInvalid(OpenBytes(FileBytes(R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},)"
                                    R"("b":{"dtype":"F32","shape":[2],"data_offsets":[4,12]}})",
                                    std::string(12, '\0'))),
                {"tensor \"b\"", "overlap tensor \"a\""}));
}

TEST(Safetensors, MetadataMustBeObjectOfStrings) {
  EXPECT_TRUE(IsInvalid(OpenBytes(FileBytes(R"({"__metadata__":{"format":"pt","n":1}})")),
                        {"__metadata__", "key \"n\""}));
  EXPECT_TRUE(IsInvalid(OpenBytes(FileBytes(R"({"__metadata__":"pt"})")),
                        {"__metadata__", "object of string values"}));
}

TEST(Safetensors, WriterRejectsDuplicateNames) {
  const float value = 0;
  const std::string path = TempPath();
  EXPECT_TRUE(IsInvalid(WriteSafetensors(path, {{"w", DType::kF32, {1}, &value, 4},
                                                {"w", DType::kF32, {1}, &value, 4}}),
                        {path, "tensor \"w\"", "more than once"}));
  EXPECT_NE(::access(path.c_str(), F_OK), 0);
}

TEST(Safetensors, WriterRejectsByteSizeNotMatchingShape) {
  const uint16_t values[3] = {};
  EXPECT_TRUE(IsInvalid(WriteSafetensors(TempPath(), {{"model.h", DType::kBF16, {2}, values, 6}}),
                        {"tensor \"model.h\"", "nbytes is 6", "needs 4"}));
  EXPECT_TRUE(IsInvalid(WriteSafetensors(TempPath(), {{"neg", DType::kF32, {-1}, values, 0}}),
                        {"tensor \"neg\"", "negative dimension"}));
}

TEST(Safetensors, WriterReportsIoErrorWithPath) {
  const std::string path = ::testing::TempDir() + "no_such_dir_for_safetensors_test/out.st";
  EXPECT_TRUE(IsError(WriteSafetensors(path, {}), absl::StatusCode::kNotFound,
                      {path, std::strerror(ENOENT)}));
}

TEST(Safetensors, OpenNeverCrashesOnTruncatedOrCorruptedFiles) {
  const std::vector<float> a = {1, 2, 3};
  const std::vector<uint16_t> b = {4, 5};
  const std::string valid_path = TempPath("_valid");
  ASSERT_TRUE(WriteSafetensors(valid_path,
                               {{"a", DType::kF32, {3}, a.data(), 12},
                                {"b", DType::kBF16, {1, 2}, b.data(), 4},
                                {"z", DType::kF16, {0}, nullptr, 0}},
                               {{"k", "v"}})
                  .ok());
  const std::string valid = ReadBytes(valid_path);
  const size_t header_end = valid.size() - 16;

  const std::string path = TempPath();
  // Any error is InvalidArgument (the file exists and is readable); an OK file must have views
  // inside the mapping, which summing every byte would trip over otherwise.
  const auto check = [&](const std::string& bytes) {
    WriteBytes(path, bytes);
    auto file = SafetensorsFile::Open(path);
    if (!file.ok()) {
      EXPECT_EQ(file.status().code(), absl::StatusCode::kInvalidArgument) << file.status();
      return;
    }
    unsigned sum = 0;
    for (const TensorView& tensor : (*file)->tensors()) {
      for (size_t i = 0; i < tensor.nbytes; ++i) sum += tensor.data[i];
    }
    (void)sum;
  };
  for (size_t length = 0; length < valid.size(); ++length) check(valid.substr(0, length));

  // Random bytes mostly break the JSON; rewriting digits keeps it valid and reaches the shape,
  // offset and overlap checks.
  std::vector<size_t> digits;
  for (size_t i = 8; i < header_end; ++i) {
    if (valid[i] >= '0' && valid[i] <= '9') digits.push_back(i);
  }
  ASSERT_FALSE(digits.empty());
  std::mt19937 rng(1234);
  const std::string interesting = "{}[],:\"0123456789-.e ";
  for (int variant = 0; variant < 300; ++variant) {
    std::string bytes = valid;
    const int flips = 1 + static_cast<int>(rng() % 3);
    for (int f = 0; f < flips; ++f) {
      switch (rng() % 3) {
        case 0:
          bytes[rng() % header_end] = static_cast<char>(rng() & 0xff);
          break;
        case 1:
          bytes[rng() % header_end] = interesting[rng() % interesting.size()];
          break;
        case 2:
          bytes[digits[rng() % digits.size()]] = static_cast<char>('0' + rng() % 10);
          break;
      }
    }
    check(bytes);
  }
}

}  // namespace
}  // namespace mswa
