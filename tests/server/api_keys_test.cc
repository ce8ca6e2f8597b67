// API keys: loading from the flag and the file, the Bearer check, and refusals that never echo
// a key.
#include "server/api/api_keys.h"

#include <gtest/gtest.h>

#include <fstream>
#include <string>

namespace mswa {
namespace {

TEST(ApiKeys, OffByDefault) {
  ApiKeys keys;
  EXPECT_FALSE(keys.enabled());
  EXPECT_TRUE(keys.Check("").ok());
  auto loaded = ApiKeys::Load("", "");
  ASSERT_TRUE(loaded.ok());
  EXPECT_FALSE(loaded->enabled());
}

TEST(ApiKeys, FlagAndFileKeysAllWork) {
  const std::string file = ::testing::TempDir() + "/api_keys_test_keys.txt";
  std::ofstream(file) << "# comment\n\n  file-key  \nsecond-file-key\n";
  auto keys = ApiKeys::Load("flag-a, flag-b", file);
  ASSERT_TRUE(keys.ok()) << keys.status();
  EXPECT_TRUE(keys->enabled());
  for (const char* k : {"flag-a", "flag-b", "file-key", "second-file-key"}) {
    EXPECT_TRUE(keys->Check(std::string("Bearer ") + k).ok()) << k;
  }
  EXPECT_TRUE(keys->Check("bearer flag-a").ok());   // the scheme in any case
  EXPECT_TRUE(keys->Check("BEARER  flag-a ").ok());  // spaces around the key
}

TEST(ApiKeys, RefusalsAreUnauthenticatedAndNeverEchoTheKey) {
  auto keys = ApiKeys::Load("secret-1", "");
  ASSERT_TRUE(keys.ok());
  for (const char* header : {"", "secret-1", "Bearer", "Bearer ", "Bearer secret-", "Bearer secret-12",
                             "Basic secret-1", "Bearer SECRET-1", "Bearer wrong-key"}) {
    const absl::Status s = keys->Check(header);
    EXPECT_EQ(s.code(), absl::StatusCode::kUnauthenticated) << header;
    EXPECT_EQ(std::string(s.message()).find("secret"), std::string::npos) << s.message();
    EXPECT_EQ(std::string(s.message()).find("wrong"), std::string::npos) << s.message();
  }
}

TEST(ApiKeys, BadConfigurationNamesTheFlag) {
  EXPECT_NE(std::string(ApiKeys::Load(" , ", "").status().message()).find("--api_key"), std::string::npos);
  EXPECT_NE(std::string(ApiKeys::Load("a b", "").status().message()).find("--api_key"), std::string::npos);
  const auto missing = ApiKeys::Load("", "/nonexistent/keys");
  EXPECT_EQ(missing.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(std::string(missing.status().message()).find("--api_key_file"), std::string::npos);
  const std::string empty = ::testing::TempDir() + "/api_keys_test_empty.txt";
  std::ofstream(empty) << "# nothing\n";
  EXPECT_NE(std::string(ApiKeys::Load("", empty).status().message()).find("no key"), std::string::npos);
}

}  // namespace
}  // namespace mswa
