// The head's read path: its inverted index and chunk snapshots.
#include <algorithm>

#include "storage/head.h"

namespace strata {

// Copies what it returns under a shared lock, so results stay valid while appends go on.
class Head::HeadIndexReader final : public IndexReader {
 public:
  explicit HeadIndexReader(Head* head) : head_(head) {}

  absl::StatusOr<std::vector<std::string>> LabelNames() override {
    std::shared_lock<std::shared_mutex> lock(head_->postings_mu_);
    std::vector<std::string> out;
    out.reserve(head_->postings_.size());
    for (const auto& [name, values] : head_->postings_) out.emplace_back(name);
    std::sort(out.begin(), out.end());
    return out;
  }

  absl::StatusOr<std::vector<std::string>> LabelValues(std::string_view name,
                                                       std::string_view prefix) override {
    std::shared_lock<std::shared_mutex> lock(head_->postings_mu_);
    std::vector<std::string> out;
    auto it = head_->postings_.find(name);
    if (it == head_->postings_.end()) return out;
    for (const auto& [value, refs] : it->second) {
      if (value.starts_with(prefix)) out.emplace_back(value);
    }
    std::sort(out.begin(), out.end());
    return out;
  }

  absl::StatusOr<std::unique_ptr<Postings>> PostingsFor(
      std::string_view name, const std::vector<std::string>& values) override {
    std::vector<std::unique_ptr<Postings>> lists;
    std::shared_lock<std::shared_mutex> lock(head_->postings_mu_);
    auto it = head_->postings_.find(name);
    if (it == head_->postings_.end()) return EmptyPostings();
    for (const std::string& v : values) {
      auto vit = it->second.find(v);
      if (vit != it->second.end()) lists.push_back(ListPostings(vit->second));
    }
    return Union(std::move(lists));
  }

  absl::StatusOr<std::unique_ptr<Postings>> AllPostings() override {
    std::shared_lock<std::shared_mutex> lock(head_->postings_mu_);
    return ListPostings(head_->all_refs_);
  }

  absl::Status ForEachLabelValue(std::string_view name, std::string_view prefix,
                                 absl::FunctionRef<void(std::string_view)> fn) override {
    std::shared_lock<std::shared_mutex> lock(head_->postings_mu_);
    auto it = head_->postings_.find(name);
    if (it == head_->postings_.end()) return absl::OkStatus();
    for (const auto& [value, refs] : it->second) {
      if (value.starts_with(prefix)) fn(value);
    }
    return absl::OkStatus();
  }

  size_t NumLabelValues(std::string_view name) override {
    std::shared_lock<std::shared_mutex> lock(head_->postings_mu_);
    auto it = head_->postings_.find(name);
    return it == head_->postings_.end() ? 0 : it->second.size();
  }

  size_t PostingsSize(std::string_view name, const std::vector<std::string>& values) override {
    std::shared_lock<std::shared_mutex> lock(head_->postings_mu_);
    auto it = head_->postings_.find(name);
    if (it == head_->postings_.end()) return 0;
    size_t n = 0;
    for (const std::string& v : values) {
      if (auto vit = it->second.find(v); vit != it->second.end()) n += vit->second.size();
    }
    return n;
  }

  bool CanFilterSeries() const override { return true; }

  std::unique_ptr<Postings> FilterSeries(std::unique_ptr<Postings> base,
                                         std::vector<LabelMatcher> matchers) override;

 private:
  Head* head_;
};

namespace {

// The refs of `base` whose head series satisfy every matcher, read from the series' own
// symbol ids: a label name is compared as an id, found once per matcher.
class HeadFilterPostings final : public Postings {
 public:
  HeadFilterPostings(Head* head, std::unique_ptr<Postings> base, std::vector<LabelMatcher> matchers)
      : head_(head), base_(std::move(base)), matchers_(std::move(matchers)) {
    name_ids_.reserve(matchers_.size());
    for (const LabelMatcher& m : matchers_) name_ids_.push_back(head_->symbols().Find(m.name()));
  }
  bool Next() override {
    while (base_->Next()) {
      if (Accept(base_->At())) return true;
    }
    return false;
  }
  bool Seek(SeriesRef r) override {
    if (!base_->Seek(r)) return false;
    return Accept(base_->At()) || Next();
  }
  SeriesRef At() const override { return base_->At(); }
  absl::Status status() const override { return base_->status(); }
  size_t SizeHint() const override { return base_->SizeHint(); }

 private:
  bool Accept(SeriesRef ref) {
    SeriesPtr s = head_->GetByRef(ref);
    if (s == nullptr) return false;
    std::span<const uint32_t> syms = s->symbols();
    for (size_t k = 0; k < matchers_.size(); ++k) {
      std::string_view value;
      if (name_ids_[k]) {
        for (size_t i = 0; i < syms.size(); i += 2) {
          if (syms[i] == *name_ids_[k]) {
            value = head_->symbols().Lookup(syms[i + 1]);
            break;
          }
        }
      }
      if (!matchers_[k].Matches(value)) return false;
    }
    return true;
  }

  Head* head_;
  std::unique_ptr<Postings> base_;
  std::vector<LabelMatcher> matchers_;
  // The symbol id of each matcher's label name; none when no series has ever had it.
  std::vector<std::optional<uint32_t>> name_ids_;
};

}  // namespace

std::unique_ptr<Postings> Head::HeadIndexReader::FilterSeries(std::unique_ptr<Postings> base,
                                                              std::vector<LabelMatcher> matchers) {
  return std::make_unique<HeadFilterPostings>(head_, std::move(base), std::move(matchers));
}

std::unique_ptr<IndexReader> Head::Index() { return std::make_unique<HeadIndexReader>(this); }

std::vector<ChunkRef> Head::Chunks(MemSeries& s, Timestamp mint, Timestamp maxt, Timestamp* last) {
  std::vector<ChunkRef> out;
  std::lock_guard<SeriesMutex> lock(s.mu);
  if (last != nullptr) *last = s.has_last ? s.last_t : std::numeric_limits<Timestamp>::min();
  for (const auto& c : s.closed) {
    if (c.chunk.maxt >= mint && c.chunk.mint <= maxt) out.push_back(c.chunk);
  }
  if (s.open.num_samples() > 0 && s.open.last_timestamp() >= mint && s.open_mint <= maxt) {
    ChunkRef c;
    c.mint = s.open_mint;
    c.maxt = s.open.last_timestamp();
    c.bytes = std::make_shared<const std::string>(s.open.bytes());
    out.push_back(std::move(c));
  }
  return out;
}

std::optional<Sample> Head::NewestInOpenChunk(MemSeries& s) {
  std::lock_guard<SeriesMutex> lock(s.mu);
  if (s.open.num_samples() == 0 || !s.has_last || s.last_t != s.open.last_timestamp()) {
    return std::nullopt;
  }
  return Sample{s.last_t, s.last_v};
}

}  // namespace strata
