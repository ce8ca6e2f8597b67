#include "model/runtime/stop_matcher.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <random>
#include <string>
#include <string_view>
#include <vector>

namespace mswa {
namespace {

TEST(StopMatcher, MatchesAStopSplitOverTwoPieces) {
  StopMatcher m({"</s>"});
  EXPECT_EQ(m.Push("hello </"), "hello ");
  EXPECT_FALSE(m.matched());
  EXPECT_EQ(m.Push("s> more"), "");
  EXPECT_TRUE(m.matched());
  EXPECT_EQ(m.matched_stop(), "</s>");
}

TEST(StopMatcher, MatchesAStopSplitOverThreePieces) {
  StopMatcher m({"STOP"});
  EXPECT_EQ(m.Push("a ST"), "a ");
  EXPECT_EQ(m.Push("O"), "");
  EXPECT_EQ(m.Push("P!"), "");
  EXPECT_EQ(m.matched_stop(), "STOP");
}

TEST(StopMatcher, ReleasesAFalsePrefixOnceItCannotMatch) {
  StopMatcher m({"abc"});
  EXPECT_EQ(m.Push("ab"), "");
  EXPECT_EQ(m.Push("x"), "abx");
  EXPECT_FALSE(m.matched());
}

TEST(StopMatcher, KeepsHoldingWhenAFailedPrefixRestartsTheStop) {
  StopMatcher m({"abc"});
  EXPECT_EQ(m.Push("abab"), "ab");  // the second "ab" may still become "abc"
  EXPECT_EQ(m.Push("c"), "");
  EXPECT_TRUE(m.matched());
}

TEST(StopMatcher, OverlappingStopsEarliestEndThenLongestWins) {
  {
    StopMatcher m({"b", "ab"});  // both end at the same byte: the longer one
    EXPECT_EQ(m.Push("xab"), "x");
    EXPECT_EQ(m.matched_stop(), "ab");
  }
  {
    StopMatcher m({"ab", "b"});
    EXPECT_EQ(m.Push("xa"), "x");
    EXPECT_EQ(m.Push("b"), "");
    EXPECT_EQ(m.matched_stop(), "ab");
  }
  {
    StopMatcher m({"bcd", "c"});  // "c" completes first although "bcd" starts earlier
    EXPECT_EQ(m.Push("abcd"), "ab");
    EXPECT_EQ(m.matched_stop(), "c");
  }
}

TEST(StopMatcher, MatchesAStopAtTheVeryStart) {
  StopMatcher m({"STOP"});
  EXPECT_EQ(m.Push("STOP and more"), "");
  EXPECT_TRUE(m.matched());
}

TEST(StopMatcher, FindsTheFirstOfSeveralStops) {
  StopMatcher m({"\n\n", "END", "###"});
  EXPECT_EQ(m.Push("line\n"), "line");
  EXPECT_EQ(m.Push("next END ###"), "\nnext ");
  EXPECT_EQ(m.matched_stop(), "END");
}

TEST(StopMatcher, EverythingAfterAMatchIsDropped) {
  StopMatcher m({"x"});
  EXPECT_EQ(m.Push("abxcd"), "ab");
  EXPECT_EQ(m.Push("more"), "");
  EXPECT_EQ(m.Flush(), "");
  EXPECT_EQ(m.matched_stop(), "x");
}

TEST(StopMatcher, WithoutStopsEverythingPassesThrough) {
  StopMatcher m({});
  EXPECT_EQ(m.Push("any"), "any");
  EXPECT_EQ(m.Push(" text"), " text");
  EXPECT_EQ(m.Flush(), "");
  EXPECT_FALSE(m.matched());
  EXPECT_EQ(m.matched_stop(), "");
}

TEST(StopMatcher, IgnoresEmptyStopStrings) {
  StopMatcher m({"", "z"});
  EXPECT_EQ(m.Push("abc"), "abc");
  EXPECT_FALSE(m.matched());
}

TEST(StopMatcher, FlushReleasesHeldTextWhenNothingMatched) {
  StopMatcher m({"abc"});
  EXPECT_EQ(m.Push("xxab"), "xx");
  EXPECT_EQ(m.Flush(), "ab");
  EXPECT_EQ(m.Flush(), "");
  EXPECT_FALSE(m.matched());
}

TEST(StopMatcher, HandlesMultiByteCharacters) {
  StopMatcher m({"\xE2\x82\xAC\xE2\x82\xAC"});  // "€€"
  EXPECT_EQ(m.Push("a\xE2\x82\xAC"), "a");
  EXPECT_EQ(m.Push("b"), "\xE2\x82\xAC" "b");
  EXPECT_EQ(m.Push("\xE2\x82\xAC\xE2\x82\xAC!"), "");
  EXPECT_TRUE(m.matched());
}

// Random texts over a small alphabet, random splits: released text + stop is the text up to the
// earliest-ending match (longest on ties), and the held-back part never exceeds max length - 1.
TEST(StopMatcher, ReleasedTextPlusStopEqualsInputUpToTheMatch) {
  const std::vector<std::string> stops = {"abc", "cab", "bb", "cccc"};
  std::mt19937 gen(7);
  int matches = 0;
  for (int trial = 0; trial < 2000; ++trial) {
    std::string text;
    const int len = static_cast<int>(gen() % 30);
    for (int i = 0; i < len; ++i) text += static_cast<char>('a' + gen() % 3);

    // Naive: the first end position at which some stop ends; the longest such stop.
    size_t match_end = std::string::npos;
    std::string match_stop;
    for (size_t end = 1; end <= text.size() && match_stop.empty(); ++end) {
      for (const std::string& s : stops) {
        if (s.size() <= end && text.compare(end - s.size(), s.size(), s) == 0 &&
            s.size() > match_stop.size()) {
          match_stop = s;
          match_end = end;
        }
      }
    }

    StopMatcher m(stops);
    std::string released;
    size_t pushed = 0;
    while (pushed < text.size()) {
      const size_t n = std::min<size_t>(1 + gen() % 5, text.size() - pushed);
      released += m.Push(std::string_view(text).substr(pushed, n));
      pushed += n;
      if (!m.matched()) {
        ASSERT_LE(pushed - released.size(), 3u) << text;
      }
    }
    if (match_stop.empty()) {
      EXPECT_FALSE(m.matched()) << text;
      released += m.Flush();
      EXPECT_EQ(released, text);
    } else {
      ++matches;
      ASSERT_TRUE(m.matched()) << text;
      EXPECT_EQ(m.matched_stop(), match_stop) << text;
      EXPECT_EQ(released + m.matched_stop(), text.substr(0, match_end)) << text;
    }
  }
  EXPECT_GT(matches, 500);
}

}  // namespace
}  // namespace mswa
