#include "storage/db.h"

#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <filesystem>
#include <vector>

#include "spdlog/spdlog.h"
#include "src/status.h"
#include "src/strings.h"

namespace strata {

absl::StatusOr<std::unique_ptr<Storage>> Storage::Open(StorageOptions options) {
  if (options.dir.empty()) return absl::InvalidArgumentError("no data directory given");
  if (options.partition_ms <= 0) {
    return absl::InvalidArgumentError("partition length must be positive");
  }
  std::error_code ec;
  std::filesystem::create_directories(options.dir, ec);
  if (ec) {
    return absl::PermissionDeniedError(
        fmt::format("cannot create data directory {}: {}", options.dir, ec.message()));
  }
  std::unique_ptr<Storage> db(new Storage(options));

  std::string lock_path = options.dir + "/strata.lock";
  db->lock_fd_ = ::open(lock_path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
  if (db->lock_fd_ < 0) {
    int e = errno;
    std::string msg =
        fmt::format("cannot write to data directory {}: {}", options.dir, std::strerror(e));
    if (e == EACCES || e == EPERM || e == EROFS) return absl::PermissionDeniedError(msg);
    return absl::UnavailableError(msg);
  }
  if (::flock(db->lock_fd_, LOCK_EX | LOCK_NB) != 0) {
    return absl::UnavailableError(
        fmt::format("data directory {} is in use by another process (lock file {} is held)",
                    options.dir, lock_path));
  }

  STRATA_ASSIGN_OR_RETURN(
      db->store_, ChunkStore::Open(options.dir + "/db", {.partition_ms = options.partition_ms}));
  HeadOptions head_options;
  head_options.partition_ms = options.partition_ms;
  head_options.chunk_samples = options.chunk_samples;
  head_options.max_sample_age_ms = options.max_sample_age_ms;
  head_options.out_of_order_window_ms = options.out_of_order_window_ms;
  {
    STRATA_ASSIGN_OR_RETURN(TombstoneMap stored, db->store_->ReadTombstones());
    std::vector<Stone> stones;
    for (const auto& [ref, intervals] : stored) {
      for (const TimeInterval& iv : intervals.list()) stones.push_back({ref, iv});
    }
    db->tombstones_.Add(stones, /*persisted=*/true);
  }
  db->head_ = std::make_unique<Head>(head_options, db->store_.get());
  db->head_->ReserveRefs(std::max<SeriesRef>(1, db->store_->next_ref()));
  if (auto t = db->store_->max_time()) db->head_->ObserveTime(*t);

  std::string wal_dir = options.dir + "/wal";
  Head& head = *db->head_;
  std::vector<WalSeries> series;
  std::vector<WalSample> samples;
  std::vector<Stone> stones;
  auto replayed = ReplayWal(
      wal_dir, [&](int64_t segment, WalRecordType type, std::string_view payload) -> absl::Status {
        if (type == WalRecordType::kSeries) {
          STRATA_RETURN_IF_ERROR(DecodeWalSeries(payload, &series));
          for (const WalSeries& s : series) {
            STRATA_RETURN_IF_ERROR(head.ReplaySeries(s.ref, s.labels));
          }
          return absl::OkStatus();
        }
        if (type == WalRecordType::kTombstones) {
          STRATA_RETURN_IF_ERROR(DecodeWalTombstones(payload, &stones));
          db->tombstones_.Add(stones, /*persisted=*/false);
          return absl::OkStatus();
        }
        STRATA_RETURN_IF_ERROR(DecodeWalSamples(payload, &samples));
        return head.ReplaySamples(segment, samples);
      });
  if (!replayed.ok()) {
    return absl::Status(
        replayed.status().code(),
        fmt::format("replaying WAL in {}: {}", wal_dir, std::string(replayed.status().message())));
  }
  db->replay_ = *replayed;
  STRATA_RETURN_IF_ERROR(head.FinishReplay());
  if (head.replay_unknown_refs() > 0) {
    spdlog::warn("WAL replay in {} skipped {} samples of unknown series", wal_dir,
                 head.replay_unknown_refs());
  }
  WalOptions wal_options{.sync = options.wal_sync, .segment_bytes = options.wal_segment_bytes};
  if (MetricsRegistry* m = options.metrics) {
    wal_options.bytes_written =
        m->GetCounter("strata_wal_written_bytes_total", "Bytes written to the write-ahead log.");
    wal_options.fsync_seconds =
        m->GetHistogram("strata_wal_fsync_duration_seconds", "Duration of write-ahead log fsyncs.",
                        DefaultLatencyBounds());
  }
  STRATA_ASSIGN_OR_RETURN(db->wal_, Wal::Open(wal_dir, wal_options));
  db->RegisterMetrics();
  head.set_wal(db->wal_.get());
  if (options.flush_interval_ms > 0)
    db->flush_thread_ = std::thread([d = db.get()] { d->FlushLoop(); });
  return db;
}

Storage::~Storage() {
  absl::Status st = Close();
  if (!st.ok()) spdlog::error("closing storage in {}: {}", options_.dir, st.ToString());
}

absl::StatusOr<AppendResult> Storage::Append(std::span<const SeriesBatch> batch,
                                             std::vector<SeriesPtr>* looked_up) {
  absl::StatusOr<AppendResult> r = head_->Append(batch, looked_up);
  if (r.ok() && metrics_.appended != nullptr) RecordAppend(*r);
  return r;
}

void Storage::RecordAppend(const AppendResult& r) {
  metrics_.appended->Add(r.appended);
  if (r.out_of_order > 0) metrics_.out_of_order->Add(r.out_of_order);
  if (r.out_of_order_appended > 0) metrics_.out_of_order_appended->Add(r.out_of_order_appended);
  if (r.too_old > 0) metrics_.too_old->Add(r.too_old);
  if (r.duplicate > 0) metrics_.duplicate->Add(r.duplicate);
}

void Storage::RegisterMetrics() {
  MetricsRegistry* m = options_.metrics;
  if (m == nullptr) return;
  metrics_.appended =
      m->GetCounter("strata_head_samples_appended_total", "Samples appended to the head.");
  auto* rejected = m->CounterFamily("strata_head_samples_rejected_total",
                                    "Samples rejected on append, by reason.", {"reason"});
  metrics_.out_of_order = rejected->With({"out_of_order"});
  metrics_.out_of_order_appended =
      m->GetCounter("strata_head_out_of_order_samples_appended_total",
                    "Samples older than their series' last one that the out-of-order window took.");
  metrics_.too_old = rejected->With({"too_old"});
  metrics_.duplicate = rejected->With({"duplicate"});
  metrics_.flushed_chunks =
      m->GetCounter("strata_flush_chunks_total", "Head chunks written to RocksDB.");
  metrics_.removed_series = m->GetCounter(
      "strata_head_gc_removed_series_total",
      "Series removed from the head by head GC (idle, with all their data in RocksDB).");
  metrics_.flush_seconds =
      m->GetHistogram("strata_flush_duration_seconds", "Duration of head flushes to RocksDB.",
                      DefaultLatencyBounds());
  metrics_.compactions =
      m->GetCounter("strata_compactions_total", "Partitions compacted (each with new chunks).");
  metrics_.compacted_samples =
      m->GetCounter("strata_compaction_samples_total", "Samples written into compacted blocks.");
  metrics_.open_compacted_samples =
      m->GetCounter("strata_compaction_open_samples_total",
                    "Samples written into compacted blocks of partitions still taking samples (of "
                    "strata_compaction_samples_total).");
  metrics_.compaction_bytes_before =
      m->GetCounter("strata_compaction_read_bytes_total",
                    "Bytes of chunks and blocks that compactions replaced.");
  metrics_.compaction_bytes_after =
      m->GetCounter("strata_compaction_written_bytes_total", "Bytes of compacted blocks written.");
  metrics_.compaction_seconds =
      m->GetHistogram("strata_compaction_duration_seconds",
                      "Duration of compactions that rewrote chunks.", DefaultLatencyBounds());
  RegisterAdminMetrics();
  Head* head = head_.get();
  m->AddCallbackGauge("strata_head_series", "Series in the head.",
                      [head] { return static_cast<double>(head->num_series()); });
  m->AddCallbackGauge("strata_head_chunks", "Chunks in the head (open and not yet flushed).",
                      [head] { return static_cast<double>(head->num_chunks()); });
  std::string db_dir = options_.dir + "/db";
  m->AddCallbackGauge("strata_storage_rocksdb_size_bytes",
                      "Bytes of files in the RocksDB directory.", [db_dir] {
                        std::error_code ec;
                        uintmax_t total = 0;
                        for (std::filesystem::directory_iterator it(db_dir, ec), end;
                             !ec && it != end; it.increment(ec)) {
                          std::error_code size_ec;
                          uintmax_t size = it->file_size(size_ec);
                          if (!size_ec) total += size;
                        }
                        return static_cast<double>(total);
                      });
}

absl::Status Storage::Flush(bool cut_open) {
  std::lock_guard<std::mutex> lock(flush_mu_);
  return FlushLocked(cut_open, nullptr);
}

absl::Status Storage::FlushLocked(bool cut_open, int64_t* rotated_to, bool memtables_to_sst) {
  if (wal_ == nullptr) return absl::FailedPreconditionError("storage is closed");
  auto start = std::chrono::steady_clock::now();
  // Series created before the new segment starts are all collected below.
  STRATA_ASSIGN_OR_RETURN(int64_t flush_segment, wal_->Rotate());
  if (rotated_to != nullptr) *rotated_to = flush_segment;
  std::vector<Head::FlushItem> items = head_->CollectFlush(cut_open, options_.idle_chunk_ms);
  // The collected chunks may hold samples of appends still waiting for their WAL write
  // (Head::Append logs a batch's record before releasing its series, but writes it after):
  // they reach RocksDB only once their record is written, so that a kill cannot leave part
  // of an unlogged batch stored.
  STRATA_RETURN_IF_ERROR(wal_->SyncQueued());

  FlushData data;
  std::vector<int64_t> indexed(items.size());
  std::vector<Labels> labels(items.size());
  int64_t chunks = 0;
  for (size_t i = 0; i < items.size(); ++i) {
    MemSeries& s = *items[i].series;
    labels[i] = head_->LabelsOf(s);
    if (items[i].persist_series) data.series.push_back({s.ref, &labels[i]});
    indexed[i] = s.indexed_partition;  // only flushes (serialized by flush_mu_) touch it
    for (const ChunkRef& c : items[i].chunks) {
      int64_t p = PartitionOf(c.mint, options_.partition_ms);
      data.chunks.push_back({s.ref, &labels[i], p != indexed[i], c});
      indexed[i] = p;
      ++chunks;
    }
  }
  Timestamp retention_start = RetentionStart();
  std::erase_if(data.chunks,
                [&](const FlushData::Chunk& c) { return c.chunk.maxt < retention_start; });
  data.next_ref = head_->next_ref();
  data.max_time = head_->max_time();
  if (!items.empty()) STRATA_RETURN_IF_ERROR(store_->WriteFlush(data));
  head_->MarkFlushed(items);
  for (size_t i = 0; i < items.size(); ++i) items[i].series->indexed_partition = indexed[i];
  items.clear();  // drops the flush's references to the series before head GC
  // Head GC: series idle for as long as makes their open chunk flushable have just been
  // written out completely; they leave the head (the store answers for them).
  const Timestamp max_time = head_->max_time();
  if (options_.idle_chunk_ms > 0 &&
      max_time > std::numeric_limits<Timestamp>::min() + options_.idle_chunk_ms) {
    int64_t removed = head_->RemoveStaleSeries(max_time - options_.idle_chunk_ms);
    removed_series_ += removed;
    if (metrics_.removed_series != nullptr) metrics_.removed_series->Add(removed);
  }
  ++flushes_;
  flushed_chunks_ += chunks;
  if (metrics_.flushed_chunks != nullptr) {
    metrics_.flushed_chunks->Add(chunks);
    metrics_.flush_seconds->Observe(
        std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count());
  }

  // Tombstones logged in segments the checkpoint below deletes must be in RocksDB first.
  STRATA_RETURN_IF_ERROR(PersistTombstonesLocked());
  if (memtables_to_sst) STRATA_RETURN_IF_ERROR(store_->FlushMemtables());
  int64_t keep_from = std::min(head_->LowestNeededSegment(), flush_segment);
  STRATA_RETURN_IF_ERROR(wal_->DeleteSegmentsBefore(keep_from));
  if (retention_start > std::numeric_limits<Timestamp>::min()) {
    STRATA_RETURN_IF_ERROR(
        store_->DropPartitionsBefore(PartitionOf(retention_start, options_.partition_ms)));
  }
  if (options_.retention_bytes > 0) STRATA_RETURN_IF_ERROR(EnforceSizeRetentionLocked());
  return absl::OkStatus();
}

Timestamp Storage::RetentionStart() {
  Timestamp max_time = head_->max_time();
  if (options_.retention_ms <= 0 ||
      max_time < std::numeric_limits<Timestamp>::min() / 2 + options_.retention_ms) {
    return std::numeric_limits<Timestamp>::min();
  }
  return PartitionOf(max_time - options_.retention_ms, options_.partition_ms) *
         options_.partition_ms;
}

void Storage::FlushLoop() {
  std::unique_lock<std::mutex> lock(loop_mu_);
  while (!stopping_) {
    loop_cv_.wait_for(lock, std::chrono::milliseconds(options_.flush_interval_ms));
    if (stopping_) break;
    lock.unlock();
    absl::Status st = Flush(false);
    if (!st.ok()) spdlog::error("background flush in {} failed: {}", options_.dir, st.ToString());
    if (st.ok() && options_.background_compaction) {
      st = Compact();
      if (!st.ok()) {
        spdlog::error("background compaction in {} failed: {}", options_.dir, st.ToString());
      }
    }
    lock.lock();
  }
}

absl::Status Storage::Close() {
  {
    std::lock_guard<std::mutex> lock(loop_mu_);
    if (closed_) return absl::OkStatus();
    closed_ = true;
    stopping_ = true;
  }
  loop_cv_.notify_all();
  if (flush_thread_.joinable()) flush_thread_.join();
  absl::Status st;
  std::lock_guard<std::mutex> compact_lock(compact_mu_);
  std::lock_guard<std::mutex> lock(flush_mu_);
  if (options_.flush_on_close && wal_ != nullptr) {
    // A failure leaves the WAL segments in place: they are deleted only after the chunks
    // and tombstones they hold are in RocksDB.
    absl::Status flushed = FlushLocked(/*cut_open=*/true, nullptr, /*memtables_to_sst=*/true);
    if (!flushed.ok()) {
      st = absl::Status(flushed.code(),
                        fmt::format("flushing the head of {} at close (the WAL keeps it): {}",
                                    options_.dir, std::string(flushed.message())));
    }
  }
  if (st.ok() && options_.flush_on_close && options_.background_compaction &&
      options_.compaction.close_max_samples > 0 && store_ != nullptr) {
    // What the flush just wrote is compacted now when that is quick (a bounded number of
    // samples), so that a stopped database is in its compact form; the rest waits for the
    // next start. The compaction's writes go to RocksDB's memtables, hence the second write
    // of them to SST files.
    absl::Status compacted = CompactLocked(CompactMode::kClose);
    if (compacted.ok()) compacted = store_->FlushMemtables();
    if (!compacted.ok()) {
      spdlog::error("compaction at close of {} (left for the next start): {}", options_.dir,
                    compacted.ToString());
    }
  }
  if (MetricsRegistry* m = options_.metrics; m != nullptr && head_ != nullptr) {
    m->RemoveCallback("strata_head_series");
    m->RemoveCallback("strata_head_chunks");
    m->RemoveCallback("strata_storage_rocksdb_size_bytes");
    RemoveAdminMetrics();
  }
  if (wal_ != nullptr) st.Update(wal_->Close());
  if (head_) head_->set_wal(nullptr);
  wal_.reset();
  head_.reset();
  store_.reset();
  if (lock_fd_ >= 0) {
    ::close(lock_fd_);
    lock_fd_ = -1;
  }
  return st;
}

StorageStats Storage::stats() {
  StorageStats s;
  s.head_series = head_ ? head_->num_series() : 0;
  s.wal_bytes = wal_ ? wal_->bytes_written() : 0;
  s.wal_replayed_records = replay_.records;
  s.wal_was_truncated = replay_.truncated;
  s.flushes = flushes_.load();
  s.flushed_chunks = flushed_chunks_.load();
  std::lock_guard<std::mutex> lock(compact_mu_);
  s.compaction = compaction_stats_;
  s.head_series_removed = removed_series_.load();
  return s;
}

}  // namespace strata
