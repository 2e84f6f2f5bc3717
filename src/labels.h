// Label sets: the identity of a series.
#ifndef STRATA_SRC_LABELS_H_
#define STRATA_SRC_LABELS_H_

#include <cstddef>
#include <cstdint>
#include <initializer_list>
#include <iterator>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"

namespace strata {

inline constexpr std::string_view kMetricName = "__name__";

struct LabelView {
  std::string_view name;
  std::string_view value;
  friend bool operator==(const LabelView&, const LabelView&) = default;
};

// An immutable set of labels, sorted by name, with unique names and no empty values
// (an empty value means "label absent" and is dropped on construction).
//
// The labels are packed into one string: for each label, varint(len(name)) name
// varint(len(value)) value. Copying costs one allocation at most; iteration yields views
// into the packed string, valid as long as the Labels object lives and is not assigned to.
// Thread-safe for concurrent readers.
class Labels {
 public:
  class Iterator {
   public:
    using iterator_category = std::forward_iterator_tag;
    using value_type = LabelView;
    using difference_type = std::ptrdiff_t;
    using pointer = const LabelView*;
    using reference = const LabelView&;

    Iterator() = default;
    const LabelView& operator*() const { return cur_; }
    const LabelView* operator->() const { return &cur_; }
    Iterator& operator++() {
      pos_ = next_;
      Decode();
      return *this;
    }
    Iterator operator++(int) {
      Iterator old = *this;
      ++*this;
      return old;
    }
    friend bool operator==(const Iterator& a, const Iterator& b) { return a.pos_ == b.pos_; }

   private:
    friend class Labels;
    Iterator(const char* pos, const char* end) : pos_(pos), end_(end) { Decode(); }
    // Inline: label sets are iterated on every append (hashing, series lookup).
    void Decode() {
      if (pos_ == end_) return;
      uint32_t len = 0;
      const char* p = ReadLength(pos_, &len);
      cur_.name = std::string_view(p, len);
      p = ReadLength(p + len, &len);
      cur_.value = std::string_view(p, len);
      next_ = p + len;
    }
    // A varint length; the packed form was validated when the Labels was built.
    static const char* ReadLength(const char* p, uint32_t* len) {
      uint32_t byte = static_cast<unsigned char>(*p++);
      if (byte < 0x80) [[likely]] {
        *len = byte;
        return p;
      }
      uint32_t result = byte & 0x7f;
      for (int shift = 7; shift <= 28; shift += 7) {
        byte = static_cast<unsigned char>(*p++);
        result |= (byte & 0x7f) << shift;
        if (byte < 0x80) break;
      }
      *len = result;
      return p;
    }
    const char* pos_ = nullptr;
    const char* next_ = nullptr;
    const char* end_ = nullptr;
    LabelView cur_;
  };

  Labels() = default;
  // From pairs in any order. Empty values are dropped; for a repeated name the last wins.
  Labels(std::initializer_list<std::pair<std::string_view, std::string_view>> pairs);
  static Labels FromPairs(std::vector<std::pair<std::string, std::string>> pairs);
  // From views already sorted by name, unique, with non-empty values. Cheapest builder;
  // REQUIRES: the precondition holds (checked in debug builds only).
  static Labels FromSortedViews(std::span<const LabelView> labels);
  // The same, into this object, reusing its memory: for hot loops that refill one Labels.
  void AssignSortedViews(std::span<const LabelView> labels);
  // Decodes the packed form produced by encoded(). Errors on malformed bytes.
  static absl::StatusOr<Labels> FromEncoded(std::string_view encoded);

  Iterator begin() const { return Iterator(data_.data(), data_.data() + data_.size()); }
  Iterator end() const {
    return Iterator(data_.data() + data_.size(), data_.data() + data_.size());
  }
  bool empty() const { return data_.empty(); }
  size_t size() const;

  // The value of `name`, or "" when absent.
  std::string_view Get(std::string_view name) const;
  bool Has(std::string_view name) const { return !Get(name).empty(); }
  std::string_view MetricName() const { return Get(kMetricName); }

  // Stable 64-bit hash: XXH64 (seed 0) over name 0xff value 0xff for every label in order,
  // the same bytes and function as Prometheus' labels.Hash, so it never changes between
  // runs, builds or machines. Stored on disk (series_by_hash); do not change it.
  uint64_t Hash() const;
  // The same hash over only the labels named in `names` (sorted), or over all labels except
  // those in `names` (sorted) and __name__. For grouping by / without.
  uint64_t HashForNames(std::span<const std::string> sorted_names) const;
  uint64_t HashWithoutNames(std::span<const std::string> sorted_names) const;

  // The set without the labels named in `names` (any order), built with one copy of the
  // packed bytes: no decoding into strings and back. On a temporary (std::move(l).Without)
  // the bytes are edited in place, without allocating.
  Labels Without(std::initializer_list<std::string_view> names) const&;
  Labels Without(std::initializer_list<std::string_view> names) &&;

  // Replaces this set with the labels of `src` whose names are in `sorted_names` (`keep`)
  // or not in it (!`keep`), reusing this object's memory: for grouping in hot loops.
  // REQUIRES: `src` is not this object.
  void AssignSubset(const Labels& src, std::span<const std::string> sorted_names, bool keep);

  // {a="b", c="d\"e"}: names that are not legacy identifiers are quoted too.
  std::string ToString() const;

  // The packed form; stable and suitable for storage.
  const std::string& encoded() const { return data_; }
  size_t MemoryBytes() const { return sizeof(*this) + data_.capacity(); }

  friend bool operator==(const Labels& a, const Labels& b) { return a.data_ == b.data_; }

 private:
  std::string data_;
};

// Orders label sets as Prometheus does: label by label, by name then value; a set that is
// a prefix of the other sorts first.
int Compare(const Labels& a, const Labels& b);
inline bool operator<(const Labels& a, const Labels& b) { return Compare(a, b) < 0; }

// Builds a label set by editing another. Not thread-safe.
class LabelsBuilder {
 public:
  LabelsBuilder() = default;
  explicit LabelsBuilder(const Labels& base) { Reset(base); }
  void Reset(const Labels& base);
  // An empty value deletes the label.
  LabelsBuilder& Set(std::string_view name, std::string_view value);
  LabelsBuilder& Del(std::string_view name);
  // Keeps only the labels whose names are listed.
  LabelsBuilder& Keep(std::span<const std::string> names);
  std::string_view Get(std::string_view name) const;
  Labels Build() const;

 private:
  std::vector<std::pair<std::string, std::string>> labels_;  // sorted by name
};

// True when `name` matches [a-zA-Z_][a-zA-Z0-9_]* (a label name PromQL can write unquoted).
bool IsLegacyLabelName(std::string_view name);
// True when `name` matches [a-zA-Z_:][a-zA-Z0-9_:]*.
bool IsLegacyMetricName(std::string_view name);
bool IsValidUtf8(std::string_view s);

// Checks a label set arriving from outside: non-empty, valid UTF-8 names, UTF-8 values,
// a __name__ when `require_name`. Duplicates must be checked before building Labels.
absl::Status ValidateLabels(const Labels& labels, bool require_name);

// Quotes `s` as Go's strconv.Quote does with `quote` as the delimiter: escapes the quote,
// backslash and control characters, keeps printable UTF-8, writes invalid bytes as \xNN.
std::string QuoteString(std::string_view s, char quote = '"');

}  // namespace strata

#endif  // STRATA_SRC_LABELS_H_
