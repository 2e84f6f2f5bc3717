// The embeddable Strata API: open a data directory, append samples, query, close.
//
// Self-contained: this header needs only the C++ standard library, so a program that
// embeds Strata includes nothing else of ours and none of our dependencies' headers.
// Link against the strata_storage library (and its dependencies).
//
//   std::unique_ptr<strata::DB> db;
//   strata::Status st = strata::DB::Open({.dir = "/var/lib/strata"}, &db);
//   strata::AppendStats result;
//   st = db->Append({{{{"__name__", "up"}, {"job", "node"}}, {{1700000000000, 1.0}}}}, &result);
//   std::vector<strata::SeriesData> series;
//   st = db->Query({{"__name__", "up"}}, 0, 1800000000000, &series);
#ifndef STRATA_INCLUDE_STRATA_DB_H_
#define STRATA_INCLUDE_STRATA_DB_H_

#include <cstdint>
#include <memory>
#include <string>
#include <utility>
#include <vector>

namespace strata {

// The outcome of a call. Codes follow absl/gRPC canonical codes.
class Status {
 public:
  enum class Code {
    kOk = 0,
    kInvalidArgument = 3,
    kNotFound = 5,
    kPermissionDenied = 7,
    kResourceExhausted = 8,
    kFailedPrecondition = 9,
    kInternal = 13,
    kUnavailable = 14,
    kDataLoss = 15,
    kUnknown = 2,
  };
  Status() = default;
  Status(Code code, std::string message) : code_(code), message_(std::move(message)) {}
  bool ok() const { return code_ == Code::kOk; }
  Code code() const { return code_; }
  const std::string& message() const { return message_; }
  std::string ToString() const { return ok() ? "OK" : message_; }

 private:
  Code code_ = Code::kOk;
  std::string message_;
};

struct Options {
  std::string dir;  // the data directory; created if missing
  // fsync the write-ahead log before acknowledging (else a killed process still loses
  // nothing, but a power loss may).
  bool wal_fsync = true;
  int64_t partition_ms = 24 * 3600 * 1000;       // RocksDB time partition length
  int64_t max_sample_age_ms = 24 * 3600 * 1000;  // older samples are rejected; 0: no limit
  // A sample older than its series' last one by at most this much is still stored; 0: every
  // out-of-order sample is rejected.
  int64_t out_of_order_window_ms = 0;
  int64_t flush_interval_ms = 60 * 1000;  // background flush period; 0: none
  // Close writes every in-memory chunk to the on-disk store and empties the write-ahead log,
  // so that the closed directory is compact and the next Open replays nothing.
  bool flush_on_close = true;
};

// Labels as (name, value) pairs in any order; empty values are dropped.
using LabelPairs = std::vector<std::pair<std::string, std::string>>;

// Milliseconds since the Unix epoch and a value (every float64 is kept bit for bit).
struct Point {
  int64_t t = 0;
  double v = 0;
};

struct SeriesSamples {
  LabelPairs labels;
  std::vector<Point> samples;  // in the order they should be appended
};

struct AppendStats {
  int64_t appended = 0;
  int64_t unchanged = 0;              // same time and value as the series' last sample
  int64_t out_of_order = 0;           // older than the series' last sample: dropped
  int64_t too_old = 0;                // older than max_sample_age_ms allows: dropped
  int64_t duplicate = 0;              // same time as the last sample, other value: dropped
  int64_t out_of_order_appended = 0;  // of `appended`: taken by the out-of-order window
};

// name="value" (kEqual), !=, =~ (RE2, fully anchored), !~.
struct Matcher {
  enum class Op { kEqual, kNotEqual, kRegexMatch, kRegexNoMatch };
  std::string name;
  std::string value;
  Op op = Op::kEqual;
};

struct SeriesData {
  LabelPairs labels;  // sorted by name
  std::vector<Point> samples;
};

// Thread-safe: any number of threads may Append and Query at once.
class DB {
 public:
  // Opens or creates the database in options.dir, replaying its write-ahead log. Fails if
  // another process has the directory open, if it was written by an incompatible version,
  // or if it cannot be written; the message names the directory.
  static Status Open(const Options& options, std::unique_ptr<DB>* db);
  virtual ~DB() = default;

  // Appends a batch. Rejected samples are counted in *result and dropped; the rest is kept.
  // Returns once the accepted samples are durable in the write-ahead log.
  virtual Status Append(const std::vector<SeriesSamples>& batch, AppendStats* result) = 0;

  // The series matching every matcher with samples in [mint, maxt], sorted by labels, with
  // those samples. At least one matcher must not match the empty string.
  virtual Status Query(const std::vector<Matcher>& matchers, int64_t mint, int64_t maxt,
                       std::vector<SeriesData>* out) = 0;
  // Sorted label names / values of the series matching `matchers` (all series if empty).
  virtual Status LabelNames(const std::vector<Matcher>& matchers,
                            std::vector<std::string>* out) = 0;
  virtual Status LabelValues(const std::string& name, const std::vector<Matcher>& matchers,
                             std::vector<std::string>* out) = 0;

  // Writes closed in-memory chunks to the on-disk store and trims the write-ahead log.
  virtual Status Flush() = 0;
  // Flushes (flush_on_close), syncs and closes; the destructor calls it. Further calls fail.
  // An error means the flush failed: nothing is lost, the next Open replays the
  // write-ahead log.
  virtual Status Close() = 0;
};

}  // namespace strata

#endif  // STRATA_INCLUDE_STRATA_DB_H_
