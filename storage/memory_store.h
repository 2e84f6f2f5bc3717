// An in-memory Queryable: each series is a sorted vector of samples.
//
// For tests, the PromQL test-script runner and benchmarks. Not meant for production data
// volumes: Select scans every series.
#ifndef STRATA_STORAGE_MEMORY_STORE_H_
#define STRATA_STORAGE_MEMORY_STORE_H_

#include <map>
#include <memory>
#include <vector>

#include "absl/status/status.h"
#include "absl/synchronization/mutex.h"
#include "src/labels.h"
#include "src/sample.h"
#include "storage/querier.h"

namespace strata {

// Thread-safe: appends and queries may run concurrently. A Querier sees a snapshot of the
// series that existed when it was made (samples appended later to an existing series may or
// may not be visible).
class MemoryStore : public Queryable {
 public:
  MemoryStore() = default;

  // Appends one sample. Samples must arrive in increasing time order per series: an older
  // sample is an error (InvalidArgument), a duplicate timestamp with the same value (bit
  // for bit, or both NaN) is ignored, with a different value an error.
  absl::Status Append(const Labels& labels, Sample s);
  // Appends many samples of one series (same rules, checked before any is stored).
  absl::Status AppendMany(const Labels& labels, const std::vector<Sample>& samples);

  // Drops every series.
  void Clear();

  size_t NumSeries() const;
  // Every series and its samples, in label order (a copy).
  std::vector<std::pair<Labels, std::vector<Sample>>> All() const;

  absl::StatusOr<std::unique_ptr<Querier>> MakeQuerier(Timestamp mint, Timestamp maxt) override;

  using SeriesMap = std::map<Labels, std::shared_ptr<const std::vector<Sample>>>;

 private:
  mutable absl::Mutex mu_;
  // Copy-on-write sample vectors so that queriers can hold snapshots cheaply.
  SeriesMap series_ ABSL_GUARDED_BY(mu_);
};

}  // namespace strata

#endif  // STRATA_STORAGE_MEMORY_STORE_H_
