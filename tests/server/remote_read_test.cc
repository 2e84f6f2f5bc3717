// Remote read: the hand-written decoder and encoders against libprotobuf (the reference), and
// POST /api/v1/read on a real server holding remote-written data.
#include "server/remote_read.h"

#include <snappy.h>
#include <unistd.h>

#include <bit>
#include <cmath>
#include <filesystem>
#include <limits>
#include <memory>
#include <string>
#include <vector>

#include "fmt/format.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "remote_write_test.pb.h"
#include "server/strata_server.h"
#include "src/metrics.h"
#include "storage/memory_store.h"
#include "storage/xor_chunk.h"
#include "tests/server/http_test_client.h"
#include "tests/server/remote_write_sender.h"

namespace strata {
namespace {

using ::testing::HasSubstr;
using testing::TestHttpClient;
using testing::TestHttpResponse;

constexpr uint64_t kStaleBits = 0x7ff0000000000002;

struct Series {
  Labels labels;
  std::vector<Sample> samples;
};

// Three series; "a" has 300 samples with special values, so it spans several chunks.
std::vector<Series> Fixture() {
  std::vector<Series> out;
  Series a{Labels{{"__name__", "m"}, {"job", "a"}}, {}};
  for (int i = 0; i < 300; ++i) {
    double v = i * 1.5;
    if (i == 7) v = std::numeric_limits<double>::quiet_NaN();
    if (i == 8) v = std::bit_cast<double>(kStaleBits);
    if (i == 9) v = -std::numeric_limits<double>::infinity();
    if (i == 10) v = -0.0;
    a.samples.push_back({1'000'000 + i * 15'000 + (i % 3), v});
  }
  out.push_back(a);
  out.push_back(Series{Labels{{"__name__", "m"}, {"job", "b"}}, {{1'000'000, 1}, {1'015'000, 2}}});
  out.push_back(Series{Labels{{"__name__", "other"}, {"job", "a"}}, {{1'000'000, 42}}});
  return out;
}

std::vector<Sample> InRange(const std::vector<Sample>& s, Timestamp mint, Timestamp maxt) {
  std::vector<Sample> out;
  for (const Sample& x : s) {
    if (x.t >= mint && x.t <= maxt) out.push_back(x);
  }
  return out;
}

void ExpectSameSamples(const std::vector<Sample>& got, const std::vector<Sample>& want) {
  ASSERT_EQ(got.size(), want.size());
  for (size_t i = 0; i < got.size(); ++i) {
    EXPECT_EQ(got[i].t, want[i].t) << i;
    EXPECT_EQ(std::bit_cast<uint64_t>(got[i].v), std::bit_cast<uint64_t>(want[i].v)) << i;
  }
}

Labels FromProto(const google::protobuf::RepeatedPtrField<test::Label>& labels) {
  std::vector<std::pair<std::string, std::string>> pairs;
  for (const test::Label& l : labels) pairs.emplace_back(l.name(), l.value());
  return Labels::FromPairs(std::move(pairs));
}

test::Query* AddQuery(
    test::ReadRequest* req, Timestamp start, Timestamp end,
    std::vector<std::tuple<test::LabelMatcher::Type, std::string, std::string>> matchers) {
  test::Query* q = req->add_queries();
  q->set_start_timestamp_ms(start);
  q->set_end_timestamp_ms(end);
  for (auto& [type, name, value] : matchers) {
    test::LabelMatcher* m = q->add_matchers();
    m->set_type(type);
    m->set_name(name);
    m->set_value(value);
  }
  return q;
}

// Splits a streamed body into its frames, checking each CRC.
std::vector<test::ChunkedReadResponse> ParseFrames(std::string_view body) {
  std::vector<test::ChunkedReadResponse> out;
  size_t p = 0;
  while (p < body.size()) {
    uint64_t len = 0;
    int shift = 0;
    for (;;) {
      EXPECT_LT(p, body.size());
      if (p >= body.size()) return out;
      uint8_t b = static_cast<uint8_t>(body[p++]);
      len |= uint64_t{b & 0x7fu} << shift;
      shift += 7;
      if (b < 0x80) break;
    }
    EXPECT_LE(p + 4 + len, body.size());
    if (p + 4 + len > body.size()) return out;
    uint32_t crc = 0;
    for (int i = 0; i < 4; ++i) crc = crc << 8 | static_cast<uint8_t>(body[p + i]);
    std::string_view msg = body.substr(p + 4, len);
    EXPECT_EQ(crc, Crc32c(msg));
    test::ChunkedReadResponse frame;
    EXPECT_TRUE(frame.ParseFromArray(msg.data(), static_cast<int>(msg.size())));
    out.push_back(std::move(frame));
    p += 4 + len;
  }
  return out;
}

TEST(Crc32cTest, KnownVectors) {
  EXPECT_EQ(Crc32c("123456789"), 0xE3069283u);
  EXPECT_EQ(Crc32c(""), 0u);
  EXPECT_EQ(Crc32c(std::string(32, '\0')), 0x8A9136AAu);
}

class RemoteReadFunctionsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    for (const Series& s : Fixture()) ASSERT_TRUE(store_.AppendMany(s.labels, s.samples).ok());
  }
  RemoteReadRequest Decode(const test::ReadRequest& req) {
    absl::StatusOr<RemoteReadRequest> r = DecodeReadRequest(req.SerializeAsString());
    EXPECT_TRUE(r.ok()) << r.status();
    return r.value_or(RemoteReadRequest{});
  }
  MemoryStore store_;
};

TEST_F(RemoteReadFunctionsTest, DecodesWhatLibprotobufEncodes) {
  test::ReadRequest req;
  test::Query* q =
      AddQuery(&req, -5, 123456789012,
               {{test::LabelMatcher::RE, "job", "a|b"}, {test::LabelMatcher::NEQ, "x", "y"}});
  q->mutable_hints()->set_step_ms(15000);
  q->mutable_hints()->set_func("rate");
  q->mutable_hints()->set_range_ms(300000);
  q->mutable_hints()->add_grouping("job");
  AddQuery(&req, 1, 2, {{test::LabelMatcher::EQ, "__name__", "up"}});
  req.add_accepted_response_types(test::ReadRequest::STREAMED_XOR_CHUNKS);
  req.add_accepted_response_types(test::ReadRequest::SAMPLES);
  RemoteReadRequest got = Decode(req);
  ASSERT_EQ(got.queries.size(), 2u);
  EXPECT_EQ(got.queries[0].start, -5);
  EXPECT_EQ(got.queries[0].end, 123456789012);
  ASSERT_EQ(got.queries[0].matchers.size(), 2u);
  EXPECT_EQ(got.queries[0].matchers[0].ToString(), "job=~\"a|b\"");
  EXPECT_EQ(got.queries[0].matchers[1].ToString(), "x!=\"y\"");
  EXPECT_EQ(got.queries[0].hints.step_ms, 15000);
  EXPECT_EQ(got.queries[0].hints.func, "rate");
  EXPECT_EQ(got.queries[0].hints.range_ms, 300000);
  EXPECT_EQ(got.queries[0].hints.mint, -5);
  EXPECT_EQ(got.queries[1].matchers[0].ToString(), "__name__=\"up\"");
  EXPECT_THAT(got.accepted_response_types, ::testing::ElementsAre(1, 0));
  EXPECT_EQ(*NegotiateResponseType(got), ReadResponseType::kStreamedXorChunks);
}

TEST_F(RemoteReadFunctionsTest, RejectsBadRequests) {
  // Garbage and truncation.
  EXPECT_FALSE(DecodeReadRequest("\xff\xff\xff").ok());
  test::ReadRequest good;
  AddQuery(&good, 0, 10, {{test::LabelMatcher::EQ, "__name__", "m"}});
  std::string bytes = good.SerializeAsString();
  for (size_t n = 1; n < bytes.size(); ++n) {
    // Every strict prefix is malformed or lacks the matcher (which matches nothing empty).
    EXPECT_FALSE(DecodeReadRequest(std::string_view(bytes).substr(0, n)).ok()) << n;
  }
  // Matchers that all match the empty string.
  test::ReadRequest empty;
  AddQuery(&empty, 0, 10, {{test::LabelMatcher::RE, "job", ".*"}});
  auto r = DecodeReadRequest(empty.SerializeAsString());
  ASSERT_FALSE(r.ok());
  EXPECT_THAT(std::string(r.status().message()), HasSubstr("must not match the empty string"));
  // A regex RE2 refuses.
  test::ReadRequest bad_re;
  AddQuery(&bad_re, 0, 10, {{test::LabelMatcher::RE, "job", "a("}});
  EXPECT_FALSE(DecodeReadRequest(bad_re.SerializeAsString()).ok());
  // An unsupported response type only.
  test::ReadRequest types;
  AddQuery(&types, 0, 10, {{test::LabelMatcher::EQ, "__name__", "m"}});
  types.add_accepted_response_types(static_cast<test::ReadRequest::ResponseType>(7));
  RemoteReadRequest decoded = Decode(types);
  EXPECT_FALSE(NegotiateResponseType(decoded).ok());
}

TEST_F(RemoteReadFunctionsTest, SamplesResponseIsExact) {
  test::ReadRequest req;
  AddQuery(&req, 1'000'000, 3'000'000, {{test::LabelMatcher::EQ, "__name__", "m"}});
  AddQuery(&req, 0, 5'000'000, {{test::LabelMatcher::EQ, "job", "a"}});
  std::string proto;
  ASSERT_TRUE(BuildSamplesResponse(store_, Decode(req), {}, &proto).ok());
  test::ReadResponse resp;
  ASSERT_TRUE(resp.ParseFromString(proto));
  ASSERT_EQ(resp.results_size(), 2);
  std::vector<Series> fixture = Fixture();
  // Query 0: m{job="a"}, m{job="b"} in label order, clipped to the range.
  ASSERT_EQ(resp.results(0).timeseries_size(), 2);
  for (int i = 0; i < 2; ++i) {
    const test::TimeSeries& ts = resp.results(0).timeseries(i);
    EXPECT_EQ(FromProto(ts.labels()), fixture[i].labels);
    std::vector<Sample> got;
    for (const test::Sample& s : ts.samples()) got.push_back({s.timestamp(), s.value()});
    ExpectSameSamples(got, InRange(fixture[i].samples, 1'000'000, 3'000'000));
  }
  // Query 1: job="a" selects m and other.
  ASSERT_EQ(resp.results(1).timeseries_size(), 2);
  EXPECT_EQ(FromProto(resp.results(1).timeseries(1).labels()), fixture[2].labels);

  RemoteReadLimits tight;
  tight.max_samples = 100;
  std::string ignored;
  absl::Status st = BuildSamplesResponse(store_, Decode(req), tight, &ignored);
  EXPECT_TRUE(absl::IsResourceExhausted(st)) << st;
}

TEST_F(RemoteReadFunctionsTest, StreamedChunksAreExactAndSplitIntoFrames) {
  test::ReadRequest req;
  AddQuery(&req, 0, 10'000'000, {{test::LabelMatcher::EQ, "__name__", "m"}});
  AddQuery(&req, 0, 10'000'000, {{test::LabelMatcher::EQ, "__name__", "other"}});
  std::vector<Series> fixture = Fixture();
  for (size_t frame_limit : {size_t{1} << 20, size_t{200}}) {
    SCOPED_TRACE(frame_limit);
    RemoteReadLimits limits;
    limits.max_bytes_in_frame = frame_limit;
    std::string body;
    ASSERT_TRUE(BuildStreamedChunksResponse(store_, Decode(req), limits, &body).ok());
    std::vector<test::ChunkedReadResponse> frames = ParseFrames(body);
    // Reassemble series in order; a series may span consecutive frames.
    std::vector<std::pair<int64_t, Series>> got;
    for (const test::ChunkedReadResponse& f : frames) {
      for (const test::ChunkedSeries& cs : f.chunked_series()) {
        Labels labels = FromProto(cs.labels());
        if (got.empty() || !(got.back().second.labels == labels) ||
            got.back().first != f.query_index()) {
          got.push_back({f.query_index(), Series{labels, {}}});
        }
        for (const test::Chunk& c : cs.chunks()) {
          EXPECT_EQ(c.type(), test::Chunk::XOR);
          XorChunkIterator it(c.data());
          std::vector<Sample> samples;
          ASSERT_TRUE(it.AppendRange(std::numeric_limits<Timestamp>::min(),
                                     std::numeric_limits<Timestamp>::max(), &samples)
                          .ok());
          ASSERT_FALSE(samples.empty());
          EXPECT_LE(samples.size(), 120u);
          EXPECT_EQ(c.min_time_ms(), samples.front().t);
          EXPECT_EQ(c.max_time_ms(), samples.back().t);
          auto& dst = got.back().second.samples;
          dst.insert(dst.end(), samples.begin(), samples.end());
        }
      }
    }
    ASSERT_EQ(got.size(), 3u);
    EXPECT_EQ(got[0].first, 0);
    EXPECT_EQ(got[0].second.labels, fixture[0].labels);
    ExpectSameSamples(got[0].second.samples, fixture[0].samples);
    EXPECT_EQ(got[1].second.labels, fixture[1].labels);
    ExpectSameSamples(got[1].second.samples, fixture[1].samples);
    EXPECT_EQ(got[2].first, 1);
    EXPECT_EQ(got[2].second.labels, fixture[2].labels);
    if (frame_limit == 200) {
      EXPECT_GT(frames.size(), 4u);  // the 300-sample series needs several frames
    } else {
      EXPECT_EQ(frames.size(), 3u);  // one frame per series
    }
  }
}

class RemoteReadServerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = std::filesystem::temp_directory_path() / fmt::format("strata_rr_{}", ::getpid());
    std::filesystem::remove_all(dir_);
    ServerConfig config;
    config.listen_host = "127.0.0.1";
    config.listen_port = 0;
    config.storage_path = (dir_ / "data").string();
    config.self_scrape_interval_ms = 0;
    registry_ = std::make_unique<MetricsRegistry>();
    server_ = std::make_unique<StrataServer>(config, registry_.get());
    absl::Status st = server_->Start();
    ASSERT_TRUE(st.ok()) << st;
    client_ = std::make_unique<TestHttpClient>(server_->port());
  }
  void TearDown() override {
    client_.reset();
    if (server_) {
      EXPECT_TRUE(server_->Stop().ok());
    }
    server_.reset();
    registry_.reset();
    std::error_code ec;
    std::filesystem::remove_all(dir_, ec);
  }
  TestHttpResponse Read(const std::string& body) {
    auto r = client_->Request("POST", "/api/v1/read",
                              {{"Content-Type", "application/x-protobuf"},
                               {"Content-Encoding", "snappy"},
                               {"X-Prometheus-Remote-Read-Version", "0.1.0"}},
                              body);
    EXPECT_TRUE(r.has_value());
    return r.value_or(TestHttpResponse{});
  }
  static std::string Compress(const std::string& s) {
    std::string out;
    snappy::Compress(s.data(), s.size(), &out);
    return out;
  }

  std::filesystem::path dir_;
  std::unique_ptr<MetricsRegistry> registry_;
  std::unique_ptr<StrataServer> server_;
  std::unique_ptr<TestHttpClient> client_;
};

TEST_F(RemoteReadServerTest, ReadsBackWhatWasWritten) {
  test::WriteRequest write;
  std::vector<Series> fixture = Fixture();
  for (const Series& s : fixture) {
    std::vector<std::pair<std::string, std::string>> labels;
    for (const LabelView& l : s.labels) labels.emplace_back(l.name, l.value);
    std::vector<std::pair<int64_t, double>> samples;
    for (const Sample& x : s.samples) samples.emplace_back(x.t, x.v);
    testing::AddSeries(&write, labels, samples);
  }
  auto w = testing::PostRemoteWrite(*client_, testing::EncodeRemoteWriteBody(write));
  ASSERT_TRUE(w);
  ASSERT_EQ(w->status, 204) << w->body;

  test::ReadRequest req;
  AddQuery(&req, 0, 10'000'000, {{test::LabelMatcher::RE, "__name__", "m|other"}});
  TestHttpResponse r = Read(Compress(req.SerializeAsString()));
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(r.Header("Content-Type"), "application/x-protobuf");
  EXPECT_EQ(r.Header("Content-Encoding"), "snappy");
  std::string proto;
  ASSERT_TRUE(snappy::Uncompress(r.body.data(), r.body.size(), &proto));
  test::ReadResponse resp;
  ASSERT_TRUE(resp.ParseFromString(proto));
  ASSERT_EQ(resp.results_size(), 1);
  ASSERT_EQ(resp.results(0).timeseries_size(), 3);
  for (int i = 0; i < 3; ++i) {
    EXPECT_EQ(FromProto(resp.results(0).timeseries(i).labels()), fixture[i].labels);
    std::vector<Sample> got;
    for (const test::Sample& s : resp.results(0).timeseries(i).samples()) {
      got.push_back({s.timestamp(), s.value()});
    }
    ExpectSameSamples(got, fixture[i].samples);
  }

  req.add_accepted_response_types(test::ReadRequest::STREAMED_XOR_CHUNKS);
  TestHttpResponse streamed = Read(Compress(req.SerializeAsString()));
  ASSERT_EQ(streamed.status, 200);
  EXPECT_EQ(streamed.Header("Content-Type"),
            "application/x-streamed-protobuf; proto=prometheus.ChunkedReadResponse");
  EXPECT_EQ(streamed.Header("Content-Encoding"), "");
  EXPECT_EQ(ParseFrames(streamed.body).size(), 3u);
}

TEST_F(RemoteReadServerTest, BadRequestsGet400AndTheServerKeepsServing) {
  TestHttpResponse r = Read("not snappy at all");
  EXPECT_EQ(r.status, 400);
  test::ReadRequest empty;
  AddQuery(&empty, 0, 10, {{test::LabelMatcher::EQ, "job", ""}});
  r = Read(Compress(empty.SerializeAsString()));
  EXPECT_EQ(r.status, 400);
  EXPECT_THAT(r.body, HasSubstr("must not match the empty string"));
  r = Read(Compress("\x0a\x05\x08"));  // a query field cut short
  EXPECT_EQ(r.status, 400);
  EXPECT_THAT(r.body, HasSubstr("malformed remote-read request"));
  auto healthy = client_->Get("/-/healthy");
  ASSERT_TRUE(healthy);
  EXPECT_EQ(healthy->status, 200);
}

}  // namespace
}  // namespace strata
