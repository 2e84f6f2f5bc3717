#include "storage/wal.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <bit>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <filesystem>

#include "spdlog/spdlog.h"
#include "src/status.h"
#include "src/strings.h"
#include "storage/coding.h"
#define XXH_INLINE_ALL
#include "xxhash.h"

namespace strata {
namespace {

namespace fs = std::filesystem;

constexpr size_t kHeaderSize = 9;  // length u32, type u8, checksum u32
constexpr uint32_t kMaxRecordBytes = 1u << 30;

uint32_t Checksum(uint8_t type, std::string_view payload) {
  XXH3_state_t st;
  XXH3_64bits_reset(&st);
  XXH3_64bits_update(&st, &type, 1);
  XXH3_64bits_update(&st, payload.data(), payload.size());
  return static_cast<uint32_t>(XXH3_64bits_digest(&st));
}

absl::Status ErrnoStatus(std::string_view what, const std::string& path) {
  int e = errno;
  std::string msg = fmt::format("{} {}: {}", what, path, std::strerror(e));
  if (e == EACCES || e == EPERM || e == EROFS) return absl::PermissionDeniedError(msg);
  if (e == ENOSPC) return absl::ResourceExhaustedError(msg);
  return absl::InternalError(msg);
}

absl::Status SyncDir(const std::string& dir) {
  int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY);
  if (fd < 0) return ErrnoStatus("open directory", dir);
  int rc = ::fsync(fd);
  ::close(fd);
  if (rc != 0) return ErrnoStatus("fsync directory", dir);
  return absl::OkStatus();
}

bool IsSegmentName(const std::string& name) {
  return name.size() == 8 &&
         std::all_of(name.begin(), name.end(), [](char c) { return c >= '0' && c <= '9'; });
}

}  // namespace

void EncodeWalSeries(std::span<const WalSeries> series, std::string* out) {
  for (const WalSeries& s : series) {
    coding::PutUvarint(out, s.ref);
    coding::PutUvarint(out, s.labels.size());
    out->append(s.labels);
  }
}

void EncodeWalSamples(std::span<const WalSample> samples, std::string* out) {
  coding::PutUvarint(out, samples.size());
  if (samples.empty()) return;
  Timestamp base = samples[0].t;
  coding::PutVarint(out, base);
  // Into room for the longest encoding (two 10-byte varints and 8 bytes per sample), then
  // cut to size: byte-wise appends to the string cost more than the samples' whole encoding.
  const size_t start = out->size();
  out->resize(start + samples.size() * 28);
  char* p = out->data() + start;
  auto put_uvarint = [&p](uint64_t v) {
    while (v >= 0x80) {
      *p++ = static_cast<char>((v & 0x7f) | 0x80);
      v >>= 7;
    }
    *p++ = static_cast<char>(v);
  };
  for (const WalSample& s : samples) {
    put_uvarint(s.ref);
    put_uvarint(coding::Zigzag(s.t - base));
    const uint64_t bits = std::bit_cast<uint64_t>(s.v);
    for (int i = 0; i < 8; ++i) p[i] = static_cast<char>(bits >> (8 * i));
    p += 8;
  }
  out->resize(p - out->data());
}

absl::Status DecodeWalSeries(std::string_view payload, std::vector<WalSeries>* out) {
  out->clear();
  while (!payload.empty()) {
    WalSeries s;
    uint64_t len;
    if (!coding::GetUvarint(&payload, &s.ref) || !coding::GetUvarint(&payload, &len) ||
        len > payload.size()) {
      return absl::DataLossError("malformed WAL series record");
    }
    s.labels = payload.substr(0, len);
    payload.remove_prefix(len);
    out->push_back(s);
  }
  return absl::OkStatus();
}

absl::Status DecodeWalSamples(std::string_view payload, std::vector<WalSample>* out) {
  out->clear();
  uint64_t n;
  if (!coding::GetUvarint(&payload, &n)) return absl::DataLossError("malformed WAL samples record");
  if (n == 0) return absl::OkStatus();
  int64_t base;
  if (!coding::GetVarint(&payload, &base) || n > payload.size()) {
    return absl::DataLossError("malformed WAL samples record");
  }
  out->reserve(n);
  for (uint64_t i = 0; i < n; ++i) {
    WalSample s;
    int64_t dt;
    if (!coding::GetUvarint(&payload, &s.ref) || !coding::GetVarint(&payload, &dt) ||
        payload.size() < 8) {
      return absl::DataLossError("malformed WAL samples record");
    }
    s.t = base + dt;
    s.v = std::bit_cast<double>(coding::DecodeFixed64LE(payload.data()));
    payload.remove_prefix(8);
    out->push_back(s);
  }
  if (!payload.empty()) return absl::DataLossError("trailing bytes in WAL samples record");
  return absl::OkStatus();
}

std::string WalSegmentPath(const std::string& dir, int64_t index) {
  return fmt::format("{}/{:08d}", dir, index);
}

absl::StatusOr<std::vector<int64_t>> ListWalSegments(const std::string& dir) {
  std::vector<int64_t> out;
  std::error_code ec;
  if (!fs::exists(dir, ec)) return out;
  for (fs::directory_iterator it(dir, ec), end; !ec && it != end; it.increment(ec)) {
    std::string name = it->path().filename().string();
    if (IsSegmentName(name)) out.push_back(std::stoll(name));
  }
  if (ec) return absl::InternalError(fmt::format("list WAL directory {}: {}", dir, ec.message()));
  std::sort(out.begin(), out.end());
  return out;
}

absl::StatusOr<WalReplayStats> ReplayWal(
    const std::string& dir,
    const std::function<absl::Status(int64_t, WalRecordType, std::string_view)>& fn) {
  WalReplayStats stats;
  STRATA_ASSIGN_OR_RETURN(std::vector<int64_t> segments, ListWalSegments(dir));
  std::string data;
  for (size_t i = 0; i < segments.size(); ++i) {
    std::string path = WalSegmentPath(dir, segments[i]);
    int fd = ::open(path.c_str(), O_RDONLY);
    if (fd < 0) return ErrnoStatus("open WAL segment", path);
    struct stat st;
    if (::fstat(fd, &st) != 0) {
      ::close(fd);
      return ErrnoStatus("stat WAL segment", path);
    }
    data.resize(st.st_size);
    size_t got = 0;
    while (got < data.size()) {
      ssize_t n = ::read(fd, data.data() + got, data.size() - got);
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) {
        ::close(fd);
        return ErrnoStatus("read WAL segment", path);
      }
      got += n;
    }
    ::close(fd);
    ++stats.segments;

    size_t off = 0;
    std::string_view problem;
    while (off < data.size()) {
      if (data.size() - off < kHeaderSize) {
        problem = "torn record header";
        break;
      }
      uint32_t len = coding::DecodeFixed32LE(data.data() + off);
      uint8_t type = static_cast<uint8_t>(data[off + 4]);
      uint32_t sum = coding::DecodeFixed32LE(data.data() + off + 5);
      if (len > kMaxRecordBytes || data.size() - off - kHeaderSize < len) {
        problem = "torn record";
        break;
      }
      std::string_view payload(data.data() + off + kHeaderSize, len);
      if (Checksum(type, payload) != sum) {
        problem = "checksum mismatch";
        break;
      }
      if (type != static_cast<uint8_t>(WalRecordType::kSeries) &&
          type != static_cast<uint8_t>(WalRecordType::kSamples) &&
          type != static_cast<uint8_t>(WalRecordType::kTombstones)) {
        problem = "unknown record type";
        break;
      }
      STRATA_RETURN_IF_ERROR(fn(segments[i], static_cast<WalRecordType>(type), payload));
      ++stats.records;
      stats.bytes += kHeaderSize + len;
      off += kHeaderSize + len;
    }
    if (!problem.empty()) {
      stats.truncated = true;
      spdlog::warn(
          "WAL segment {} is corrupt at offset {} ({}); cutting off {} bytes and {} later "
          "segment(s), everything before it is recovered",
          path, off, problem, data.size() - off, segments.size() - i - 1);
      if (::truncate(path.c_str(), static_cast<off_t>(off)) != 0) {
        return ErrnoStatus("truncate WAL segment", path);
      }
      for (size_t j = i + 1; j < segments.size(); ++j) {
        std::string later = WalSegmentPath(dir, segments[j]);
        if (::unlink(later.c_str()) != 0) return ErrnoStatus("delete WAL segment", later);
      }
      STRATA_RETURN_IF_ERROR(SyncDir(dir));
      break;
    }
  }
  return stats;
}

absl::StatusOr<std::unique_ptr<Wal>> Wal::Open(const std::string& dir, WalOptions options) {
  std::error_code ec;
  fs::create_directories(dir, ec);
  if (ec) {
    return absl::PermissionDeniedError(
        fmt::format("create WAL directory {}: {}", dir, ec.message()));
  }
  STRATA_ASSIGN_OR_RETURN(std::vector<int64_t> segments, ListWalSegments(dir));
  std::unique_ptr<Wal> wal(new Wal(dir, options));
  STRATA_RETURN_IF_ERROR(wal->OpenSegment(segments.empty() ? 0 : segments.back() + 1));
  return wal;
}

Wal::~Wal() {
  if (!closed_) Close().IgnoreError();
}

absl::Status Wal::OpenSegment(int64_t index) {
  if (fd_ >= 0) {
    if (::fsync(fd_) != 0) return ErrnoStatus("fsync WAL segment", WalSegmentPath(dir_, index - 1));
    ::close(fd_);
    fd_ = -1;
  }
  std::string path = WalSegmentPath(dir_, index);
  fd_ = ::open(path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
  if (fd_ < 0) return ErrnoStatus("create WAL segment", path);
  STRATA_RETURN_IF_ERROR(SyncDir(dir_));
  segment_size_ = 0;
  current_segment_.store(index);
  return absl::OkStatus();
}

uint64_t Wal::Enqueue(WalRecordType type, std::string_view payload) {
  uint8_t t = static_cast<uint8_t>(type);
  uint32_t sum = Checksum(t, payload);
  std::lock_guard<std::mutex> lock(mu_);
  coding::PutFixed32LE(&pending_, static_cast<uint32_t>(payload.size()));
  pending_.push_back(static_cast<char>(t));
  coding::PutFixed32LE(&pending_, sum);
  pending_.append(payload);
  return ++enqueued_seq_;
}

void Wal::AcquireLeader(std::unique_lock<std::mutex>& lock) {
  cv_.wait(lock, [this] { return !leader_; });
  leader_ = true;
}

void Wal::ReleaseLeader() {
  leader_ = false;
  cv_.notify_all();
}

absl::Status Wal::FlushPending(std::unique_lock<std::mutex>& lock, bool rotate) {
  std::string buf;
  buf.swap(pending_);
  const uint64_t batch_seq = enqueued_seq_;
  lock.unlock();
  absl::Status st = WriteAndSync(buf, rotate);
  lock.lock();
  if (st.ok()) {
    durable_seq_ = batch_seq;
  } else {
    error_ = st;
  }
  return st;
}

absl::Status Wal::WriteAndSync(const std::string& buf, bool rotate) {
  if (fd_ < 0) return absl::FailedPreconditionError("WAL is closed");
  if (!buf.empty() && segment_size_ > 0 && segment_size_ + buf.size() > options_.segment_bytes) {
    STRATA_RETURN_IF_ERROR(OpenSegment(current_segment_.load() + 1));
  }
  size_t done = 0;
  while (done < buf.size()) {
    ssize_t n = ::write(fd_, buf.data() + done, buf.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return ErrnoStatus("write WAL segment", WalSegmentPath(dir_, current_segment_));
    done += n;
  }
  segment_size_ += buf.size();
  bytes_written_ += buf.size();
  if (options_.bytes_written != nullptr) options_.bytes_written->Add(buf.size());
  if (options_.sync && !buf.empty()) {
    auto start = std::chrono::steady_clock::now();
    if (::fdatasync(fd_) != 0) {
      return ErrnoStatus("fsync WAL segment", WalSegmentPath(dir_, current_segment_));
    }
    if (options_.fsync_seconds != nullptr) {
      options_.fsync_seconds->Observe(
          std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count());
    }
    ++syncs_;
  }
  // An empty segment needs no successor: whatever is queued next lands in it anyway.
  if (rotate && segment_size_ > 0) STRATA_RETURN_IF_ERROR(OpenSegment(current_segment_.load() + 1));
  return absl::OkStatus();
}

absl::Status Wal::Sync(uint64_t seq) {
  std::unique_lock<std::mutex> lock(mu_);
  while (durable_seq_ < seq) {
    if (!error_.ok()) return error_;
    if (leader_) {
      cv_.wait(lock);
      continue;
    }
    leader_ = true;
    // A failure stays in error_, which the loop checks before waiting again.
    FlushPending(lock, /*rotate=*/false).IgnoreError();
    ReleaseLeader();
  }
  return absl::OkStatus();
}

absl::Status Wal::SyncQueued() {
  uint64_t seq;
  {
    std::lock_guard<std::mutex> lock(mu_);
    seq = enqueued_seq_;
  }
  return Sync(seq);
}

absl::StatusOr<int64_t> Wal::Rotate() {
  std::unique_lock<std::mutex> lock(mu_);
  if (!error_.ok()) return error_;
  AcquireLeader(lock);
  absl::Status st = FlushPending(lock, /*rotate=*/true);
  ReleaseLeader();
  if (!st.ok()) return st;
  return current_segment_.load();
}

absl::Status Wal::DeleteSegmentsBefore(int64_t before) {
  STRATA_ASSIGN_OR_RETURN(std::vector<int64_t> segments, ListWalSegments(dir_));
  int64_t current = current_segment_.load();
  bool any = false;
  for (int64_t s : segments) {
    if (s >= before || s >= current) break;
    std::string path = WalSegmentPath(dir_, s);
    if (::unlink(path.c_str()) != 0) return ErrnoStatus("delete WAL segment", path);
    any = true;
  }
  if (any) STRATA_RETURN_IF_ERROR(SyncDir(dir_));
  return absl::OkStatus();
}

absl::Status Wal::Close() {
  std::unique_lock<std::mutex> lock(mu_);
  if (closed_) return absl::OkStatus();
  AcquireLeader(lock);
  std::string buf;
  buf.swap(pending_);
  uint64_t batch_seq = enqueued_seq_;
  lock.unlock();
  absl::Status st = error_.ok() ? WriteAndSync(buf, false) : error_;
  if (fd_ >= 0) {
    if (st.ok() && ::fsync(fd_) != 0) st = ErrnoStatus("fsync WAL segment", dir_);
    ::close(fd_);
    fd_ = -1;
  }
  lock.lock();
  if (st.ok()) durable_seq_ = batch_seq;
  closed_ = true;
  if (error_.ok()) error_ = st.ok() ? absl::FailedPreconditionError("WAL is closed") : st;
  ReleaseLeader();
  return st;
}

}  // namespace strata
