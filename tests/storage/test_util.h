// Helpers shared by the storage tests.
#ifndef STRATA_TESTS_STORAGE_TEST_UTIL_H_
#define STRATA_TESTS_STORAGE_TEST_UTIL_H_

#include <unistd.h>

#include <bit>
#include <filesystem>
#include <limits>
#include <map>
#include <string>
#include <vector>

#include "gtest/gtest.h"
#include "src/matcher.h"
#include "src/strings.h"
#include "storage/querier.h"

namespace strata::testing {

// A fresh directory under /tmp named for the running test; removed by the destructor.
class TempDir {
 public:
  TempDir() {
    const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
    path_ = (std::filesystem::temp_directory_path() /
             fmt::format("strata_{}_{}_{}", info->test_suite_name(), info->name(), ::getpid()))
                .string();
    std::filesystem::remove_all(path_);
    std::filesystem::create_directories(path_);
  }
  ~TempDir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

inline LabelMatcher M(MatchType type, std::string_view name, std::string_view value) {
  auto m = LabelMatcher::Make(type, name, value);
  EXPECT_TRUE(m.ok()) << m.status();
  return *m;
}

// Every series a Select returns, with all its samples, keyed by the labels' string form.
using SeriesSamplesMap = std::map<std::string, std::vector<Sample>>;

// `take`: through SeriesSet::TakeSamples, as the engine reads, instead of Samples().
inline SeriesSamplesMap ReadAll(Querier& q, const std::vector<LabelMatcher>& matchers,
                                SelectHints hints = {}, bool take = false) {
  SeriesSamplesMap out;
  auto set = q.Select(matchers, hints);
  EXPECT_TRUE(set.ok()) << set.status();
  if (!set.ok()) return out;
  std::string prev;
  bool first = true;
  while ((*set)->Next()) {
    std::string key = (*set)->labels().ToString();
    if (!first) {
      EXPECT_LT(prev, key) << "series not sorted or repeated";
    }
    first = false;
    prev = key;
    auto it = take ? (*set)->TakeSamples() : (*set)->Samples();
    std::vector<Sample>& samples = out[key];
    while (it->Next()) samples.push_back(it->At());
    EXPECT_TRUE(it->status().ok()) << it->status();
  }
  EXPECT_TRUE((*set)->status().ok());
  return out;
}

inline bool SameSamples(const std::vector<Sample>& a, const std::vector<Sample>& b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i) {
    if (a[i].t != b[i].t || std::bit_cast<uint64_t>(a[i].v) != std::bit_cast<uint64_t>(b[i].v)) {
      return false;
    }
  }
  return true;
}

inline std::string Describe(const std::vector<Sample>& s) {
  std::string out;
  for (const Sample& x : s) out += fmt::format("({},{}) ", x.t, x.v);
  return out;
}

// Every series with a metric name, over all time.
inline SeriesSamplesMap ReadEverything(Queryable& db) {
  auto q = db.MakeQuerier(std::numeric_limits<Timestamp>::min() / 2,
                          std::numeric_limits<Timestamp>::max() / 2);
  EXPECT_TRUE(q.ok()) << q.status();
  if (!q.ok()) return {};
  return ReadAll(**q, {M(MatchType::kRegexMatch, "__name__", ".+")});
}

// The same series with the same samples, bit for bit.
inline void ExpectSame(const SeriesSamplesMap& got, const SeriesSamplesMap& want) {
  ASSERT_EQ(got.size(), want.size());
  for (const auto& [key, samples] : want) {
    ASSERT_TRUE(got.count(key)) << key;
    ASSERT_TRUE(SameSamples(got.at(key), samples))
        << key << "\n got  " << Describe(got.at(key)) << "\n want " << Describe(samples);
  }
}

}  // namespace strata::testing

#endif  // STRATA_TESTS_STORAGE_TEST_UTIL_H_
