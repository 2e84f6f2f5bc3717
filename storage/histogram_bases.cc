#include "storage/histogram_bases.h"

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <string>
#include <unordered_map>
#include <vector>

namespace strata {
namespace {

constexpr std::string_view kBucketSuffix = "_bucket";

// The bucket's upper bound, if the series is a classic histogram bucket.
std::optional<double> UpperBound(const Labels& labels) {
  if (!labels.MetricName().ends_with(kBucketSuffix)) return std::nullopt;
  const std::string le(labels.Get("le"));
  if (le.empty()) return std::nullopt;
  char* end = nullptr;
  const double bound = std::strtod(le.c_str(), &end);
  if (end != le.c_str() + le.size() || std::isnan(bound)) return std::nullopt;
  return bound;
}

// Every label but `le`, the name included: equal for the buckets of one family.
std::string FamilyKey(const Labels& labels) {
  std::string key;
  for (const LabelView& l : labels) {
    if (l.name == "le") continue;
    key.append(l.name);
    key.push_back('\0');
    key.append(l.value);
    key.push_back('\0');
  }
  return key;
}

bool SameTimestamps(const std::vector<Sample>& a, const std::vector<Sample>& b) {
  return std::equal(a.begin(), a.end(), b.begin(), b.end(),
                    [](const Sample& x, const Sample& y) { return x.t == y.t; });
}

}  // namespace

void AssignHistogramBases(std::span<CompactedSeries> series, std::span<const Labels> labels) {
  struct Bucket {
    double bound;
    size_t index;
  };
  std::unordered_map<std::string, std::vector<Bucket>> families;
  for (size_t i = 0; i < series.size(); ++i) {
    series[i].base.reset();
    if (std::optional<double> bound = UpperBound(labels[i])) {
      families[FamilyKey(labels[i])].push_back({*bound, i});
    }
  }
  for (auto& [key, buckets] : families) {
    // Series are in ref order, so ties in `le` ("1" and "1.0") keep ref order.
    std::stable_sort(buckets.begin(), buckets.end(),
                     [](const Bucket& a, const Bucket& b) { return a.bound < b.bound; });
    for (size_t k = 1; k < buckets.size(); ++k) {
      CompactedSeries& s = series[buckets[k].index];
      const CompactedSeries& below = series[buckets[k - 1].index];
      if (SameTimestamps(s.samples, below.samples)) s.base = below.ref;
    }
  }
}

}  // namespace strata
