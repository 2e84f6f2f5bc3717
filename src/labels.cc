#include "src/labels.h"

#include <algorithm>
#include <cassert>
#include <cstring>

#include "absl/status/status.h"
#include "src/strings.h"
// The library's XXH64, not the inlined copy: GCC 12 at -O3 reports a false
// -Warray-bounds inside the inlined code.
#define XXH_STATIC_LINKING_ONLY
#include "xxhash.h"

namespace strata {
namespace {

void PutVarint(std::string& out, size_t v) {
  while (v >= 0x80) {
    out.push_back(static_cast<char>((v & 0x7f) | 0x80));
    v >>= 7;
  }
  out.push_back(static_cast<char>(v));
}

// Reads a varint at `p`; returns nullptr on overrun or a varint over 32 bits.
const char* GetVarint(const char* p, const char* end, uint32_t* v) {
  uint32_t result = 0;
  for (int shift = 0; shift <= 28 && p < end; shift += 7) {
    uint32_t byte = static_cast<unsigned char>(*p++);
    result |= (byte & 0x7f) << shift;
    if ((byte & 0x80) == 0) {
      *v = result;
      return p;
    }
  }
  return nullptr;
}

void AppendLabel(std::string& out, std::string_view name, std::string_view value) {
  PutVarint(out, name.size());
  out.append(name);
  PutVarint(out, value.size());
  out.append(value);
}

constexpr char kSep = '\xff';

// XXH64 over name 0xff value 0xff per label. The bytes are gathered in a buffer and hashed
// in one call (or a few, for label sets past the buffer): XXH64 of a whole input equals
// its streaming form, so the value is the same as four XXH64_update calls per label, which
// cost more than the hashing itself for the short names and values labels have.
class LabelHasher {
 public:
  void Add(const LabelView& l) {
    const size_t need = l.name.size() + l.value.size() + 2;
    if (len_ + need > sizeof(buf_)) {
      Spill();
      if (need > sizeof(buf_)) {
        XXH64_update(&state_, l.name.data(), l.name.size());
        XXH64_update(&state_, &kSep, 1);
        XXH64_update(&state_, l.value.data(), l.value.size());
        XXH64_update(&state_, &kSep, 1);
        return;
      }
    }
    std::memcpy(buf_ + len_, l.name.data(), l.name.size());
    len_ += l.name.size();
    buf_[len_++] = kSep;
    std::memcpy(buf_ + len_, l.value.data(), l.value.size());
    len_ += l.value.size();
    buf_[len_++] = kSep;
  }
  uint64_t Digest() {
    if (!streaming_) return XXH64(buf_, len_, 0);
    Spill();
    return XXH64_digest(&state_);
  }

 private:
  void Spill() {
    if (!streaming_) {
      XXH64_reset(&state_, 0);
      streaming_ = true;
    }
    XXH64_update(&state_, buf_, len_);
    len_ = 0;
  }

  char buf_[1024];
  size_t len_ = 0;
  bool streaming_ = false;
  XXH64_state_t state_;
};

// Whether each name of a label set is among `sorted` (sorted names), asked in the set's
// (ascending) name order: one pass over both lists instead of a search per label.
class ListedNames {
 public:
  explicit ListedNames(std::span<const std::string> sorted) : names_(sorted) {}
  // REQUIRES: `name` is greater than the name of the previous call.
  bool Listed(std::string_view name) {
    while (next_ < names_.size() && std::string_view(names_[next_]) < name) ++next_;
    return next_ < names_.size() && names_[next_] == name;
  }

 private:
  std::span<const std::string> names_;
  size_t next_ = 0;
};

}  // namespace

Labels::Labels(std::initializer_list<std::pair<std::string_view, std::string_view>> pairs) {
  std::vector<std::pair<std::string, std::string>> v;
  v.reserve(pairs.size());
  for (const auto& [n, val] : pairs) v.emplace_back(std::string(n), std::string(val));
  *this = FromPairs(std::move(v));
}

Labels Labels::FromPairs(std::vector<std::pair<std::string, std::string>> pairs) {
  // Stable so that, for a repeated name, the last one given wins below.
  std::stable_sort(pairs.begin(), pairs.end(),
                   [](const auto& a, const auto& b) { return a.first < b.first; });
  Labels out;
  for (size_t i = 0; i < pairs.size(); ++i) {
    if (i + 1 < pairs.size() && pairs[i + 1].first == pairs[i].first) continue;
    if (pairs[i].second.empty()) continue;
    AppendLabel(out.data_, pairs[i].first, pairs[i].second);
  }
  return out;
}

Labels Labels::FromSortedViews(std::span<const LabelView> labels) {
  Labels out;
  out.AssignSortedViews(labels);
  return out;
}

void Labels::AssignSortedViews(std::span<const LabelView> labels) {
  // Sized exactly first, then written through a pointer: one allocation at most and no
  // capacity checks per byte (this runs once per selected series).
  auto varint_len = [](size_t n) {
    size_t len = 1;
    while (n >= 0x80) {
      n >>= 7;
      ++len;
    }
    return len;
  };
  size_t bytes = 0;
  for (const auto& l : labels) {
    bytes +=
        varint_len(l.name.size()) + l.name.size() + varint_len(l.value.size()) + l.value.size();
  }
  data_.resize(bytes);
  char* out = data_.data();
  auto put = [&out](std::string_view s) {
    size_t n = s.size();
    while (n >= 0x80) {
      *out++ = static_cast<char>((n & 0x7f) | 0x80);
      n >>= 7;
    }
    *out++ = static_cast<char>(n);
    std::memcpy(out, s.data(), s.size());
    out += s.size();
  };
  for (size_t i = 0; i < labels.size(); ++i) {
    assert(i == 0 || labels[i - 1].name < labels[i].name);
    assert(!labels[i].value.empty());
    put(labels[i].name);
    put(labels[i].value);
  }
  assert(out == data_.data() + data_.size());
}

absl::StatusOr<Labels> Labels::FromEncoded(std::string_view encoded) {
  const char* p = encoded.data();
  const char* end = p + encoded.size();
  std::string_view prev;
  bool first = true;
  while (p < end) {
    uint32_t len = 0;
    p = GetVarint(p, end, &len);
    if (p == nullptr || static_cast<size_t>(end - p) < len) {
      return absl::DataLossError("encoded label set: truncated label name");
    }
    std::string_view name(p, len);
    p += len;
    p = GetVarint(p, end, &len);
    if (p == nullptr || static_cast<size_t>(end - p) < len) {
      return absl::DataLossError("encoded label set: truncated label value");
    }
    if (name.empty() || len == 0 || (!first && name <= prev)) {
      return absl::DataLossError("encoded label set: empty, unsorted or duplicate label");
    }
    p += len;
    prev = name;
    first = false;
  }
  Labels out;
  out.data_ = std::string(encoded);
  return out;
}

size_t Labels::size() const {
  size_t n = 0;
  for (auto it = begin(); it != end(); ++it) ++n;
  return n;
}

std::string_view Labels::Get(std::string_view name) const {
  for (const auto& l : *this) {
    if (l.name == name) return l.value;
    if (l.name > name) break;
  }
  return {};
}

uint64_t Labels::Hash() const {
  LabelHasher h;
  for (const auto& l : *this) h.Add(l);
  return h.Digest();
}

uint64_t Labels::HashForNames(std::span<const std::string> sorted_names) const {
  LabelHasher h;
  ListedNames listed(sorted_names);
  for (const auto& l : *this) {
    if (listed.Listed(l.name)) h.Add(l);
  }
  return h.Digest();
}

uint64_t Labels::HashWithoutNames(std::span<const std::string> sorted_names) const {
  LabelHasher h;
  ListedNames listed(sorted_names);
  for (const auto& l : *this) {
    if (listed.Listed(l.name) || l.name == kMetricName) continue;
    h.Add(l);
  }
  return h.Digest();
}

namespace {

// Calls f(name, begin, end) for each label of a packed set, [begin, end) being the label's
// bytes (lengths included). The set was validated when it was built.
template <typename F>
void ForEachPackedLabel(const char* pos, const char* end, F&& f) {
  while (pos < end) {
    uint32_t len = 0;
    const char* p = GetVarint(pos, end, &len);
    const std::string_view name(p, len);
    p = GetVarint(p + len, end, &len);
    const char* next = p + len;
    f(name, pos, next);
    pos = next;
  }
}

}  // namespace

Labels Labels::Without(std::initializer_list<std::string_view> names) const& {
  Labels out;
  const char* const begin = data_.data();
  const char* const end = begin + data_.size();
  const char* copied = begin;  // bytes before this are in out.data_ (or dropped)
  bool dropped = false;
  ForEachPackedLabel(begin, end, [&](std::string_view name, const char* from, const char* to) {
    if (std::find(names.begin(), names.end(), name) == names.end()) return;
    if (!dropped) out.data_.reserve(data_.size());
    out.data_.append(copied, from);
    copied = to;
    dropped = true;
  });
  if (!dropped) return *this;
  out.data_.append(copied, end);
  return out;
}

Labels Labels::Without(std::initializer_list<std::string_view> names) && {
  // Compacts the kept labels towards the front of this object's own bytes.
  char* const begin = data_.data();
  char* write = begin;
  ForEachPackedLabel(begin, begin + data_.size(),
                     [&](std::string_view name, const char* from, const char* to) {
                       if (std::find(names.begin(), names.end(), name) != names.end()) return;
                       if (write != from) std::memmove(write, from, static_cast<size_t>(to - from));
                       write += to - from;
                     });
  data_.resize(static_cast<size_t>(write - begin));
  return std::move(*this);
}

void Labels::AssignSubset(const Labels& src, std::span<const std::string> sorted_names, bool keep) {
  assert(&src != this);
  data_.clear();
  ListedNames listed(sorted_names);
  ForEachPackedLabel(src.data_.data(), src.data_.data() + src.data_.size(),
                     [&](std::string_view name, const char* from, const char* to) {
                       if (listed.Listed(name) == keep) data_.append(from, to);
                     });
}

std::string Labels::ToString() const {
  std::string out = "{";
  bool first = true;
  for (const auto& l : *this) {
    if (!first) out += ", ";
    first = false;
    if (IsLegacyLabelName(l.name)) {
      out += l.name;
    } else {
      out += QuoteString(l.name);
    }
    out += '=';
    out += QuoteString(l.value);
  }
  out += '}';
  return out;
}

int Compare(const Labels& a, const Labels& b) {
  // Label sets of one query mostly share their first labels (__name__, job, ...), so find
  // the first differing byte of the packed forms and decode only the label holding it. The
  // packing of a label (lengths, then bytes) is injective and labels are laid out one after
  // another, so bytes that agree up to a label boundary mean equal labels up to there, and
  // that boundary is a boundary in both sets.
  const std::string& da = a.encoded();
  const std::string& db = b.encoded();
  const size_t n = std::min(da.size(), db.size());
  size_t m = 0;
  while (m + 8 <= n) {
    uint64_t x, y;
    std::memcpy(&x, da.data() + m, 8);
    std::memcpy(&y, db.data() + m, 8);
    if (x != y) break;
    m += 8;
  }
  while (m < n && da[m] == db[m]) ++m;
  if (m == n) {
    if (da.size() == db.size()) return 0;
    return da.size() < db.size() ? -1 : 1;  // the shorter is a prefix: fewer labels
  }
  // The start of the label that holds byte m.
  const char* const base_a = da.data();
  const char* const end_a = base_a + da.size();
  const char* pos = base_a;
  for (;;) {
    uint32_t len = 0;
    const char* p = GetVarint(pos, end_a, &len);
    p = GetVarint(p + len, end_a, &len);
    const char* next = p + len;
    if (static_cast<size_t>(next - base_a) > m) break;
    pos = next;
  }
  const size_t off = static_cast<size_t>(pos - base_a);
  auto label_at = [](const std::string& d, size_t at) {
    const char* end = d.data() + d.size();
    uint32_t len = 0;
    const char* p = GetVarint(d.data() + at, end, &len);
    std::string_view name(p, len);
    p = GetVarint(p + len, end, &len);
    return std::pair<std::string_view, std::string_view>(name, std::string_view(p, len));
  };
  auto [name_a, value_a] = label_at(da, off);
  auto [name_b, value_b] = label_at(db, off);
  if (int c = name_a.compare(name_b); c != 0) return c < 0 ? -1 : 1;
  int c = value_a.compare(value_b);
  return c < 0 ? -1 : (c > 0 ? 1 : 0);
}

void LabelsBuilder::Reset(const Labels& base) {
  labels_.clear();
  for (const auto& l : base) labels_.emplace_back(std::string(l.name), std::string(l.value));
}

LabelsBuilder& LabelsBuilder::Set(std::string_view name, std::string_view value) {
  auto it = std::lower_bound(labels_.begin(), labels_.end(), name,
                             [](const auto& l, std::string_view n) { return l.first < n; });
  if (it != labels_.end() && it->first == name) {
    if (value.empty()) {
      labels_.erase(it);
    } else {
      it->second = std::string(value);
    }
  } else if (!value.empty()) {
    labels_.emplace(it, std::string(name), std::string(value));
  }
  return *this;
}

LabelsBuilder& LabelsBuilder::Del(std::string_view name) { return Set(name, {}); }

LabelsBuilder& LabelsBuilder::Keep(std::span<const std::string> names) {
  std::erase_if(labels_, [&](const auto& l) {
    return std::find(names.begin(), names.end(), l.first) == names.end();
  });
  return *this;
}

std::string_view LabelsBuilder::Get(std::string_view name) const {
  auto it = std::lower_bound(labels_.begin(), labels_.end(), name,
                             [](const auto& l, std::string_view n) { return l.first < n; });
  if (it != labels_.end() && it->first == name) return it->second;
  return {};
}

Labels LabelsBuilder::Build() const {
  std::vector<LabelView> views;
  views.reserve(labels_.size());
  for (const auto& [n, v] : labels_) views.push_back({n, v});
  return Labels::FromSortedViews(views);
}

bool IsLegacyLabelName(std::string_view name) {
  if (name.empty()) return false;
  for (size_t i = 0; i < name.size(); ++i) {
    char c = name[i];
    bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' ||
              (i > 0 && c >= '0' && c <= '9');
    if (!ok) return false;
  }
  return true;
}

bool IsLegacyMetricName(std::string_view name) {
  if (name.empty()) return false;
  for (size_t i = 0; i < name.size(); ++i) {
    char c = name[i];
    bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' || c == ':' ||
              (i > 0 && c >= '0' && c <= '9');
    if (!ok) return false;
  }
  return true;
}

namespace {

// Decodes one UTF-8 code point at s[i]; returns its length, or 0 if invalid.
size_t DecodeUtf8(std::string_view s, size_t i, uint32_t* cp) {
  auto b = [&](size_t k) { return static_cast<unsigned char>(s[i + k]); };
  unsigned char c = b(0);
  if (c < 0x80) {
    *cp = c;
    return 1;
  }
  size_t n;
  uint32_t min;
  if ((c & 0xe0) == 0xc0) {
    n = 2, min = 0x80, *cp = c & 0x1f;
  } else if ((c & 0xf0) == 0xe0) {
    n = 3, min = 0x800, *cp = c & 0x0f;
  } else if ((c & 0xf8) == 0xf0) {
    n = 4, min = 0x10000, *cp = c & 0x07;
  } else {
    return 0;
  }
  if (i + n > s.size()) return 0;
  for (size_t k = 1; k < n; ++k) {
    if ((b(k) & 0xc0) != 0x80) return 0;
    *cp = (*cp << 6) | (b(k) & 0x3f);
  }
  if (*cp < min || *cp > 0x10ffff || (*cp >= 0xd800 && *cp <= 0xdfff)) return 0;
  return n;
}

}  // namespace

bool IsValidUtf8(std::string_view s) {
  for (size_t i = 0; i < s.size();) {
    uint32_t cp;
    size_t n = DecodeUtf8(s, i, &cp);
    if (n == 0) return false;
    i += n;
  }
  return true;
}

absl::Status ValidateLabels(const Labels& labels, bool require_name) {
  if (require_name && labels.MetricName().empty()) {
    return absl::InvalidArgumentError(
        absl::StrCat("series ", labels.ToString(), " has no metric name (__name__ label)"));
  }
  for (const auto& l : labels) {
    if (l.name.empty()) {
      return absl::InvalidArgumentError(
          absl::StrCat("series ", labels.ToString(), " has an empty label name"));
    }
    if (!IsValidUtf8(l.name)) {
      return absl::InvalidArgumentError(
          absl::StrCat("label name ", QuoteString(l.name), " is not valid UTF-8"));
    }
    if (!IsValidUtf8(l.value)) {
      return absl::InvalidArgumentError(
          absl::StrCat("value of label ", QuoteString(l.name), " is not valid UTF-8"));
    }
  }
  return absl::OkStatus();
}

std::string QuoteString(std::string_view s, char quote) {
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out;
  out.reserve(s.size() + 2);
  out.push_back(quote);
  for (size_t i = 0; i < s.size();) {
    uint32_t cp;
    size_t n = DecodeUtf8(s, i, &cp);
    if (n == 0) {
      unsigned char c = static_cast<unsigned char>(s[i]);
      out += "\\x";
      out.push_back(kHex[c >> 4]);
      out.push_back(kHex[c & 15]);
      ++i;
      continue;
    }
    if (n == 1) {
      char c = s[i];
      if (c == quote || c == '\\') {
        out.push_back('\\');
        out.push_back(c);
      } else if (c == '\a') {
        out += "\\a";
      } else if (c == '\b') {
        out += "\\b";
      } else if (c == '\f') {
        out += "\\f";
      } else if (c == '\n') {
        out += "\\n";
      } else if (c == '\r') {
        out += "\\r";
      } else if (c == '\t') {
        out += "\\t";
      } else if (c == '\v') {
        out += "\\v";
      } else if (static_cast<unsigned char>(c) < 0x20 || c == 0x7f) {
        out += "\\x";
        out.push_back(kHex[(c >> 4) & 15]);
        out.push_back(kHex[c & 15]);
      } else {
        out.push_back(c);
      }
    } else if (cp < 0xa0 || cp == 0xad || (cp >= 0x2028 && cp <= 0x2029) || cp == 0xfeff) {
      // Non-printable code points (C1 controls, soft hyphen, separators, BOM) as \uXXXX.
      out += "\\u";
      for (int shift = 12; shift >= 0; shift -= 4) out.push_back(kHex[(cp >> shift) & 15]);
    } else {
      out.append(s.substr(i, n));
    }
    i += n;
  }
  out.push_back(quote);
  return out;
}

}  // namespace strata
