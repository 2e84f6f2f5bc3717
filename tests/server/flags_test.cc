#include "server/flags.h"

#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace strata {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;

FlagParseResult Parse(std::vector<std::string> args) {
  std::vector<const char*> argv = {"strata"};
  for (const std::string& a : args) argv.push_back(a.c_str());
  return ParseServerFlags(static_cast<int>(argv.size()), argv.data());
}

TEST(ServerFlags, DefaultsAreTheDocumentedOnes) {
  FlagParseResult r = Parse({});
  ASSERT_FALSE(r.exit) << r.output;
  const ServerConfig& c = r.config;
  EXPECT_EQ(c.listen_address, "0.0.0.0:9090");
  EXPECT_EQ(c.listen_host, "0.0.0.0");
  EXPECT_EQ(c.listen_port, 9090);
  EXPECT_EQ(c.storage_path, "data/");
  EXPECT_EQ(c.retention_time_ms, 15LL * 24 * 3600 * 1000);
  EXPECT_EQ(c.retention_size_bytes, 0);
  EXPECT_EQ(c.query_timeout_ms, 120000);
  EXPECT_EQ(c.query_max_samples, 50000000);
  EXPECT_EQ(c.query_max_concurrency, 20);
  EXPECT_EQ(c.query_parallelism, 1);
  EXPECT_EQ(c.query_lookback_delta_ms, 300000);
  EXPECT_FALSE(c.enable_admin_api);
  EXPECT_EQ(c.log_level, "info");
  EXPECT_EQ(c.log_format, "logfmt");
  EXPECT_TRUE(c.features.empty());
  EXPECT_EQ(c.self_scrape_interval_ms, 15000);
  EXPECT_EQ(c.max_connections, 512);
  EXPECT_EQ(c.wal_fsync, "segment");
}

TEST(ServerFlags, ReadsPrometheusNames) {
  FlagParseResult r =
      Parse({"--web.listen-address=127.0.0.1:9191", "--storage.tsdb.path", "/tmp/x",
             "--storage.tsdb.retention.time=30d", "--query.timeout=30s", "--query.max-samples=1000",
             "--query.max-concurrency=4", "--query.lookback-delta=1m", "--web.enable-admin-api",
             "--log.level=debug", "--log.format=json", "--self-scrape.interval=0",
             "--web.read-timeout=10s", "--query.parallelism=0", "--storage.wal-fsync=commit"});
  ASSERT_FALSE(r.exit) << r.output;
  const ServerConfig& c = r.config;
  EXPECT_EQ(c.listen_host, "127.0.0.1");
  EXPECT_EQ(c.listen_port, 9191);
  EXPECT_EQ(c.storage_path, "/tmp/x");
  EXPECT_EQ(c.retention_time_ms, 30LL * 24 * 3600 * 1000);
  EXPECT_EQ(c.query_timeout_ms, 30000);
  EXPECT_EQ(c.query_max_samples, 1000);
  EXPECT_EQ(c.query_max_concurrency, 4);
  EXPECT_EQ(c.query_parallelism, 0);
  EXPECT_EQ(c.query_lookback_delta_ms, 60000);
  EXPECT_TRUE(c.enable_admin_api);
  EXPECT_EQ(c.log_level, "debug");
  EXPECT_EQ(c.log_format, "json");
  EXPECT_EQ(c.self_scrape_interval_ms, 0);
  EXPECT_EQ(c.read_timeout_ms, 10000);
  EXPECT_EQ(c.wal_fsync, "commit");
}

TEST(ServerFlags, RetentionSizeAloneDisablesTheTimeDefault) {
  FlagParseResult r = Parse({"--storage.tsdb.retention.size=512MB"});
  ASSERT_FALSE(r.exit) << r.output;
  EXPECT_EQ(r.config.retention_size_bytes, 512LL << 20);
  EXPECT_EQ(r.config.retention_time_ms, 0);
}

TEST(ServerFlags, FeaturesAreRepeatableAndCommaSeparated) {
  FlagParseResult r =
      Parse({"--enable-feature=promql-experimental-functions,exemplar-storage", "--enable-feature",
             "native-histograms", "--enable-feature=exemplar-storage"});
  ASSERT_FALSE(r.exit) << r.output;
  EXPECT_THAT(r.config.features, ElementsAre("promql-experimental-functions", "exemplar-storage",
                                             "native-histograms"));
  EXPECT_TRUE(r.config.FeatureEnabled("native-histograms"));
  EXPECT_FALSE(r.config.FeatureEnabled("old-ui"));
  EXPECT_TRUE(IsKnownFeature("promql-experimental-functions"));
  EXPECT_FALSE(IsKnownFeature("no-such-feature"));
}

TEST(ServerFlags, HelpAndVersionExitZero) {
  FlagParseResult help = Parse({"--help"});
  EXPECT_TRUE(help.exit);
  EXPECT_EQ(help.exit_code, 0);
  EXPECT_THAT(help.output, HasSubstr("--web.listen-address"));
  EXPECT_THAT(help.output, HasSubstr("--storage.tsdb.retention.time"));
  EXPECT_THAT(help.output, HasSubstr("--enable-feature"));
  FlagParseResult version = Parse({"--version"});
  EXPECT_TRUE(version.exit);
  EXPECT_EQ(version.exit_code, 0);
  EXPECT_THAT(version.output, HasSubstr("strata, version 0.1.0"));
}

TEST(ServerFlags, BadValuesExitTwoWithAMessage) {
  struct Case {
    std::vector<std::string> args;
    std::string want;
  };
  const Case cases[] = {
      {{"--query.timeout=fast"}, "invalid duration \"fast\""},
      {{"--storage.tsdb.retention.time=1x"}, "invalid duration"},
      {{"--storage.tsdb.retention.size=12QB"}, "invalid size \"12QB\""},
      {{"--web.listen-address=localhost"}, "missing port"},
      {{"--web.listen-address=:99999"}, "port must be a number"},
      {{"--log.format=yaml"}, "yaml"},
      {{"--log.level=verbose"}, "verbose"},
      {{"--query.max-concurrency=0"}, "query.max-concurrency"},
      {{"--query.parallelism=-1"}, "query.parallelism"},
      {{"--storage.wal-fsync=always"}, "always"},
      {{"--no-such-flag"}, "no-such-flag"},
  };
  for (const Case& c : cases) {
    FlagParseResult r = Parse(c.args);
    EXPECT_TRUE(r.exit) << c.args[0];
    EXPECT_EQ(r.exit_code, 2) << c.args[0];
    EXPECT_THAT(r.output, HasSubstr(c.want)) << c.args[0];
  }
}

TEST(SplitListenAddress, HostPortForms) {
  std::string host;
  uint16_t port = 0;
  ASSERT_TRUE(SplitListenAddress(":9090", &host, &port).ok());
  EXPECT_EQ(host, "0.0.0.0");
  EXPECT_EQ(port, 9090);
  ASSERT_TRUE(SplitListenAddress("[::1]:8080", &host, &port).ok());
  EXPECT_EQ(host, "::1");
  EXPECT_EQ(port, 8080);
  ASSERT_TRUE(SplitListenAddress("localhost:0", &host, &port).ok());
  EXPECT_EQ(host, "localhost");
  EXPECT_EQ(port, 0);
  EXPECT_FALSE(SplitListenAddress("::1:8080", &host, &port).ok());
  EXPECT_FALSE(SplitListenAddress("[::1:8080", &host, &port).ok());
  EXPECT_FALSE(SplitListenAddress("host:", &host, &port).ok());
  EXPECT_FALSE(SplitListenAddress("host:-1", &host, &port).ok());
}

TEST(ParseByteSize, UnitsArePowersOf1024) {
  EXPECT_EQ(*ParseByteSize("0"), 0);
  EXPECT_EQ(*ParseByteSize("100B"), 100);
  EXPECT_EQ(*ParseByteSize("1KB"), 1024);
  EXPECT_EQ(*ParseByteSize("512MB"), 512LL << 20);
  EXPECT_EQ(*ParseByteSize("2GB"), 2LL << 30);
  EXPECT_EQ(*ParseByteSize("1TB"), 1LL << 40);
  EXPECT_EQ(*ParseByteSize("1EB"), 1LL << 60);
  EXPECT_FALSE(ParseByteSize("").ok());
  EXPECT_FALSE(ParseByteSize("100").ok());
  EXPECT_FALSE(ParseByteSize("1.5GB").ok());
  EXPECT_FALSE(ParseByteSize("8EB").ok());
  EXPECT_FALSE(ParseByteSize("mb").ok());
}

}  // namespace
}  // namespace strata
