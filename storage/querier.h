// The read interface between storage and the query engine.
//
// query/ sees storage only through these types, so the evaluator can run on any
// implementation: the real head + RocksDB querier, or an in-memory one in tests.
#ifndef STRATA_STORAGE_QUERIER_H_
#define STRATA_STORAGE_QUERIER_H_

#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "src/labels.h"
#include "src/matcher.h"
#include "src/sample.h"

namespace strata {

// Iterates the samples of one series in increasing time order. Not thread-safe.
class SampleIterator {
 public:
  virtual ~SampleIterator() = default;
  // Moves to the next sample. Returns false at the end or on error (see status()).
  virtual bool Next() = 0;
  // Moves to the first sample with time >= t. Never moves backwards: when the current
  // sample is already at or after t it stays. Returns false when there is none.
  virtual bool Seek(Timestamp t) = 0;
  // The current sample. REQUIRES: the last Next() or Seek() returned true.
  virtual Sample At() const = 0;
  // OK unless iteration stopped on an error (corrupt chunk, I/O).
  virtual absl::Status status() const = 0;

  // Appends every sample with mint <= time <= maxt to `out`, in order. For bulk decoding
  // (range queries read each series once). REQUIRES: a fresh iterator (no Next() or Seek()
  // called yet). Implementations may override it for speed; the default uses Seek/Next.
  virtual absl::Status AppendRange(Timestamp mint, Timestamp maxt, std::vector<Sample>* out);
};

// What the caller will do with a selection; lets storage skip work.
struct SelectHints {
  Timestamp mint = 0;  // only samples in [mint, maxt] are needed
  Timestamp maxt = 0;
  int64_t step_ms = 0;       // 0 for instant queries
  int64_t range_ms = 0;      // the range of an enclosing range selector, 0 if none
  std::string func;          // the enclosing function name, "" if none
  bool series_only = false;  // labels are wanted, samples are not (/api/v1/series)
  // Series in order of their label sets. When false the order is the store's own (the
  // database's: by series ref, that is in order of creation), which is cheaper: sorting
  // thousands of label sets costs more than reading their samples. The PromQL engine does
  // not need label order (it groups by hash and sorts range results at the end).
  bool sorted = true;
  // Only each series' newest sample in [mint, maxt] is needed (an instant selector's
  // lookback): storage may leave out older ones. A series is still selected only if it
  // has a sample in the range.
  bool newest_only = false;
};

// A set of series, iterated in order of their label sets (Compare in src/labels.h) unless
// the hints said otherwise.
class SeriesSet {
 public:
  virtual ~SeriesSet() = default;
  // Moves to the next series. Returns false at the end or on error (see status()).
  virtual bool Next() = 0;
  // REQUIRES: the last Next() returned true. Valid until the next call to Next().
  virtual const Labels& labels() const = 0;
  // The current series' labels, moved out where the set can (labels() is then unspecified
  // until the next Next()), else copied. For callers that keep each series' labels.
  virtual Labels TakeLabels() { return labels(); }
  // A fresh iterator over the current series' samples within the selection's time range.
  virtual std::unique_ptr<SampleIterator> Samples() const = 0;
  // Samples() for a caller done with the current series: the set may hand over what it
  // holds for it (Samples() is then unspecified until the next Next()).
  virtual std::unique_ptr<SampleIterator> TakeSamples() { return Samples(); }
  virtual absl::Status status() const = 0;
  // Non-fatal problems met while selecting (for example a partition that failed to load).
  virtual std::vector<std::string> warnings() const { return {}; }
};

// A read view of the database bounded to [mint, maxt]. Implementations must be safe to
// use from one thread while appends continue on others, and must return a consistent
// answer for data acknowledged before the Querier was created.
class Querier {
 public:
  virtual ~Querier() = default;

  // The series that match every matcher and have at least one sample in the hints' range,
  // sorted by label set when hints.sorted. At least one matcher must not match the empty string.
  virtual absl::StatusOr<std::unique_ptr<SeriesSet>> Select(
      const std::vector<LabelMatcher>& matchers, const SelectHints& hints) = 0;

  // Sorted, unique label names of the series that match every matcher (all series when
  // `matchers` is empty).
  virtual absl::StatusOr<std::vector<std::string>> LabelNames(
      const std::vector<LabelMatcher>& matchers) = 0;

  // Sorted, unique values of label `name` over the series that match every matcher.
  virtual absl::StatusOr<std::vector<std::string>> LabelValues(
      std::string_view name, const std::vector<LabelMatcher>& matchers) = 0;
};

// Something that can make Queriers: the database, or a test store.
class Queryable {
 public:
  virtual ~Queryable() = default;
  virtual absl::StatusOr<std::unique_ptr<Querier>> MakeQuerier(Timestamp mint, Timestamp maxt) = 0;
};

}  // namespace strata

#endif  // STRATA_STORAGE_QUERIER_H_
