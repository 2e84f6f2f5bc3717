#include "storage/chunk_store.h"

#include <algorithm>
#include <filesystem>
#include <map>
#include <memory>
#include <mutex>

#include "absl/container/flat_hash_map.h"
#include "rocksdb/cache.h"
#include "rocksdb/db.h"
#include "rocksdb/options.h"
#include "rocksdb/slice.h"
#include "rocksdb/table.h"
#include "rocksdb/utilities/checkpoint.h"
#include "rocksdb/write_batch.h"
#include "src/status.h"
#include "src/strings.h"
#include "storage/chunk_encoding.h"
#include "storage/coding.h"
#include "storage/compacted_block.h"
#include "storage/histogram_bases.h"
#include "storage/xor_chunk.h"

namespace strata {
namespace {

constexpr std::string_view kMetaFormatVersion = "format_version";
constexpr std::string_view kMetaNextRef = "next_ref";
constexpr std::string_view kMetaMaxTime = "max_time";

enum Family { kSeries = 1, kSeriesByHash, kPostings, kChunks, kMeta, kCompacted, kTombstones };
const char* const kFamilyNames[] = {"default", "series", "series_by_hash", "postings",
                                    "chunks",  "meta",   "compacted",      "tombstones"};

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

// The sample count in an XOR chunk's header (0 when too short to hold one).
int64_t XorChunkSamples(std::string_view chunk) {
  if (chunk.size() < 2) return 0;
  return (static_cast<uint8_t>(chunk[0]) << 8) | static_cast<uint8_t>(chunk[1]);
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

  // Postings lists read from the postings family, by key prefix (PostingsPrefix): reading
  // one is a RocksDB step per series (about 2,000 instructions each), and dashboards ask for
  // the same lists again and again. Kept as WriteEpochs says, over every write of postings;
  // bounded by kPostingsCacheRefs refs (8 bytes each): past that it is emptied.
  static constexpr size_t kPostingsCacheRefs = size_t{1} << 21;
  using PostingsTicket = WriteEpochs::Ticket;
  std::mutex postings_mu;  // guards the fields below
  WriteEpochs postings_writes;
  size_t postings_refs = 0;
  absl::flat_hash_map<std::string, std::shared_ptr<const std::vector<SeriesRef>>> postings;
  // Label values of one name (and value prefix) of a partition, kept the same way (each
  // value counted as one ref).
  absl::flat_hash_map<std::string, std::shared_ptr<const std::vector<std::string>>> label_values;

  PostingsTicket postings_ticket() {
    std::lock_guard<std::mutex> lock(postings_mu);
    return postings_writes.ticket();
  }
  template <typename T>
  std::shared_ptr<const std::vector<T>> Cached(
      const absl::flat_hash_map<std::string, std::shared_ptr<const std::vector<T>>>& map,
      const std::string& key) {
    std::lock_guard<std::mutex> lock(postings_mu);
    auto it = map.find(key);
    return it == map.end() ? nullptr : it->second;
  }
  template <typename T>
  void Keep(absl::flat_hash_map<std::string, std::shared_ptr<const std::vector<T>>>& map,
            const std::string& key, std::shared_ptr<const std::vector<T>> list,
            PostingsTicket ticket) {
    std::lock_guard<std::mutex> lock(postings_mu);
    if (!postings_writes.Current(ticket)) return;
    if (postings_refs + list->size() > kPostingsCacheRefs) {
      ClearPostingsLocked();
      if (list->size() > kPostingsCacheRefs) return;
    }
    postings_refs += list->size();
    map.insert_or_assign(key, std::move(list));
  }
  // Brackets every RocksDB write that puts or deletes postings.
  void BeginPostingsWrite() {
    std::lock_guard<std::mutex> lock(postings_mu);
    postings_writes.Begin();
    ClearPostingsLocked();
  }
  void EndPostingsWrite() {
    std::lock_guard<std::mutex> lock(postings_mu);
    postings_writes.End();
    ClearPostingsLocked();
  }

 private:
  void ClearPostingsLocked() {
    postings.clear();
    label_values.clear();
    postings_refs = 0;
  }
};

namespace {

// Scans keys with `prefix` in one family; fn returns false to stop.
template <typename Fn>
absl::Status ScanPrefix(ChunkStore::Impl& impl, rocksdb::ColumnFamilyHandle* cf,
                        std::string_view prefix, Fn&& fn,
                        const rocksdb::Snapshot* snapshot = nullptr) {
  rocksdb::ReadOptions ro;
  ro.snapshot = snapshot;
  std::unique_ptr<rocksdb::Iterator> it(impl.db->NewIterator(ro, cf));
  for (it->Seek(ToSlice(prefix)); it->Valid() && it->key().starts_with(ToSlice(prefix));
       it->Next()) {
    if (!fn(ToView(it->key()), ToView(it->value()))) break;
  }
  return FromRocks(it->status(), "scan");
}

// Releases a RocksDB snapshot when it goes out of scope.
class Snapshot {
 public:
  explicit Snapshot(rocksdb::DB* db) : db_(db), snapshot_(db->GetSnapshot()) {}
  ~Snapshot() { db_->ReleaseSnapshot(snapshot_); }
  Snapshot(const Snapshot&) = delete;
  Snapshot& operator=(const Snapshot&) = delete;
  const rocksdb::Snapshot* get() const { return snapshot_; }

 private:
  rocksdb::DB* db_;
  const rocksdb::Snapshot* snapshot_;
};

// The newest sample of the series' XOR chunks in partition p.
absl::StatusOr<std::optional<Sample>> LastInChunks(rocksdb::Iterator& it, int64_t p,
                                                   SeriesRef ref) {
  {  // NOLINT(readability/braces)
    std::string prefix = PartitionPrefix(p);
    coding::PutFixed64BE(&prefix, ref);
    it.SeekForPrev(ChunkKey(p, ref, std::numeric_limits<int64_t>::max()));
    STRATA_RETURN_IF_ERROR(FromRocks(it.status(), "read chunks"));
    if (!it.Valid() || !it.key().starts_with(ToSlice(prefix))) return std::optional<Sample>();
    std::string_view value = ToView(it.value());
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
    return last;
  }
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
    std::string name_prefix = prefix_;
    name_prefix.append(name);
    name_prefix.push_back('\0');
    std::string start = name_prefix;
    start.append(prefix);
    if (auto cached = impl_->Cached(impl_->label_values, start)) return *cached;
    const ChunkStore::Impl::PostingsTicket ticket = impl_->postings_ticket();
    std::vector<std::string> out;
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
    impl_->Keep<std::string>(impl_->label_values, start,
                             std::make_shared<const std::vector<std::string>>(out), ticket);
    return out;
  }

  absl::StatusOr<std::unique_ptr<Postings>> PostingsFor(
      std::string_view name, const std::vector<std::string>& values) override {
    std::vector<std::unique_ptr<Postings>> lists;
    for (const std::string& v : values) {
      STRATA_ASSIGN_OR_RETURN(std::shared_ptr<const std::vector<SeriesRef>> refs,
                              Read(PostingsPrefix(partition_, name, v)));
      if (!refs->empty()) lists.push_back(ListPostings(*refs));
    }
    return Union(std::move(lists));
  }

  absl::StatusOr<std::unique_ptr<Postings>> AllPostings() override {
    STRATA_ASSIGN_OR_RETURN(std::shared_ptr<const std::vector<SeriesRef>> refs,
                            Read(PostingsPrefix(partition_, "", "")));
    return ListPostings(*refs);
  }

 private:
  // The refs of one postings list, from the cache or read and kept there.
  absl::StatusOr<std::shared_ptr<const std::vector<SeriesRef>>> Read(const std::string& prefix) {
    if (auto cached = impl_->Cached(impl_->postings, prefix)) return cached;
    const ChunkStore::Impl::PostingsTicket ticket = impl_->postings_ticket();
    auto refs = std::make_shared<std::vector<SeriesRef>>();
    STRATA_RETURN_IF_ERROR(ScanPrefix(
        *impl_, impl_->cf(kPostings), prefix, [&](std::string_view key, std::string_view) {
          if (key.size() == prefix.size() + 8) {
            refs->push_back(coding::DecodeFixed64BE(key.data() + prefix.size()));
          }
          return true;
        }));
    impl_->Keep<SeriesRef>(impl_->postings, prefix, refs, ticket);
    return std::shared_ptr<const std::vector<SeriesRef>>(std::move(refs));
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
  // RocksDB's info LOG rolls at 1 MiB and keeps two old files, so that it never outgrows
  // the data of a small database.
  db_options.max_log_file_size = 1 << 20;
  db_options.keep_log_file_num = 2;

  std::vector<std::string> existing;
  bool fresh = !rocksdb::DB::ListColumnFamilies(db_options, path, &existing).ok();

  rocksdb::BlockBasedTableOptions table;
  table.block_cache = rocksdb::NewLRUCache(options.block_cache_bytes, /*num_shard_bits=*/2);
  std::shared_ptr<rocksdb::TableFactory> tables(rocksdb::NewBlockBasedTableFactory(table));
  std::vector<rocksdb::ColumnFamilyDescriptor> descriptors;
  for (const char* name : kFamilyNames) {
    rocksdb::ColumnFamilyOptions cf;
    cf.table_factory = tables;
    if (std::string_view(name) == "chunks" || std::string_view(name) == "postings") {
      cf.compression = rocksdb::kZSTD;
    }
    // Compacted blocks are zstd frames already.
    if (std::string_view(name) == "compacted") cf.compression = rocksdb::kNoCompression;
    descriptors.emplace_back(name, cf);
  }
  // Families a newer version added must be opened too, or RocksDB refuses; the version
  // check below then explains the problem.
  for (const std::string& name : existing) {
    if (std::none_of(std::begin(kFamilyNames), std::end(kFamilyNames),
                     [&](const char* n) { return name == n; })) {
      rocksdb::ColumnFamilyOptions cf;
      cf.table_factory = tables;
      descriptors.emplace_back(name, cf);
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
      for (Family f :
           {kSeries, kSeriesByHash, kPostings, kChunks, kMeta, kCompacted, kTombstones}) {
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
  int version_number = 0;
  for (int v = kStoreFormatVersionMin; v <= kStoreFormatVersion; ++v) {
    if (version == std::to_string(v)) version_number = v;
  }
  if (version_number == 0) {
    return absl::FailedPreconditionError(fmt::format(
        "data directory {} has storage format version {}, but this build reads only versions "
        "{} to {}; use a matching Strata version or a new directory",
        path, version, kStoreFormatVersionMin, kStoreFormatVersion));
  }

  std::unique_ptr<ChunkStore> store(new ChunkStore(options, std::move(impl)));
  store->format_version_ = version_number;
  Impl& im = *store->impl_;
  std::string value;
  s = im.db->Get(rocksdb::ReadOptions(), im.cf(kMeta), ToSlice(kMetaNextRef), &value);
  if (s.ok() && value.size() == 8) store->next_ref_ = coding::DecodeFixed64BE(value.data());
  s = im.db->Get(rocksdb::ReadOptions(), im.cf(kMeta), ToSlice(kMetaMaxTime), &value);
  if (s.ok() && value.size() == 8) store->max_time_ = coding::DecodeInt64BE(value.data());
  // Partitions present: one seek per partition, in XOR chunks and in compacted blocks.
  for (Family f : {kChunks, kCompacted}) {
    std::unique_ptr<rocksdb::Iterator> it(im.db->NewIterator(rocksdb::ReadOptions(), im.cf(f)));
    it->SeekToFirst();
    while (it->Valid() && it->key().size() >= 8) {
      int64_t p = coding::DecodeInt64BE(it->key().data());
      store->partitions_.insert(p);
      if (p == std::numeric_limits<int64_t>::max()) break;
      it->Seek(PartitionPrefix(p + 1));
    }
    STRATA_RETURN_IF_ERROR(FromRocks(it->status(), "list partitions"));
  }
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
  // One snapshot for both forms: a compaction moving chunks meanwhile cannot hide them.
  const BlockCacheTicket ticket = block_cache_ticket();
  Snapshot snapshot(impl_->db.get());
  rocksdb::ReadOptions ro;
  ro.snapshot = snapshot.get();
  std::unique_ptr<rocksdb::Iterator> it(impl_->db->NewIterator(ro, impl_->cf(kChunks)));
  for (int64_t p : partitions) {
    if (p < min_partition) break;
    // Chunks flushed after a compaction hold the newer samples, so they are looked at first.
    STRATA_ASSIGN_OR_RETURN(std::optional<Sample> in_chunks, LastInChunks(*it, p, ref));
    if (in_chunks) return in_chunks;
    STRATA_ASSIGN_OR_RETURN(std::shared_ptr<const CompactedBlock> block,
                            BlockFor(p, ref, snapshot.get(), ticket));
    if (block == nullptr) continue;
    if (std::optional<size_t> i = block->Find(ref)) {
      // Only the column's last segment is decoded.
      std::vector<Sample> samples;
      STRATA_RETURN_IF_ERROR(block->Decode(*i, &samples, block->maxt(*i), block->maxt(*i)));
      if (samples.empty()) {
        return absl::DataLossError(
            fmt::format("compacted block of series {}: no last sample", ref));
      }
      return std::optional<Sample>(samples.back());
    }
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
  std::map<int64_t, int64_t> touched;  // partition -> samples flushed into it
  bool writes_postings = false;
  for (const FlushData::Chunk& c : data.chunks) {
    int64_t p = PartitionOf(c.chunk.mint, options_.partition_ms);
    touched[p] += XorChunkSamples(*c.chunk.bytes);
    if (c.write_postings) {
      writes_postings = true;
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
  if (writes_postings) im.BeginPostingsWrite();
  const rocksdb::Status written = im.db->Write(wo, &batch);
  if (writes_postings) im.EndPostingsWrite();
  STRATA_RETURN_IF_ERROR(FromRocks(written, fmt::format("write flush to {}", im.path)));
  std::lock_guard<std::mutex> lock(mu_);
  for (const auto& [p, n] : touched) {
    // A partition new to the store starts counted (empty); one present at open is not.
    auto [it, added] =
        samples_.try_emplace(p, PartitionSamples{.counted = !partitions_.contains(p)});
    it->second.flushed += n;
    partitions_.insert(p);
  }
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
  return ReadPartition(partition)->Chunks(ref, mint, maxt);
}

absl::Status ChunkStore::DropPartitionsBefore(int64_t partition) {
  std::lock_guard<std::mutex> compact_lock(compact_mu_);
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
  STRATA_RETURN_IF_ERROR(FromRocks(batch.DeleteRange(impl_->cf(kCompacted), from, to), "batch"));
  rocksdb::WriteOptions wo;
  wo.sync = true;
  BeginBlockWrite();
  impl_->BeginPostingsWrite();
  const rocksdb::Status written = impl_->db->Write(wo, &batch);
  impl_->EndPostingsWrite();
  EndBlockWrite();
  STRATA_RETURN_IF_ERROR(FromRocks(written, fmt::format("drop partitions in {}", impl_->path)));
  std::lock_guard<std::mutex> lock(mu_);
  partitions_.erase(partitions_.begin(), partitions_.lower_bound(partition));
  samples_.erase(samples_.begin(), samples_.lower_bound(partition));
  return absl::OkStatus();
}

absl::Status ChunkStore::WriteFormatVersionForTesting(int version) {
  rocksdb::WriteOptions wo;
  wo.sync = true;
  return FromRocks(
      impl_->db->Put(wo, impl_->cf(kMeta), ToSlice(kMetaFormatVersion), std::to_string(version)),
      "write meta");
}

// ---- Compacted partitions (docs/format/compacted.md; keys in docs/format/keys.md) ----

namespace {

// partition i64, last ref of the block u64
std::string CompactedKey(int64_t partition, SeriesRef last_ref) {
  std::string k = PartitionPrefix(partition);
  coding::PutFixed64BE(&k, last_ref);
  return k;
}

// Blocks kept decoded for repeated reads (a query reads one series after another).
constexpr size_t kCacheMaxBlocks = 16;
constexpr size_t kCacheMaxBytes = 64 << 20;

// The samples of one series from several sources (a block, XOR chunks), in time order;
// a sample at or before the previous one is dropped, as the query path does.
std::vector<Sample> MergeSources(std::vector<std::vector<Sample>>& sources) {
  std::stable_sort(sources.begin(), sources.end(),
                   [](const std::vector<Sample>& a, const std::vector<Sample>& b) {
                     return a.front().t < b.front().t;
                   });
  std::vector<Sample> out;
  for (const std::vector<Sample>& src : sources) {
    for (const Sample& x : src) {
      if (out.empty() || x.t > out.back().t) out.push_back(x);
    }
  }
  return out;
}

// Raises the directory's format version in the batch that first writes compacted blocks
// of this build's format: from then on older builds refuse it instead of failing on them.
absl::Status PutFormatVersion(ChunkStore::Impl& im, rocksdb::WriteBatch* batch) {
  return FromRocks(
      batch->Put(im.cf(kMeta), ToSlice(kMetaFormatVersion), std::to_string(kStoreFormatVersion)),
      "batch");
}

// Gives the group's histogram buckets their bases (storage/histogram_bases.h), from the
// series' labels as stored.
absl::Status AssignBases(ChunkStore::Impl& im, std::span<CompactedSeries> group) {
  std::vector<Labels> labels(group.size());
  std::string value;
  for (size_t i = 0; i < group.size(); ++i) {
    rocksdb::Status s =
        im.db->Get(rocksdb::ReadOptions(), im.cf(kSeries), SeriesKey(group[i].ref), &value);
    if (s.IsNotFound()) continue;
    STRATA_RETURN_IF_ERROR(FromRocks(s, "read series"));
    STRATA_ASSIGN_OR_RETURN(labels[i], Labels::FromEncoded(value));
  }
  AssignHistogramBases(group, labels);
  return absl::OkStatus();
}

}  // namespace

struct ChunkStore::CachedBlock {
  std::string key;
  std::shared_ptr<const CompactedBlock> block;
  uint64_t used = 0;
};

CompactionStats& CompactionStats::operator+=(const CompactionStats& o) {
  partitions += o.partitions;
  blocks_written += o.blocks_written;
  chunks_removed += o.chunks_removed;
  samples += o.samples;
  bytes_before += o.bytes_before;
  bytes_after += o.bytes_after;
  reclaims += o.reclaims;
  open_partitions += o.open_partitions;
  open_samples += o.open_samples;
  budget_skipped += o.budget_skipped;
  return *this;
}

int ChunkStore::format_version() {
  std::lock_guard<std::mutex> lock(mu_);
  return format_version_;
}

ChunkStore::BlockCacheTicket ChunkStore::block_cache_ticket() {
  std::lock_guard<std::mutex> lock(cache_mu_);
  return block_writes_.ticket();
}

void ChunkStore::BeginBlockWrite() {
  std::lock_guard<std::mutex> lock(cache_mu_);
  block_writes_.Begin();
  cache_.clear();
}

void ChunkStore::EndBlockWrite() {
  std::lock_guard<std::mutex> lock(cache_mu_);
  block_writes_.End();
  cache_.clear();
}

absl::StatusOr<std::shared_ptr<const CompactedBlock>> ChunkStore::OpenBlock(
    int64_t partition, std::string_view key, std::string_view value, BlockCacheTicket ticket) {
  // The cache holds the blocks as stored since the last block write ended; a reader whose
  // snapshot came after that (its ticket is quiet and still current) sees the same.
  auto usable = [&] { return block_writes_.Current(ticket); };
  {
    std::lock_guard<std::mutex> lock(cache_mu_);
    if (usable()) {
      for (auto& c : cache_) {
        if (c->key == key) {
          c->used = ++cache_clock_;
          return c->block;
        }
      }
    }
  }
  absl::StatusOr<CompactedBlock> block = CompactedBlock::Open(value);
  if (!block.ok()) {
    return absl::DataLossError(fmt::format("compacted block of partition {} in {}: {}", partition,
                                           impl_->path, std::string(block.status().message())));
  }
  auto shared = std::make_shared<const CompactedBlock>(std::move(*block));
  std::lock_guard<std::mutex> lock(cache_mu_);
  if (usable()) {
    size_t bytes = shared->memory_bytes();
    for (auto& c : cache_) bytes += c->block->memory_bytes();
    while (!cache_.empty() && (cache_.size() >= kCacheMaxBlocks || bytes > kCacheMaxBytes)) {
      auto oldest =
          std::min_element(cache_.begin(), cache_.end(),
                           [](const auto& a, const auto& b) { return a->used < b->used; });
      bytes -= (*oldest)->block->memory_bytes();
      cache_.erase(oldest);
    }
    if (bytes <= kCacheMaxBytes) {
      cache_.push_back(
          std::make_shared<CachedBlock>(CachedBlock{std::string(key), shared, ++cache_clock_}));
    }
  }
  return std::shared_ptr<const CompactedBlock>(shared);
}

absl::StatusOr<std::shared_ptr<const CompactedBlock>> ChunkStore::BlockFor(
    int64_t partition, SeriesRef ref, const void* snapshot, BlockCacheTicket ticket) {
  rocksdb::ReadOptions ro;
  ro.snapshot = static_cast<const rocksdb::Snapshot*>(snapshot);
  std::unique_ptr<rocksdb::Iterator> it(impl_->db->NewIterator(ro, impl_->cf(kCompacted)));
  std::string prefix = PartitionPrefix(partition);
  it->Seek(CompactedKey(partition, ref));
  STRATA_RETURN_IF_ERROR(FromRocks(it->status(), "read compacted blocks"));
  if (!it->Valid() || !it->key().starts_with(ToSlice(prefix))) {
    return std::shared_ptr<const CompactedBlock>();
  }
  return OpenBlock(partition, ToView(it->key()), ToView(it->value()), ticket);
}

struct ChunkStore::PartitionReader::State {
  State(ChunkStore* s, int64_t p)
      : store(s),
        partition(p),
        prefix(PartitionPrefix(p)),
        ticket(s->block_cache_ticket()),
        snapshot(s->impl_->db.get()) {
    ro.snapshot = snapshot.get();
  }

  // The block whose ref range holds `ref`, or null.
  absl::StatusOr<std::shared_ptr<const CompactedBlock>> BlockFor(SeriesRef ref);

  ChunkStore* store;
  const int64_t partition;
  const std::string prefix;
  // The ticket first, then the snapshot (BlockCacheTicket).
  const BlockCacheTicket ticket;
  const Snapshot snapshot;
  rocksdb::ReadOptions ro;
  std::unique_ptr<rocksdb::Iterator> blocks, chunks;  // made on first use
  // The last block found: it holds the refs in [block_from, block_last] that it holds at
  // all (block_from is the lowest ref looked up that led to it; no block lies between).
  std::shared_ptr<const CompactedBlock> block;
  SeriesRef block_from = 1, block_last = 0;
  // No block holds this ref or any above it.
  SeriesRef no_block_from = std::numeric_limits<SeriesRef>::max();
};

ChunkStore::PartitionReader::PartitionReader(std::unique_ptr<State> state)
    : state_(std::move(state)) {}
ChunkStore::PartitionReader::~PartitionReader() = default;

std::unique_ptr<ChunkStore::PartitionReader> ChunkStore::ReadPartition(int64_t partition) {
  return std::unique_ptr<PartitionReader>(
      new PartitionReader(std::make_unique<PartitionReader::State>(this, partition)));
}

absl::StatusOr<std::shared_ptr<const CompactedBlock>> ChunkStore::PartitionReader::State::BlockFor(
    SeriesRef ref) {
  if (ref >= block_from && ref <= block_last) return block;
  if (ref >= no_block_from) return std::shared_ptr<const CompactedBlock>();
  if (blocks == nullptr) {
    blocks.reset(store->impl_->db->NewIterator(ro, store->impl_->cf(kCompacted)));
  }
  // Keys are the blocks' last refs: the first key at or after `ref` is the only block that
  // may hold it.
  blocks->Seek(CompactedKey(partition, ref));
  STRATA_RETURN_IF_ERROR(FromRocks(blocks->status(), "read compacted blocks"));
  if (!blocks->Valid() || !blocks->key().starts_with(ToSlice(prefix))) {
    no_block_from = std::min(no_block_from, ref);
    return std::shared_ptr<const CompactedBlock>();
  }
  std::string_view key = ToView(blocks->key());
  if (key.size() != prefix.size() + 8) {
    return absl::DataLossError(fmt::format("malformed compacted block key in partition {} of {}",
                                           partition, store->impl_->path));
  }
  const SeriesRef last = coding::DecodeFixed64BE(key.data() + prefix.size());
  if (block == nullptr || last != block_last) {
    STRATA_ASSIGN_OR_RETURN(block,
                            store->OpenBlock(partition, key, ToView(blocks->value()), ticket));
    block_last = last;
    block_from = ref;
  } else {
    block_from = std::min(block_from, ref);
  }
  return block;
}

absl::StatusOr<std::vector<ChunkRef>> ChunkStore::PartitionReader::Chunks(SeriesRef ref,
                                                                          Timestamp mint,
                                                                          Timestamp maxt) {
  State& st = *state_;
  std::vector<ChunkRef> out;
  // Compacted samples first; decoded when read (ChunkRef::block). The reader's one
  // snapshot serves both forms, so that a compaction committing meanwhile cannot hide
  // samples.
  STRATA_ASSIGN_OR_RETURN(std::shared_ptr<const CompactedBlock> block, st.BlockFor(ref));
  if (std::optional<size_t> i = block ? block->Find(ref) : std::nullopt;
      i && block->mint(*i) <= maxt && block->maxt(*i) >= mint) {
    // Only the samples in range: a query over an hour of a compacted day decodes the
    // columns from the restart before the hour up to its end, and keeps nothing else.
    STRATA_ASSIGN_OR_RETURN(std::span<const Timestamp> ts, block->Timestamps(*i, mint, maxt));
    if (!ts.empty()) {
      out.push_back({.mint = ts.front(),
                     .maxt = ts.back(),
                     .bytes = nullptr,
                     .samples = nullptr,
                     .block = std::move(block),
                     .block_series = *i});
    }
  }
  Impl& im = *st.store->impl_;
  if (st.chunks == nullptr) st.chunks.reset(im.db->NewIterator(st.ro, im.cf(kChunks)));
  rocksdb::Iterator& it = *st.chunks;
  std::string prefix = st.prefix;
  coding::PutFixed64BE(&prefix, ref);
  for (it.Seek(ToSlice(prefix)); it.Valid() && it.key().starts_with(ToSlice(prefix)); it.Next()) {
    std::string_view key = ToView(it.key()), value = ToView(it.value());
    if (key.size() != prefix.size() + 8 || value.empty()) {
      return absl::DataLossError(fmt::format("malformed chunk key of series {}", ref));
    }
    Timestamp cmint = coding::DecodeInt64BE(key.data() + prefix.size());
    if (cmint > maxt) break;
    if (static_cast<uint8_t>(value[0]) != static_cast<uint8_t>(ChunkEncoding::kXor)) {
      return absl::DataLossError(
          fmt::format("chunk of series {} has encoding {} this build cannot read", ref,
                      static_cast<int>(static_cast<uint8_t>(value[0]))));
    }
    value.remove_prefix(1);
    uint64_t span;
    if (!coding::GetUvarint(&value, &span)) {
      return absl::DataLossError(fmt::format("malformed chunk header of series {}", ref));
    }
    Timestamp cmaxt = cmint + static_cast<int64_t>(span);
    if (cmaxt >= mint) out.push_back({cmint, cmaxt, std::make_shared<const std::string>(value)});
  }
  STRATA_RETURN_IF_ERROR(FromRocks(it.status(), "scan"));
  return out;
}

absl::StatusOr<std::vector<int64_t>> ChunkStore::PartitionsWithChunks(int64_t before) {
  std::vector<int64_t> out;
  std::unique_ptr<rocksdb::Iterator> it(
      impl_->db->NewIterator(rocksdb::ReadOptions(), impl_->cf(kChunks)));
  it->SeekToFirst();
  while (it->Valid() && it->key().size() >= 8) {
    int64_t p = coding::DecodeInt64BE(it->key().data());
    if (p >= before) break;
    out.push_back(p);
    if (p == std::numeric_limits<int64_t>::max()) break;
    it->Seek(PartitionPrefix(p + 1));
  }
  STRATA_RETURN_IF_ERROR(FromRocks(it->status(), "list partitions"));
  return out;
}

namespace {

// What a CompactPartition with a selection rewrites, planned from block headers and chunk
// sample counts read at the compaction's snapshot.
struct CompactionPlan {
  std::set<SeriesRef> blocks;  // keys (last refs) of the blocks to merge
  // The tail's series up to this ref form new blocks (none when below every tail ref).
  SeriesRef tail_through = 0;
  bool tail = false;
  // Every unit taken lies at or below this ref (none taken: nullopt).
  std::optional<SeriesRef> through;
  // Whether in_blocks counts every block: not when a budget cut the plan short.
  bool counted = true;
  int64_t in_blocks = 0;  // samples in blocks once the plan is done
  int64_t skipped = 0;    // units left for the budget (with a budget: the first that did not fit)
};

absl::StatusOr<CompactionPlan> PlanCompaction(ChunkStore::Impl& im, const rocksdb::ReadOptions& ro,
                                              int64_t partition,
                                              const CompactionSelection& select) {
  const std::string prefix = PartitionPrefix(partition);
  std::unique_ptr<rocksdb::Iterator> blocks(im.db->NewIterator(ro, im.cf(kCompacted)));
  std::unique_ptr<rocksdb::Iterator> chunks(im.db->NewIterator(ro, im.cf(kChunks)));
  auto valid = [&](rocksdb::Iterator& it) {
    return it.Valid() && it.key().starts_with(ToSlice(prefix)) &&
           it.key().size() >= prefix.size() + 8;
  };
  auto ref_of = [&](rocksdb::Iterator& it) {
    return coding::DecodeFixed64BE(it.key().data() + prefix.size());
  };
  // The samples of the chunks at `chunks` with refs up to `last`.
  auto chunk_samples = [&](SeriesRef last) {
    int64_t n = 0;
    for (; valid(*chunks) && ref_of(*chunks) <= last; chunks->Next()) {
      std::string_view value = ToView(chunks->value());
      uint64_t span;
      if (value.size() < 2) continue;
      value.remove_prefix(1);
      if (coding::GetUvarint(&value, &span)) n += XorChunkSamples(value);
    }
    return n;
  };
  CompactionPlan plan;
  // With a budget (Close), the plan stops at the first unit that does not fit and opens
  // only the blocks with chunks, so that its own work is bounded by the budget too; the
  // partition is then left uncounted.
  const bool budgeted = select.max_samples > 0;
  plan.counted = !budgeted;
  int64_t budget = budgeted ? select.max_samples : std::numeric_limits<int64_t>::max();
  bool cut = false;
  auto take = [&](int64_t work, SeriesRef through) {
    if (work > budget) {
      ++plan.skipped;
      cut = budgeted;
      return false;
    }
    budget -= work;
    plan.through = through;
    return true;
  };
  blocks->Seek(prefix);
  chunks->Seek(prefix);
  for (; !cut && valid(*blocks); blocks->Next()) {
    SeriesRef last = ref_of(*blocks);
    int64_t n = chunk_samples(last);
    if (budgeted && n == 0) continue;
    absl::StatusOr<CompactedBlock> block = CompactedBlock::Open(ToView(blocks->value()));
    if (!block.ok()) {
      return absl::DataLossError(fmt::format("compacted block of partition {} in {}: {}", partition,
                                             im.path, std::string(block.status().message())));
    }
    int64_t c = 0;
    for (size_t i = 0; i < block->num_series(); ++i) {
      c += static_cast<int64_t>(block->num_samples(i));
    }
    plan.in_blocks += c;
    if (n > 0 && static_cast<double>(n) >= select.min_ratio * static_cast<double>(c) &&
        take(c + n, last)) {
      plan.blocks.insert(last);
      plan.in_blocks += n;
    }
  }
  STRATA_RETURN_IF_ERROR(FromRocks(blocks->status(), "read compacted blocks"));
  if (cut) return plan;
  // The tail, series by series, for the budget.
  std::vector<std::pair<SeriesRef, int64_t>> tail;
  int64_t tail_samples = 0;
  while (valid(*chunks)) {
    SeriesRef ref = ref_of(*chunks);
    int64_t n = chunk_samples(ref);
    tail.emplace_back(ref, n);
    tail_samples += n;
  }
  STRATA_RETURN_IF_ERROR(FromRocks(chunks->status(), "read chunks"));
  if (tail_samples > 0 && tail_samples >= select.min_tail_samples) {
    for (const auto& [ref, n] : tail) {
      if (!take(n, ref)) break;
      plan.tail = true;
      plan.tail_through = ref;
      plan.in_blocks += n;
    }
  }
  return plan;
}

}  // namespace

PartitionSamples ChunkStore::CountedSamples(int64_t partition) {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = samples_.find(partition);
  if (it != samples_.end()) return it->second;
  return PartitionSamples{.counted = !partitions_.contains(partition)};
}

absl::Status ChunkStore::CompactPartition(int64_t partition, const CompactionOptions& options,
                                          CompactionStats* stats,
                                          const CompactionSelection* select) {
  std::lock_guard<std::mutex> compact_lock(compact_mu_);
  int64_t flushed_before = 0;  // flushed samples counted before the snapshot
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (!partitions_.contains(partition)) return absl::OkStatus();  // dropped meanwhile
    if (auto it = samples_.find(partition); it != samples_.end())
      flushed_before = it->second.flushed;
  }
  Impl& im = *impl_;
  const std::string prefix = PartitionPrefix(partition);
  Snapshot snapshot(im.db.get());
  rocksdb::ReadOptions ro;
  ro.snapshot = snapshot.get();
  // A compaction reads what it is about to replace: through the block cache it would evict
  // the blocks queries read.
  ro.fill_cache = false;
  std::optional<CompactionPlan> plan;
  if (select != nullptr) {
    STRATA_ASSIGN_OR_RETURN(plan, PlanCompaction(im, ro, partition, *select));
  }
  std::unique_ptr<rocksdb::Iterator> blocks(im.db->NewIterator(ro, im.cf(kCompacted)));
  std::unique_ptr<rocksdb::Iterator> chunks(im.db->NewIterator(ro, im.cf(kChunks)));
  blocks->Seek(prefix);
  chunks->Seek(prefix);

  CompactionStats done;
  // The group being built: series in ref order, and the keys it replaces.
  std::vector<CompactedSeries> group;
  std::vector<std::string> old_blocks, old_chunks;
  int64_t group_samples = 0, group_bytes_before = 0;

  auto write_group = [&]() -> absl::Status {
    if (group.empty() && old_chunks.empty()) return absl::OkStatus();
    rocksdb::WriteBatch batch;
    for (const std::string& k : old_blocks) {
      STRATA_RETURN_IF_ERROR(FromRocks(batch.Delete(im.cf(kCompacted), k), "batch"));
    }
    for (const std::string& k : old_chunks) {
      STRATA_RETURN_IF_ERROR(FromRocks(batch.Delete(im.cf(kChunks), k), "batch"));
    }
    size_t block_bytes = 0;
    if (!group.empty()) {
      CompactedEncodeOptions eo;
      eo.zstd_level = options.zstd_level;
      eo.max_base_depth = options.max_base_depth;
      eo.restart_interval = options.restart_interval;
      if (eo.max_base_depth > 0) STRATA_RETURN_IF_ERROR(AssignBases(im, group));
      STRATA_ASSIGN_OR_RETURN(std::string block, EncodeCompactedBlock(group, eo));
      block_bytes = block.size();
      STRATA_RETURN_IF_ERROR(FromRocks(
          batch.Put(im.cf(kCompacted), CompactedKey(partition, group.back().ref), block), "batch"));
    }
    bool upgrade = format_version() < kStoreFormatVersion;
    if (upgrade) STRATA_RETURN_IF_ERROR(PutFormatVersion(im, &batch));
    rocksdb::WriteOptions wo;
    wo.sync = true;
    BeginBlockWrite();
    const rocksdb::Status written = im.db->Write(wo, &batch);
    EndBlockWrite();
    STRATA_RETURN_IF_ERROR(
        FromRocks(written, fmt::format("write compacted partition to {}", im.path)));
    if (upgrade) {
      std::lock_guard<std::mutex> lock(mu_);
      format_version_ = kStoreFormatVersion;
    }
    done.blocks_written += group.empty() ? 0 : 1;
    done.chunks_removed += static_cast<int64_t>(old_chunks.size());
    done.samples += group_samples;
    done.bytes_before += group_bytes_before;
    done.bytes_after += static_cast<int64_t>(block_bytes);
    group.clear();
    old_blocks.clear();
    old_chunks.clear();
    group_samples = group_bytes_before = 0;
    return absl::OkStatus();
  };

  auto valid = [&](rocksdb::Iterator& it) {
    return it.Valid() && it.key().starts_with(ToSlice(prefix)) &&
           it.key().size() >= prefix.size() + 8;
  };
  auto ref_of = [&](rocksdb::Iterator& it) {
    return coding::DecodeFixed64BE(it.key().data() + prefix.size());
  };
  // Reads every XOR chunk of the series at `chunks` into `sources`.
  auto read_chunks = [&](SeriesRef ref, std::vector<std::vector<Sample>>* sources) {
    for (; valid(*chunks) && ref_of(*chunks) == ref; chunks->Next()) {
      std::string_view value = ToView(chunks->value());
      group_bytes_before += static_cast<int64_t>(value.size());
      old_chunks.emplace_back(ToView(chunks->key()));
      if (value.empty() ||
          static_cast<uint8_t>(value[0]) != static_cast<uint8_t>(ChunkEncoding::kXor)) {
        return absl::DataLossError(
            fmt::format("chunk of series {} in partition {} has an encoding compaction cannot read",
                        ref, partition));
      }
      value.remove_prefix(1);
      uint64_t span;
      if (!coding::GetUvarint(&value, &span)) {
        return absl::DataLossError(fmt::format("malformed chunk header of series {}", ref));
      }
      std::vector<Sample> samples;
      XorChunkIterator it(value);
      STRATA_RETURN_IF_ERROR(it.AppendRange(std::numeric_limits<Timestamp>::min(),
                                            std::numeric_limits<Timestamp>::max(), &samples));
      if (!samples.empty()) sources->push_back(std::move(samples));
    }
    return FromRocks(chunks->status(), "read chunks");
  };
  auto add_series = [&](SeriesRef ref, std::vector<std::vector<Sample>>& sources) {
    if (sources.empty()) return;
    CompactedSeries s{.ref = ref, .samples = MergeSources(sources), .base = {}};
    group_samples += static_cast<int64_t>(s.samples.size());
    group.push_back(std::move(s));
  };

  while (true) {
    bool has_block = valid(*blocks), has_chunk = valid(*chunks);
    if (!has_block && !has_chunk) break;
    SeriesRef chunk_ref = has_chunk ? ref_of(*chunks) : 0;
    // Past every unit the plan took: nothing more to read.
    if (plan && (!plan->through || (has_block ? ref_of(*blocks) : chunk_ref) > *plan->through)) {
      break;
    }
    if (has_block && (!has_chunk || chunk_ref > ref_of(*blocks))) {
      // A block with no new chunks in its ref range stays as it is; a group never spans it.
      STRATA_RETURN_IF_ERROR(write_group());
      blocks->Next();
      continue;
    }
    if (has_block && plan && !plan->blocks.contains(ref_of(*blocks))) {
      // Not selected: the block and the chunks in its range stay as they are.
      STRATA_RETURN_IF_ERROR(write_group());
      while (valid(*chunks) && ref_of(*chunks) <= ref_of(*blocks)) chunks->Next();
      blocks->Next();
      continue;
    }
    if (!has_block && plan && (!plan->tail || chunk_ref > plan->tail_through)) break;
    if (has_block) {
      // The block and every chunk in its ref range become part of the group.
      SeriesRef last = ref_of(*blocks);
      std::string_view value = ToView(blocks->value());
      absl::StatusOr<CompactedBlock> block = CompactedBlock::Open(value);
      if (!block.ok()) {
        return absl::DataLossError(fmt::format("compacted block of partition {} in {}: {}",
                                               partition, im.path,
                                               std::string(block.status().message())));
      }
      group_bytes_before += static_cast<int64_t>(value.size());
      old_blocks.emplace_back(ToView(blocks->key()));
      std::map<SeriesRef, std::vector<std::vector<Sample>>> sources;
      for (size_t i = 0; i < block->num_series(); ++i) {
        std::vector<Sample> samples;
        STRATA_RETURN_IF_ERROR(block->Decode(i, &samples));
        sources[block->ref(i)].push_back(std::move(samples));
      }
      while (valid(*chunks) && ref_of(*chunks) <= last) {
        SeriesRef ref = ref_of(*chunks);
        STRATA_RETURN_IF_ERROR(read_chunks(ref, &sources[ref]));
      }
      for (auto& [ref, src] : sources) add_series(ref, src);
      blocks->Next();
    } else {
      std::vector<std::vector<Sample>> sources;
      STRATA_RETURN_IF_ERROR(read_chunks(chunk_ref, &sources));
      add_series(chunk_ref, sources);
    }
    if (static_cast<int64_t>(group.size()) >= options.max_series_per_group ||
        group_samples >= options.max_samples_per_group) {
      STRATA_RETURN_IF_ERROR(write_group());
    }
  }
  STRATA_RETURN_IF_ERROR(FromRocks(blocks->status(), "read compacted blocks"));
  STRATA_RETURN_IF_ERROR(FromRocks(chunks->status(), "read chunks"));
  STRATA_RETURN_IF_ERROR(write_group());
  if (done.chunks_removed > 0) done.partitions = 1;
  if (plan && plan->skipped > 0) done.budget_skipped = 1;
  if (stats != nullptr) *stats += done;
  std::lock_guard<std::mutex> lock(mu_);
  if (!partitions_.contains(partition)) return absl::OkStatus();
  if (plan && plan->counted) {
    // Samples flushed after the snapshot stay counted for the next compaction.
    PartitionSamples& counted = samples_[partition];
    counted = {.counted = true,
               .in_blocks = plan->in_blocks,
               .flushed = std::max<int64_t>(0, counted.flushed - flushed_before)};
  } else {
    samples_.erase(partition);
  }
  return absl::OkStatus();
}

absl::Status ChunkStore::FlushMemtables() {
  return FromRocks(impl_->db->Flush(rocksdb::FlushOptions(), impl_->handles),
                   fmt::format("write memtables of {} to SST files", impl_->path));
}

absl::StatusOr<std::vector<std::pair<std::string, uint64_t>>> ChunkStore::LiveSstBytes(
    bool compact_files) {
  Impl& im = *impl_;
  STRATA_RETURN_IF_ERROR(FlushMemtables());
  std::vector<std::pair<std::string, uint64_t>> out;
  for (rocksdb::ColumnFamilyHandle* cf : im.handles) {
    if (compact_files) {
      rocksdb::CompactRangeOptions co;
      co.bottommost_level_compaction = rocksdb::BottommostLevelCompaction::kForce;
      STRATA_RETURN_IF_ERROR(
          FromRocks(im.db->CompactRange(co, cf, nullptr, nullptr), "compact range"));
    }
    rocksdb::ColumnFamilyMetaData meta;
    im.db->GetColumnFamilyMetaData(cf, &meta);
    out.emplace_back(cf->GetName(), meta.size);
  }
  return out;
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
  std::lock_guard<std::mutex> compact_lock(compact_mu_);
  rocksdb::WriteBatch batch;
  Impl& im = *impl_;
  // Compacted blocks: per block key, the series whose samples change.
  std::map<std::string, std::map<SeriesRef, const std::vector<Sample>*>> block_changes;
  {
    std::unique_ptr<rocksdb::Iterator> it(
        im.db->NewIterator(rocksdb::ReadOptions(), im.cf(kCompacted)));
    for (const ChunkRewrite& rw : rewrites) {
      if (!rw.compacted) continue;
      it->Seek(CompactedKey(rw.partition, rw.ref));
      STRATA_RETURN_IF_ERROR(FromRocks(it->status(), "read compacted blocks"));
      if (!it->Valid() || !it->key().starts_with(ToSlice(PartitionPrefix(rw.partition)))) {
        return absl::DataLossError(
            fmt::format("no compacted block of partition {} holds series {} in {}", rw.partition,
                        rw.ref, im.path));
      }
      block_changes[std::string(ToView(it->key()))][rw.ref] = &*rw.compacted;
    }
  }
  bool blocks_written = false;
  for (const auto& [key, changes] : block_changes) {
    std::string value;
    STRATA_RETURN_IF_ERROR(
        FromRocks(im.db->Get(rocksdb::ReadOptions(), im.cf(kCompacted), key, &value),
                  "read compacted block"));
    absl::StatusOr<CompactedBlock> block = CompactedBlock::Open(value);
    if (!block.ok()) {
      return absl::DataLossError(
          fmt::format("compacted block in {}: {}", im.path, std::string(block.status().message())));
    }
    std::vector<CompactedSeries> series;
    size_t found = 0;
    for (size_t i = 0; i < block->num_series(); ++i) {
      CompactedSeries s{.ref = block->ref(i), .samples = {}, .base = {}};
      if (auto c = changes.find(s.ref); c != changes.end()) {
        ++found;
        s.samples = *c->second;
      } else {
        STRATA_RETURN_IF_ERROR(block->Decode(i, &s.samples));
      }
      if (!s.samples.empty()) series.push_back(std::move(s));
    }
    if (found != changes.size()) {
      return absl::DataLossError(
          fmt::format("a compacted block in {} lacks a series being rewritten", im.path));
    }
    if (series.empty()) {
      STRATA_RETURN_IF_ERROR(FromRocks(batch.Delete(im.cf(kCompacted), key), "batch"));
    } else {
      // Bases are chosen afresh: a series' base may have left the block or changed.
      STRATA_RETURN_IF_ERROR(AssignBases(im, series));
      STRATA_ASSIGN_OR_RETURN(std::string encoded,
                              EncodeCompactedBlock(series, CompactedEncodeOptions{}));
      STRATA_RETURN_IF_ERROR(FromRocks(batch.Put(im.cf(kCompacted), key, encoded), "batch"));
      blocks_written = true;
    }
  }
  bool drops_postings = false;
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
      drops_postings = true;
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
  const bool upgrade = blocks_written && format_version() < kStoreFormatVersion;
  if (upgrade) STRATA_RETURN_IF_ERROR(PutFormatVersion(im, &batch));
  rocksdb::WriteOptions wo;
  wo.sync = true;
  const bool changes_blocks = !block_changes.empty();
  if (changes_blocks) BeginBlockWrite();
  if (drops_postings) im.BeginPostingsWrite();
  const rocksdb::Status written = im.db->Write(wo, &batch);
  if (drops_postings) im.EndPostingsWrite();
  if (changes_blocks) EndBlockWrite();
  STRATA_RETURN_IF_ERROR(FromRocks(written, fmt::format("rewrite chunks in {}", im.path)));
  if (upgrade) {
    std::lock_guard<std::mutex> lock(mu_);
    format_version_ = kStoreFormatVersion;
  }
  return absl::OkStatus();
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
  for (Family f : {kChunks, kCompacted, kPostings}) {
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
  for (Family f : {kChunks, kCompacted, kPostings}) {
    STRATA_RETURN_IF_ERROR(FromRocks(impl_->db->CompactRange(options, impl_->cf(f), &b, &e),
                                     fmt::format("compact {}", impl_->path)));
  }
  return absl::OkStatus();
}

}  // namespace strata
