// Random interleavings of appends, flushes, restarts, deletions, tombstone cleanings,
// compactions, time retention and queries, checked against a naive model: a std::map of
// samples per series that applies the same acceptance rules and retention.
#include <array>
#include <bit>
#include <map>
#include <optional>
#include <random>
#include <set>

#include "gtest/gtest.h"
#include "storage/db.h"
#include "storage/head.h"
#include "tests/storage/test_util.h"

namespace strata {
namespace {

using testing::M;

constexpr int64_t kPartition = 60000;
constexpr int64_t kMaxAge = 40000;
constexpr int64_t kRetention = 250000;

class Model {
 public:
  // Mirrors Head::Append: too-old against the max time before the batch, then per series
  // order and duplicate checks.
  AppendResult Append(const std::vector<SeriesBatch>& batch) {
    AppendResult r;
    Timestamp min_valid = has_max_ ? max_time_ - kMaxAge : std::numeric_limits<Timestamp>::min();
    Timestamp batch_max = std::numeric_limits<Timestamp>::min();
    for (const SeriesBatch& b : batch) {
      auto& [labels, samples] = series_[b.labels.ToString()];
      labels = b.labels;
      // Deleted samples are gone from `samples`, but the series' last sample still decides
      // what is in order.
      std::optional<Sample>& last = last_[b.labels.ToString()];
      for (const Sample& s : b.samples) {
        if (s.t < min_valid) {
          ++r.too_old;
        } else if (last && s.t < last->t) {
          ++r.out_of_order;
        } else if (last && s.t == last->t) {
          if (std::bit_cast<uint64_t>(s.v) == std::bit_cast<uint64_t>(last->v)) {
            ++r.unchanged;
          } else {
            ++r.duplicate;
          }
        } else {
          samples.push_back(s);
          last = s;
          ++r.appended;
          batch_max = std::max(batch_max, s.t);
        }
      }
    }
    if (r.appended > 0 && (!has_max_ || batch_max > max_time_)) {
      max_time_ = batch_max;
      has_max_ = true;
    }
    return r;
  }

  std::optional<Sample> Last(const Labels& labels) const {
    auto it = last_.find(labels.ToString());
    if (it == last_.end()) return std::nullopt;
    return it->second;
  }

  // The earliest last-sample time over the series the matchers select (max when none).
  Timestamp MinLast(const std::vector<LabelMatcher>& matchers) const {
    Timestamp out = std::numeric_limits<Timestamp>::max();
    for (const auto& [key, entry] : series_) {
      auto last = last_.find(key);
      if (MatchesAll(matchers, entry.first) && last != last_.end() && last->second) {
        out = std::min(out, last->second->t);
      }
    }
    return out;
  }

  void Delete(const std::vector<LabelMatcher>& matchers, Timestamp mint, Timestamp maxt) {
    for (auto& [key, entry] : series_) {
      if (!MatchesAll(matchers, entry.first)) continue;
      std::erase_if(entry.second, [&](const Sample& s) { return s.t >= mint && s.t <= maxt; });
    }
  }

  // Retention hides everything before the start of the partition holding max - kRetention.
  testing::SeriesSamplesMap Select(const std::vector<LabelMatcher>& matchers, Timestamp mint,
                                   Timestamp maxt) const {
    if (has_max_)
      mint = std::max(mint, PartitionOf(max_time_ - kRetention, kPartition) * kPartition);
    testing::SeriesSamplesMap out;
    for (const auto& [key, entry] : series_) {
      if (!MatchesAll(matchers, entry.first)) continue;
      std::vector<Sample> in;
      for (const Sample& s : entry.second) {
        if (s.t >= mint && s.t <= maxt) in.push_back(s);
      }
      if (!in.empty()) out[key] = std::move(in);
    }
    return out;
  }

 private:
  std::map<std::string, std::pair<Labels, std::vector<Sample>>> series_;
  std::map<std::string, std::optional<Sample>> last_;
  Timestamp max_time_ = 0;
  bool has_max_ = false;
};

class PropertyRun {
 public:
  // With `compact`, compactions (with groups of at most 3 series) are interleaved too.
  PropertyRun(uint32_t seed, const std::string& dir, bool compact = false)
      : rng_(seed), dir_(dir), compact_(compact) {
    for (std::string name : {"cpu", "mem"}) {
      for (std::string job : {"api", "db", "web"}) {
        for (std::string inst : {"", "i1", "i2"}) {
          series_.push_back(Labels{{"__name__", name}, {"job", job}, {"inst", inst}});
        }
      }
    }
    for (const char* spec :
         {"__name__=cpu", "__name__=~.+", "job=~api|web", "job=~d.*", "__name__=~c.u"}) {
      positive_.push_back(Parse(spec));
    }
    for (const char* spec :
         {"job!=db", "inst=", "inst!~i1", "job!~a.*", "inst=~i.*", "__name__!=mem", "inst=~i2|"}) {
      extra_.push_back(Parse(spec));
    }
  }

  StorageOptions Options() {
    StorageOptions o;
    o.dir = dir_;
    o.flush_interval_ms = 0;
    o.partition_ms = kPartition;
    o.chunk_samples = 8;
    o.max_sample_age_ms = kMaxAge;
    o.retention_ms = kRetention;
    o.wal_segment_bytes = 2048;
    o.idle_chunk_ms = 20000;
    o.wal_sync = false;
    // Only Close compacts on its own (there is no flush thread): in the compaction runs,
    // within a small random budget that often cuts it short.
    o.background_compaction = compact_;
    o.compaction.max_series_per_group = 3;
    // Open partitions are compacted after a few samples, merged at random ratios.
    o.compaction.open_merge_ratio = std::array{0.0, 0.25, 0.5, 1.0}[Uniform(0, 3)];
    o.compaction.open_min_samples = Uniform(1, 40);
    o.compaction.close_max_samples = Uniform(0, 2) == 0 ? 0 : Uniform(1, 300);
    // Half the closes flush the head to RocksDB, half leave it in the WAL.
    o.flush_on_close = Uniform(0, 1) == 1;
    return o;
  }

  void Run(int ops) {
    auto db = Storage::Open(Options());
    ASSERT_TRUE(db.ok()) << db.status();
    db_ = std::move(*db);
    for (int op = 0; op < ops; ++op) {
      int dice = Uniform(0, 99);
      if (compact_ && dice >= 94) {
        if (dice >= 98) {
          ASSERT_TRUE(db_->Flush(true).ok());
        }
        absl::Status st = db_->Compact();
        ASSERT_TRUE(st.ok()) << st;
        if (dice == 94 || dice == 99) {
          // Deleted samples in compacted blocks: cleaning must rewrite the blocks.
          Delete(/*old=*/true);
          st = db_->CleanTombstones();
          ASSERT_TRUE(st.ok()) << st;
          Query(op, /*old=*/true);
        }
      } else if (dice < 54) {
        Append();
      } else if (dice < 62) {
        ASSERT_TRUE(db_->Flush(Uniform(0, 1) == 1).ok());
        // As the flush loop does: open partitions get compacted while appends go on.
        if (compact_ && Uniform(0, 1) == 1) {
          ASSERT_TRUE(db_->Compact().ok());
        }
      } else if (dice < 68) {
        Delete();
      } else if (dice < 70) {
        ASSERT_TRUE(db_->CleanTombstones().ok());
      } else if (dice < 74) {
        Count(db_->stats().compaction);
        ASSERT_TRUE(db_->Close().ok());
        db_.reset();
        auto again = Storage::Open(Options());
        ASSERT_TRUE(again.ok()) << again.status();
        db_ = std::move(*again);
      } else {
        Query(op);
      }
      if (::testing::Test::HasFatalFailure()) return;
    }
    Count(db_->stats().compaction);
    db_.reset();
  }

  int64_t compacted_partitions() const { return compacted_; }
  int64_t open_compacted_partitions() const { return open_compacted_; }

 private:
  LabelMatcher Parse(std::string_view spec) {
    for (auto [op, type] :
         {std::pair{"=~", MatchType::kRegexMatch}, std::pair{"!~", MatchType::kRegexNoMatch},
          std::pair{"!=", MatchType::kNotEqual}, std::pair{"=", MatchType::kEqual}}) {
      size_t pos = spec.find(op);
      if (pos != std::string_view::npos) {
        return M(type, spec.substr(0, pos), spec.substr(pos + std::string_view(op).size()));
      }
    }
    ADD_FAILURE() << spec;
    return M(MatchType::kEqual, "x", "y");
  }

  void Count(const CompactionStats& stats) {
    compacted_ += stats.partitions;
    open_compacted_ += stats.open_partitions;
  }

  int Uniform(int lo, int hi) { return std::uniform_int_distribution<int>(lo, hi)(rng_); }

  void Append() {
    std::vector<SeriesBatch> batch;
    int n = Uniform(1, 4);
    for (int i = 0; i < n; ++i) {
      SeriesBatch b;
      b.labels = series_[Uniform(0, series_.size() - 1)];
      int k = Uniform(1, 12);
      std::optional<Sample> last = model_.Last(b.labels);
      for (int j = 0; j < k; ++j) {
        int kind = Uniform(0, 19);
        Timestamp t;
        if (kind == 0) {
          t = clock_ - Uniform(0, 60000);  // often out of order or too old
        } else if (kind <= 2 && j == 0 && last) {
          // Just before, or at, the series' last sample (maybe only stored in RocksDB).
          t = last->t - Uniform(0, 1);
          if (Uniform(0, 1)) {
            b.samples.push_back({t, last->v});
            continue;
          }
        } else if (kind == 3) {
          t = clock_;  // a duplicate timestamp
        } else {
          clock_ += Uniform(1, 3000);
          t = clock_;
        }
        double v = Uniform(0, 3) == 0 ? std::bit_cast<double>(kStaleNaNBits) : Uniform(0, 5) * 0.25;
        b.samples.push_back({t, v});
      }
      batch.push_back(std::move(b));
    }
    AppendResult want = model_.Append(batch);
    auto got = db_->Append(batch);
    ASSERT_TRUE(got.ok()) << got.status();
    EXPECT_EQ(got->appended, want.appended);
    EXPECT_EQ(got->out_of_order, want.out_of_order);
    EXPECT_EQ(got->too_old, want.too_old);
    EXPECT_EQ(got->duplicate, want.duplicate);
    EXPECT_EQ(got->unchanged, want.unchanged);
  }

  std::vector<LabelMatcher> RandomMatchers() {
    std::vector<LabelMatcher> matchers = {positive_[Uniform(0, positive_.size() - 1)]};
    if (Uniform(0, 1)) matchers.push_back(extra_[Uniform(0, extra_.size() - 1)]);
    if (Uniform(0, 2) == 0) matchers.push_back(extra_[Uniform(0, extra_.size() - 1)]);
    return matchers;
  }

  // Deletes a random range of random series. The range ends before the last sample of
  // every selected series: a series' last sample decides which appends are in order, and
  // once cleaned away a restart would forget it (the model does not follow that).
  // With `old`, the range lies in closed (maybe compacted) partitions.
  void Delete(bool old = false) {
    std::vector<LabelMatcher> matchers = RandomMatchers();
    Timestamp min_last = model_.MinLast(matchers);
    Timestamp end = min_last == std::numeric_limits<Timestamp>::max() ? clock_ : min_last - 1;
    Timestamp maxt = old ? std::min(end, clock_ - kMaxAge - Uniform(0, 120000))
                         : end - Uniform(0, 3) * Uniform(0, 20000);
    Timestamp mint =
        Uniform(0, 5) == 0 ? std::numeric_limits<Timestamp>::min() : maxt - Uniform(0, 100000);
    ASSERT_TRUE(db_->DeleteSeries(matchers, mint, maxt).ok());
    if (mint <= maxt) model_.Delete(matchers, mint, maxt);
  }

  // With `old`, every series over everything retained.
  void Query(int op, bool old = false) {
    std::vector<LabelMatcher> matchers =
        old ? std::vector<LabelMatcher>{positive_[1]} : RandomMatchers();
    Timestamp mint = old || Uniform(0, 3) == 0 ? std::numeric_limits<Timestamp>::min() / 2
                                               : clock_ - Uniform(0, 400000);
    Timestamp maxt = old || Uniform(0, 3) == 0 ? clock_ + 1 : mint + Uniform(0, 200000);
    auto q = db_->MakeQuerier(mint, maxt);
    ASSERT_TRUE(q.ok());
    testing::SeriesSamplesMap got = testing::ReadAll(**q, matchers);
    testing::SeriesSamplesMap want = model_.Select(matchers, mint, maxt);
    std::string desc;
    for (auto& m : matchers) desc += m.ToString() + " ";
    ASSERT_EQ(got.size(), want.size())
        << "op " << op << " " << desc << "[" << mint << "," << maxt << "]";
    for (auto& [key, samples] : want) {
      ASSERT_TRUE(got.count(key)) << key;
      ASSERT_TRUE(testing::SameSamples(got[key], samples))
          << "op " << op << " " << key << "\n got  " << testing::Describe(got[key]) << "\n want "
          << testing::Describe(samples);
    }
    // Label values restricted by matchers agree with the selected series.
    auto values = (*q)->LabelValues("job", matchers);
    ASSERT_TRUE(values.ok());
    std::set<std::string> want_values;
    for (auto& [key, samples] : want) {
      for (const Labels& l : series_) {
        if (l.ToString() == key) want_values.emplace(l.Get("job"));
      }
    }
    EXPECT_EQ(*values, std::vector<std::string>(want_values.begin(), want_values.end()));
    // With tombstones, the label listings without matchers look at samples too: a series
    // whose samples in the range are all deleted is not listed.
    if (!db_->tombstones()->empty()) {
      std::set<std::string> all_jobs;
      for (auto& [key, samples] : model_.Select({}, mint, maxt)) {
        for (const Labels& l : series_) {
          if (l.ToString() == key) all_jobs.emplace(l.Get("job"));
        }
      }
      auto jobs = (*q)->LabelValues("job", {});
      ASSERT_TRUE(jobs.ok());
      EXPECT_EQ(*jobs, std::vector<std::string>(all_jobs.begin(), all_jobs.end()))
          << "op " << op << " [" << mint << "," << maxt << "]";
    }
  }

  std::mt19937 rng_;
  std::string dir_;
  bool compact_;
  int64_t compacted_ = 0, open_compacted_ = 0;
  std::vector<Labels> series_;
  std::vector<LabelMatcher> positive_, extra_;
  Model model_;
  std::unique_ptr<Storage> db_;
  Timestamp clock_ = 1000000;
};

TEST(StorageProperty, MatchesNaiveModelOverAppendsFlushesRestartsDeletesAndQueries) {
  for (uint32_t seed : {1u, 2u, 3u}) {
    SCOPED_TRACE(::testing::Message() << "seed " << seed);
    testing::TempDir dir;
    PropertyRun run(seed, dir.path());
    run.Run(400);
    if (HasFailure()) return;
  }
}

TEST(StorageProperty, MatchesNaiveModelWithCompactionsInterleaved) {
  int64_t compacted = 0, open_compacted = 0;
  for (uint32_t seed : {11u, 12u, 13u, 14u}) {
    SCOPED_TRACE(::testing::Message() << "seed " << seed);
    testing::TempDir dir;
    PropertyRun run(seed, dir.path(), /*compact=*/true);
    run.Run(600);
    if (HasFailure()) return;
    compacted += run.compacted_partitions();
    open_compacted += run.open_compacted_partitions();
  }
  EXPECT_GT(compacted, 10);       // the runs did compact (and merge late chunks)
  EXPECT_GT(open_compacted, 10);  // open partitions too, while appends went on
}

}  // namespace
}  // namespace strata
