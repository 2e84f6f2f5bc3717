// A remote-write 1.0 sender for tests: encodes a WriteRequest with libprotobuf, compresses it
// with snappy and POSTs it with the headers Prometheus sends.
#ifndef STRATA_TESTS_SERVER_REMOTE_WRITE_SENDER_H_
#define STRATA_TESTS_SERVER_REMOTE_WRITE_SENDER_H_

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "remote_write_test.pb.h"
#include "tests/server/http_test_client.h"

namespace strata::testing {

// Appends a series with these labels (in the order given) and samples (timestamp ms, value).
test::TimeSeries* AddSeries(test::WriteRequest* req,
                            const std::vector<std::pair<std::string, std::string>>& labels,
                            const std::vector<std::pair<int64_t, double>>& samples);

// The request serialized and snappy-compressed (block format): a remote-write body.
std::string EncodeRemoteWriteBody(const test::WriteRequest& req);

// POSTs `body` to /api/v1/write on `client`'s connection with Content-Encoding: snappy,
// Content-Type: application/x-protobuf and X-Prometheus-Remote-Write-Version: 0.1.0.
std::optional<TestHttpResponse> PostRemoteWrite(TestHttpClient& client, std::string_view body,
                                                std::string_view path = "/api/v1/write");

}  // namespace strata::testing

#endif  // STRATA_TESTS_SERVER_REMOTE_WRITE_SENDER_H_
