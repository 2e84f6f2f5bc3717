#include "src/text_format.h"

#include <algorithm>
#include <array>
#include <bit>
#include <charconv>
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <deque>
#include <limits>

#include "src/status.h"
#include "src/strings.h"

namespace strata {
namespace {

bool IsBlank(char c) { return c == ' ' || c == '\t'; }
constexpr bool IsNameStart(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_';
}

// Character classes of names, one table lookup per character.
constexpr uint8_t kLetter = 1, kDigit = 2, kColon = 4;
constexpr std::array<uint8_t, 256> kNameClass = [] {
  std::array<uint8_t, 256> t{};
  for (int c = 0; c < 256; ++c) {
    if (IsNameStart(static_cast<char>(c))) t[c] = kLetter;
    if (c >= '0' && c <= '9') t[c] = kDigit;
  }
  t[':'] = kColon;
  return t;
}();

bool EqualsIgnoreCase(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i) {
    char x = a[i], y = b[i];
    if (x >= 'A' && x <= 'Z') x = static_cast<char>(x - 'A' + 'a');
    if (y >= 'A' && y <= 'Z') y = static_cast<char>(y - 'A' + 'a');
    if (x != y) return false;
  }
  return true;
}

// A float as Go's strconv.ParseFloat reads the decimal forms: an optional sign, digits with
// an optional point and exponent, or Inf/Infinity/NaN in any case. False when it is not a
// number; *out_of_range when it overflows a double (underflow rounds, as Go does).
bool ParseValue(std::string_view s, double* v, bool* out_of_range) {
  *out_of_range = false;
  if (EqualsIgnoreCase(s, "nan")) {
    *v = std::numeric_limits<double>::quiet_NaN();
    return true;
  }
  bool negative = false;
  std::string_view body = s;
  if (!body.empty() && (body[0] == '+' || body[0] == '-')) {
    negative = body[0] == '-';
    body.remove_prefix(1);
  }
  if (EqualsIgnoreCase(body, "inf") || EqualsIgnoreCase(body, "infinity")) {
    *v = negative ? -std::numeric_limits<double>::infinity()
                  : std::numeric_limits<double>::infinity();
    return true;
  }
  if (body.empty() || body[0] == '+' || body[0] == '-') return false;
  for (char c : body) {
    if (!((c >= '0' && c <= '9') || c == '.' || c == 'e' || c == 'E' || c == '+' || c == '-')) {
      return false;
    }
  }
  double parsed = 0;
  auto [p, ec] =
      std::from_chars(body.data(), body.data() + body.size(), parsed, std::chars_format::general);
  if (p != body.data() + body.size()) return false;
  if (ec == std::errc::result_out_of_range) {
    // from_chars reports underflow too; strtod tells which one it was.
    std::string copy(body);
    parsed = std::strtod(copy.c_str(), nullptr);
    if (std::isinf(parsed)) {
      *out_of_range = true;
      return false;
    }
  } else if (ec != std::errc()) {
    return false;
  }
  *v = negative ? -parsed : parsed;
  return true;
}

bool ParseTimestamp(std::string_view s, Timestamp* t) {
  if (s.size() > 1 && s[0] == '+' && s[1] != '-') s.remove_prefix(1);
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), *t);
  return ec == std::errc() && p == s.data() + s.size() && !s.empty();
}

// A name or value for an error message: quoted, and cut when long.
std::string Shown(std::string_view s) {
  constexpr size_t kMax = 80;
  if (s.size() <= kMax) return QuoteString(s);
  return QuoteString(s.substr(0, kMax)) + "...";
}

struct PendingSample {
  Sample sample;
  uint32_t line;
};

struct PendingSeries {
  Labels labels;
  std::vector<PendingSample> samples;
};

class TextParser {
 public:
  TextParser(std::string_view text, const TextFormatOptions& options)
      : text_(text), options_(options) {}

  absl::StatusOr<TextParseResult> Run() {
    STRATA_RETURN_IF_ERROR(CheckExtraLabels());
    size_t start = 0;
    while (start < text_.size()) {
      size_t end = text_.find('\n', start);
      if (end == std::string_view::npos) end = text_.size();
      line_ = text_.substr(start, end - start);
      if (!line_.empty() && line_.back() == '\r') line_.remove_suffix(1);
      ++line_no_;
      pos_ = 0;
      absl::Status st = ParseLine();
      if (!st.ok()) return st;
      start = end + 1;
    }
    return Finish();
  }

 private:
  absl::Status Error(std::string_view what) const {
    return absl::InvalidArgumentError(
        fmt::format("line {}, column {}: {}", line_no_, pos_ + 1, what));
  }
  absl::Status LineError(std::string_view what) const {
    return absl::InvalidArgumentError(fmt::format("line {}: {}", line_no_, what));
  }

  void SkipBlanks() {
    while (pos_ < line_.size() && IsBlank(line_[pos_])) ++pos_;
  }
  bool AtEnd() const { return pos_ >= line_.size(); }
  char Peek() const { return line_[pos_]; }

  absl::Status CheckExtraLabels() {
    for (const auto& [name, value] : options_.extra_labels) {
      if (name.empty()) return absl::InvalidArgumentError("extra label with an empty name");
      if (!IsValidUtf8(name) || !IsValidUtf8(value)) {
        return absl::InvalidArgumentError(
            fmt::format("extra label {} is not valid UTF-8", Shown(name)));
      }
    }
    return absl::OkStatus();
  }

  absl::Status ParseLine() {
    SkipBlanks();
    if (AtEnd()) return absl::OkStatus();
    if (Peek() == '#') return ParseComment();
    return ParseSample();
  }

  // Reads [a-zA-Z_:][a-zA-Z0-9_:]* (metric) or [a-zA-Z_][a-zA-Z0-9_]* (label).
  std::string_view ReadName(bool metric) {
    size_t begin = pos_;
    const uint8_t start = metric ? kLetter | kColon : kLetter;
    const uint8_t rest = start | kDigit;
    auto is = [&](uint8_t mask) {
      return (kNameClass[static_cast<uint8_t>(line_[pos_])] & mask) != 0;
    };
    if (pos_ < line_.size() && is(start)) {
      ++pos_;
      while (pos_ < line_.size() && is(rest)) ++pos_;
    }
    return line_.substr(begin, pos_ - begin);
  }

  // Reads a double-quoted string at pos_ (which is at the opening quote) with the escapes
  // \\, \" and \n. `what`, followed by the label name `of_label` when given, names it in
  // errors (put together only then: this runs for every label of every line).
  absl::Status ReadQuoted(std::string_view what, const std::string_view* of_label,
                          std::string_view* out) {
    auto named = [&] {
      return of_label == nullptr ? std::string(what) : fmt::format("{} {}", what, Shown(*of_label));
    };
    ++pos_;  // the opening quote
    size_t begin = pos_;
    // Most strings have no escape: the closing quote is the next '"'.
    if (size_t quote = line_.find('"', pos_);
        quote != std::string_view::npos &&
        line_.substr(pos_, quote - pos_).find('\\') == std::string_view::npos) {
      *out = line_.substr(pos_, quote - pos_);
      pos_ = quote + 1;
      return absl::OkStatus();
    }
    bool escaped = false;
    while (pos_ < line_.size() && line_[pos_] != '"') {
      if (line_[pos_] == '\\') {
        escaped = true;
        if (pos_ + 1 >= line_.size()) break;
        char e = line_[pos_ + 1];
        if (e != '\\' && e != '"' && e != 'n') {
          std::string shown =
              e > ' ' && e < 0x7f ? fmt::format("\\{}", e) : Shown(line_.substr(pos_, 2));
          return Error(
              fmt::format("invalid escape sequence {} in {} (only \\\\, \\\" and \\n are allowed)",
                          shown, named()));
        }
        pos_ += 2;
        continue;
      }
      ++pos_;
    }
    if (pos_ >= line_.size()) {
      pos_ = begin - 1;
      return Error(fmt::format("{} is missing its closing quote", named()));
    }
    std::string_view raw = line_.substr(begin, pos_ - begin);
    ++pos_;  // the closing quote
    if (!escaped) {
      *out = raw;
      return absl::OkStatus();
    }
    std::string& s = unescaped_.emplace_back();
    s.reserve(raw.size());
    for (size_t i = 0; i < raw.size(); ++i) {
      if (raw[i] == '\\') {
        ++i;
        s.push_back(raw[i] == 'n' ? '\n' : raw[i]);
      } else {
        s.push_back(raw[i]);
      }
    }
    *out = s;
    return absl::OkStatus();
  }

  absl::Status ParseSample() {
    unescaped_.clear();
    labels_.clear();
    std::string_view metric;
    bool has_metric = false;
    if (Peek() != '{') {
      metric = ReadName(/*metric=*/true);
      if (metric.empty()) {
        return Error(
            fmt::format("expected a metric name or '{{', got {}", Shown(line_.substr(pos_, 1))));
      }
      has_metric = true;
      size_t after_name = pos_;
      SkipBlanks();
      if (AtEnd() || Peek() != '{') pos_ = after_name;  // the blank before the value
    }
    if (!AtEnd() && Peek() == '{') {
      ++pos_;
      STRATA_RETURN_IF_ERROR(ParseLabelSet(&metric, &has_metric));
    }
    size_t value_column = pos_;
    if (!AtEnd() && !IsBlank(Peek())) {
      return Error(
          fmt::format("expected a blank before the value, got {}", Shown(line_.substr(pos_, 1))));
    }
    SkipBlanks();
    if (AtEnd()) {
      pos_ = value_column;
      return Error("the sample has no value");
    }
    size_t begin = pos_;
    while (!AtEnd() && !IsBlank(Peek())) ++pos_;
    std::string_view value_text = line_.substr(begin, pos_ - begin);
    double v = 0;
    bool out_of_range = false;
    if (!ParseValue(value_text, &v, &out_of_range)) {
      pos_ = begin;
      return Error(out_of_range
                       ? fmt::format("value {} is out of range for a float", Shown(value_text))
                       : fmt::format("invalid value {}: expected a float, NaN, +Inf or -Inf",
                                     Shown(value_text)));
    }
    Timestamp t = options_.default_timestamp;
    SkipBlanks();
    if (!AtEnd()) {
      begin = pos_;
      while (!AtEnd() && !IsBlank(Peek())) ++pos_;
      std::string_view ts_text = line_.substr(begin, pos_ - begin);
      if (!ParseTimestamp(ts_text, &t)) {
        pos_ = begin;
        return Error(fmt::format("invalid timestamp {}: expected an integer number of milliseconds",
                                 Shown(ts_text)));
      }
      SkipBlanks();
      if (!AtEnd()) {
        return Error(
            fmt::format("unexpected text after the timestamp: {}", Shown(line_.substr(pos_))));
      }
    }
    if (!metric.empty()) labels_.push_back({kMetricName, metric});
    STRATA_RETURN_IF_ERROR(AddSample(Sample{t, v}));
    return absl::OkStatus();
  }

  // After '{': label pairs up to '}'. A quoted string standing alone is the metric name.
  absl::Status ParseLabelSet(std::string_view* metric, bool* has_metric) {
    while (true) {
      SkipBlanks();
      if (AtEnd()) return Error("the label set is missing its closing '}'");
      if (Peek() == '}') {
        ++pos_;
        return absl::OkStatus();
      }
      size_t name_column = pos_;
      std::string_view name;
      bool quoted = Peek() == '"';
      if (quoted) {
        STRATA_RETURN_IF_ERROR(ReadQuoted("a quoted name", nullptr, &name));
      } else {
        name = ReadName(/*metric=*/false);
        if (name.empty()) {
          return Error(fmt::format("expected a label name, got {}", Shown(line_.substr(pos_, 1))));
        }
      }
      SkipBlanks();
      if (quoted && (AtEnd() || Peek() == ',' || Peek() == '}')) {
        if (*has_metric) {
          pos_ = name_column;
          return Error("the metric name is given twice");
        }
        if (name.empty()) {
          pos_ = name_column;
          return Error("empty metric name");
        }
        *metric = name;
        *has_metric = true;
      } else {
        if (AtEnd() || Peek() != '=') {
          return Error(fmt::format("expected '=' after label name {}", Shown(name)));
        }
        ++pos_;
        SkipBlanks();
        if (AtEnd() || Peek() != '"') {
          return Error(fmt::format("expected '\"' to start the value of label {}", Shown(name)));
        }
        std::string_view value;
        STRATA_RETURN_IF_ERROR(ReadQuoted("the value of label", &name, &value));
        if (name.empty()) {
          pos_ = name_column;
          return Error("empty label name");
        }
        labels_.push_back({name, value});
      }
      SkipBlanks();
      if (AtEnd()) return Error("the label set is missing its closing '}'");
      if (Peek() == ',') {
        ++pos_;
      } else if (Peek() != '}') {
        return Error(fmt::format("expected ',' or '}}' after {}, got {}", Shown(name),
                                 Shown(line_.substr(pos_, 1))));
      }
    }
  }

  absl::Status AddSample(Sample sample) {
    for (const auto& [name, value] : options_.extra_labels) {
      std::erase_if(labels_, [&](const LabelView& l) { return l.name == name; });
      labels_.push_back({name, value});
    }
    std::erase_if(labels_, [](const LabelView& l) { return l.value.empty(); });
    std::sort(labels_.begin(), labels_.end(),
              [](const LabelView& a, const LabelView& b) { return a.name < b.name; });
    for (size_t i = 1; i < labels_.size(); ++i) {
      if (labels_[i].name == labels_[i - 1].name) {
        return LineError(fmt::format("duplicate label name {}", Shown(labels_[i].name)));
      }
    }
    // A label set equal to one seen before passed the checks below then: most lines of a
    // body repeat series of earlier lines, and need only the lookup.
    key_.AssignSortedViews(labels_);
    if (auto it = index_.find(key_.encoded()); it != index_.end()) {
      series_[it->second].samples.push_back({sample, static_cast<uint32_t>(line_no_)});
      return absl::OkStatus();
    }
    for (size_t i = 0; i < labels_.size(); ++i) {
      const LabelView& l = labels_[i];
      if (l.name.size() > options_.max_label_name_bytes) {
        return LineError(fmt::format("label name {} is {} bytes, longer than the limit of {}",
                                     Shown(l.name), l.name.size(), options_.max_label_name_bytes));
      }
      if (l.value.size() > options_.max_label_value_bytes) {
        return LineError(
            fmt::format("the value of label {} is {} bytes, longer than the limit of {}",
                        Shown(l.name), l.value.size(), options_.max_label_value_bytes));
      }
      if (!IsValidUtf8(l.name)) {
        return LineError(fmt::format("label name {} is not valid UTF-8", Shown(l.name)));
      }
      if (!IsValidUtf8(l.value)) {
        return LineError(fmt::format("the value of label {} is not valid UTF-8", Shown(l.name)));
      }
    }
    if (labels_.size() > options_.max_labels_per_series) {
      return LineError(fmt::format("{} labels, more than the limit of {}", labels_.size(),
                                   options_.max_labels_per_series));
    }
    bool has_name = std::any_of(labels_.begin(), labels_.end(),
                                [](const LabelView& l) { return l.name == kMetricName; });
    if (!has_name) return LineError("the sample has no metric name");
    index_.try_emplace(key_.encoded(), series_.size());
    series_.push_back(PendingSeries{key_, {{sample, static_cast<uint32_t>(line_no_)}}});
    return absl::OkStatus();
  }

  absl::Status ParseComment() {
    ++pos_;  // '#'
    SkipBlanks();
    size_t word_begin = pos_;
    while (!AtEnd() && !IsBlank(Peek())) ++pos_;
    std::string_view word = line_.substr(word_begin, pos_ - word_begin);
    bool help = word == "HELP";
    if (!help && word != "TYPE") return absl::OkStatus();  // a plain comment
    SkipBlanks();
    std::string_view metric;
    if (!AtEnd() && Peek() == '"') {
      STRATA_RETURN_IF_ERROR(ReadQuoted("a quoted metric name", nullptr, &metric));
    } else {
      metric = ReadName(/*metric=*/true);
    }
    if (metric.empty()) return Error(fmt::format("{} without a metric name", word));
    if (!AtEnd() && !IsBlank(Peek())) {
      return Error(fmt::format("invalid character {} in the metric name of {}",
                               Shown(line_.substr(pos_, 1)), word));
    }
    if (!IsValidUtf8(metric)) return LineError("the metric name is not valid UTF-8");
    SkipBlanks();
    std::string_view rest = line_.substr(std::min(pos_, line_.size()));
    while (!rest.empty() && IsBlank(rest.back())) rest.remove_suffix(1);
    auto [it, inserted] = metadata_index_.try_emplace(std::string(metric), metadata_.size());
    if (inserted) metadata_.push_back(TextMetadata{std::string(metric), "unknown", ""});
    TextMetadata& m = metadata_[it->second];
    if (help) {
      std::string text;
      text.reserve(rest.size());
      for (size_t i = 0; i < rest.size(); ++i) {
        if (rest[i] == '\\' && i + 1 < rest.size() && (rest[i + 1] == '\\' || rest[i + 1] == 'n')) {
          text.push_back(rest[i + 1] == 'n' ? '\n' : '\\');
          ++i;
        } else {
          text.push_back(rest[i]);
        }
      }
      if (!IsValidUtf8(text)) return LineError("the HELP text is not valid UTF-8");
      m.help = std::move(text);
      return absl::OkStatus();
    }
    static constexpr std::string_view kTypes[] = {"counter", "gauge", "histogram", "summary"};
    if (rest == "untyped") {
      m.type = "unknown";
    } else if (std::find(std::begin(kTypes), std::end(kTypes), rest) != std::end(kTypes)) {
      m.type = std::string(rest);
    } else {
      return Error(fmt::format(
          "unknown metric type {}: expected counter, gauge, histogram, summary or untyped",
          Shown(rest)));
    }
    return absl::OkStatus();
  }

  absl::StatusOr<TextParseResult> Finish() {
    TextParseResult result;
    result.lines = line_no_;
    result.series.reserve(series_.size());
    for (PendingSeries& p : series_) {
      std::stable_sort(
          p.samples.begin(), p.samples.end(),
          [](const PendingSample& a, const PendingSample& b) { return a.sample.t < b.sample.t; });
      TextSeries s;
      s.labels = std::move(p.labels);
      s.samples.reserve(p.samples.size());
      for (size_t i = 0; i < p.samples.size(); ++i) {
        const PendingSample& cur = p.samples[i];
        if (i > 0 && cur.sample.t == p.samples[i - 1].sample.t) {
          const PendingSample& prev = p.samples[i - 1];
          bool same =
              std::bit_cast<uint64_t>(cur.sample.v) == std::bit_cast<uint64_t>(prev.sample.v) ||
              (std::isnan(cur.sample.v) && std::isnan(prev.sample.v));
          if (same) continue;
          return absl::InvalidArgumentError(
              fmt::format("lines {} and {}: two different values for series {} at timestamp {}",
                          std::min(prev.line, cur.line), std::max(prev.line, cur.line),
                          s.labels.ToString(), cur.sample.t));
        }
        s.samples.push_back(cur.sample);
      }
      result.samples += s.samples.size();
      result.series.push_back(std::move(s));
    }
    result.metadata = std::move(metadata_);
    return result;
  }

  std::string_view text_;
  const TextFormatOptions& options_;
  std::string_view line_;
  size_t line_no_ = 0;
  size_t pos_ = 0;
  std::vector<LabelView> labels_;      // of the current line
  Labels key_;                         // labels_ packed, to look the series up
  std::deque<std::string> unescaped_;  // values of the current line that had escapes
  std::vector<PendingSeries> series_;
  StringMap<size_t> index_;  // encoded labels -> index in series_
  std::vector<TextMetadata> metadata_;
  StringMap<size_t> metadata_index_;
};

void AppendQuoted(std::string_view s, std::string* out) {
  out->push_back('"');
  for (char c : s) {
    switch (c) {
      case '\\':
        out->append("\\\\");
        break;
      case '"':
        out->append("\\\"");
        break;
      case '\n':
        out->append("\\n");
        break;
      default:
        out->push_back(c);
    }
  }
  out->push_back('"');
}

void AppendFloat(double v, std::string* out) {
  if (std::isnan(v)) {
    out->append("NaN");
  } else if (std::isinf(v)) {
    out->append(v > 0 ? "+Inf" : "-Inf");
  } else {
    char buf[32];
    auto [p, ec] = std::to_chars(buf, buf + sizeof(buf), v);
    out->append(buf, p);
  }
}

}  // namespace

absl::StatusOr<TextParseResult> ParseTextFormat(std::string_view text,
                                                const TextFormatOptions& options) {
  return TextParser(text, options).Run();
}

void AppendTextSample(const Labels& labels, double v, std::optional<Timestamp> t,
                      std::string* out) {
  std::string_view metric = labels.MetricName();
  bool bare_metric = IsLegacyMetricName(metric);
  if (bare_metric) out->append(metric);
  bool first = true;
  auto separate = [&] {
    out->push_back(first ? '{' : ',');
    first = false;
  };
  if (!bare_metric) {
    separate();
    AppendQuoted(metric, out);
  }
  for (const LabelView& l : labels) {
    if (l.name == kMetricName) continue;
    separate();
    if (IsLegacyLabelName(l.name)) {
      out->append(l.name);
    } else {
      AppendQuoted(l.name, out);
    }
    out->push_back('=');
    AppendQuoted(l.value, out);
  }
  if (!first) out->push_back('}');
  out->push_back(' ');
  AppendFloat(v, out);
  if (t) {
    out->push_back(' ');
    char buf[24];
    auto [p, ec] = std::to_chars(buf, buf + sizeof(buf), *t);
    out->append(buf, p);
  }
  out->push_back('\n');
}

}  // namespace strata
