// The compacted block: a group of series' samples for one time window in one dense,
// bit-exact value (docs/format/compacted.md).
//
// Timestamp sequences shared by several series are stored once; values are coded as
// decimal mantissa/exponent deltas where that round-trips exactly, else as the XOR with the
// previous value; zstd runs over the whole block. A series may be coded relative to a
// "base" series of the block with the same timestamps (a classic histogram bucket against
// the bucket below): its decimal mantissas are then differences from the base's. A reader
// decompresses the block once and can then decode any one series, touching only its own
// columns and those of its chain of bases (at most kCompactedMaxBaseDepth).
#ifndef STRATA_STORAGE_COMPACTED_BLOCK_H_
#define STRATA_STORAGE_COMPACTED_BLOCK_H_

#include <cstdint>
#include <limits>
#include <memory>
#include <mutex>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "src/sample.h"
#include "storage/postings.h"

namespace strata {

// The first byte of every compacted block this build writes. Format 1 (no bases) is still
// read.
inline constexpr uint8_t kCompactedBlockFormat = 2;
// A series' chain of bases (base, base of the base, ...) is at most this long; readers
// refuse longer chains (and so cycles).
inline constexpr int kCompactedMaxBaseDepth = 16;
// Blocks whose decompressed payload would exceed this are refused (writer and reader).
inline constexpr uint64_t kCompactedBlockMaxRawBytes = 256 << 20;

struct CompactedSeries {
  SeriesRef ref = 0;
  std::vector<Sample> samples;  // strictly increasing timestamps, at least one
  // Another series of the same block, with exactly the same timestamps, whose values this
  // one's are likely close to (the bucket below a histogram bucket). Only a coding hint:
  // any base reads back bit for bit, a good one makes the block smaller.
  std::optional<SeriesRef> base;
};

struct CompactedEncodeOptions {
  int zstd_level = 9;
  // Chains of bases longer than this are cut (the series that would be deeper is coded
  // alone and starts a new chain). Decoding a series alone decodes its chain too, so this
  // bounds the read cost of one series to 1 + max_base_depth columns (reading the chain's
  // series in order decodes each column once). 0: bases are ignored. Clamped to
  // kCompactedMaxBaseDepth.
  int max_base_depth = kCompactedMaxBaseDepth;
};

// Encodes the series, which must be sorted by ref without repeats, each with at least one
// sample and strictly increasing timestamps. A base must be the ref of another series of
// `series` with the same timestamps, and bases must not form a cycle (InvalidArgument
// otherwise).
absl::StatusOr<std::string> EncodeCompactedBlock(std::span<const CompactedSeries> series,
                                                 CompactedEncodeOptions options = {});

// For tests: a block's payload as stored before zstd, and a block around any payload.
absl::StatusOr<std::string> CompactedPayloadForTesting(std::string_view value);
std::string CompactedBlockFromPayloadForTesting(std::string_view payload);

// A decompressed, validated block. Immutable after Open (but for a cache of decoded base
// values, which it locks); safe to share between threads.
class CompactedBlock {
 public:
  // Decompresses and checks the block's structure (never reads outside `value`). DataLoss
  // on anything malformed.
  static absl::StatusOr<CompactedBlock> Open(std::string_view value);

  size_t num_series() const { return series_.size(); }
  SeriesRef ref(size_t i) const { return series_[i].ref; }
  size_t num_samples(size_t i) const { return ts_[series_[i].ts].count; }
  Timestamp mint(size_t i) const { return ts_[series_[i].ts].first; }
  Timestamp maxt(size_t i) const { return ts_[series_[i].ts].last; }
  // The index of the series that series i's values are coded against, if any.
  std::optional<size_t> base(size_t i) const {
    if (series_[i].base == kNoBase) return std::nullopt;
    return series_[i].base;
  }
  // Distinct timestamp columns (for statistics).
  size_t num_timestamp_columns() const { return ts_.size(); }
  size_t raw_bytes() const { return raw_.size(); }
  // The index of the series with this ref.
  std::optional<size_t> Find(SeriesRef ref) const;

  // Series i's timestamps, decoded on first use and kept (a timestamp column is shared by
  // every series of a scrape target, so a query over them decodes it once). DataLoss when
  // the column is malformed. The span lives as long as the block.
  absl::StatusOr<std::span<const Timestamp>> Timestamps(size_t i) const;
  // At most the bytes the block holds: the payload, the timestamp columns once decoded
  // and the base values it keeps.
  size_t memory_bytes() const { return raw_.size() + decoded_bytes_; }

  // Appends series i's samples in [mint, maxt] to `out`. Decodes only that series'
  // values and its bases' value columns (none when the base's values are kept), and values
  // only up to maxt; timestamps come from Timestamps. DataLoss when the columns are
  // malformed (then `out` may hold some of the samples); values after maxt are not looked
  // at, so damage there goes unnoticed, as it would in an XOR chunk read up to maxt.
  absl::Status Decode(size_t i, std::vector<Sample>* out,
                      Timestamp mint = std::numeric_limits<Timestamp>::min(),
                      Timestamp maxt = std::numeric_limits<Timestamp>::max()) const;

 private:
  struct TsColumn {
    uint32_t count;
    Timestamp first, last;
    size_t offset, size;
  };
  static constexpr uint32_t kNoBase = UINT32_MAX;
  struct Entry {
    SeriesRef ref;
    uint32_t ts;
    uint32_t base;        // index of the base series, or kNoBase
    bool is_base;         // some series is coded against this one
    size_t offset, size;  // value column
  };
  // Values of the base series decoded last (at most kBaseColumns of them, least recently
  // used dropped first): a histogram's buckets decode each column once whether they are
  // read in ref order (ascending `le`) or in label order ("+Inf" < "0.005" < "10" < "2.5").
  static constexpr size_t kBaseColumns = 2 * kCompactedMaxBaseDepth;
  struct BaseColumns {
    struct Column {
      size_t series;
      uint64_t used;
      std::shared_ptr<const std::vector<double>> values;  // a prefix of the series' values
    };
    std::mutex mu;
    std::vector<Column> columns;
    uint64_t clock = 0;
  };
  // Keeps series i's first values (BaseColumns).
  void KeepBase(size_t i, std::shared_ptr<const std::vector<double>> values) const;
  // A timestamp column once decoded (Timestamps).
  struct DecodedColumn {
    std::once_flag once;
    absl::Status status;
    std::vector<Timestamp> t;
  };
  // Decodes values [0, n) of series i and stores values [lo, n) into out[0, n - lo).v.
  absl::Status DecodeValues(size_t i, uint32_t lo, uint32_t n, Sample* out) const;

  std::string raw_;
  std::unique_ptr<BaseColumns> bases_ = std::make_unique<BaseColumns>();
  std::vector<TsColumn> ts_;
  std::vector<Entry> series_;
  std::unique_ptr<DecodedColumn[]> ts_decoded_;  // one per timestamp column
  size_t decoded_bytes_ = 0;  // every timestamp column and the most base values kept
};

}  // namespace strata

#endif  // STRATA_STORAGE_COMPACTED_BLOCK_H_
