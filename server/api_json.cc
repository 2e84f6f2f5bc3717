#include "server/api_json.h"

#include <charconv>
#include <cmath>
#include <system_error>

namespace strata {
namespace {

template <typename... Args>
void AppendToChars(std::string* out, Args... args) {
  char buf[64];
  auto [ptr, ec] = std::to_chars(buf, buf + sizeof(buf), args...);
  out->append(buf, ptr);
}

// Length of the valid UTF-8 sequence starting at s[i], or 0 when the bytes there are not
// one (overlong forms, surrogates and code points above U+10FFFF are invalid, as in Go).
size_t Utf8SequenceLength(std::string_view s, size_t i) {
  auto byte = [&](size_t k) { return static_cast<unsigned char>(s[k]); };
  unsigned char c = byte(i);
  size_t n = s.size() - i;
  auto cont = [&](size_t k) { return (byte(k) & 0xC0) == 0x80; };
  if (c < 0x80) return 1;
  if (c < 0xC2) return 0;
  if (c < 0xE0) return n >= 2 && cont(i + 1) ? 2 : 0;
  if (c < 0xF0) {
    if (n < 3 || !cont(i + 1) || !cont(i + 2)) return 0;
    if (c == 0xE0 && byte(i + 1) < 0xA0) return 0;   // overlong
    if (c == 0xED && byte(i + 1) >= 0xA0) return 0;  // surrogate
    return 3;
  }
  if (c < 0xF5) {
    if (n < 4 || !cont(i + 1) || !cont(i + 2) || !cont(i + 3)) return 0;
    if (c == 0xF0 && byte(i + 1) < 0x90) return 0;   // overlong
    if (c == 0xF4 && byte(i + 1) >= 0x90) return 0;  // above U+10FFFF
    return 4;
  }
  return 0;
}

// Go's strconv.FormatFloat(v, 'f', -1, 64) of a finite v: the shortest digits that round-trip,
// in fixed notation.
void AppendShortestFixed(double v, std::string* out) {
  double abs = std::fabs(v);
  if (abs < 1e15) {
    // Up to 1074 fraction digits could be needed in theory; the shortest round-tripping
    // ones of a double below 1e15 fit here (5e-324 takes 326 characters).
    char buf[400];
    auto [ptr, ec] = std::to_chars(buf, buf + sizeof(buf), v, std::chars_format::fixed);
    if (ec == std::errc()) {
      out->append(buf, ptr);
      return;
    }
  }
  // Large values: libstdc++ prints every exact digit in fixed form (2^70 as
  // "1180591620717411303424"), Go prints the shortest digits padded with zeros
  // ("1180591620717411300000"). Take the shortest digits from the scientific form.
  char buf[64];
  auto [ptr, ec] = std::to_chars(buf, buf + sizeof(buf), v, std::chars_format::scientific);
  std::string_view sci(buf, ptr - buf);
  size_t e = sci.find('e');
  int exp = 0;
  std::from_chars(sci.data() + e + 1 + (sci[e + 1] == '+'), sci.data() + sci.size(), exp);
  std::string_view mantissa = sci.substr(0, e);
  if (mantissa.front() == '-') {
    out->push_back('-');
    mantissa.remove_prefix(1);
  }
  // exp is 15..308 here, so the value has exp + 1 integer digits and no fraction digits
  // beyond those the mantissa holds.
  std::string digits;
  for (char c : mantissa) {
    if (c != '.') digits.push_back(c);
  }
  size_t int_digits = static_cast<size_t>(exp) + 1;
  if (digits.size() <= int_digits) {
    out->append(digits);
    out->append(int_digits - digits.size(), '0');
  } else {
    out->append(digits, 0, int_digits);
    out->push_back('.');
    out->append(digits, int_digits);
  }
}

}  // namespace

void AppendScalarValue(double v, std::string* out) {
  if (std::isnan(v)) {
    out->append("NaN");
  } else if (std::isinf(v)) {
    out->append(v > 0 ? "+Inf" : "-Inf");
  } else {
    AppendShortestFixed(v, out);
  }
}

void AppendGoSeconds(Timestamp ms, std::string* out) {
  AppendShortestFixed(static_cast<double>(ms) / 1000, out);
}

void AppendSampleValue(double v, std::string* out) {
  if (std::isnan(v)) {
    out->append("NaN");
    return;
  }
  if (std::isinf(v)) {
    out->append(v > 0 ? "+Inf" : "-Inf");
    return;
  }
  double abs = std::fabs(v);
  // Go's strconv 'f' and 'e' with precision -1 print the shortest digits that round-trip,
  // as std::to_chars does; 'e' writes at least two exponent digits with a sign, as the
  // C++ scientific format does ("1e-07", "1.5e+21").
  if (abs != 0 && (abs < 1e-6 || abs >= 1e21)) {
    AppendToChars(out, v, std::chars_format::scientific);
  } else {
    AppendShortestFixed(v, out);
  }
}

std::string FormatSampleValue(double v) {
  std::string out;
  AppendSampleValue(v, &out);
  return out;
}

void AppendTimestamp(Timestamp ms, std::string* out) {
  uint64_t abs = static_cast<uint64_t>(ms);
  if (ms < 0) {
    out->push_back('-');
    abs = ~abs + 1;  // well defined for INT64_MIN too
  }
  AppendToChars(out, abs / 1000);
  uint64_t fraction = abs % 1000;
  if (fraction != 0) {
    char digits[4] = {'.', static_cast<char>('0' + fraction / 100),
                      static_cast<char>('0' + fraction / 10 % 10),
                      static_cast<char>('0' + fraction % 10)};
    out->append(digits, 4);
  }
}

std::string FormatTimestamp(Timestamp ms) {
  std::string out;
  AppendTimestamp(ms, &out);
  return out;
}

void AppendJsonString(std::string_view s, std::string* out) {
  static constexpr char kHex[] = "0123456789abcdef";
  out->push_back('"');
  size_t i = 0;
  while (i < s.size()) {
    // Copy the longest run that needs no escaping in one append.
    size_t run = i;
    while (run < s.size()) {
      unsigned char c = static_cast<unsigned char>(s[run]);
      if (c < 0x20 || c == '"' || c == '\\' || c == '<' || c == '>' || c == '&' || c >= 0x80) {
        break;
      }
      ++run;
    }
    out->append(s.data() + i, run - i);
    i = run;
    if (i == s.size()) break;
    unsigned char c = static_cast<unsigned char>(s[i]);
    if (c >= 0x80) {
      size_t n = Utf8SequenceLength(s, i);
      if (n == 0) {
        out->append("\\ufffd");
        ++i;
      } else if (n == 3 && c == 0xE2 && static_cast<unsigned char>(s[i + 1]) == 0x80 &&
                 (static_cast<unsigned char>(s[i + 2]) & 0xFE) == 0xA8) {
        // U+2028 and U+2029 break JavaScript string literals; Go escapes them.
        out->append(static_cast<unsigned char>(s[i + 2]) == 0xA8 ? "\\u2028" : "\\u2029");
        i += 3;
      } else {
        out->append(s.data() + i, n);
        i += n;
      }
      continue;
    }
    switch (c) {
      case '"':
        out->append("\\\"");
        break;
      case '\\':
        out->append("\\\\");
        break;
      case '\n':
        out->append("\\n");
        break;
      case '\r':
        out->append("\\r");
        break;
      case '\t':
        out->append("\\t");
        break;
      default: {
        char esc[6] = {'\\', 'u', '0', '0', kHex[c >> 4], kHex[c & 0xF]};
        out->append(esc, 6);
      }
    }
    ++i;
  }
  out->push_back('"');
}

JsonWriter& JsonWriter::BeginObject() {
  Separate();
  out_->push_back('{');
  first_ = true;
  return *this;
}

JsonWriter& JsonWriter::EndObject() {
  out_->push_back('}');
  first_ = false;
  return *this;
}

JsonWriter& JsonWriter::BeginArray() {
  Separate();
  out_->push_back('[');
  first_ = true;
  return *this;
}

JsonWriter& JsonWriter::EndArray() {
  out_->push_back(']');
  first_ = false;
  return *this;
}

JsonWriter& JsonWriter::Key(std::string_view key) {
  Separate();
  AppendJsonString(key, out_);
  out_->push_back(':');
  first_ = true;
  return *this;
}

JsonWriter& JsonWriter::String(std::string_view s) {
  Separate();
  AppendJsonString(s, out_);
  first_ = false;
  return *this;
}

JsonWriter& JsonWriter::Int(int64_t v) {
  Separate();
  AppendToChars(out_, v);
  first_ = false;
  return *this;
}

JsonWriter& JsonWriter::Uint(uint64_t v) {
  Separate();
  AppendToChars(out_, v);
  first_ = false;
  return *this;
}

JsonWriter& JsonWriter::Bool(bool v) {
  Separate();
  out_->append(v ? "true" : "false");
  first_ = false;
  return *this;
}

JsonWriter& JsonWriter::Null() {
  Separate();
  out_->append("null");
  first_ = false;
  return *this;
}

JsonWriter& JsonWriter::Double(double v) {
  if (!std::isfinite(v)) return Null();
  Separate();
  AppendToChars(out_, v);
  first_ = false;
  return *this;
}

JsonWriter& JsonWriter::SampleValue(double v) {
  Separate();
  out_->push_back('"');
  AppendSampleValue(v, out_);
  out_->push_back('"');
  first_ = false;
  return *this;
}

JsonWriter& JsonWriter::Timestamp(strata::Timestamp ms) {
  Separate();
  AppendTimestamp(ms, out_);
  first_ = false;
  return *this;
}

JsonWriter& JsonWriter::Pair(strata::Timestamp ms, double v,
                             void (*append_time)(strata::Timestamp, std::string*),
                             void (*append_value)(double, std::string*)) {
  Separate();
  out_->push_back('[');
  append_time(ms, out_);
  out_->append(",\"");
  append_value(v, out_);
  out_->append("\"]");
  first_ = false;
  return *this;
}

JsonWriter& JsonWriter::SamplePair(strata::Timestamp ms, double v) {
  return Pair(ms, v, AppendTimestamp, AppendSampleValue);
}

JsonWriter& JsonWriter::ScalarPair(strata::Timestamp ms, double v) {
  return Pair(ms, v, AppendGoSeconds, AppendScalarValue);
}

JsonWriter& JsonWriter::GoSeconds(strata::Timestamp ms) {
  Separate();
  AppendGoSeconds(ms, out_);
  first_ = false;
  return *this;
}

JsonWriter& JsonWriter::LabelSet(const Labels& labels) {
  BeginObject();
  for (const LabelView& l : labels) Key(l.name).String(l.value);
  return EndObject();
}

JsonWriter& JsonWriter::LabelSet(std::span<const LabelView> labels) {
  BeginObject();
  for (const LabelView& l : labels) Key(l.name).String(l.value);
  return EndObject();
}

JsonWriter& JsonWriter::Raw(std::string_view json) {
  Separate();
  out_->append(json);
  first_ = false;
  return *this;
}

std::string_view ApiErrorTypeName(ApiErrorType type) {
  switch (type) {
    case ApiErrorType::kBadData:
      return "bad_data";
    case ApiErrorType::kExecution:
      return "execution";
    case ApiErrorType::kTimeout:
      return "timeout";
    case ApiErrorType::kCanceled:
      return "canceled";
    case ApiErrorType::kInternal:
      return "internal";
    case ApiErrorType::kNotFound:
      return "not_found";
    case ApiErrorType::kUnavailable:
      return "unavailable";
  }
  return "internal";
}

int ApiErrorHttpCode(ApiErrorType type) {
  switch (type) {
    case ApiErrorType::kBadData:
      return 400;
    case ApiErrorType::kExecution:
      return 422;
    case ApiErrorType::kTimeout:
      return 503;
    case ApiErrorType::kCanceled:
      return 499;
    case ApiErrorType::kInternal:
      return 500;
    case ApiErrorType::kNotFound:
      return 404;
    case ApiErrorType::kUnavailable:
      return 503;
  }
  return 500;
}

ApiErrorType ApiErrorTypeFromStatus(const absl::Status& status) {
  switch (status.code()) {
    case absl::StatusCode::kInvalidArgument:
      return ApiErrorType::kBadData;
    case absl::StatusCode::kFailedPrecondition:
    case absl::StatusCode::kResourceExhausted:
      return ApiErrorType::kExecution;
    case absl::StatusCode::kDeadlineExceeded:
      return ApiErrorType::kTimeout;
    case absl::StatusCode::kCancelled:
      return ApiErrorType::kCanceled;
    case absl::StatusCode::kNotFound:
      return ApiErrorType::kNotFound;
    case absl::StatusCode::kUnavailable:
      return ApiErrorType::kUnavailable;
    default:
      return ApiErrorType::kInternal;
  }
}

std::string ApiErrorBody(ApiErrorType type, std::string_view message) {
  std::string out;
  out.reserve(message.size() + 64);
  out.append(R"({"status":"error","errorType":")");
  out.append(ApiErrorTypeName(type));
  out.append(R"(","error":)");
  AppendJsonString(message, &out);
  out.push_back('}');
  return out;
}

void BeginApiSuccess(JsonWriter& w) { w.BeginObject().Key("status").String("success").Key("data"); }

void EndApiSuccess(JsonWriter& w, std::span<const std::string> warnings,
                   std::span<const std::string> infos) {
  if (!warnings.empty()) {
    w.Key("warnings").BeginArray();
    for (const std::string& s : warnings) w.String(s);
    w.EndArray();
  }
  if (!infos.empty()) {
    w.Key("infos").BeginArray();
    for (const std::string& s : infos) w.String(s);
    w.EndArray();
  }
  w.EndObject();
}

}  // namespace strata
