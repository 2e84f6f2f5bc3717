// Administrative operations of the storage: series deletion (tombstones), tombstone
// cleaning, snapshots, and size-based retention. See storage/tombstones.h.
#include <algorithm>
#include <deque>
#include <filesystem>
#include <limits>
#include <string>
#include <system_error>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "spdlog/spdlog.h"
#include "src/status.h"
#include "src/strings.h"
#include "storage/compacted_block.h"
#include "storage/db.h"
#include "storage/xor_chunk.h"

namespace strata {

absl::Status Storage::DeleteSeries(const std::vector<LabelMatcher>& matchers, Timestamp mint,
                                   Timestamp maxt) {
  if (mint > maxt) return absl::OkStatus();
  // Serialized with flushes: a delete's WAL record and its in-memory tombstones appear
  // together, before any checkpoint could delete the record's segment.
  std::lock_guard<std::mutex> lock(flush_mu_);
  if (wal_ == nullptr) return absl::FailedPreconditionError("storage is closed");

  // Per series, the span of its chunks that overlap [mint, maxt]; the deletion is clamped
  // to it, so samples appended from now on (newer than any of them) stay visible.
  absl::flat_hash_map<SeriesRef, TimeInterval> spans;
  auto note = [&](SeriesRef ref, const ChunkRef& c) {
    auto [it, inserted] = spans.try_emplace(ref, TimeInterval{c.mint, c.maxt});
    if (!inserted) {
      it->second.mint = std::min(it->second.mint, c.mint);
      it->second.maxt = std::max(it->second.maxt, c.maxt);
    }
  };
  {
    auto index = head_->Index();
    STRATA_ASSIGN_OR_RETURN(auto postings, PostingsForMatchers(*index, matchers));
    while (postings->Next()) {
      SeriesPtr s = head_->GetByRef(postings->At());
      if (s == nullptr) continue;
      for (const ChunkRef& c : head_->Chunks(*s, mint, maxt)) note(s->ref, c);
    }
    STRATA_RETURN_IF_ERROR(postings->status());
  }
  for (int64_t p : store_->Partitions(mint, maxt)) {
    auto index = store_->PartitionIndex(p);
    STRATA_ASSIGN_OR_RETURN(auto postings, PostingsForMatchers(*index, matchers));
    std::unique_ptr<ChunkStore::PartitionReader> reader = store_->ReadPartition(p);
    while (postings->Next()) {
      SeriesRef ref = postings->At();
      STRATA_ASSIGN_OR_RETURN(std::vector<ChunkRef> chunks, reader->Chunks(ref, mint, maxt));
      for (const ChunkRef& c : chunks) note(ref, c);
    }
    STRATA_RETURN_IF_ERROR(postings->status());
  }
  std::vector<Stone> stones;
  for (const auto& [ref, span] : spans) {
    TimeInterval iv{std::max(mint, span.mint), std::min(maxt, span.maxt)};
    if (iv.mint <= iv.maxt) stones.push_back({ref, iv});
  }
  if (stones.empty()) return absl::OkStatus();
  std::sort(stones.begin(), stones.end(),
            [](const Stone& a, const Stone& b) { return a.ref < b.ref; });
  std::string payload;
  EncodeWalTombstones(stones, &payload);
  STRATA_RETURN_IF_ERROR(wal_->Log(WalRecordType::kTombstones, payload));
  tombstones_.Add(stones, /*persisted=*/false);
  if (metrics_.deleted_series != nullptr) metrics_.deleted_series->Add(stones.size());
  spdlog::info("deleted samples of {} series in [{}, {}] in {}", stones.size(), mint, maxt,
               options_.dir);
  return absl::OkStatus();
}

absl::Status Storage::PersistTombstonesLocked() {
  std::vector<std::pair<SeriesRef, Intervals>> dirty = tombstones_.TakeDirty();
  if (dirty.empty()) return absl::OkStatus();
  absl::Status st = store_->WriteTombstones(dirty);
  if (!st.ok()) {
    std::vector<SeriesRef> refs;
    for (const auto& [ref, iv] : dirty) refs.push_back(ref);
    tombstones_.MarkDirty(refs);
  }
  return st;
}

namespace {

// The samples of `chunk` outside `deleted`, as a new chunk; nullopt when none is left.
absl::StatusOr<std::optional<ChunkRef>> RewriteChunk(const ChunkRef& chunk,
                                                     const Intervals& deleted) {
  XorChunkIterator it(*chunk.bytes);
  std::vector<Sample> kept;
  while (it.Next()) {
    Sample s = it.At();
    if (!deleted.Contains(s.t)) kept.push_back(s);
  }
  STRATA_RETURN_IF_ERROR(it.status());
  if (kept.empty()) return std::optional<ChunkRef>();
  absl::StatusOr<std::string> bytes = EncodeXorChunk(kept);
  if (!bytes.ok()) return bytes.status();
  return std::optional<ChunkRef>(ChunkRef{kept.front().t, kept.back().t,
                                          std::make_shared<const std::string>(*std::move(bytes))});
}

}  // namespace

absl::Status Storage::CleanTombstones() {
  // No compaction meanwhile: it could move a chunk being rewritten into a block (and the
  // deleted samples with it) between reading the chunk and writing its rewrite.
  std::lock_guard<std::mutex> compact_lock(compact_mu_);
  std::lock_guard<std::mutex> lock(flush_mu_);
  if (wal_ == nullptr) return absl::FailedPreconditionError("storage is closed");
  if (tombstones_.empty()) return absl::OkStatus();
  // Every deleted sample still in the head goes to RocksDB first, so that rewriting the
  // stored chunks removes all of them.
  int64_t flush_segment = 0;
  STRATA_RETURN_IF_ERROR(FlushLocked(/*cut_open=*/true, &flush_segment));
  std::shared_ptr<const TombstoneMap> snapshot = tombstones_.Snapshot();

  // The tombstones may go only once no WAL segment written before the flush is left:
  // replaying one would bring deleted samples back.
  STRATA_ASSIGN_OR_RETURN(std::vector<int64_t> segments, ListWalSegments(options_.dir + "/wal"));
  bool clear = segments.empty() || segments.front() >= flush_segment;
  if (!clear) {
    spdlog::warn(
        "cleaning tombstones in {}: WAL segment {} predates the flush (segment {}); the stored "
        "chunks are rewritten, the tombstones stay until the next clean",
        options_.dir, segments.front(), flush_segment);
  }

  std::vector<SeriesRef> refs;
  refs.reserve(snapshot->size());
  for (const auto& [ref, iv] : *snapshot) refs.push_back(ref);
  std::sort(refs.begin(), refs.end());
  int64_t rewritten = 0, rewritten_compacted = 0;
  constexpr size_t kSeriesPerBatch = 256;
  for (size_t begin = 0; begin < refs.size(); begin += kSeriesPerBatch) {
    std::span<const SeriesRef> group(refs.data() + begin,
                                     std::min(kSeriesPerBatch, refs.size() - begin));
    std::vector<ChunkStore::ChunkRewrite> rewrites;
    std::deque<Labels> labels;  // stable addresses for drop_postings
    for (SeriesRef ref : group) {
      const Intervals& deleted = snapshot->at(ref);
      if (deleted.empty()) continue;
      std::optional<Labels> series_labels;
      for (int64_t p :
           store_->Partitions(deleted.list().front().mint, deleted.list().back().maxt)) {
        STRATA_ASSIGN_OR_RETURN(std::vector<ChunkRef> chunks,
                                store_->Chunks(p, ref, std::numeric_limits<Timestamp>::min(),
                                               std::numeric_limits<Timestamp>::max()));
        ChunkStore::ChunkRewrite rw;
        rw.partition = p;
        rw.ref = ref;
        size_t kept = 0;
        for (const ChunkRef& c : chunks) {
          if (!deleted.Overlaps(c.mint, c.maxt)) {
            ++kept;
            continue;
          }
          if (c.block != nullptr) {
            // The series' samples in its compacted block: the block is rewritten without
            // the deleted ones.
            std::vector<Sample> all, rest;
            STRATA_RETURN_IF_ERROR(c.block->Decode(c.block_series, &all));
            for (const Sample& s : all) {
              if (!deleted.Contains(s.t)) rest.push_back(s);
            }
            if (!rest.empty()) ++kept;
            rw.compacted = std::move(rest);
            continue;
          }
          STRATA_ASSIGN_OR_RETURN(std::optional<ChunkRef> rest, RewriteChunk(c, deleted));
          rw.remove_mints.push_back(c.mint);
          if (rest) {
            rw.add.push_back(std::move(*rest));
            ++kept;
          }
        }
        if (rw.remove_mints.empty() && !rw.compacted) continue;
        rewritten += static_cast<int64_t>(rw.remove_mints.size()) + (rw.compacted ? 1 : 0);
        rewritten_compacted += rw.compacted ? 1 : 0;
        if (kept == 0) {
          if (!series_labels) {
            STRATA_ASSIGN_OR_RETURN(series_labels, store_->SeriesLabels(ref));
            if (!series_labels) {
              return absl::DataLossError(fmt::format("series {} has chunks but no labels", ref));
            }
          }
          labels.push_back(*series_labels);
          rw.drop_postings = &labels.back();
        }
        rewrites.push_back(std::move(rw));
      }
    }
    std::span<const SeriesRef> cleared = clear ? group : std::span<const SeriesRef>();
    STRATA_RETURN_IF_ERROR(store_->ApplyRewrite(rewrites, cleared));
    tombstones_.Remove(cleared);
  }
  if (metrics_.tombstone_cleans != nullptr) {
    metrics_.tombstone_cleans->Add(1);
    metrics_.rewritten_chunks->Add(rewritten);
  }
  spdlog::info(
      "cleaned tombstones of {} series in {}: {} chunks rewritten ({} of them series in "
      "compacted blocks){}",
      refs.size(), options_.dir, rewritten, rewritten_compacted, clear ? "" : ", tombstones kept");
  return absl::OkStatus();
}

absl::Status Storage::Snapshot(const std::string& dir, bool with_head) {
  std::lock_guard<std::mutex> lock(flush_mu_);
  if (wal_ == nullptr) return absl::FailedPreconditionError("storage is closed");
  if (!with_head) STRATA_RETURN_IF_ERROR(FlushLocked(/*cut_open=*/false, nullptr));
  STRATA_RETURN_IF_ERROR(PersistTombstonesLocked());
  int64_t wal_end = 0;
  // Everything acknowledged so far is in the segments before wal_end; no flush can delete
  // one of them while flush_mu_ is held.
  if (with_head) {
    STRATA_ASSIGN_OR_RETURN(wal_end, wal_->Rotate());
  }
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  if (ec) {
    return absl::PermissionDeniedError(
        fmt::format("cannot create snapshot directory {}: {}", dir, ec.message()));
  }
  STRATA_RETURN_IF_ERROR(store_->Checkpoint(dir + "/db"));
  if (!with_head) return absl::OkStatus();
  std::string src = options_.dir + "/wal", dst = dir + "/wal";
  std::filesystem::create_directories(dst, ec);
  if (ec) return absl::InternalError(fmt::format("cannot create {}: {}", dst, ec.message()));
  STRATA_ASSIGN_OR_RETURN(std::vector<int64_t> segments, ListWalSegments(src));
  for (int64_t s : segments) {
    if (s >= wal_end) break;
    std::filesystem::copy_file(WalSegmentPath(src, s), WalSegmentPath(dst, s), ec);
    if (ec) {
      return absl::InternalError(fmt::format("copying WAL segment {} into {}: {}",
                                             WalSegmentPath(src, s), dst, ec.message()));
    }
  }
  return absl::OkStatus();
}

uint64_t Storage::DiskBytes() {
  uint64_t total = store_ ? store_->DiskBytes() : 0;
  std::string wal_dir = options_.dir + "/wal";
  absl::StatusOr<std::vector<int64_t>> segments = ListWalSegments(wal_dir);
  if (segments.ok()) {
    for (int64_t s : *segments) {
      std::error_code ec;
      uintmax_t size = std::filesystem::file_size(WalSegmentPath(wal_dir, s), ec);
      if (!ec) total += size;
    }
  }
  return total;
}

absl::Status Storage::EnforceSizeRetentionLocked() {
  const uint64_t limit = static_cast<uint64_t>(options_.retention_bytes);
  uint64_t size = DiskBytes();
  if (size <= limit) return absl::OkStatus();
  Timestamp max_time = head_->max_time();
  if (max_time == std::numeric_limits<Timestamp>::min()) return absl::OkStatus();
  const int64_t head_partition = PartitionOf(max_time, options_.partition_ms);
  std::vector<int64_t> partitions = store_->Partitions(std::numeric_limits<Timestamp>::min(),
                                                       std::numeric_limits<Timestamp>::max());
  // Oldest first, until the estimate fits; never the partition being written.
  uint64_t estimate = size;
  int64_t drop_before = 0;
  int64_t dropped = 0;
  for (int64_t p : partitions) {
    if (p >= head_partition || estimate <= limit) break;
    uint64_t bytes = store_->ApproximatePartitionBytes(p);
    estimate = estimate > bytes ? estimate - bytes : 0;
    drop_before = p + 1;
    ++dropped;
  }
  if (dropped == 0) return absl::OkStatus();
  STRATA_RETURN_IF_ERROR(store_->DropPartitionsBefore(drop_before));
  STRATA_RETURN_IF_ERROR(store_->CompactPartitions(partitions.front(), drop_before));
  if (metrics_.size_retention_drops != nullptr) metrics_.size_retention_drops->Add(dropped);
  spdlog::info(
      "size retention in {}: {} bytes on disk exceed the limit of {}; dropped {} partition(s), "
      "samples before {} ms; now {} bytes",
      options_.dir, size, limit, dropped, drop_before * options_.partition_ms, DiskBytes());
  return absl::OkStatus();
}

void Storage::RegisterAdminMetrics() {
  MetricsRegistry* m = options_.metrics;
  if (m == nullptr) return;
  metrics_.deleted_series =
      m->GetCounter("strata_storage_deleted_series_total",
                    "Series deletions recorded as tombstones (one per series and delete request).");
  metrics_.tombstone_cleans =
      m->GetCounter("strata_storage_tombstone_cleans_total", "Tombstone cleanings run.");
  metrics_.rewritten_chunks = m->GetCounter(
      "strata_storage_tombstone_rewritten_chunks_total",
      "Stored chunks (or series of compacted blocks) rewritten or removed to drop deleted "
      "samples.");
  metrics_.size_retention_drops =
      m->GetCounter("strata_storage_size_retention_dropped_partitions_total",
                    "Partitions dropped because the database exceeded its size limit.");
  TombstoneSet* tombstones = &tombstones_;
  m->AddCallbackGauge("strata_storage_tombstone_series", "Series with deleted intervals.",
                      [tombstones] { return static_cast<double>(tombstones->num_series()); });
  m->AddCallbackGauge("strata_storage_tombstone_intervals", "Deleted intervals over all series.",
                      [tombstones] { return static_cast<double>(tombstones->num_intervals()); });
  m->AddCallbackGauge("strata_storage_size_bytes",
                      "Bytes on disk as size retention counts them (RocksDB live SST and log "
                      "files, plus the WAL).",
                      [this] { return static_cast<double>(DiskBytes()); });
  double limit = static_cast<double>(options_.retention_bytes);
  m->AddCallbackGauge("strata_storage_retention_limit_bytes",
                      "The size retention limit in bytes (0: none).", [limit] { return limit; });
}

void Storage::RemoveAdminMetrics() {
  MetricsRegistry* m = options_.metrics;
  if (m == nullptr) return;
  for (const char* name : {"strata_storage_tombstone_series", "strata_storage_tombstone_intervals",
                           "strata_storage_size_bytes", "strata_storage_retention_limit_bytes"}) {
    m->RemoveCallback(name);
  }
}

}  // namespace strata
