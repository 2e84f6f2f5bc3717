// Write-ahead log: numbered segment files of checksummed records.
//
// Layout and record payloads are documented byte by byte in docs/format/wal.md.
// Appenders Enqueue() encoded records and then Sync() to the returned sequence number; one
// appender at a time becomes the leader and writes (and, with `sync`, fsyncs) everything
// queued so far, so many concurrent batches share one write and one fsync (group commit).
#ifndef STRATA_STORAGE_WAL_H_
#define STRATA_STORAGE_WAL_H_

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "src/labels.h"
#include "src/metrics.h"
#include "src/sample.h"

namespace strata {

using SeriesRef = uint64_t;

enum class WalRecordType : uint8_t {
  kSeries = 1,      // new series: ref and encoded label set
  kSamples = 2,     // a batch of (ref, t, v)
  kTombstones = 3,  // deleted intervals of series (storage/tombstones.h)
};

struct WalSeries {
  SeriesRef ref = 0;
  std::string_view labels;  // Labels::encoded()
};

struct WalSample {
  SeriesRef ref = 0;
  Timestamp t = 0;
  double v = 0;
};

// Record payload codecs. Encoders append to `out`.
void EncodeWalSeries(std::span<const WalSeries> series, std::string* out);
void EncodeWalSamples(std::span<const WalSample> samples, std::string* out);
// Decoders replace the contents of `out`; views point into `payload`.
absl::Status DecodeWalSeries(std::string_view payload, std::vector<WalSeries>* out);
absl::Status DecodeWalSamples(std::string_view payload, std::vector<WalSample>* out);

struct WalOptions {
  // fsync every group commit. When false, a write() is still done before acknowledging, so
  // a killed process loses nothing; only an OS crash or power loss can.
  bool sync = true;
  // A segment is closed and a new one started once it reaches this size.
  uint64_t segment_bytes = 64 << 20;
  // Self-metrics, when set (not owned): bytes written, and fsync durations in seconds.
  Counter* bytes_written = nullptr;
  Histogram* fsync_seconds = nullptr;
};

// The segment files in `dir`, sorted by index. Missing dir: empty.
absl::StatusOr<std::vector<int64_t>> ListWalSegments(const std::string& dir);
std::string WalSegmentPath(const std::string& dir, int64_t index);

struct WalReplayStats {
  int64_t segments = 0;
  int64_t records = 0;
  int64_t bytes = 0;
  bool truncated = false;  // a torn or corrupt tail was cut off
};

// Reads every record of every segment in `dir` in order and calls `fn` with the segment's
// index, the record's type and its payload (valid only during the call). At the first record that
// is torn (cut short) or corrupt (bad checksum or type), the segment is truncated at that record's
// offset, later segments are deleted, a warning naming the segment and offset is logged, and replay
// ends successfully: everything before it has been delivered. An error from `fn` stops replay and
// is returned.
absl::StatusOr<WalReplayStats> ReplayWal(
    const std::string& dir,
    const std::function<absl::Status(int64_t segment, WalRecordType, std::string_view)>& fn);

// The writer. Thread-safe.
class Wal {
 public:
  // Creates `dir` if needed and starts a new segment after the last existing one.
  static absl::StatusOr<std::unique_ptr<Wal>> Open(const std::string& dir, WalOptions options);
  ~Wal();
  Wal(const Wal&) = delete;
  Wal& operator=(const Wal&) = delete;

  // Queues one record and returns its sequence number. Records are written in the order
  // they are queued. Cheap: a copy under a mutex.
  uint64_t Enqueue(WalRecordType type, std::string_view payload);
  // Returns once every record queued up to `seq` is written (and fsynced with `sync`), or
  // the error that stopped it. After a write error every later Sync fails too.
  absl::Status Sync(uint64_t seq);
  // Returns once every record queued before the call is written (and fsynced with `sync`).
  absl::Status SyncQueued();
  absl::Status Log(WalRecordType type, std::string_view payload) {
    return Sync(Enqueue(type, payload));
  }

  // The index of the segment being written. A record queued after this call lands in this
  // segment or a later one.
  int64_t current_segment() const { return current_segment_.load(); }
  // Writes what is queued and starts a new segment (unless the current one is still
  // empty); returns the index of the segment that the next record will land in.
  absl::StatusOr<int64_t> Rotate();
  // Deletes every segment with index < `before` (never the current one).
  absl::Status DeleteSegmentsBefore(int64_t before);
  // Writes and syncs everything queued, then closes the file. Further calls fail.
  absl::Status Close();

  uint64_t bytes_written() const { return bytes_written_.load(); }
  uint64_t syncs() const { return syncs_.load(); }

 private:
  Wal(std::string dir, WalOptions options) : dir_(std::move(dir)), options_(options) {}
  absl::Status OpenSegment(int64_t index);                         // REQUIRES: leader
  absl::Status WriteAndSync(const std::string& buf, bool rotate);  // REQUIRES: leader
  // Writes and syncs everything enqueued so far, unlocking `lock` during the I/O, then
  // records the durable sequence or the sticky error. REQUIRES: leader, `lock` held.
  absl::Status FlushPending(std::unique_lock<std::mutex>& lock, bool rotate);
  // Becomes the leader (waits for the current one). REQUIRES: lock held.
  void AcquireLeader(std::unique_lock<std::mutex>& lock);
  void ReleaseLeader();  // REQUIRES: lock held

  const std::string dir_;
  const WalOptions options_;

  std::mutex mu_;
  std::condition_variable cv_;
  std::string pending_;        // encoded records not yet handed to a leader
  uint64_t enqueued_seq_ = 0;  // seq of the last queued record
  uint64_t durable_seq_ = 0;   // every record up to this one is written
  bool leader_ = false;        // someone is writing
  absl::Status error_;         // sticky write error
  bool closed_ = false;

  // Owned by the leader.
  int fd_ = -1;
  uint64_t segment_size_ = 0;

  std::atomic<int64_t> current_segment_{0};
  std::atomic<uint64_t> bytes_written_{0};
  std::atomic<uint64_t> syncs_{0};
};

}  // namespace strata

#endif  // STRATA_STORAGE_WAL_H_
