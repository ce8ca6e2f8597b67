#include "server/api/model_name.h"

#include "absl/strings/str_cat.h"

namespace mswa {

absl::Status CheckModelName(const std::string& served, const std::string& requested) {
  if (requested.empty() || requested == served) return absl::OkStatus();
  // A client's string goes into the message: cut it, never inside a UTF-8 character.
  constexpr size_t kMaxQuoted = 256;
  size_t cut = requested.size();
  if (cut > kMaxQuoted) {
    cut = kMaxQuoted;
    while (cut > 0 && (static_cast<unsigned char>(requested[cut]) & 0xC0) == 0x80) --cut;
  }
  return absl::NotFoundError(absl::StrCat("model: \"", requested.substr(0, cut),
                                          "\" is not served here; this server serves \"", served,
                                          "\""));
}

}  // namespace mswa
