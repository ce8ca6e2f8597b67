// python3-jinja2 as the chat-template tests' reference (chat_template_reference.h).
#include "tests/model/chat_template_reference.h"

#include <unistd.h>

#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"

namespace mswa::testing {
namespace {

using json = nlohmann::json;
using ordered_json = nlohmann::ordered_json;

const std::string kReferenceScript = MSWA_SOURCE_DIR "/tests/model/chat_template_reference.py";

}  // namespace

bool HaveJinja2() {
  static const bool have = std::system(MSWA_PYTHON " -c 'import jinja2' > /dev/null 2>&1") == 0;
  return have;
}

std::string ScratchFile(const std::string& stem) {
  static std::atomic<int> counter{0};
  return absl::StrCat(::testing::TempDir(), "/chat_template_", getpid(), "_", counter++, "_", stem);
}

std::vector<Rendered> RenderWithJinja2(const std::vector<Case>& cases) {
  ordered_json batch = ordered_json::array();
  for (const Case& c : cases) batch.push_back({{"template", c.source}, {"context", c.context}});
  const std::string path = ScratchFile("cases.json");
  std::ofstream(path) << batch.dump();
  const std::string command =
      absl::StrCat(MSWA_PYTHON " '", kReferenceScript, "' --batch '", path, "'");
  FILE* pipe = popen(command.c_str(), "r");
  std::string output;
  char buffer[1 << 16];
  for (size_t n; pipe != nullptr && (n = fread(buffer, 1, sizeof(buffer), pipe)) > 0;) {
    output.append(buffer, n);
  }
  const int status = pipe != nullptr ? pclose(pipe) : -1;
  std::filesystem::remove(path);
  if (status != 0) {
    ADD_FAILURE() << command << " failed (" << status << ")";
    return {};
  }
  std::vector<Rendered> results;
  for (const json& r : json::parse(output)) {
    const bool ok = r["ok"].get<bool>();
    results.push_back({ok, r[ok ? "output" : "error"].get<std::string>()});
  }
  return results;
}

void ExpectSameAsJinja2(const std::vector<Case>& cases) {
  const std::vector<Rendered> reference = RenderWithJinja2(cases);
  ASSERT_EQ(reference.size(), cases.size());
  for (size_t i = 0; i < cases.size(); ++i) {
    const absl::StatusOr<std::string> ours = Render(cases[i].source, cases[i].context);
    SCOPED_TRACE(absl::StrCat(cases[i].label, "\ncontext: ", cases[i].context.dump()));
    if (reference[i].ok) {
      ASSERT_TRUE(ours.ok()) << "jinja2 rendered:\n"
                             << reference[i].text << "\nours failed: " << ours.status();
      EXPECT_EQ(*ours, reference[i].text);
    } else {
      EXPECT_FALSE(ours.ok()) << "jinja2 failed with " << reference[i].text << "\nours rendered:\n"
                              << *ours;
    }
  }
}

}  // namespace mswa::testing
