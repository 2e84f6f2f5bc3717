// Every query of every bundled Grafana dashboard (grafana-datasource/dashboards/*.json),
// run against a live server that has stored its own metrics for a few seconds, the way
// Grafana runs them: variables substituted, range queries by form POST. Each must succeed
// and return data, so a renamed metric or a broken expression fails here, not in a user's
// Grafana.
#include <unistd.h>

#include <cctype>
#include <chrono>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "fmt/format.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "server/strata_server.h"
#include "simdjson.h"
#include "src/metrics.h"
#include "tests/server/http_test_client.h"

namespace strata {
namespace {

using testing::TestHttpClient;
using testing::TestHttpResponse;

struct PanelQuery {
  std::string dashboard;
  std::string panel;
  std::string expr;
};

std::string ReadFile(const std::filesystem::path& p) {
  std::ifstream in(p);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

std::string FormEncode(std::string_view v) {
  std::string out;
  for (unsigned char c : v) {
    if (std::isalnum(c) || c == '-' || c == '_' || c == '.' || c == '~') {
      out.push_back(static_cast<char>(c));
    } else {
      out += fmt::format("%{:02X}", c);
    }
  }
  return out;
}

// Grafana's substitutions for a 1 s step over a short window: $__rate_interval is at least
// four scrape intervals; the "All" value of a multi-value variable is its allValue.
std::string Substitute(std::string expr) {
  auto replace_all = [&](std::string_view from, std::string_view to) {
    for (size_t at = expr.find(from); at != std::string::npos; at = expr.find(from, at)) {
      expr.replace(at, from.size(), to);
      at += to.size();
    }
  };
  replace_all("$__rate_interval", "2s");
  replace_all("$__interval", "1s");
  replace_all("$instance", ".*");
  return expr;
}

std::vector<PanelQuery> LoadDashboardQueries(std::vector<std::string>* variable_queries) {
  std::vector<PanelQuery> out;
  std::filesystem::path dir =
      std::filesystem::path(STRATA_SOURCE_DIR) / "grafana-datasource" / "dashboards";
  for (const auto& entry : std::filesystem::directory_iterator(dir)) {
    if (entry.path().extension() != ".json") continue;
    simdjson::dom::parser parser;
    simdjson::dom::element doc;
    std::string text = ReadFile(entry.path());
    EXPECT_EQ(parser.parse(text).get(doc), simdjson::SUCCESS) << entry.path();
    if (!doc.is_object()) continue;
    std::string name = entry.path().filename().string();
    simdjson::dom::array panels;
    EXPECT_EQ(doc["panels"].get(panels), simdjson::SUCCESS) << name;
    for (simdjson::dom::element p : panels) {
      std::string_view title;
      if (p["title"].get(title) != simdjson::SUCCESS) title = "(untitled)";
      simdjson::dom::array targets;
      if (p["targets"].get(targets) != simdjson::SUCCESS) continue;
      for (simdjson::dom::element t : targets) {
        std::string_view expr;
        EXPECT_EQ(t["expr"].get(expr), simdjson::SUCCESS) << name << " / " << title;
        out.push_back({name, std::string(title), std::string(expr)});
      }
    }
    simdjson::dom::array vars;
    if (doc["templating"]["list"].get(vars) == simdjson::SUCCESS) {
      for (simdjson::dom::element v : vars) {
        std::string_view def;
        if (v["definition"].get(def) == simdjson::SUCCESS) variable_queries->emplace_back(def);
      }
    }
  }
  return out;
}

class DashboardTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = std::filesystem::temp_directory_path() / fmt::format("strata_dash_{}", ::getpid());
    std::filesystem::remove_all(dir_);
    ServerConfig config;
    config.listen_host = "127.0.0.1";
    config.listen_port = 0;
    config.storage_path = (dir_ / "data").string();
    config.self_scrape_interval_ms = 100;
    // A size limit, so the panel that draws it has data (far above what the test writes).
    config.retention_size_bytes = int64_t{1} << 30;
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

  TestHttpResponse PostForm(std::string_view path, std::string_view body) {
    auto r = client_->Request("POST", path, {{"Content-Type", "application/x-www-form-urlencoded"}},
                              body);
    EXPECT_TRUE(r.has_value()) << path;
    return r.value_or(TestHttpResponse{});
  }

  // Number of self-scrapes stored in the last minute.
  double StoredScrapes() {
    TestHttpResponse r =
        PostForm("/api/v1/query", "query=" + FormEncode("count_over_time(up{job=\"strata\"}[1m])"));
    simdjson::dom::parser parser;
    simdjson::dom::element doc;
    if (parser.parse(r.body).get(doc) != simdjson::SUCCESS) return 0;
    simdjson::dom::array result;
    if (doc["data"]["result"].get(result) != simdjson::SUCCESS || result.size() == 0) return 0;
    std::string_view v;
    if (result.at(0)["value"].at(1).get(v) != simdjson::SUCCESS) return 0;
    return std::stod(std::string(v));
  }

  std::filesystem::path dir_;
  std::unique_ptr<MetricsRegistry> registry_;
  std::unique_ptr<StrataServer> server_;
  std::unique_ptr<TestHttpClient> client_;
};

TEST_F(DashboardTest, EveryPanelQueryReturnsData) {
  std::vector<std::string> variable_queries;
  std::vector<PanelQuery> queries = LoadDashboardQueries(&variable_queries);
  ASSERT_GE(queries.size(), 20u) << "the bundled dashboards should not be empty";

  // Some traffic of every kind the dashboard charts, an error included.
  ASSERT_EQ(PostForm("/api/v1/query", "query=" + FormEncode("sum(")).status, 400);
  ASSERT_EQ(client_->Get("/api/v1/labels")->status, 200);
  // Wait (bounded by ctest's timeout, not by a clock) for a few seconds of self-scrapes.
  while (StoredScrapes() < 25) std::this_thread::sleep_for(std::chrono::milliseconds(100));

  auto now = std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch());
  double end = std::floor(now.count());
  for (const PanelQuery& q : queries) {
    std::string expr = Substitute(q.expr);
    TestHttpResponse r =
        PostForm("/api/v1/query_range",
                 fmt::format("query={}&start={}&end={}&step=1", FormEncode(expr), end - 10, end));
    SCOPED_TRACE(fmt::format("{} / {}: {}", q.dashboard, q.panel, expr));
    ASSERT_EQ(r.status, 200) << r.body;
    simdjson::dom::parser parser;
    simdjson::dom::element doc;
    ASSERT_EQ(parser.parse(r.body).get(doc), simdjson::SUCCESS);
    std::string_view type;
    ASSERT_EQ(doc["data"]["resultType"].get(type), simdjson::SUCCESS);
    EXPECT_EQ(type, "matrix");
    simdjson::dom::array result;
    ASSERT_EQ(doc["data"]["result"].get(result), simdjson::SUCCESS);
    EXPECT_GT(result.size(), 0u) << "no data: " << r.body.substr(0, 300);
  }

  // Variables: Grafana turns label_values(<selector>, <label>) into a label-values call
  // with match[]; the server's own instance must be offered.
  ASSERT_FALSE(variable_queries.empty());
  std::string instance = fmt::format("127.0.0.1:{}", server_->port());
  for (const std::string& def : variable_queries) {
    SCOPED_TRACE(def);
    ASSERT_EQ(def.rfind("label_values(", 0), 0u);
    size_t comma = def.rfind(',');
    ASSERT_NE(comma, std::string::npos);
    std::string selector = def.substr(13, comma - 13);
    std::string label = def.substr(comma + 1);
    label.erase(0, label.find_first_not_of(' '));
    label.erase(label.find(')'));
    auto r = client_->Get(
        fmt::format("/api/v1/label/{}/values?match[]={}", label, FormEncode(selector)));
    ASSERT_TRUE(r);
    EXPECT_EQ(r->status, 200) << r->body;
    EXPECT_THAT(r->body, ::testing::HasSubstr(fmt::format("\"{}\"", instance)));
  }
}

}  // namespace
}  // namespace strata
