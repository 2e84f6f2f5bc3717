// include/strata/db.h, implemented over Storage.
#include <mutex>
#include <shared_mutex>

#include "src/matcher.h"
#include "storage/db.h"
#include "strata/db.h"

namespace strata {
namespace {

Status FromAbsl(const absl::Status& st) {
  if (st.ok()) return Status();
  return Status(static_cast<Status::Code>(static_cast<int>(st.code())), std::string(st.message()));
}

absl::StatusOr<std::vector<LabelMatcher>> ToMatchers(const std::vector<Matcher>& in) {
  std::vector<LabelMatcher> out;
  for (const Matcher& m : in) {
    MatchType type = MatchType::kEqual;
    switch (m.op) {
      case Matcher::Op::kEqual:
        type = MatchType::kEqual;
        break;
      case Matcher::Op::kNotEqual:
        type = MatchType::kNotEqual;
        break;
      case Matcher::Op::kRegexMatch:
        type = MatchType::kRegexMatch;
        break;
      case Matcher::Op::kRegexNoMatch:
        type = MatchType::kRegexNoMatch;
        break;
    }
    auto lm = LabelMatcher::Make(type, m.name, m.value);
    if (!lm.ok()) return lm.status();
    out.push_back(std::move(*lm));
  }
  return out;
}

LabelPairs ToPairs(const Labels& labels) {
  LabelPairs out;
  for (const LabelView& l : labels) out.emplace_back(std::string(l.name), std::string(l.value));
  return out;
}

constexpr Timestamp kAllTime = std::numeric_limits<Timestamp>::max() / 2;

class DBImpl final : public DB {
 public:
  explicit DBImpl(std::unique_ptr<Storage> storage) : storage_(std::move(storage)) {}
  ~DBImpl() override { Close(); }

  Status Append(const std::vector<SeriesSamples>& batch, AppendStats* result) override {
    std::vector<SeriesBatch> converted;
    converted.reserve(batch.size());
    for (const SeriesSamples& s : batch) {
      SeriesBatch b;
      b.labels = Labels::FromPairs(s.labels);
      absl::Status valid = ValidateLabels(b.labels, /*require_name=*/false);
      if (!valid.ok()) return FromAbsl(valid);
      b.samples.reserve(s.samples.size());
      for (const Point& p : s.samples) b.samples.push_back({p.t, p.v});
      converted.push_back(std::move(b));
    }
    std::shared_lock<std::shared_mutex> lock(mu_);
    if (!storage_) return Status(Status::Code::kFailedPrecondition, "database is closed");
    auto r = storage_->Append(converted);
    if (!r.ok()) return FromAbsl(r.status());
    if (result != nullptr) {
      *result = {r->appended, r->unchanged, r->out_of_order,
                 r->too_old,  r->duplicate, r->out_of_order_appended};
    }
    return Status();
  }

  Status Query(const std::vector<Matcher>& matchers, int64_t mint, int64_t maxt,
               std::vector<SeriesData>* out) override {
    out->clear();
    auto lm = ToMatchers(matchers);
    if (!lm.ok()) return FromAbsl(lm.status());
    std::shared_lock<std::shared_mutex> lock(mu_);
    if (!storage_) return Status(Status::Code::kFailedPrecondition, "database is closed");
    auto q = storage_->MakeQuerier(mint, maxt);
    if (!q.ok()) return FromAbsl(q.status());
    auto set = (*q)->Select(*lm, SelectHints{});
    if (!set.ok()) return FromAbsl(set.status());
    while ((*set)->Next()) {
      SeriesData d;
      d.labels = ToPairs((*set)->labels());
      auto it = (*set)->Samples();
      while (it->Next()) d.samples.push_back({it->At().t, it->At().v});
      if (!it->status().ok()) return FromAbsl(it->status());
      out->push_back(std::move(d));
    }
    return FromAbsl((*set)->status());
  }

  Status LabelNames(const std::vector<Matcher>& matchers, std::vector<std::string>* out) override {
    auto lm = ToMatchers(matchers);
    if (!lm.ok()) return FromAbsl(lm.status());
    std::shared_lock<std::shared_mutex> lock(mu_);
    if (!storage_) return Status(Status::Code::kFailedPrecondition, "database is closed");
    auto q = storage_->MakeQuerier(-kAllTime, kAllTime);
    if (!q.ok()) return FromAbsl(q.status());
    auto names = (*q)->LabelNames(*lm);
    if (!names.ok()) return FromAbsl(names.status());
    *out = std::move(*names);
    return Status();
  }

  Status LabelValues(const std::string& name, const std::vector<Matcher>& matchers,
                     std::vector<std::string>* out) override {
    auto lm = ToMatchers(matchers);
    if (!lm.ok()) return FromAbsl(lm.status());
    std::shared_lock<std::shared_mutex> lock(mu_);
    if (!storage_) return Status(Status::Code::kFailedPrecondition, "database is closed");
    auto q = storage_->MakeQuerier(-kAllTime, kAllTime);
    if (!q.ok()) return FromAbsl(q.status());
    auto values = (*q)->LabelValues(name, *lm);
    if (!values.ok()) return FromAbsl(values.status());
    *out = std::move(*values);
    return Status();
  }

  Status Flush() override {
    std::shared_lock<std::shared_mutex> lock(mu_);
    if (!storage_) return Status(Status::Code::kFailedPrecondition, "database is closed");
    return FromAbsl(storage_->Flush(false));
  }

  Status Close() override {
    // Waits for in-flight calls, which hold the lock shared.
    std::unique_lock<std::shared_mutex> lock(mu_);
    if (!storage_) return Status();
    absl::Status st = storage_->Close();
    storage_.reset();
    return FromAbsl(st);
  }

 private:
  std::shared_mutex mu_;
  std::unique_ptr<Storage> storage_;
};

}  // namespace

Status DB::Open(const Options& options, std::unique_ptr<DB>* db) {
  StorageOptions so;
  so.dir = options.dir;
  so.wal_sync = options.wal_fsync;
  so.partition_ms = options.partition_ms;
  so.max_sample_age_ms = options.max_sample_age_ms;
  so.out_of_order_window_ms = options.out_of_order_window_ms;
  so.flush_interval_ms = options.flush_interval_ms;
  so.flush_on_close = options.flush_on_close;
  auto storage = Storage::Open(so);
  if (!storage.ok()) return FromAbsl(storage.status());
  *db = std::make_unique<DBImpl>(std::move(*storage));
  return Status();
}

}  // namespace strata
