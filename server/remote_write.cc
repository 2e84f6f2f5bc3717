#include "server/remote_write.h"

#include <snappy.h>

#include <algorithm>
#include <bit>
#include <cstring>

#include "server/protobuf_wire.h"
#include "src/strings.h"

namespace strata {
namespace {

// Checks that an Exemplar { repeated Label labels = 1; double value = 2; int64 timestamp = 3 }
// is well formed, without keeping anything.
bool CheckLabel(std::string_view msg) {
  WireReader r(msg);
  while (!r.done()) {
    uint32_t f, w;
    if (!r.ReadTag(&f, &w) || !r.Skip(f, w)) return false;
  }
  return true;
}

bool CheckExemplar(std::string_view msg) {
  WireReader r(msg);
  while (!r.done()) {
    uint32_t f, w;
    if (!r.ReadTag(&f, &w)) return false;
    if (f == 1 && w == kLengthDelimited) {
      std::string_view label;
      if (!r.ReadBytes(&label) || !CheckLabel(label)) return false;
    } else if (!r.Skip(f, w)) {
      return false;
    }
  }
  return true;
}

bool DecodeLabel(std::string_view msg, LabelView* out) {
  // What senders produce: name [1] then value [2], each with a one-byte length. Read
  // directly; any other layout takes the general loop, which gives the same result.
  const auto* p = reinterpret_cast<const uint8_t*>(msg.data());
  if (msg.size() >= 4 && p[0] == 0x0a && p[1] < 0x80) {
    const size_t at = 2 + size_t{p[1]};
    if (at + 2 <= msg.size() && p[at] == 0x12 && p[at + 1] < 0x80 &&
        at + 2 + size_t{p[at + 1]} == msg.size()) {
      // Bounds are checked above; substr's own check would cost a call per label.
      out->name = std::string_view(msg.data() + 2, p[1]);
      out->value = std::string_view(msg.data() + at + 2, p[at + 1]);
      return true;
    }
  }
  WireReader r(msg);
  *out = LabelView{};
  while (!r.done()) {
    uint32_t f, w;
    if (!r.ReadTag(&f, &w)) return false;
    if (f == 1 && w == kLengthDelimited) {
      if (!r.ReadBytes(&out->name)) return false;
    } else if (f == 2 && w == kLengthDelimited) {
      if (!r.ReadBytes(&out->value)) return false;
    } else if (!r.Skip(f, w)) {
      return false;
    }
  }
  return true;
}

bool DecodeSample(std::string_view msg, Sample* out) {
  // What senders produce: value [1] then timestamp [2]; as for labels, read directly.
  const auto* p = reinterpret_cast<const uint8_t*>(msg.data());
  if (msg.size() >= 11 && p[0] == 0x09 && p[9] == 0x10) {
    WireReader ts(std::string_view(msg.data() + 10, msg.size() - 10));
    uint64_t t;
    if (ts.ReadVarint(&t) && ts.done()) {
      uint64_t bits = 0;
      for (int i = 8; i >= 1; --i) bits = (bits << 8) | p[i];  // little-endian
      out->v = std::bit_cast<double>(bits);
      out->t = static_cast<int64_t>(t);
      return true;
    }
  }
  WireReader r(msg);
  *out = Sample{};
  while (!r.done()) {
    uint32_t f, w;
    if (!r.ReadTag(&f, &w)) return false;
    if (f == 1 && w == kFixed64) {
      uint64_t bits;
      if (!r.ReadFixed64(&bits)) return false;
      out->v = std::bit_cast<double>(bits);
    } else if (f == 2 && w == kVarint) {
      uint64_t t;
      if (!r.ReadVarint(&t)) return false;
      out->t = static_cast<int64_t>(t);
    } else if (!r.Skip(f, w)) {
      return false;
    }
  }
  return true;
}

bool DecodeMetadata(std::string_view msg, RemoteWriteMetadata* out) {
  WireReader r(msg);
  *out = RemoteWriteMetadata{};
  while (!r.done()) {
    uint32_t f, w;
    if (!r.ReadTag(&f, &w)) return false;
    bool ok;
    if (f == 1 && w == kVarint) {
      uint64_t v;
      ok = r.ReadVarint(&v);
      out->type = static_cast<int32_t>(static_cast<uint32_t>(v));
    } else if (f == 2 && w == kLengthDelimited) {
      ok = r.ReadBytes(&out->metric_family_name);
    } else if (f == 4 && w == kLengthDelimited) {
      ok = r.ReadBytes(&out->help);
    } else if (f == 5 && w == kLengthDelimited) {
      ok = r.ReadBytes(&out->unit);
    } else {
      ok = r.Skip(f, w);
    }
    if (!ok) return false;
  }
  return true;
}

// IsValidUtf8 with a fast path for ASCII, which nearly every label is: eight bytes per step.
bool ValidUtf8(std::string_view s) {
  size_t i = 0;
  for (; i + 8 <= s.size(); i += 8) {
    uint64_t w;
    std::memcpy(&w, s.data() + i, 8);
    if (w & 0x8080808080808080ULL) return IsValidUtf8(s.substr(i));
  }
  for (; i < s.size(); ++i) {
    if (static_cast<unsigned char>(s[i]) >= 0x80) return IsValidUtf8(s.substr(i));
  }
  return true;
}

// The series as text for error messages, cut short when long.
std::string SeriesText(std::span<const LabelView> labels) {
  constexpr size_t kMaxLen = 300;
  std::string out = "{";
  for (size_t i = 0; i < labels.size(); ++i) {
    if (i > 0) out += ", ";
    out += QuoteString(labels[i].name.substr(0, 100));
    out += '=';
    out += QuoteString(labels[i].value.substr(0, 100));
    if (out.size() > kMaxLen) {
      out.resize(kMaxLen);
      out += "...";
      break;
    }
  }
  out += '}';
  return out;
}

}  // namespace

absl::Status SnappyDecompress(std::string_view compressed, size_t max_size, std::string* out) {
  size_t len = 0;
  if (!snappy::GetUncompressedLength(compressed.data(), compressed.size(), &len)) {
    return absl::InvalidArgumentError(
        "remote write: body is not snappy block-format data (Content-Encoding: snappy)");
  }
  if (len > max_size) {
    return absl::InvalidArgumentError(
        fmt::format("remote write: decompressed body of {} bytes exceeds the limit of {} bytes",
                    len, max_size));
  }
  out->resize(len);
  if (!snappy::RawUncompress(compressed.data(), compressed.size(), out->data())) {
    out->clear();
    return absl::InvalidArgumentError("remote write: corrupt snappy data");
  }
  return absl::OkStatus();
}

std::string_view MetricTypeName(int32_t type) {
  switch (static_cast<MetricType>(type)) {
    case MetricType::kCounter:
      return "counter";
    case MetricType::kGauge:
      return "gauge";
    case MetricType::kHistogram:
      return "histogram";
    case MetricType::kGaugeHistogram:
      return "gaugehistogram";
    case MetricType::kSummary:
      return "summary";
    case MetricType::kInfo:
      return "info";
    case MetricType::kStateset:
      return "stateset";
    default:
      return "unknown";
  }
}

absl::Status CheckRemoteWriteHeaders(std::string_view content_type,
                                     std::string_view content_encoding) {
  auto trim = [](std::string_view v) {
    while (!v.empty() && (v.front() == ' ' || v.front() == '\t')) v.remove_prefix(1);
    while (!v.empty() && (v.back() == ' ' || v.back() == '\t')) v.remove_suffix(1);
    return v;
  };
  auto lower = [](std::string_view v) {
    std::string out(v);
    for (char& c : out) {
      if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
    }
    return out;
  };
  std::string type = lower(trim(content_type));
  if (!type.empty()) {
    std::string_view rest = type;
    std::string_view media = trim(rest.substr(0, rest.find(';')));
    if (media != "application/x-protobuf") {
      return absl::InvalidArgumentError(fmt::format(
          "unsupported Content-Type \"{}\": remote write accepts application/x-protobuf "
          "(remote write 1.0, proto=prometheus.WriteRequest)",
          content_type));
    }
    size_t semi = rest.find(';');
    while (semi != std::string_view::npos) {
      rest = rest.substr(semi + 1);
      semi = rest.find(';');
      std::string_view param = trim(rest.substr(0, semi));
      if (param.substr(0, 6) == "proto=" && param.substr(6) != "prometheus.writerequest") {
        return absl::InvalidArgumentError(
            fmt::format("unsupported Content-Type \"{}\": this server accepts remote write 1.0 "
                        "(proto=prometheus.WriteRequest) only",
                        content_type));
      }
    }
  }
  std::string encoding = lower(trim(content_encoding));
  if (!encoding.empty() && encoding != "snappy") {
    return absl::InvalidArgumentError(fmt::format(
        "{} encoding (compression) is not accepted by this server; only snappy is acceptable",
        content_encoding));
  }
  return absl::OkStatus();
}

namespace {

RemoteWriteDecodeResult DecodeBody(std::string_view body, const RemoteWriteLimits& limits,
                                   std::string* scratch, WriteRequestDecoder* decoder,
                                   WriteRequestDecoder::KnownFn* known) {
  RemoteWriteDecodeResult result;
  size_t len = 0;
  if (snappy::GetUncompressedLength(body.data(), body.size(), &len) &&
      len > limits.max_decoded_bytes) {
    result.http_status = 413;
  }
  result.status = SnappyDecompress(body, limits.max_decoded_bytes, scratch);
  if (result.status.ok()) {
    result.status = known != nullptr ? decoder->Decode(*scratch, limits, *known)
                                     : decoder->Decode(*scratch, limits);
  }
  if (!result.status.ok()) {
    (void)decoder->Decode({}, limits);  // leave nothing stale behind
    if (result.http_status != 413) result.http_status = 400;
  }
  return result;
}

}  // namespace

RemoteWriteDecodeResult DecodeRemoteWriteBody(std::string_view body,
                                              const RemoteWriteLimits& limits, std::string* scratch,
                                              WriteRequestDecoder* decoder) {
  return DecodeBody(body, limits, scratch, decoder, nullptr);
}

RemoteWriteDecodeResult DecodeRemoteWriteBody(std::string_view body,
                                              const RemoteWriteLimits& limits, std::string* scratch,
                                              WriteRequestDecoder* decoder,
                                              WriteRequestDecoder::KnownFn known) {
  return DecodeBody(body, limits, scratch, decoder, &known);
}

absl::Status WriteRequestDecoder::Decode(std::string_view body, const RemoteWriteLimits& limits) {
  return DecodeImpl(body, limits, nullptr);
}

absl::Status WriteRequestDecoder::Decode(std::string_view body, const RemoteWriteLimits& limits,
                                         KnownFn known) {
  return DecodeImpl(body, limits, &known);
}

void WriteRequestDecoder::Clear() {
  labels_.clear();
  samples_.clear();
  series_.clear();
  metadata_.clear();
  errors_.clear();
  invalid_series_ = 0;
  invalid_samples_ = 0;
  total_exemplars_ = 0;
  total_histograms_ = 0;
}

absl::Status WriteRequestDecoder::Malformed(size_t at, std::string_view why) {
  absl::Status err = absl::InvalidArgumentError(fmt::format(
      "remote write: cannot decode WriteRequest: {} at byte {} of {}", why, at, body_.size()));
  Clear();
  return err;
}

absl::Status WriteRequestDecoder::DecodeImpl(std::string_view body, const RemoteWriteLimits& limits,
                                             KnownFn* known) {
  body_ = body;
  Clear();

  // First the structure and the samples; labels once every series' label bytes are known.
  WireReader r(body);
  while (!r.done()) {
    const size_t at = r.offset();
    uint32_t f, w;
    bool ok = r.ReadTag(&f, &w);
    const char* why = "truncated or malformed field";
    if (ok && f == 1 && w == kLengthDelimited) {
      std::string_view ts;
      ok = r.ReadBytes(&ts);
      if (ok) {
        ok = DecodeTimeSeries(ts, at);
        if (!ok) why = "malformed TimeSeries";
      }
    } else if (ok && f == 3 && w == kLengthDelimited) {
      std::string_view md;
      RemoteWriteMetadata m;
      ok = r.ReadBytes(&md) && DecodeMetadata(md, &m);
      if (ok) metadata_.push_back(m);
    } else if (ok) {
      ok = r.Skip(f, w);
    }
    if (!ok) return Malformed(at, why);
  }
  if (known != nullptr) {
    raw_.clear();
    raw_series_.clear();
    for (size_t i = 0; i < series_.size(); ++i) {
      const SeriesRecord& rec = series_[i];
      if (rec.raw_size == 0) continue;
      raw_.push_back(body_.substr(rec.raw_begin, rec.raw_size));
      raw_series_.push_back(static_cast<uint32_t>(i));
    }
    if (!raw_.empty()) {
      raw_known_.assign(raw_.size(), 0);
      (*known)(raw_, raw_known_);
      for (size_t i = 0; i < raw_.size(); ++i) {
        if (raw_known_[i] != 0) series_[raw_series_[i]].known = true;
      }
    }
  }
  for (SeriesRecord& rec : series_) {
    if (!DecodeLabels(rec)) return Malformed(rec.at, "malformed TimeSeries");
    if (!rec.known) Validate(rec, limits);
  }
  return absl::OkStatus();
}

bool WriteRequestDecoder::DecodeTimeSeries(std::string_view msg, size_t at) {
  SeriesRecord rec;
  rec.at = at;
  rec.sample_begin = static_cast<uint32_t>(samples_.size());
  // Label fields are only delimited here and decoded later: a series whose label bytes the
  // caller knows needs none of them. Their bytes, while they follow one another:
  size_t raw_begin = 0, raw_end = 0;
  size_t label_fields = 0;
  bool raw_contiguous = true;
  WireReader r(msg);
  while (!r.done()) {
    const size_t field_at = r.offset();
    uint32_t f, w;
    if (!r.ReadTag(&f, &w)) return false;
    bool ok;
    if (f == 1 && w == kLengthDelimited) {
      std::string_view m;
      ok = r.ReadBytes(&m);
      if (ok) {
        if (label_fields == 0) {
          raw_begin = field_at;
        } else if (field_at != raw_end) {
          raw_contiguous = false;
        }
        label_fields += 1 + r.SkipShortFields(0x0a);  // the usual label fields that follow
        raw_end = r.offset();
      }
    } else if (f == 2 && w == kLengthDelimited) {
      std::string_view m;
      Sample s;
      ok = r.ReadBytes(&m) && DecodeSample(m, &s);
      if (ok) samples_.push_back(s);
    } else if (f == 3 && w == kLengthDelimited) {
      std::string_view m;
      ok = r.ReadBytes(&m) && CheckExemplar(m);
      ++rec.exemplars;
      ++total_exemplars_;
    } else if (f == 4 && w == kLengthDelimited) {
      std::string_view m;
      ok = r.ReadBytes(&m);
      ++rec.histograms;
      ++total_histograms_;
    } else {
      ok = r.Skip(f, w);
    }
    if (!ok) return false;
  }
  rec.sample_count = static_cast<uint32_t>(samples_.size()) - rec.sample_begin;
  if (label_fields > 0) {
    const size_t base = static_cast<size_t>(msg.data() - body_.data());
    rec.labels_begin = base + raw_begin;
    rec.labels_end = base + (raw_contiguous ? raw_end : msg.size());
    if (raw_contiguous) {
      rec.raw_begin = rec.labels_begin;
      rec.raw_size = raw_end - raw_begin;
    }
  }
  series_.push_back(rec);
  return true;
}

bool WriteRequestDecoder::DecodeLabels(SeriesRecord& rec) {
  rec.label_begin = static_cast<uint32_t>(labels_.size());
  if (!rec.known && rec.labels_end > rec.labels_begin) {
    WireReader labels(body_.substr(rec.labels_begin, rec.labels_end - rec.labels_begin));
    while (!labels.done()) {
      uint32_t f, w;
      bool ok = labels.ReadTag(&f, &w);  // read once before: cannot fail
      if (ok && f == 1 && w == kLengthDelimited) {
        std::string_view m;
        LabelView label;
        ok = labels.ReadBytes(&m) && DecodeLabel(m, &label);
        if (ok) labels_.push_back(label);
      } else if (ok) {
        ok = labels.Skip(f, w);
      }
      if (!ok) return false;
    }
  }
  rec.label_count = static_cast<uint32_t>(labels_.size()) - rec.label_begin;
  return true;
}

void WriteRequestDecoder::Validate(SeriesRecord& rec, const RemoteWriteLimits& limits) {
  LabelView* first = labels_.data() + rec.label_begin;
  std::span<LabelView> all(first, rec.label_count);
  auto fail = [&](std::span<const LabelView> shown, std::string what) {
    rec.error = static_cast<int32_t>(errors_.size());
    errors_.push_back(fmt::format("invalid series {}: {}", SeriesText(shown), what));
    ++invalid_series_;
    invalid_samples_ += rec.sample_count;
  };
  // Per-label checks, dropping labels with empty values as we go.
  size_t kept = 0;
  bool strictly_increasing = true;
  bool has_name = false;
  for (size_t i = 0; i < all.size(); ++i) {
    const LabelView& l = all[i];
    if (l.name.empty()) return fail(all, "empty label name");
    if (l.name.size() > limits.max_label_name_bytes) {
      return fail(all, fmt::format("label name of {} bytes is longer than the limit of {}",
                                   l.name.size(), limits.max_label_name_bytes));
    }
    if (l.value.size() > limits.max_label_value_bytes) {
      return fail(all, fmt::format("value of label {} is {} bytes, longer than the limit of {}",
                                   QuoteString(l.name.substr(0, 100)), l.value.size(),
                                   limits.max_label_value_bytes));
    }
    if (!ValidUtf8(l.name)) {
      return fail(all, fmt::format("label name {} is not valid UTF-8", QuoteString(l.name)));
    }
    if (!ValidUtf8(l.value)) {
      return fail(all, fmt::format("value of label {} is not valid UTF-8", QuoteString(l.name)));
    }
    if (l.value.empty()) continue;
    // Senders sort labels (the spec requires it), so one comparison per label usually
    // shows both order and uniqueness; only unsorted input pays for a sort.
    if (kept > 0 && strictly_increasing && all[kept - 1].name.compare(l.name) >= 0) {
      strictly_increasing = false;
    }
    if (l.name.size() == kMetricName.size() && l.name == kMetricName) has_name = true;
    all[kept++] = l;
  }
  rec.label_count = static_cast<uint32_t>(kept);
  std::span<LabelView> labels = all.first(kept);
  if (!strictly_increasing) {
    std::sort(labels.begin(), labels.end(),
              [](const LabelView& a, const LabelView& b) { return a.name < b.name; });
    for (size_t i = 1; i < labels.size(); ++i) {
      if (labels[i].name == labels[i - 1].name) {
        return fail(labels, fmt::format("duplicate label name {}", QuoteString(labels[i].name)));
      }
    }
  }
  if (labels.size() > limits.max_labels_per_series) {
    return fail(labels, fmt::format("{} labels, more than the limit of {}", labels.size(),
                                    limits.max_labels_per_series));
  }
  if (!has_name) return fail(labels, "no metric name (__name__ label)");
}

RemoteWriteSeries WriteRequestDecoder::series(size_t i) const {
  const SeriesRecord& rec = series_[i];
  RemoteWriteSeries s;
  s.labels = std::span<const LabelView>(labels_.data() + rec.label_begin, rec.label_count);
  s.samples = std::span<const Sample>(samples_.data() + rec.sample_begin, rec.sample_count);
  s.exemplars = rec.exemplars;
  s.histograms = rec.histograms;
  if (rec.error >= 0) s.error = errors_[static_cast<size_t>(rec.error)];
  s.raw_labels = body_.substr(rec.raw_begin, rec.raw_size);
  s.known = rec.known;
  return s;
}

std::string_view WriteRequestDecoder::first_error() const {
  return errors_.empty() ? std::string_view() : std::string_view(errors_.front());
}

}  // namespace strata
