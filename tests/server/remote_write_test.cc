#include "server/remote_write.h"

#include <fmt/format.h>
#include <snappy.h>

#include <algorithm>
#include <atomic>
#include <bit>
#include <cmath>
#include <random>
#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "remote_write_test.pb.h"
#include "server/http_server.h"
#include "src/metrics.h"
#include "src/strings.h"
#include "tests/server/remote_write_sender.h"

namespace strata {
namespace {

using ::strata::testing::AddSeries;
using ::strata::testing::EncodeRemoteWriteBody;
using ::testing::HasSubstr;

// ---------------------------------------------------------------------------------------------
// A model of what the decoder must produce, computed from a libprotobuf-parsed request.

struct ModelSeries {
  bool valid = true;
  std::vector<std::pair<std::string, std::string>> labels;  // normalized, only when valid
  std::vector<std::pair<int64_t, uint64_t>> samples;        // value bits: NaNs compare exactly
  uint32_t exemplars = 0;
  bool operator==(const ModelSeries&) const = default;
};

struct ModelMetadata {
  int32_t type;
  std::string name, help, unit;
  bool operator==(const ModelMetadata&) const = default;
};

struct Model {
  std::vector<ModelSeries> series;
  std::vector<ModelMetadata> metadata;
  bool operator==(const Model&) const = default;
};

bool ModelValid(std::vector<std::pair<std::string, std::string>>* labels,
                const RemoteWriteLimits& limits) {
  std::vector<std::pair<std::string, std::string>> kept;
  for (auto& [n, v] : *labels) {
    if (n.empty() || n.size() > limits.max_label_name_bytes ||
        v.size() > limits.max_label_value_bytes || !IsValidUtf8(n) || !IsValidUtf8(v)) {
      return false;
    }
    if (!v.empty()) kept.emplace_back(n, v);
  }
  std::stable_sort(kept.begin(), kept.end(),
                   [](const auto& a, const auto& b) { return a.first < b.first; });
  for (size_t i = 1; i < kept.size(); ++i) {
    if (kept[i].first == kept[i - 1].first) return false;
  }
  if (kept.size() > limits.max_labels_per_series) return false;
  if (std::none_of(kept.begin(), kept.end(), [](const auto& l) { return l.first == "__name__"; })) {
    return false;
  }
  *labels = std::move(kept);
  return true;
}

Model Expected(const test::WriteRequest& req, const RemoteWriteLimits& limits = {}) {
  Model m;
  for (const test::TimeSeries& ts : req.timeseries()) {
    ModelSeries s;
    for (const test::Label& l : ts.labels()) s.labels.emplace_back(l.name(), l.value());
    s.valid = ModelValid(&s.labels, limits);
    if (!s.valid) s.labels.clear();
    for (const test::Sample& x : ts.samples()) {
      s.samples.emplace_back(x.timestamp(), std::bit_cast<uint64_t>(x.value()));
    }
    s.exemplars = static_cast<uint32_t>(ts.exemplars_size());
    m.series.push_back(std::move(s));
  }
  for (const test::MetricMetadata& md : req.metadata()) {
    m.metadata.push_back({md.type(), md.metric_family_name(), md.help(), md.unit()});
  }
  return m;
}

Model Actual(const WriteRequestDecoder& d) {
  Model m;
  for (size_t i = 0; i < d.series_count(); ++i) {
    RemoteWriteSeries rs = d.series(i);
    ModelSeries s;
    s.valid = rs.ok();
    if (s.valid) {
      for (const LabelView& l : rs.labels) s.labels.emplace_back(l.name, l.value);
    }
    for (const Sample& x : rs.samples) s.samples.emplace_back(x.t, std::bit_cast<uint64_t>(x.v));
    s.exemplars = rs.exemplars;
    m.series.push_back(std::move(s));
  }
  for (const RemoteWriteMetadata& md : d.metadata()) {
    m.metadata.push_back(
        {md.type, std::string(md.metric_family_name), std::string(md.help), std::string(md.unit)});
  }
  return m;
}

std::string ModelText(const Model& m) {
  std::string out;
  for (const ModelSeries& s : m.series) {
    out += s.valid ? "series{" : "INVALID{";
    for (const auto& [n, v] : s.labels) out += QuoteString(n) + "=" + QuoteString(v) + ",";
    out += "} samples=" + std::to_string(s.samples.size()) +
           " exemplars=" + std::to_string(s.exemplars) + "\n";
  }
  out += "metadata=" + std::to_string(m.metadata.size());
  return out;
}

// ---------------------------------------------------------------------------------------------
// Random requests

class RandomRequests {
 public:
  explicit RandomRequests(uint64_t seed) : rng_(seed) {}

  test::WriteRequest Next() {
    test::WriteRequest req;
    int series = Uniform(0, 12);
    for (int i = 0; i < series; ++i) {
      test::TimeSeries* ts = req.add_timeseries();
      int labels = Uniform(0, 8);
      if (Chance(0.9)) AddLabel(ts, "__name__", Name());
      for (int j = 0; j < labels; ++j) AddLabel(ts, Name(), Value());
      int samples = Chance(0.1) ? Uniform(100, 400) : Uniform(0, 5);
      for (int j = 0; j < samples; ++j) {
        test::Sample* s = ts->add_samples();
        s->set_timestamp(Timestamp());
        s->set_value(Value64());
      }
      if (Chance(0.2)) {
        test::Exemplar* e = ts->add_exemplars();
        test::Label* l = e->add_labels();
        l->set_name("trace_id");
        l->set_value(Value());
        e->set_value(1.5);
        e->set_timestamp(Timestamp());
      }
    }
    if (Chance(0.3)) {
      int n = Uniform(1, 4);
      for (int i = 0; i < n; ++i) {
        test::MetricMetadata* md = req.add_metadata();
        md->set_type(Chance(0.9) ? Uniform(0, 7) : static_cast<int32_t>(rng_()));
        md->set_metric_family_name(Name());
        if (Chance(0.7)) md->set_help(Value());
        if (Chance(0.3)) md->set_unit("seconds");
      }
    }
    return req;
  }

  std::mt19937_64& rng() { return rng_; }

 private:
  int Uniform(int lo, int hi) { return std::uniform_int_distribution<int>(lo, hi)(rng_); }
  bool Chance(double p) { return std::bernoulli_distribution(p)(rng_); }

  void AddLabel(test::TimeSeries* ts, std::string name, std::string value) {
    test::Label* l = ts->add_labels();
    l->set_name(std::move(name));
    l->set_value(std::move(value));
  }

  std::string Name() {
    static const char* kNames[] = {"__name__",
                                   "job",
                                   "instance",
                                   "le",
                                   "a",
                                   "b",
                                   "zz",
                                   "mode",
                                   "http_requests_total",
                                   "node_cpu_seconds_total",
                                   "ü"};
    double r = std::uniform_real_distribution<double>(0, 1)(rng_);
    if (r < 0.03) return "";
    if (r < 0.06) return RandomBytes(Uniform(1, 6));
    if (r < 0.07) return std::string(1100, 'n');  // over the name length limit
    return kNames[Uniform(0, std::size(kNames) - 1)];
  }

  std::string Value() {
    double r = std::uniform_real_distribution<double>(0, 1)(rng_);
    if (r < 0.1) return "";
    if (r < 0.13) return RandomBytes(Uniform(1, 10));
    if (r < 0.14) return std::string(17000, 'v');  // over the value length limit
    return fmt::format("v{}", Uniform(0, 1000));
  }

  std::string RandomBytes(int n) {
    std::string s;
    for (int i = 0; i < n; ++i) s.push_back(static_cast<char>(rng_()));
    return s;
  }

  int64_t Timestamp() {
    switch (Uniform(0, 3)) {
      case 0:
        return 1700000000000 + Uniform(0, 1000000);
      case 1:
        return -static_cast<int64_t>(rng_() >> 2);
      case 2:
        return static_cast<int64_t>(rng_());
      default:
        return 0;
    }
  }

  double Value64() {
    switch (Uniform(0, 4)) {
      case 0:
        return std::bit_cast<double>(rng_());  // any bit pattern, NaNs included
      case 1:
        return StaleNaN();
      case 2:
        return Uniform(0, 100);
      case 3:
        return -0.0;
      default:
        return std::uniform_real_distribution<double>(-1e6, 1e6)(rng_);
    }
  }

  std::mt19937_64 rng_;
};

// ---------------------------------------------------------------------------------------------
// A minimal wire encoder for hand-made messages (unknown fields, groups, odd encodings).

void PutVarint(std::string* out, uint64_t v) {
  while (v >= 0x80) {
    out->push_back(static_cast<char>(v | 0x80));
    v >>= 7;
  }
  out->push_back(static_cast<char>(v));
}
void PutTag(std::string* out, uint32_t field, uint32_t wire) { PutVarint(out, field << 3 | wire); }
void PutBytes(std::string* out, uint32_t field, std::string_view b) {
  PutTag(out, field, 2);
  PutVarint(out, b.size());
  out->append(b);
}
void PutFixed64(std::string* out, uint32_t field, uint64_t v) {
  PutTag(out, field, 1);
  for (int i = 0; i < 8; ++i) out->push_back(static_cast<char>(v >> (8 * i)));
}

// ---------------------------------------------------------------------------------------------
// Tests

TEST(SnappyDecompress, RoundTripsAndReusesTheBuffer) {
  std::string raw(100000, 'x');
  for (size_t i = 0; i < raw.size(); i += 7) raw[i] = static_cast<char>(i);
  std::string compressed;
  snappy::Compress(raw.data(), raw.size(), &compressed);
  std::string out;
  ASSERT_TRUE(SnappyDecompress(compressed, raw.size(), &out).ok());
  EXPECT_EQ(out, raw);
  std::string small;
  snappy::Compress("abc", 3, &small);
  ASSERT_TRUE(SnappyDecompress(small, 10, &out).ok());
  EXPECT_EQ(out, "abc");
}

TEST(SnappyDecompress, RejectsOversizedBodiesBeforeDecompressing) {
  std::string raw(5000, 'a');
  std::string compressed;
  snappy::Compress(raw.data(), raw.size(), &compressed);
  std::string out;
  absl::Status st = SnappyDecompress(compressed, 4999, &out);
  EXPECT_EQ(st.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(st.message(),
            "remote write: decompressed body of 5000 bytes exceeds the limit of 4999 bytes");
}

TEST(SnappyDecompress, RejectsGarbageAndTruncation) {
  std::string out;
  EXPECT_FALSE(SnappyDecompress("\xff\xff\xff\xff\xff\xff", 1 << 20, &out).ok());
  std::string raw(3000, 'q');
  raw += "tail that does not repeat 0123456789";
  std::string compressed;
  snappy::Compress(raw.data(), raw.size(), &compressed);
  for (size_t cut = 0; cut < compressed.size(); ++cut) {
    EXPECT_FALSE(SnappyDecompress(compressed.substr(0, cut), 1 << 20, &out).ok()) << cut;
  }
  // A protobuf body sent without snappy is reported as such.
  absl::Status st = SnappyDecompress("plain text body", 1 << 20, &out);
  EXPECT_FALSE(st.ok());
}

TEST(WriteRequestDecoder, DecodesSeriesSamplesAndMetadata) {
  test::WriteRequest req;
  AddSeries(&req, {{"__name__", "up"}, {"instance", "localhost:9090"}, {"job", "prometheus"}},
            {{1700000000000, 1}, {1700000015000, 0}});
  AddSeries(&req, {{"__name__", "node_load1"}}, {{-5, StaleNaN()}});
  test::MetricMetadata* md = req.add_metadata();
  md->set_type(1);
  md->set_metric_family_name("http_requests_total");
  md->set_help("Requests served.");
  md->set_unit("requests");
  std::string body = req.SerializeAsString();

  WriteRequestDecoder d;
  ASSERT_TRUE(d.Decode(body).ok());
  ASSERT_EQ(d.series_count(), 2u);
  RemoteWriteSeries s0 = d.series(0);
  EXPECT_TRUE(s0.ok());
  ASSERT_EQ(s0.labels.size(), 3u);
  EXPECT_EQ(s0.labels[0], (LabelView{"__name__", "up"}));
  EXPECT_EQ(s0.labels[2], (LabelView{"job", "prometheus"}));
  ASSERT_EQ(s0.samples.size(), 2u);
  EXPECT_EQ(s0.samples[1].t, 1700000015000);
  EXPECT_EQ(s0.samples[1].v, 0);
  RemoteWriteSeries s1 = d.series(1);
  ASSERT_EQ(s1.samples.size(), 1u);
  EXPECT_TRUE(IsStaleNaN(s1.samples[0].v));
  EXPECT_EQ(s1.samples[0].t, -5);
  EXPECT_EQ(d.total_samples(), 3u);
  EXPECT_EQ(d.invalid_series(), 0u);
  ASSERT_EQ(d.metadata().size(), 1u);
  EXPECT_EQ(MetricTypeName(d.metadata()[0].type), "counter");
  EXPECT_EQ(d.metadata()[0].metric_family_name, "http_requests_total");
  EXPECT_EQ(d.metadata()[0].help, "Requests served.");
  EXPECT_EQ(d.metadata()[0].unit, "requests");
  // Label views point into the body: no copies.
  EXPECT_GE(s0.labels[0].value.data(), body.data());
  EXPECT_LT(s0.labels[0].value.data(), body.data() + body.size());
}

TEST(WriteRequestDecoder, EmptyRequestIsValid) {
  WriteRequestDecoder d;
  ASSERT_TRUE(d.Decode("").ok());
  EXPECT_EQ(d.series_count(), 0u);
  EXPECT_EQ(d.first_error(), "");
}

TEST(WriteRequestDecoder, SortsLabelsAndDropsEmptyValues) {
  test::WriteRequest req;
  AddSeries(&req, {{"zone", "b"}, {"__name__", "m"}, {"empty", ""}, {"app", "x"}}, {{1, 1}});
  std::string body = req.SerializeAsString();
  WriteRequestDecoder d;
  ASSERT_TRUE(d.Decode(body).ok());
  RemoteWriteSeries s = d.series(0);
  ASSERT_TRUE(s.ok()) << s.error;
  ASSERT_EQ(s.labels.size(), 3u);
  EXPECT_EQ(s.labels[0].name, "__name__");
  EXPECT_EQ(s.labels[1].name, "app");
  EXPECT_EQ(s.labels[2].name, "zone");
}

TEST(WriteRequestDecoder, InvalidSeriesCarryClearErrorsAndValidOnesSurvive) {
  RemoteWriteLimits limits;
  limits.max_labels_per_series = 3;
  limits.max_label_name_bytes = 10;
  limits.max_label_value_bytes = 20;
  test::WriteRequest req;
  AddSeries(&req, {{"__name__", "ok"}}, {{1, 1}});
  AddSeries(&req, {{"job", "x"}}, {{1, 1}, {2, 2}});
  AddSeries(&req, {{"__name__", "m"}, {"", "v"}}, {{1, 1}});
  AddSeries(&req, {{"__name__", "m"}, {"a", "1"}, {"a", "2"}}, {{1, 1}});
  AddSeries(&req, {{"__name__", "m"}, {"bad\xff", "1"}}, {{1, 1}});
  AddSeries(&req, {{"__name__", "m"}, {"a", "\xc3("}}, {{1, 1}});
  AddSeries(&req, {{"__name__", "m"}, {"a", "1"}, {"b", "1"}, {"c", "1"}}, {{1, 1}});
  AddSeries(&req, {{"__name__", "m"}, {"abcdefghijk", "1"}}, {{1, 1}});
  AddSeries(&req, {{"__name__", "m"}, {"a", std::string(21, 'v')}}, {{1, 1}});
  AddSeries(&req, {{"__name__", ""}, {"a", "1"}}, {{1, 1}});
  std::string body = req.SerializeAsString();
  WriteRequestDecoder d;
  ASSERT_TRUE(d.Decode(body, limits).ok());
  ASSERT_EQ(d.series_count(), 10u);
  EXPECT_TRUE(d.series(0).ok());
  std::vector<std::string> errors;
  for (size_t i = 1; i < d.series_count(); ++i) {
    EXPECT_FALSE(d.series(i).ok()) << i;
    errors.emplace_back(d.series(i).error);
  }
  EXPECT_EQ(errors[0], "invalid series {\"job\"=\"x\"}: no metric name (__name__ label)");
  EXPECT_THAT(errors[1], HasSubstr("empty label name"));
  EXPECT_THAT(errors[2], HasSubstr("duplicate label name \"a\""));
  EXPECT_THAT(errors[3], HasSubstr("label name \"bad\\xff\" is not valid UTF-8"));
  EXPECT_THAT(errors[4], HasSubstr("value of label \"a\" is not valid UTF-8"));
  EXPECT_THAT(errors[5], HasSubstr("4 labels, more than the limit of 3"));
  EXPECT_THAT(errors[6], HasSubstr("label name of 11 bytes is longer than the limit of 10"));
  EXPECT_THAT(errors[7],
              HasSubstr("value of label \"a\" is 21 bytes, longer than the limit of 20"));
  EXPECT_THAT(errors[8], HasSubstr("no metric name"));
  EXPECT_EQ(d.invalid_series(), 9u);
  EXPECT_EQ(d.invalid_samples(), 10u);
  EXPECT_EQ(d.first_error(), errors[0]);
}

TEST(WriteRequestDecoder, SkipsUnknownFieldsAndGroupsLikeLibprotobuf) {
  std::string label;
  PutBytes(&label, 1, "__name__");
  PutBytes(&label, 2, "first");
  PutBytes(&label, 2, "m");  // a repeated singular field: the last one wins
  PutTag(&label, 9, 0);      // unknown varint
  PutVarint(&label, 300);
  std::string sample;
  PutTag(&sample, 1, 0);  // value with the wrong wire type: an unknown field
  PutVarint(&sample, 7);
  PutTag(&sample, 2, 0);
  PutVarint(&sample, 42);
  PutTag(&sample, 7, 5);  // unknown fixed32
  sample.append("\x01\x02\x03\x04", 4);
  std::string ts;
  PutBytes(&ts, 1, label);
  PutBytes(&ts, 2, sample);
  PutTag(&ts, 20, 3);  // unknown group with a nested group inside
  PutTag(&ts, 1, 0);
  PutVarint(&ts, 1);
  PutTag(&ts, 21, 3);
  PutTag(&ts, 21, 4);
  PutTag(&ts, 20, 4);
  PutFixed64(&ts, 30, 99);  // unknown fixed64
  std::string body;
  PutBytes(&body, 1, ts);
  PutBytes(&body, 2, "ignored");  // unknown top-level field
  PutBytes(&body, 1, ts);

  test::WriteRequest ref;
  ASSERT_TRUE(ref.ParseFromString(body));
  WriteRequestDecoder d;
  ASSERT_TRUE(d.Decode(body).ok());
  EXPECT_EQ(Actual(d), Expected(ref)) << ModelText(Actual(d)) << "\n" << ModelText(Expected(ref));
  ASSERT_EQ(d.series_count(), 2u);
  EXPECT_EQ(d.series(0).labels[0].value, "m");
  EXPECT_EQ(d.series(0).samples[0].v, 0);
  EXPECT_EQ(d.series(0).samples[0].t, 42);
}

// The label fields' bytes identify a series as sent; a `known` callback that recognizes them
// skips validation, which the caller did when it first saw those bytes.
TEST(WriteRequestDecoder, RawLabelBytesAndKnownSeries) {
  auto label = [](std::string_view name, std::string_view value) {
    std::string l;
    PutBytes(&l, 1, name);
    PutBytes(&l, 2, value);
    return l;
  };
  std::string sample;
  PutFixed64(&sample, 1, 0x3ff0000000000000);  // 1.0
  PutTag(&sample, 2, 0);
  PutVarint(&sample, 5);
  // Series 0 and 2: the same label fields, first. Series 1: a sample between its labels.
  // Series 3: labels out of order with an empty value, fields contiguous.
  std::string ts0, ts1, ts3;
  PutBytes(&ts0, 1, label("__name__", "m"));
  PutBytes(&ts0, 1, label("job", "a"));
  const std::string raw0 = ts0;
  PutBytes(&ts0, 2, sample);
  PutBytes(&ts1, 1, label("__name__", "m"));
  PutBytes(&ts1, 2, sample);
  PutBytes(&ts1, 1, label("job", "b"));
  PutBytes(&ts3, 1, label("job", "c"));
  PutBytes(&ts3, 1, label("empty", ""));
  PutBytes(&ts3, 1, label("__name__", "m"));
  const std::string raw3 = ts3;
  PutBytes(&ts3, 2, sample);
  std::string body;
  for (const std::string* ts : {&ts0, &ts1, &ts0, &ts3}) PutBytes(&body, 1, *ts);

  WriteRequestDecoder d;
  ASSERT_TRUE(d.Decode(body).ok());
  ASSERT_EQ(d.series_count(), 4u);
  EXPECT_EQ(d.series(0).raw_labels, raw0);
  EXPECT_EQ(d.series(1).raw_labels, "") << "label fields apart: no raw bytes";
  EXPECT_EQ(d.series(2).raw_labels, raw0);
  EXPECT_EQ(d.series(3).raw_labels, raw3);
  for (size_t i = 0; i < 4; ++i) EXPECT_FALSE(d.series(i).known);
  ASSERT_TRUE(d.series(3).ok());
  ASSERT_EQ(d.series(3).labels.size(), 2u) << "validated: sorted, empty value dropped";
  EXPECT_EQ(d.series(3).labels[0].name, "__name__");

  // Known bytes: labels neither decoded nor validated; the callback is called once, with each
  // series' bytes in order, and never the series whose label fields are apart.
  std::vector<std::string> asked;
  int calls = 0;
  ASSERT_TRUE(
      d.Decode(body, {}, [&](std::span<const std::string_view> raw, std::span<uint8_t> known) {
         ++calls;
         ASSERT_EQ(raw.size(), known.size());
         for (size_t i = 0; i < raw.size(); ++i) {
           asked.emplace_back(raw[i]);
           EXPECT_EQ(known[i], 0);
           known[i] = raw[i] == raw3 ? 1 : 0;
         }
       }).ok());
  EXPECT_EQ(calls, 1);
  EXPECT_EQ(asked, (std::vector<std::string>{raw0, raw0, raw3}));
  EXPECT_FALSE(d.series(0).known);
  EXPECT_FALSE(d.series(1).known);
  ASSERT_TRUE(d.series(3).known);
  EXPECT_TRUE(d.series(3).ok());
  EXPECT_TRUE(d.series(3).labels.empty()) << "not decoded: the caller knows the series";
  EXPECT_EQ(d.series(3).samples.size(), 1u);
  ASSERT_TRUE(d.series(1).ok());
  EXPECT_EQ(d.series(1).labels[1].value, "b");

  // An invalid label set is still refused when its bytes are not known.
  std::string bad, bad_body;
  PutBytes(&bad, 1, label("job", "x"));  // no __name__
  PutBytes(&bad, 2, sample);
  PutBytes(&bad_body, 1, bad);
  ASSERT_TRUE(
      d.Decode(bad_body, {}, [](std::span<const std::string_view>, std::span<uint8_t>) {}).ok());
  EXPECT_FALSE(d.series(0).ok());
  EXPECT_EQ(d.invalid_series(), 1u);
}

TEST(WriteRequestDecoder, MalformedBytesAreOneClearError) {
  std::string body;
  PutBytes(&body, 1, "");
  body.push_back('\x0a');  // timeseries tag, then a length running past the end
  body.push_back('\x7f');
  WriteRequestDecoder d;
  absl::Status st = d.Decode(body);
  EXPECT_EQ(st.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(st.message()), HasSubstr("cannot decode WriteRequest"));
  EXPECT_THAT(std::string(st.message()), HasSubstr("at byte 2 of 4"));
  EXPECT_EQ(d.series_count(), 0u);
  // Wire types 6 and 7, field 0, an end-group without a start, an 11-byte varint.
  for (std::string bad :
       {std::string("\x0e"), std::string("\x0f"), std::string("\x00\x01", 2), std::string("\x0c"),
        std::string("\x08\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\x01")}) {
    test::WriteRequest ref;
    EXPECT_FALSE(ref.ParseFromString(bad));
    EXPECT_FALSE(d.Decode(bad).ok());
  }
}

// Label fields are decoded after the series' other fields; a malformed one still fails the
// whole request, wherever it is and whether or not a `known` callback was asked.
TEST(WriteRequestDecoder, MalformedLabelFailsTheRequestWithOrWithoutKnown) {
  std::string sample;
  PutFixed64(&sample, 1, 0x3ff0000000000000);
  PutTag(&sample, 2, 0);
  PutVarint(&sample, 5);
  const std::string bad_label =
      "\x0a\x05"
      "ab";  // the name's length runs past the label's end
  std::string first, apart;
  PutBytes(&first, 1, bad_label);
  PutBytes(&first, 2, sample);
  PutBytes(&apart, 1, std::string("\x0a\x08__name__\x12\x01m"));
  PutBytes(&apart, 2, sample);
  PutBytes(&apart, 1, bad_label);
  for (const std::string* ts : {&first, &apart}) {
    std::string body;
    PutBytes(&body, 1, *ts);
    test::WriteRequest ref;
    EXPECT_FALSE(ref.ParseFromString(body));
    WriteRequestDecoder d;
    absl::Status st = d.Decode(body);
    EXPECT_EQ(st.code(), absl::StatusCode::kInvalidArgument);
    EXPECT_THAT(std::string(st.message()), HasSubstr("malformed TimeSeries"));
    absl::Status with_known =
        d.Decode(body, {}, [](std::span<const std::string_view>, std::span<uint8_t>) {});
    EXPECT_EQ(with_known, st);
    EXPECT_EQ(d.series_count(), 0u);
  }
}

TEST(WriteRequestDecoder, CountsExemplarsAndHistograms) {
  test::WriteRequest req;
  test::TimeSeries* ts = AddSeries(&req, {{"__name__", "m"}}, {{1, 1}});
  ts->add_exemplars()->set_value(1);
  ts->add_exemplars()->set_value(2);
  std::string body = req.SerializeAsString();
  // Append a native histogram (TimeSeries field 4) by hand to the series.
  std::string series = ts->SerializeAsString();
  PutBytes(&series, 4, "\x08\x01");
  std::string body2;
  PutBytes(&body2, 1, series);
  WriteRequestDecoder d;
  ASSERT_TRUE(d.Decode(body2).ok());
  EXPECT_EQ(d.series(0).exemplars, 2u);
  EXPECT_EQ(d.series(0).histograms, 1u);
  EXPECT_EQ(d.series(0).samples.size(), 1u);
}

// The reader against libprotobuf on random requests: identical decoding.
TEST(WriteRequestDecoder, MatchesLibprotobufOnRandomRequests) {
  RandomRequests gen(1);
  WriteRequestDecoder d;
  for (int i = 0; i < 3000; ++i) {
    test::WriteRequest req = gen.Next();
    std::string body = req.SerializeAsString();
    ASSERT_TRUE(d.Decode(body).ok()) << i;
    Model want = Expected(req);
    Model got = Actual(d);
    ASSERT_EQ(got, want) << "request " << i << "\nwant:\n"
                         << ModelText(want) << "\ngot:\n"
                         << ModelText(got);
  }
}

// Corrupted and truncated bodies never crash or read out of bounds (the sanitizers watch),
// and the reader accepts exactly what libprotobuf accepts, with the same result.
TEST(WriteRequestDecoder, CorruptionsNeverCrashAndAgreeWithLibprotobuf) {
  RandomRequests gen(2);
  std::mt19937_64& rng = gen.rng();
  WriteRequestDecoder d;
  int both_ok = 0, both_failed = 0;
  for (int i = 0; i < 4000; ++i) {
    std::string body = gen.Next().SerializeAsString();
    if (body.empty()) continue;
    int edits = std::uniform_int_distribution<int>(1, 4)(rng);
    for (int e = 0; e < edits && !body.empty(); ++e) {
      size_t pos = rng() % body.size();
      switch (rng() % 4) {
        case 0:
          body[pos] = static_cast<char>(rng());
          break;
        case 1:
          body[pos] ^= static_cast<char>(1 << (rng() % 8));
          break;
        case 2:
          body.resize(pos);
          break;
        default:
          body.insert(pos, 1, static_cast<char>(rng()));
      }
    }
    // Decode a copy in a buffer of exactly its size so ASan sees any overread.
    std::unique_ptr<char[]> exact(new char[body.size()]);
    std::copy(body.begin(), body.end(), exact.get());
    std::string_view view(exact.get(), body.size());
    test::WriteRequest ref;
    bool ref_ok = ref.ParseFromArray(view.data(), static_cast<int>(view.size()));
    bool ok = d.Decode(view).ok();
    ASSERT_EQ(ok, ref_ok) << "corruption " << i;
    if (ok) {
      ++both_ok;
      Model want = Expected(ref);
      Model got = Actual(d);
      ASSERT_EQ(got, want) << "corruption " << i << "\nwant:\n"
                           << ModelText(want) << "\ngot:\n"
                           << ModelText(got);
    } else {
      ++both_failed;
      EXPECT_EQ(d.series_count(), 0u);
    }
  }
  // Both outcomes were exercised.
  EXPECT_GT(both_ok, 100);
  EXPECT_GT(both_failed, 100);
}

TEST(WriteRequestDecoder, EveryTruncationOfAValidBodyIsHandled) {
  RandomRequests gen(3);
  WriteRequestDecoder d;
  test::WriteRequest req;
  while (req.timeseries_size() < 3) req = gen.Next();
  std::string body = req.SerializeAsString();
  for (size_t cut = 0; cut <= body.size(); ++cut) {
    std::unique_ptr<char[]> exact(new char[cut + 1]);
    std::copy(body.begin(), body.begin() + cut, exact.get());
    test::WriteRequest ref;
    bool ref_ok = ref.ParseFromArray(exact.get(), static_cast<int>(cut));
    ASSERT_EQ(d.Decode(std::string_view(exact.get(), cut)).ok(), ref_ok) << cut;
    if (ref_ok) {
      ASSERT_EQ(Actual(d), Expected(ref)) << cut;
    }
  }
}

TEST(RemoteWriteBody, SnappyThenProtobufEndToEnd) {
  test::WriteRequest req;
  for (int i = 0; i < 100; ++i) {
    AddSeries(&req, {{"__name__", "node_cpu_seconds_total"}, {"cpu", std::to_string(i)}},
              {{1700000000000, i * 1.5}});
  }
  std::string body = EncodeRemoteWriteBody(req);
  std::string raw;
  ASSERT_TRUE(SnappyDecompress(body, 1 << 20, &raw).ok());
  WriteRequestDecoder d;
  ASSERT_TRUE(d.Decode(raw).ok());
  EXPECT_EQ(Actual(d), Expected(req));
  EXPECT_EQ(d.total_samples(), 100u);
}

TEST(CheckRemoteWriteHeaders, AcceptsRemoteWrite10) {
  EXPECT_TRUE(CheckRemoteWriteHeaders("application/x-protobuf", "snappy").ok());
  EXPECT_TRUE(CheckRemoteWriteHeaders("", "").ok());  // old 1.0 senders
  EXPECT_TRUE(CheckRemoteWriteHeaders("Application/X-Protobuf", "Snappy").ok());
  EXPECT_TRUE(
      CheckRemoteWriteHeaders("application/x-protobuf;proto=prometheus.WriteRequest", "snappy")
          .ok());
  EXPECT_TRUE(CheckRemoteWriteHeaders("application/x-protobuf; charset=utf-8", "snappy").ok());
}

TEST(CheckRemoteWriteHeaders, RejectsOtherProtocolsAndEncodings) {
  absl::Status v2 = CheckRemoteWriteHeaders(
      "application/x-protobuf;proto=io.prometheus.write.v2.Request", "snappy");
  EXPECT_FALSE(v2.ok());
  EXPECT_THAT(std::string(v2.message()), HasSubstr("remote write 1.0"));
  absl::Status json = CheckRemoteWriteHeaders("application/json", "snappy");
  EXPECT_FALSE(json.ok());
  EXPECT_THAT(std::string(json.message()), HasSubstr("application/json"));
  absl::Status gzip = CheckRemoteWriteHeaders("application/x-protobuf", "gzip");
  EXPECT_FALSE(gzip.ok());
  EXPECT_EQ(gzip.message(),
            "gzip encoding (compression) is not accepted by this server; only snappy is "
            "acceptable");
}

TEST(DecodeRemoteWriteBody, MapsFailuresToHttpCodes) {
  RemoteWriteLimits limits;
  limits.max_decoded_bytes = 10000;
  std::string scratch;
  WriteRequestDecoder d;
  test::WriteRequest req;
  AddSeries(&req, {{"__name__", "up"}}, {{1, 1}});
  std::string good = EncodeRemoteWriteBody(req);
  RemoteWriteDecodeResult ok = DecodeRemoteWriteBody(good, limits, &scratch, &d);
  EXPECT_TRUE(ok.status.ok()) << ok.status;
  EXPECT_EQ(d.series_count(), 1u);

  RemoteWriteDecodeResult not_snappy = DecodeRemoteWriteBody("\xff\xff\xff", limits, &scratch, &d);
  EXPECT_EQ(not_snappy.http_status, 400);
  EXPECT_EQ(d.series_count(), 0u);

  std::string truncated_proto = req.SerializeAsString();
  truncated_proto.pop_back();
  std::string compressed;
  snappy::Compress(truncated_proto.data(), truncated_proto.size(), &compressed);
  RemoteWriteDecodeResult bad_proto = DecodeRemoteWriteBody(compressed, limits, &scratch, &d);
  EXPECT_EQ(bad_proto.http_status, 400);
  EXPECT_THAT(std::string(bad_proto.status.message()), HasSubstr("cannot decode WriteRequest"));

  test::WriteRequest big;
  for (int i = 0; i < 1000; ++i)
    AddSeries(&big, {{"__name__", "m"}, {"i", std::to_string(i)}}, {{1, 1}});
  RemoteWriteDecodeResult too_big =
      DecodeRemoteWriteBody(EncodeRemoteWriteBody(big), limits, &scratch, &d);
  EXPECT_EQ(too_big.http_status, 413);
  EXPECT_THAT(std::string(too_big.status.message()), HasSubstr("exceeds the limit of 10000 bytes"));
}

// The pieces a /api/v1/write handler is made of, over a real socket: headers checked,
// body decoded, invalid series named, the right status for each kind of bad input. The
// handler here is test scaffolding; the real one appends to storage.
TEST(RemoteWriteOverHttp, SenderServerAndDecoderAgree) {
  std::atomic<size_t> accepted_samples{0};
  Router router;
  router.Handle("POST", "/api/v1/write", [&](const HttpRequest& req, HttpResponder r) {
    if (absl::Status st =
            CheckRemoteWriteHeaders(req.Header("Content-Type"), req.Header("Content-Encoding"));
        !st.ok()) {
      return r.Send(HttpResponse::Text(415, std::string(st.message()) + "\n"));
    }
    RemoteWriteLimits limits;
    limits.max_decoded_bytes = 1 << 16;
    std::string scratch;
    WriteRequestDecoder decoder;
    RemoteWriteDecodeResult res = DecodeRemoteWriteBody(req.body, limits, &scratch, &decoder);
    if (!res.status.ok()) {
      return r.Send(HttpResponse::Text(res.http_status, std::string(res.status.message()) + "\n"));
    }
    for (size_t i = 0; i < decoder.series_count(); ++i) {
      if (decoder.series(i).ok()) accepted_samples += decoder.series(i).samples.size();
    }
    if (decoder.invalid_series() > 0) {
      return r.Send(HttpResponse::Text(
          400, fmt::format("{} of {} series rejected, first: {}\n", decoder.invalid_series(),
                           decoder.series_count(), decoder.first_error())));
    }
    r.Send(HttpResponse::Empty(204));
  });
  MetricsRegistry metrics;
  HttpServerOptions o;
  o.host = "127.0.0.1";
  o.port = 0;
  o.metrics = &metrics;
  HttpServer server(o, std::move(router));
  ASSERT_TRUE(server.Start().ok());
  testing::TestHttpClient c(server.port());

  test::WriteRequest good;
  for (int i = 0; i < 50; ++i) {
    AddSeries(&good, {{"__name__", "up"}, {"instance", std::to_string(i)}}, {{1000, 1}, {2000, 1}});
  }
  auto ok = testing::PostRemoteWrite(c, EncodeRemoteWriteBody(good));
  ASSERT_TRUE(ok);
  EXPECT_EQ(ok->status, 204);
  EXPECT_EQ(accepted_samples.load(), 100u);

  test::WriteRequest mixed;
  AddSeries(&mixed, {{"__name__", "up"}}, {{1000, 1}});
  AddSeries(&mixed, {{"job", "nameless"}}, {{1000, 1}});
  auto partial = testing::PostRemoteWrite(c, EncodeRemoteWriteBody(mixed));
  ASSERT_TRUE(partial);
  EXPECT_EQ(partial->status, 400);
  EXPECT_THAT(partial->body, HasSubstr("1 of 2 series rejected"));
  EXPECT_THAT(partial->body, HasSubstr("no metric name"));
  EXPECT_EQ(accepted_samples.load(), 101u);

  auto garbage = testing::PostRemoteWrite(c, "definitely not snappy");
  ASSERT_TRUE(garbage);
  EXPECT_EQ(garbage->status, 400);

  test::WriteRequest huge;
  for (int i = 0; i < 5000; ++i)
    AddSeries(&huge, {{"__name__", "m"}, {"i", std::to_string(i)}}, {{1, 1}});
  auto too_big = testing::PostRemoteWrite(c, EncodeRemoteWriteBody(huge));
  ASSERT_TRUE(too_big);
  EXPECT_EQ(too_big->status, 413);

  auto v2 =
      c.Request("POST", "/api/v1/write",
                {{"Content-Type", "application/x-protobuf;proto=io.prometheus.write.v2.Request"},
                 {"Content-Encoding", "snappy"}},
                EncodeRemoteWriteBody(good));
  ASSERT_TRUE(v2);
  EXPECT_EQ(v2->status, 415);
  server.Stop();
}

}  // namespace
}  // namespace strata
