#include "tests/server/remote_write_sender.h"

#include <snappy.h>

namespace strata::testing {

test::TimeSeries* AddSeries(test::WriteRequest* req,
                            const std::vector<std::pair<std::string, std::string>>& labels,
                            const std::vector<std::pair<int64_t, double>>& samples) {
  test::TimeSeries* ts = req->add_timeseries();
  for (const auto& [name, value] : labels) {
    test::Label* l = ts->add_labels();
    l->set_name(name);
    l->set_value(value);
  }
  for (const auto& [t, v] : samples) {
    test::Sample* s = ts->add_samples();
    s->set_timestamp(t);
    s->set_value(v);
  }
  return ts;
}

std::string EncodeRemoteWriteBody(const test::WriteRequest& req) {
  std::string raw = req.SerializeAsString();
  std::string compressed;
  snappy::Compress(raw.data(), raw.size(), &compressed);
  return compressed;
}

std::optional<TestHttpResponse> PostRemoteWrite(TestHttpClient& client, std::string_view body,
                                                std::string_view path) {
  return client.Request("POST", path,
                        {{"Content-Encoding", "snappy"},
                         {"Content-Type", "application/x-protobuf"},
                         {"User-Agent", "strata-test/0.1"},
                         {"X-Prometheus-Remote-Write-Version", "0.1.0"}},
                        body);
}

}  // namespace strata::testing
