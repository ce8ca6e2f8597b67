#include "model/runtime/stop_matcher.h"

#include <algorithm>
#include <utility>

namespace mswa {

StopMatcher::StopMatcher(std::vector<std::string> stops) {
  for (std::string& s : stops) {
    if (s.empty()) continue;
    max_stop_length_ = std::max(max_stop_length_, s.size());
    stops_.push_back(std::move(s));
  }
}

std::string StopMatcher::Push(std::string_view text) {
  if (matched_) return "";
  if (stops_.empty()) return std::string(text);
  pending_.append(text);

  // pending_ held no complete stop before this call, so any occurrence found here ends in the
  // new text, and none can start in already released text: such a start would have made a
  // longer held-back suffix. The first occurrence of each stop is also its earliest-ending one.
  const std::string_view buf(pending_);
  size_t best_start = std::string_view::npos;
  size_t best_end = std::string_view::npos;
  const std::string* best_stop = nullptr;
  for (const std::string& stop : stops_) {
    const size_t start = buf.find(stop);
    if (start == std::string_view::npos) continue;
    const size_t end = start + stop.size();
    if (best_stop == nullptr || end < best_end || (end == best_end && start < best_start)) {
      best_start = start;
      best_end = end;
      best_stop = &stop;
    }
  }
  if (best_stop != nullptr) {
    matched_ = true;
    matched_stop_ = *best_stop;
    std::string released = pending_.substr(0, best_start);
    pending_.clear();
    return released;
  }

  const size_t held = HeldSuffixLength();
  std::string released = pending_.substr(0, pending_.size() - held);
  pending_.erase(0, pending_.size() - held);
  return released;
}

size_t StopMatcher::HeldSuffixLength() const {
  const std::string_view buf(pending_);
  // Longest first, so the first hit is the answer; a proper prefix is shorter than its stop.
  for (size_t len = std::min(buf.size(), max_stop_length_ - 1); len > 0; --len) {
    const std::string_view suffix = buf.substr(buf.size() - len);
    for (const std::string& stop : stops_) {
      if (stop.size() > len && std::string_view(stop).substr(0, len) == suffix) return len;
    }
  }
  return 0;
}

std::string StopMatcher::Flush() {
  std::string released;
  released.swap(pending_);
  return released;
}

}  // namespace mswa
