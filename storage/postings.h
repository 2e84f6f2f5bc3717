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
};

// The series whose labels satisfy every matcher (all series for no matchers), with
// Prometheus semantics: an absent label matches as "". Literal alternations and equality
// are looked up directly; regexes with a literal prefix scan only values with that prefix;
// other regexes test each value of the label once (never each series).
absl::StatusOr<std::unique_ptr<Postings>> PostingsForMatchers(
    IndexReader& index, const std::vector<LabelMatcher>& matchers);

}  // namespace strata

#endif  // STRATA_STORAGE_POSTINGS_H_
