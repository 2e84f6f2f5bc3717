// Postings: sorted lists of series refs, as iterators that compose.
//
// Intersect, Union and Difference take iterators and are iterators, so a selector's
// matchers become one tree evaluated lazily. Head and RocksDB indexes both implement
// IndexReader, and PostingsForMatchers turns matchers into postings over either.
#ifndef STRATA_STORAGE_POSTINGS_H_
#define STRATA_STORAGE_POSTINGS_H_

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "absl/functional/function_ref.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "src/matcher.h"

namespace strata {

using SeriesRef = uint64_t;

// Iterates series refs in strictly increasing order. Not thread-safe.
class Postings {
 public:
  virtual ~Postings() = default;
  // Moves to the next ref. False at the end or on error.
  virtual bool Next() = 0;
  // Moves to the first ref >= r. Never moves backwards: when the current ref is already
  // >= r it stays. False when there is none.
  virtual bool Seek(SeriesRef r) = 0;
  // REQUIRES: the last Next() or Seek() returned true.
  virtual SeriesRef At() const = 0;
  virtual absl::Status status() const { return absl::OkStatus(); }
  // At most this many refs are left from the start (SIZE_MAX: not known). Intersect puts
  // the smallest input first, so that it leads and the others are only sought into.
  virtual size_t SizeHint() const { return SIZE_MAX; }
};

std::unique_ptr<Postings> EmptyPostings();
// Over an owned, sorted, unique list.
std::unique_ptr<Postings> ListPostings(std::vector<SeriesRef> refs);
// Refs in every input. No inputs: empty.
std::unique_ptr<Postings> Intersect(std::vector<std::unique_ptr<Postings>> its);
// Refs in any input.
std::unique_ptr<Postings> Union(std::vector<std::unique_ptr<Postings>> its);
// Refs in `a` and not in `b`.
std::unique_ptr<Postings> Difference(std::unique_ptr<Postings> a, std::unique_ptr<Postings> b);
// Drains `p`.
absl::StatusOr<std::vector<SeriesRef>> ExpandPostings(Postings& p);

// A read view of one inverted index (the head's, or one RocksDB partition's).
class IndexReader {
 public:
  virtual ~IndexReader() = default;
  // Sorted, unique label names.
  virtual absl::StatusOr<std::vector<std::string>> LabelNames() = 0;
  // Sorted, unique values of `name` that start with `prefix`.
  virtual absl::StatusOr<std::vector<std::string>> LabelValues(std::string_view name,
                                                               std::string_view prefix) = 0;
  // The union of the postings of name=v for every v in `values` (any order; values absent
  // from the index contribute nothing).
  virtual absl::StatusOr<std::unique_ptr<Postings>> PostingsFor(
      std::string_view name, const std::vector<std::string>& values) = 0;
  // Every series in the index.
  virtual absl::StatusOr<std::unique_ptr<Postings>> AllPostings() = 0;

  // Calls `fn` for every value of `name` that starts with `prefix`, in any order. The
  // default reads LabelValues(); an index that can walks its values without copying them.
  virtual absl::Status ForEachLabelValue(std::string_view name, std::string_view prefix,
                                         absl::FunctionRef<void(std::string_view)> fn);
  // How many values `name` has, or SIZE_MAX when that is not known without reading them.
  virtual size_t NumLabelValues(std::string_view) { return SIZE_MAX; }
  // How many refs PostingsFor(name, values) would hold at most (the sum of the values'
  // postings), or SIZE_MAX when that is not known without reading them.
  virtual size_t PostingsSize(std::string_view, const std::vector<std::string>&) {
    return SIZE_MAX;
  }
  // True when FilterSeries() is supported: the index reads a series' labels from memory, so
  // checking a few candidate series against a matcher costs less than a regex over every
  // value of its label and the postings of all the values it matches.
  virtual bool CanFilterSeries() const { return false; }
  // The refs of `base` whose series satisfy every matcher in `matchers` (an absent label
  // matching as ""), checked series by series; refs of series the index no longer has are
  // dropped. REQUIRES: CanFilterSeries().
  virtual std::unique_ptr<Postings> FilterSeries(std::unique_ptr<Postings> base,
                                                 std::vector<LabelMatcher> matchers);
};

// The series whose labels satisfy every matcher (all series for no matchers), with
// Prometheus semantics: an absent label matches as "". Literal alternations and equality
// are looked up directly; regexes with a literal prefix scan only values with that prefix;
// other regexes test each value of the label once. When the index can filter series, the
// matcher with a known set of values and the fewest series leads, and each other matcher
// is checked on its candidates one by one where that costs less than reading its postings
// (a metric name with `job="node"` or a regex over `instance`: the name's few dozen series,
// not thousands of refs).
absl::StatusOr<std::unique_ptr<Postings>> PostingsForMatchers(
    IndexReader& index, const std::vector<LabelMatcher>& matchers);

}  // namespace strata

#endif  // STRATA_STORAGE_POSTINGS_H_
