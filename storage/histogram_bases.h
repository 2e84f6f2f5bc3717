// Which series of a compacted block are coded against which (docs/format/compacted.md,
// "Choosing bases"): classic histogram buckets against the bucket below.
#ifndef STRATA_STORAGE_HISTOGRAM_BASES_H_
#define STRATA_STORAGE_HISTOGRAM_BASES_H_

#include <span>

#include "src/labels.h"
#include "storage/compacted_block.h"

namespace strata {

// Sets the base of every series of `series` that is a classic histogram bucket (name ending
// in `_bucket`, an `le` label that parses as a number) to the bucket of the same family
// (same labels but `le`) with the next lower `le`, when both are in `series` and have exactly
// the same timestamps, and the base of the family's `_count` (same labels, no `le`) to its
// +Inf bucket, which it equals; clears every other base. `labels[i]` are the labels of
// `series[i]` (empty when unknown: never a bucket).
void AssignHistogramBases(std::span<CompactedSeries> series, std::span<const Labels> labels);

}  // namespace strata

#endif  // STRATA_STORAGE_HISTOGRAM_BASES_H_
