// The head's cardinality statistics (/api/v1/status/tsdb).
#include <algorithm>
#include <queue>
#include <string_view>
#include <vector>

#include "storage/head.h"

namespace strata {
namespace {

// The `limit` largest entries seen, kept as views into the index while its lock is held.
// An entry is a name, or a name=value pair when `value_part` is set.
class TopN {
 public:
  explicit TopN(size_t limit) : limit_(limit) {}

  void Push(uint64_t count, std::string_view name, std::string_view value_part = {},
            bool is_pair = false) {
    Entry e{count, name, value_part, is_pair};
    if (heap_.size() < limit_) {
      heap_.push(e);
    } else if (Better(e, heap_.top())) {
      heap_.pop();
      heap_.push(e);
    }
  }

  // Largest first, ties by name. Copies the strings out of the index.
  std::vector<HeadCardinalityStat> Take() {
    std::vector<Entry> entries;
    entries.reserve(heap_.size());
    while (!heap_.empty()) {
      entries.push_back(heap_.top());
      heap_.pop();
    }
    std::sort(entries.begin(), entries.end(), Better);
    std::vector<HeadCardinalityStat> out;
    out.reserve(entries.size());
    for (const Entry& e : entries) {
      HeadCardinalityStat s;
      s.value = e.count;
      s.name.reserve(e.name.size() + e.value_part.size() + 1);
      s.name.append(e.name);
      if (e.is_pair) {
        s.name.push_back('=');
        s.name.append(e.value_part);
      }
      out.push_back(std::move(s));
    }
    return out;
  }

 private:
  struct Entry {
    uint64_t count;
    std::string_view name;
    std::string_view value_part;
    bool is_pair;
  };
  // Compares the names as printed ("name" or "name=value") without building them.
  static int CompareNames(const Entry& a, const Entry& b) {
    auto at = [](const Entry& e, size_t i) -> int {
      if (i < e.name.size()) return static_cast<unsigned char>(e.name[i]);
      if (!e.is_pair) return -1;
      if (i == e.name.size()) return '=';
      i -= e.name.size() + 1;
      return i < e.value_part.size() ? static_cast<unsigned char>(e.value_part[i]) : -1;
    };
    for (size_t i = 0;; ++i) {
      int x = at(a, i), y = at(b, i);
      if (x != y) return x < y ? -1 : 1;
      if (x < 0) return 0;
    }
  }
  static bool Better(const Entry& a, const Entry& b) {
    if (a.count != b.count) return a.count > b.count;
    return CompareNames(a, b) < 0;
  }
  struct Worse {
    // The heap's top is its worst entry.
    bool operator()(const Entry& a, const Entry& b) const { return Better(a, b); }
  };

  size_t limit_;
  std::priority_queue<Entry, std::vector<Entry>, Worse> heap_;
};

// Bytes of a varint holding `n`, as Labels packs lengths.
uint64_t VarintBytes(uint64_t n) {
  uint64_t bytes = 1;
  while (n >= 0x80) {
    n >>= 7;
    ++bytes;
  }
  return bytes;
}

}  // namespace

HeadStats Head::Stats(std::string_view metric_label, size_t limit) {
  HeadStats stats;
  stats.num_series = num_series();
  stats.chunk_count = num_chunks();
  TopN by_metric(limit), values_by_name(limit), bytes_by_name(limit), by_pair(limit);
  {
    std::shared_lock<std::shared_mutex> lock(postings_mu_);
    for (const auto& [name, values] : postings_) {
      values_by_name.Push(values.size(), name);
      stats.num_label_pairs += static_cast<int64_t>(values.size());
      const bool is_metric_label = name == metric_label;
      const uint64_t name_bytes = VarintBytes(name.size()) + name.size();
      uint64_t bytes = 0;
      for (const auto& [value, refs] : values) {
        const uint64_t series = refs.size();
        if (is_metric_label) by_metric.Push(series, value);
        by_pair.Push(series, name, value, /*is_pair=*/true);
        bytes += (name_bytes + VarintBytes(value.size()) + value.size()) * series;
      }
      bytes_by_name.Push(bytes, name);
    }
    stats.series_count_by_metric_name = by_metric.Take();
    stats.label_value_count_by_label_name = values_by_name.Take();
    stats.memory_in_bytes_by_label_name = bytes_by_name.Take();
    stats.series_count_by_label_value_pair = by_pair.Take();
  }
  // Lock order as elsewhere: stripe, then series.
  for (Stripe& stripe : stripes_) {
    std::lock_guard<std::mutex> lock(stripe.mu);
    for (auto& [hash, first] : stripe.by_hash) {
      for (MemSeries* s = first; s != nullptr; s = s->hash_next_) {
        std::lock_guard<SeriesMutex> series_lock(s->mu);
        if (!s->closed.empty()) {
          stats.min_time = std::min(stats.min_time, s->closed.front().chunk.mint);
          stats.max_time = std::max(stats.max_time, s->closed.back().chunk.maxt);
        }
        if (s->open.num_samples() > 0) {
          stats.min_time = std::min(stats.min_time, s->open_mint);
          stats.max_time = std::max(stats.max_time, s->open.last_timestamp());
        }
      }
    }
  }
  return stats;
}

}  // namespace strata
