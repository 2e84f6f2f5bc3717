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
constexpr std::string_view kCountSuffix = "_count";

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

// Every label but `le`, the name without its suffix: equal for the buckets and the _count
// of one family.
std::string FamilyKey(const Labels& labels, std::string_view suffix) {
  std::string key;
  for (const LabelView& l : labels) {
    if (l.name == "le") continue;
    key.append(l.name);
    key.push_back('\0');
    key.append(l.name == kMetricName ? l.value.substr(0, l.value.size() - suffix.size()) : l.value);
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
  std::unordered_map<std::string, size_t> counts;
  for (size_t i = 0; i < series.size(); ++i) {
    series[i].base.reset();
    if (std::optional<double> bound = UpperBound(labels[i])) {
      families[FamilyKey(labels[i], kBucketSuffix)].push_back({*bound, i});
    } else if (labels[i].MetricName().ends_with(kCountSuffix) && !labels[i].Has("le")) {
      counts.emplace(FamilyKey(labels[i], kCountSuffix), i);
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
    // The _count equals the +Inf bucket.
    const Bucket& top = buckets.back();
    if (auto c = counts.find(key);
        c != counts.end() && top.bound == HUGE_VAL &&
        SameTimestamps(series[c->second].samples, series[top.index].samples)) {
      series[c->second].base = series[top.index].ref;
    }
  }
}

}  // namespace strata
