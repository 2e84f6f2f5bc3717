// The compacted block: a group of series' samples for one time window in one dense,
// bit-exact value (docs/format/compacted.md).
//
// Timestamp sequences shared by several series are stored once; values are coded as
// decimal mantissa/exponent deltas where that round-trips exactly, else as the XOR with the
// previous value, or (full-precision noise) as a run of fixed-width differences of the
// values' bits where that is shorter; a segment's last decimal deltas may be one run of
// fixed-width bit fields over their smallest delta (noisy counters); zstd runs over the
// whole block. A series may be coded
// relative to a "base" series of the block with the same timestamps (a classic histogram bucket
// against the bucket below): its decimal mantissas are then differences from the base's. A reader
// decompresses the block once and can then decode any one series, touching only its own
// columns and those of its chain of bases (at most kCompactedMaxBaseDepth). Every column
// restarts its coding every `restart_interval` samples, at the same sample indices in
// every column, so that a reader of a time range decodes from the restart before it
// instead of from the block's start.
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

// The first byte of every compacted block this build writes. Formats 1 (no bases), 2
// (no restarts), 3 (no runs of fixed-width deltas) and 4 (no mantissa runs) are still read.
inline constexpr uint8_t kCompactedBlockFormat = 5;
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
  // Every column restarts its coding (decoder state reset, the restart's byte offset in the
  // block's header) at sample indices that are multiples of this: a read of a time range
  // decodes at most this many samples before the range's first. Each restart costs a few
  // bytes per column. 0: no restarts.
  uint32_t restart_interval = 512;
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
  // Series i's timestamps in [mint, maxt] (empty when none), decoding only the segments of
  // the column that may hold them, and keeping them as Timestamps does.
  absl::StatusOr<std::span<const Timestamp>> Timestamps(size_t i, Timestamp mint,
                                                        Timestamp maxt) const;
  // At most the bytes the block holds: the payload, the timestamp columns once decoded
  // and the base values it keeps.
  size_t memory_bytes() const { return raw_.size() + decoded_bytes_; }

  // Appends series i's samples in [mint, maxt] to `out`. Decodes only that series' columns
  // and its bases' value columns (none when the base's values are kept), and of those only
  // the samples from the restart at or before mint up to maxt; decoded timestamps are kept
  // as by Timestamps. DataLoss when the columns are malformed (then `out` may hold some of
  // the samples); samples outside that stretch are not looked at, so damage there goes
  // unnoticed, as it would in an XOR chunk read up to maxt.
  absl::Status Decode(size_t i, std::vector<Sample>* out,
                      Timestamp mint = std::numeric_limits<Timestamp>::min(),
                      Timestamp maxt = std::numeric_limits<Timestamp>::max()) const;

 private:
  // A column's segments: the samples from one restart to the next. Segment s of a column
  // of count samples holds samples [s * interval_, min((s + 1) * interval_, count)) and
  // the column bytes [offset + bounds_[at + s], offset + bounds_[at + s + 1]).
  struct TsColumn {
    uint32_t count;
    Timestamp first, last;
    size_t offset, size;
    uint32_t segments;
    size_t at;    // into bounds_
    size_t t_at;  // into restart_t_: the first timestamp of each segment
  };
  static constexpr uint32_t kNoBase = UINT32_MAX;
  struct Entry {
    SeriesRef ref;
    uint32_t ts;
    uint32_t base;        // index of the base series, or kNoBase
    bool is_base;         // some series is coded against this one
    size_t offset, size;  // value column
    size_t at;            // into bounds_; as many segments as its timestamp column
  };
  // Values of the base series decoded last (at most kBaseColumns of them, least recently
  // used dropped first): a histogram's buckets decode each column once whether they are
  // read in ref order (ascending `le`) or in label order ("+Inf" < "0.005" < "10" < "2.5").
  static constexpr size_t kBaseColumns = 2 * kCompactedMaxBaseDepth;
  struct BaseColumns {
    struct Column {
      size_t series;
      uint64_t used;
      uint32_t from;  // the index of values[0] in the column (a restart)
      std::shared_ptr<const std::vector<double>> values;
    };
    std::mutex mu;
    std::vector<Column> columns;
    uint64_t clock = 0;
  };
  // Keeps series i's values [from, from + values.size()) (BaseColumns).
  void KeepBase(size_t i, uint32_t from, std::shared_ptr<const std::vector<double>> values) const;
  // A timestamp column's segments, each decoded on first use into its place in `t`.
  struct DecodedColumn {
    struct Segment {
      std::once_flag once;
      absl::Status status;
    };
    std::once_flag once;  // allocates `t` and `segments`
    std::unique_ptr<Timestamp[]> t;
    std::unique_ptr<Segment[]> segments;
  };
  // Timestamps [segment first * interval_, end of segment last) of timestamp column col,
  // decoding those segments not yet decoded.
  absl::StatusOr<std::span<const Timestamp>> DecodedTimestamps(size_t col, uint32_t first,
                                                               uint32_t last) const;
  // The first sample index of the segment holding sample k.
  uint32_t SegmentStart(uint32_t k) const { return static_cast<uint32_t>(k - k % interval_); }
  // Decodes values [SegmentStart(lo), n) of series i and stores values [lo, n) into
  // out[0, n - lo).v.
  absl::Status DecodeValues(size_t i, uint32_t lo, uint32_t n, Sample* out) const;

  std::string raw_;
  std::unique_ptr<BaseColumns> bases_ = std::make_unique<BaseColumns>();
  std::vector<TsColumn> ts_;
  std::vector<Entry> series_;
  uint64_t interval_ = uint64_t{1} << 32;  // samples per segment; above any count: none
  int format_ = kCompactedBlockFormat;     // its first byte: which value tokens it may hold
  std::vector<uint32_t> bounds_;           // segments + 1 byte offsets per column, from its start
  std::vector<Timestamp> restart_t_;       // per timestamp column, its segments' first timestamps
  std::unique_ptr<DecodedColumn[]> ts_decoded_;  // one per timestamp column
  size_t decoded_bytes_ = 0;  // every timestamp column and the most base values kept
};

}  // namespace strata

#endif  // STRATA_STORAGE_COMPACTED_BLOCK_H_
