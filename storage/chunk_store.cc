#include "storage/chunk_store.h"

#include <algorithm>
#include <filesystem>

#include "rocksdb/db.h"
#include "rocksdb/options.h"
#include "rocksdb/slice.h"
#include "rocksdb/utilities/checkpoint.h"
#include "rocksdb/write_batch.h"
#include "src/status.h"
#include "src/strings.h"
#include "storage/chunk_encoding.h"
#include "storage/coding.h"
#include "storage/xor_chunk.h"

namespace strata {
namespace {

constexpr std::string_view kMetaFormatVersion = "format_version";
constexpr std::string_view kMetaNextRef = "next_ref";
constexpr std::string_view kMetaMaxTime = "max_time";

enum Family { kSeries = 1, kSeriesByHash, kPostings, kChunks, kMeta, kTombstones };
const char* const kFamilyNames[] = {"default", "series", "series_by_hash", "postings",
                                    "chunks",  "meta",   "tombstones"};

rocksdb::Slice ToSlice(std::string_view s) { return rocksdb::Slice(s.data(), s.size()); }
std::string_view ToView(const rocksdb::Slice& s) { return std::string_view(s.data(), s.size()); }

absl::Status FromRocks(const rocksdb::Status& s, std::string_view what) {
  if (s.ok()) return absl::OkStatus();
  std::string msg = fmt::format("{}: {}", what, s.ToString());
  if (s.IsIOError() && s.ToString().find("lock") != std::string::npos) {
    return absl::UnavailableError(msg);
  }
  if (s.IsCorruption()) return absl::DataLossError(msg);
  if (s.IsIOError()) return absl::UnavailableError(msg);
  return absl::InternalError(msg);
}

std::string SeriesKey(SeriesRef ref) {
  std::string k;
  coding::PutFixed64BE(&k, ref);
  return k;
}

std::string PartitionPrefix(int64_t partition) {
  std::string k;
  coding::PutInt64BE(&k, partition);
  return k;
}

std::string ChunkKey(int64_t partition, SeriesRef ref, Timestamp mint) {
  std::string k = PartitionPrefix(partition);
  coding::PutFixed64BE(&k, ref);
  coding::PutInt64BE(&k, mint);
  return k;
}

// partition, name, 0x00, value, 0x00[, ref]
std::string PostingsPrefix(int64_t partition, std::string_view name, std::string_view value) {
  std::string k = PartitionPrefix(partition);
  k.append(name);
  k.push_back('\0');
  k.append(value);
  k.push_back('\0');
  return k;
}

}  // namespace

class ChunkStore::Impl {
 public:
  ~Impl() {
    for (auto* h : handles) {
      if (h != nullptr) db->DestroyColumnFamilyHandle(h).PermitUncheckedError();
    }
    if (db) db->Close().PermitUncheckedError();
  }
  rocksdb::ColumnFamilyHandle* cf(Family f) { return handles[f]; }

  std::unique_ptr<rocksdb::DB> db;
  std::vector<rocksdb::ColumnFamilyHandle*> handles;
  std::string path;
};

namespace {

// Scans keys with `prefix` in one family; fn returns false to stop.
template <typename Fn>
absl::Status ScanPrefix(ChunkStore::Impl& impl, rocksdb::ColumnFamilyHandle* cf,
                        std::string_view prefix, Fn&& fn) {
  std::unique_ptr<rocksdb::Iterator> it(impl.db->NewIterator(rocksdb::ReadOptions(), cf));
  for (it->Seek(ToSlice(prefix)); it->Valid() && it->key().starts_with(ToSlice(prefix));
       it->Next()) {
    if (!fn(ToView(it->key()), ToView(it->value()))) break;
  }
  return FromRocks(it->status(), "scan");
}

class StoreIndexReader final : public IndexReader {
 public:
  StoreIndexReader(ChunkStore::Impl* impl, int64_t partition)
      : impl_(impl), partition_(partition), prefix_(PartitionPrefix(partition)) {}

  absl::StatusOr<std::vector<std::string>> LabelNames() override {
    std::vector<std::string> out;
    std::unique_ptr<rocksdb::Iterator> it(
        impl_->db->NewIterator(rocksdb::ReadOptions(), impl_->cf(kPostings)));
    it->Seek(ToSlice(prefix_));
    while (it->Valid() && it->key().starts_with(ToSlice(prefix_))) {
      std::string_view rest = ToView(it->key()).substr(prefix_.size());
      std::string_view name = rest.substr(0, rest.find('\0'));
      if (!name.empty()) out.emplace_back(name);
      std::string next = prefix_;
      next.append(name);
      next.push_back('\x01');
      it->Seek(next);
    }
    STRATA_RETURN_IF_ERROR(FromRocks(it->status(), "read postings"));
    return out;
  }

  absl::StatusOr<std::vector<std::string>> LabelValues(std::string_view name,
                                                       std::string_view prefix) override {
    std::vector<std::string> out;
    std::string name_prefix = prefix_;
    name_prefix.append(name);
    name_prefix.push_back('\0');
    std::string start = name_prefix;
    start.append(prefix);
    std::unique_ptr<rocksdb::Iterator> it(
        impl_->db->NewIterator(rocksdb::ReadOptions(), impl_->cf(kPostings)));
    it->Seek(start);
    while (it->Valid() && it->key().starts_with(start)) {
      std::string_view rest = ToView(it->key()).substr(name_prefix.size());
      std::string_view value = rest.substr(0, rest.find('\0'));
      out.emplace_back(value);
      std::string next = name_prefix;
      next.append(value);
      next.push_back('\x01');
      it->Seek(next);
    }
    STRATA_RETURN_IF_ERROR(FromRocks(it->status(), "read postings"));
    return out;
  }

  absl::StatusOr<std::unique_ptr<Postings>> PostingsFor(
      std::string_view name, const std::vector<std::string>& values) override {
    std::vector<std::unique_ptr<Postings>> lists;
    for (const std::string& v : values) {
      STRATA_ASSIGN_OR_RETURN(std::vector<SeriesRef> refs,
                              Read(PostingsPrefix(partition_, name, v)));
      if (!refs.empty()) lists.push_back(ListPostings(std::move(refs)));
    }
    return Union(std::move(lists));
  }

  absl::StatusOr<std::unique_ptr<Postings>> AllPostings() override {
    STRATA_ASSIGN_OR_RETURN(std::vector<SeriesRef> refs, Read(PostingsPrefix(partition_, "", "")));
    return ListPostings(std::move(refs));
  }

 private:
  absl::StatusOr<std::vector<SeriesRef>> Read(const std::string& prefix) {
    std::vector<SeriesRef> refs;
    STRATA_RETURN_IF_ERROR(ScanPrefix(
        *impl_, impl_->cf(kPostings), prefix, [&](std::string_view key, std::string_view) {
          if (key.size() == prefix.size() + 8) {
            refs.push_back(coding::DecodeFixed64BE(key.data() + prefix.size()));
          }
          return true;
        }));
    return refs;
  }

  ChunkStore::Impl* impl_;
  int64_t partition_;
  std::string prefix_;
};

}  // namespace

ChunkStore::ChunkStore(ChunkStoreOptions options, std::unique_ptr<Impl> impl)
    : options_(options), impl_(std::move(impl)) {}

ChunkStore::~ChunkStore() = default;

absl::StatusOr<std::unique_ptr<ChunkStore>> ChunkStore::Open(const std::string& path,
                                                             ChunkStoreOptions options) {
  rocksdb::DBOptions db_options;
  db_options.create_if_missing = true;
  db_options.create_missing_column_families = true;
  db_options.max_background_jobs = 2;
  db_options.keep_log_file_num = 3;

  std::vector<std::string> existing;
  bool fresh = !rocksdb::DB::ListColumnFamilies(db_options, path, &existing).ok();

  std::vector<rocksdb::ColumnFamilyDescriptor> descriptors;
  for (const char* name : kFamilyNames) {
    rocksdb::ColumnFamilyOptions cf;
    if (std::string_view(name) == "chunks" || std::string_view(name) == "postings") {
      cf.compression = rocksdb::kZSTD;
    }
    descriptors.emplace_back(name, cf);
  }
  // Families a newer version added must be opened too, or RocksDB refuses; the version
  // check below then explains the problem.
  for (const std::string& name : existing) {
    if (std::none_of(std::begin(kFamilyNames), std::end(kFamilyNames),
                     [&](const char* n) { return name == n; })) {
      descriptors.emplace_back(name, rocksdb::ColumnFamilyOptions());
    }
  }
  auto impl = std::make_unique<Impl>();
  impl->path = path;
  rocksdb::DB* db = nullptr;
  rocksdb::Status s = rocksdb::DB::Open(db_options, path, descriptors, &impl->handles, &db);
  if (!s.ok()) {
    if (s.ToString().find("lock") != std::string::npos) {
      return absl::UnavailableError(
          fmt::format("store {} is in use by another process ({})", path, s.ToString()));
    }
    return FromRocks(s, fmt::format("open store {}", path));
  }
  impl->db.reset(db);

  std::string version;
  s = impl->db->Get(rocksdb::ReadOptions(), impl->cf(kMeta), ToSlice(kMetaFormatVersion), &version);
  if (s.IsNotFound()) {
    // A database created by a process killed before it wrote the version holds nothing.
    if (!fresh) {
      fresh = true;
      for (Family f : {kSeries, kSeriesByHash, kPostings, kChunks, kMeta, kTombstones}) {
        std::unique_ptr<rocksdb::Iterator> it(
            impl->db->NewIterator(rocksdb::ReadOptions(), impl->cf(f)));
        it->SeekToFirst();
        if (it->Valid() || !it->status().ok()) fresh = false;
      }
    }
    if (!fresh) {
      return absl::FailedPreconditionError(fmt::format(
          "{} is a RocksDB database without a Strata format version; not a Strata data directory",
          path));
    }
    version = std::to_string(kStoreFormatVersion);
    rocksdb::WriteOptions wo;
    wo.sync = true;
    STRATA_RETURN_IF_ERROR(FromRocks(
        impl->db->Put(wo, impl->cf(kMeta), ToSlice(kMetaFormatVersion), version), "write meta"));
  } else {
    STRATA_RETURN_IF_ERROR(FromRocks(s, "read format version"));
  }
  if (version != std::to_string(kStoreFormatVersion)) {
    return absl::FailedPreconditionError(fmt::format(
        "data directory {} has storage format version {}, but this build reads only version {}; "
        "use a matching Strata version or a new directory",
        path, version, kStoreFormatVersion));
  }

  std::unique_ptr<ChunkStore> store(new ChunkStore(options, std::move(impl)));
  Impl& im = *store->impl_;
  std::string value;
  s = im.db->Get(rocksdb::ReadOptions(), im.cf(kMeta), ToSlice(kMetaNextRef), &value);
  if (s.ok() && value.size() == 8) store->next_ref_ = coding::DecodeFixed64BE(value.data());
  s = im.db->Get(rocksdb::ReadOptions(), im.cf(kMeta), ToSlice(kMetaMaxTime), &value);
  if (s.ok() && value.size() == 8) store->max_time_ = coding::DecodeInt64BE(value.data());
  // Partitions present: one seek per partition.
  std::unique_ptr<rocksdb::Iterator> it(im.db->NewIterator(rocksdb::ReadOptions(), im.cf(kChunks)));
  it->SeekToFirst();
  while (it->Valid() && it->key().size() >= 8) {
    int64_t p = coding::DecodeInt64BE(it->key().data());
    store->partitions_.insert(p);
    if (p == std::numeric_limits<int64_t>::max()) break;
    it->Seek(PartitionPrefix(p + 1));
  }
  STRATA_RETURN_IF_ERROR(FromRocks(it->status(), "list partitions"));
  return store;
}

SeriesRef ChunkStore::next_ref() {
  std::lock_guard<std::mutex> lock(mu_);
  return next_ref_;
}

std::optional<Timestamp> ChunkStore::max_time() {
  std::lock_guard<std::mutex> lock(mu_);
  return max_time_;
}

absl::StatusOr<std::optional<Labels>> ChunkStore::SeriesLabels(SeriesRef ref) {
  std::string value;
  rocksdb::Status s =
      impl_->db->Get(rocksdb::ReadOptions(), impl_->cf(kSeries), SeriesKey(ref), &value);
  if (s.IsNotFound()) return std::optional<Labels>();
  STRATA_RETURN_IF_ERROR(FromRocks(s, "read series"));
  STRATA_ASSIGN_OR_RETURN(Labels labels, Labels::FromEncoded(value));
  return std::optional<Labels>(std::move(labels));
}

absl::StatusOr<std::optional<SeriesStore::Known>> ChunkStore::FindSeries(const Labels& labels) {
  std::string prefix;
  coding::PutFixed64BE(&prefix, labels.Hash());
  std::vector<SeriesRef> candidates;
  STRATA_RETURN_IF_ERROR(ScanPrefix(
      *impl_, impl_->cf(kSeriesByHash), prefix, [&](std::string_view key, std::string_view) {
        if (key.size() == 16) {
          candidates.push_back(coding::DecodeFixed64BE(key.data() + 8));
        }
        return true;
      }));
  for (SeriesRef ref : candidates) {
    STRATA_ASSIGN_OR_RETURN(std::optional<Labels> stored, SeriesLabels(ref));
    if (stored && *stored == labels) {
      Known known{ref, std::nullopt};
      STRATA_ASSIGN_OR_RETURN(known.last, LastSample(ref, std::numeric_limits<int64_t>::min()));
      return std::optional<Known>(known);
    }
  }
  return std::optional<Known>();
}

absl::StatusOr<std::optional<Sample>> ChunkStore::LastSample(SeriesRef ref, int64_t min_partition) {
  std::vector<int64_t> partitions;
  {
    std::lock_guard<std::mutex> lock(mu_);
    partitions.assign(partitions_.rbegin(), partitions_.rend());
  }
  std::unique_ptr<rocksdb::Iterator> it(
      impl_->db->NewIterator(rocksdb::ReadOptions(), impl_->cf(kChunks)));
  for (int64_t p : partitions) {
    if (p < min_partition) break;
    std::string prefix = PartitionPrefix(p);
    coding::PutFixed64BE(&prefix, ref);
    it->SeekForPrev(ChunkKey(p, ref, std::numeric_limits<int64_t>::max()));
    if (!it->Valid() || !it->key().starts_with(ToSlice(prefix))) continue;
    std::string_view value = ToView(it->value());
    if (value.empty()) return absl::DataLossError(fmt::format("empty chunk of series {}", ref));
    value.remove_prefix(1);
    uint64_t span;
    if (!coding::GetUvarint(&value, &span)) {
      return absl::DataLossError(fmt::format("malformed chunk header of series {}", ref));
    }
    XorChunkIterator chunk(value);
    std::optional<Sample> last;
    while (chunk.Next()) last = chunk.At();
    STRATA_RETURN_IF_ERROR(chunk.status());
    if (last) return last;
  }
  STRATA_RETURN_IF_ERROR(FromRocks(it->status(), "read chunks"));
  return std::optional<Sample>();
}

absl::Status ChunkStore::WriteFlush(const FlushData& data) {
  rocksdb::WriteBatch batch;
  Impl& im = *impl_;
  for (const FlushData::Series& s : data.series) {
    std::string key = SeriesKey(s.ref);
    STRATA_RETURN_IF_ERROR(
        FromRocks(batch.Put(im.cf(kSeries), key, ToSlice(s.labels->encoded())), "batch"));
    std::string hash_key;
    coding::PutFixed64BE(&hash_key, s.labels->Hash());
    coding::PutFixed64BE(&hash_key, s.ref);
    STRATA_RETURN_IF_ERROR(FromRocks(batch.Put(im.cf(kSeriesByHash), hash_key, ""), "batch"));
  }
  std::set<int64_t> touched;
  for (const FlushData::Chunk& c : data.chunks) {
    int64_t p = PartitionOf(c.chunk.mint, options_.partition_ms);
    touched.insert(p);
    if (c.write_postings) {
      std::string ref_be;
      coding::PutFixed64BE(&ref_be, c.ref);
      for (const LabelView& l : *c.labels) {
        std::string key = PostingsPrefix(p, l.name, l.value) + ref_be;
        STRATA_RETURN_IF_ERROR(FromRocks(batch.Put(im.cf(kPostings), key, ""), "batch"));
      }
      std::string all = PostingsPrefix(p, "", "") + ref_be;
      STRATA_RETURN_IF_ERROR(FromRocks(batch.Put(im.cf(kPostings), all, ""), "batch"));
    }
    std::string value;
    value.push_back(static_cast<char>(ChunkEncoding::kXor));
    coding::PutUvarint(&value, static_cast<uint64_t>(c.chunk.maxt - c.chunk.mint));
    value.append(*c.chunk.bytes);
    STRATA_RETURN_IF_ERROR(
        FromRocks(batch.Put(im.cf(kChunks), ChunkKey(p, c.ref, c.chunk.mint), value), "batch"));
  }
  std::string next_ref, max_time;
  coding::PutFixed64BE(&next_ref, data.next_ref);
  coding::PutInt64BE(&max_time, data.max_time);
  STRATA_RETURN_IF_ERROR(
      FromRocks(batch.Put(im.cf(kMeta), ToSlice(kMetaNextRef), next_ref), "batch"));
  STRATA_RETURN_IF_ERROR(
      FromRocks(batch.Put(im.cf(kMeta), ToSlice(kMetaMaxTime), max_time), "batch"));
  rocksdb::WriteOptions wo;
  wo.sync = true;
  STRATA_RETURN_IF_ERROR(
      FromRocks(im.db->Write(wo, &batch), fmt::format("write flush to {}", im.path)));
  std::lock_guard<std::mutex> lock(mu_);
  partitions_.insert(touched.begin(), touched.end());
  next_ref_ = std::max(next_ref_, data.next_ref);
  if (!max_time_ || *max_time_ < data.max_time) max_time_ = data.max_time;
  return absl::OkStatus();
}

std::vector<int64_t> ChunkStore::Partitions(Timestamp mint, Timestamp maxt) {
  if (mint > maxt) return {};
  int64_t lo = PartitionOf(mint, options_.partition_ms);
  int64_t hi = PartitionOf(maxt, options_.partition_ms);
  std::lock_guard<std::mutex> lock(mu_);
  return std::vector<int64_t>(partitions_.lower_bound(lo), partitions_.upper_bound(hi));
}

std::unique_ptr<IndexReader> ChunkStore::PartitionIndex(int64_t partition) {
  return std::make_unique<StoreIndexReader>(impl_.get(), partition);
}

absl::StatusOr<std::vector<ChunkRef>> ChunkStore::Chunks(int64_t partition, SeriesRef ref,
                                                         Timestamp mint, Timestamp maxt) {
  std::vector<ChunkRef> out;
  std::string prefix = PartitionPrefix(partition);
  coding::PutFixed64BE(&prefix, ref);
  absl::Status bad;
  STRATA_RETURN_IF_ERROR(ScanPrefix(
      *impl_, impl_->cf(kChunks), prefix, [&](std::string_view key, std::string_view value) {
        if (key.size() != prefix.size() + 8 || value.empty()) {
          bad = absl::DataLossError(fmt::format("malformed chunk key of series {}", ref));
          return false;
        }
        Timestamp cmint = coding::DecodeInt64BE(key.data() + prefix.size());
        if (cmint > maxt) return false;
        if (static_cast<uint8_t>(value[0]) != static_cast<uint8_t>(ChunkEncoding::kXor)) {
          bad = absl::DataLossError(
              fmt::format("chunk of series {} has encoding {} this build cannot read", ref,
                          static_cast<int>(static_cast<uint8_t>(value[0]))));
          return false;
        }
        value.remove_prefix(1);
        uint64_t span;
        if (!coding::GetUvarint(&value, &span)) {
          bad = absl::DataLossError(fmt::format("malformed chunk header of series {}", ref));
          return false;
        }
        Timestamp cmaxt = cmint + static_cast<int64_t>(span);
        if (cmaxt >= mint) {
          out.push_back({cmint, cmaxt, std::make_shared<const std::string>(value)});
        }
        return true;
      }));
  STRATA_RETURN_IF_ERROR(bad);
  return out;
}

absl::Status ChunkStore::DropPartitionsBefore(int64_t partition) {
  int64_t first;
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (partitions_.empty() || *partitions_.begin() >= partition) return absl::OkStatus();
    first = *partitions_.begin();
  }
  rocksdb::WriteBatch batch;
  std::string from = PartitionPrefix(first), to = PartitionPrefix(partition);
  STRATA_RETURN_IF_ERROR(FromRocks(batch.DeleteRange(impl_->cf(kChunks), from, to), "batch"));
  STRATA_RETURN_IF_ERROR(FromRocks(batch.DeleteRange(impl_->cf(kPostings), from, to), "batch"));
  rocksdb::WriteOptions wo;
  wo.sync = true;
  STRATA_RETURN_IF_ERROR(
      FromRocks(impl_->db->Write(wo, &batch), fmt::format("drop partitions in {}", impl_->path)));
  std::lock_guard<std::mutex> lock(mu_);
  partitions_.erase(partitions_.begin(), partitions_.lower_bound(partition));
  return absl::OkStatus();
}

absl::Status ChunkStore::WriteFormatVersionForTesting(int version) {
  rocksdb::WriteOptions wo;
  wo.sync = true;
  return FromRocks(
      impl_->db->Put(wo, impl_->cf(kMeta), ToSlice(kMetaFormatVersion), std::to_string(version)),
      "write meta");
}

// ---------------------------------------------------------------------------------------
// Tombstones, chunk rewrites (CleanTombstones), checkpoints and sizes (storage/db_admin.cc).

absl::StatusOr<TombstoneMap> ChunkStore::ReadTombstones() {
  TombstoneMap out;
  absl::Status bad;
  STRATA_RETURN_IF_ERROR(ScanPrefix(
      *impl_, impl_->cf(kTombstones), "", [&](std::string_view key, std::string_view value) {
        absl::StatusOr<Intervals> iv = Intervals::Decode(value);
        if (key.size() != 8 || !iv.ok()) {
          bad = absl::DataLossError(fmt::format("malformed tombstone entry in {}", impl_->path));
          return false;
        }
        out[coding::DecodeFixed64BE(key.data())] = std::move(*iv);
        return true;
      }));
  STRATA_RETURN_IF_ERROR(bad);
  return out;
}

absl::Status ChunkStore::WriteTombstones(std::span<const std::pair<SeriesRef, Intervals>> entries) {
  if (entries.empty()) return absl::OkStatus();
  rocksdb::WriteBatch batch;
  for (const auto& [ref, iv] : entries) {
    rocksdb::Status s = iv.empty() ? batch.Delete(impl_->cf(kTombstones), SeriesKey(ref))
                                   : batch.Put(impl_->cf(kTombstones), SeriesKey(ref), iv.Encode());
    STRATA_RETURN_IF_ERROR(FromRocks(s, "batch"));
  }
  rocksdb::WriteOptions wo;
  wo.sync = true;
  return FromRocks(impl_->db->Write(wo, &batch),
                   fmt::format("write tombstones to {}", impl_->path));
}

absl::Status ChunkStore::ApplyRewrite(std::span<const ChunkRewrite> rewrites,
                                      std::span<const SeriesRef> clear_tombstones) {
  rocksdb::WriteBatch batch;
  Impl& im = *impl_;
  for (const ChunkRewrite& rw : rewrites) {
    for (Timestamp mint : rw.remove_mints) {
      STRATA_RETURN_IF_ERROR(
          FromRocks(batch.Delete(im.cf(kChunks), ChunkKey(rw.partition, rw.ref, mint)), "batch"));
    }
    for (const ChunkRef& c : rw.add) {
      std::string value;
      value.push_back(static_cast<char>(ChunkEncoding::kXor));
      coding::PutUvarint(&value, static_cast<uint64_t>(c.maxt - c.mint));
      value.append(*c.bytes);
      STRATA_RETURN_IF_ERROR(FromRocks(
          batch.Put(im.cf(kChunks), ChunkKey(rw.partition, rw.ref, c.mint), value), "batch"));
    }
    if (rw.drop_postings != nullptr) {
      std::string ref_be;
      coding::PutFixed64BE(&ref_be, rw.ref);
      for (const LabelView& l : *rw.drop_postings) {
        std::string key = PostingsPrefix(rw.partition, l.name, l.value) + ref_be;
        STRATA_RETURN_IF_ERROR(FromRocks(batch.Delete(im.cf(kPostings), key), "batch"));
      }
      std::string all = PostingsPrefix(rw.partition, "", "") + ref_be;
      STRATA_RETURN_IF_ERROR(FromRocks(batch.Delete(im.cf(kPostings), all), "batch"));
    }
  }
  for (SeriesRef ref : clear_tombstones) {
    STRATA_RETURN_IF_ERROR(FromRocks(batch.Delete(im.cf(kTombstones), SeriesKey(ref)), "batch"));
  }
  rocksdb::WriteOptions wo;
  wo.sync = true;
  return FromRocks(im.db->Write(wo, &batch), fmt::format("rewrite chunks in {}", im.path));
}

absl::Status ChunkStore::Checkpoint(const std::string& dir) {
  rocksdb::Checkpoint* raw = nullptr;
  STRATA_RETURN_IF_ERROR(
      FromRocks(rocksdb::Checkpoint::Create(impl_->db.get(), &raw), "create checkpoint"));
  std::unique_ptr<rocksdb::Checkpoint> checkpoint(raw);
  // A log size of 0 flushes the memtables first, so the copy holds SST files only.
  return FromRocks(checkpoint->CreateCheckpoint(dir, 0),
                   fmt::format("checkpoint of {} into {}", impl_->path, dir));
}

uint64_t ChunkStore::DiskBytes() {
  uint64_t total = 0;
  for (rocksdb::ColumnFamilyHandle* h : impl_->handles) {
    uint64_t v = 0;
    if (impl_->db->GetIntProperty(h, "rocksdb.live-sst-files-size", &v)) total += v;
  }
  // Data not yet in SST files is in RocksDB's own log files (<number>.log).
  std::error_code ec;
  for (std::filesystem::directory_iterator it(impl_->path, ec), end; !ec && it != end;
       it.increment(ec)) {
    if (it->path().extension() != ".log") continue;
    std::error_code size_ec;
    uintmax_t size = it->file_size(size_ec);
    if (!size_ec) total += size;
  }
  return total;
}

uint64_t ChunkStore::ApproximatePartitionBytes(int64_t partition) {
  std::string from = PartitionPrefix(partition);
  std::string to = partition == std::numeric_limits<int64_t>::max()
                       ? std::string(9, '\xff')
                       : PartitionPrefix(partition + 1);
  rocksdb::Range range(from, to);
  rocksdb::SizeApproximationOptions options;
  options.include_memtables = true;
  options.include_files = true;
  uint64_t total = 0;
  for (Family f : {kChunks, kPostings}) {
    uint64_t size = 0;
    if (impl_->db->GetApproximateSizes(options, impl_->cf(f), &range, 1, &size).ok()) {
      total += size;
    }
  }
  return total;
}

absl::Status ChunkStore::CompactPartitions(int64_t from, int64_t to) {
  std::string begin = PartitionPrefix(from), end = PartitionPrefix(to);
  rocksdb::Slice b(begin), e(end);
  rocksdb::CompactRangeOptions options;
  options.bottommost_level_compaction = rocksdb::BottommostLevelCompaction::kForce;
  for (Family f : {kChunks, kPostings}) {
    STRATA_RETURN_IF_ERROR(FromRocks(impl_->db->CompactRange(options, impl_->cf(f), &b, &e),
                                     fmt::format("compact {}", impl_->path)));
  }
  return absl::OkStatus();
}

}  // namespace strata
