#include "src/process_metrics.h"

#include <fcntl.h>
#include <unistd.h>

#include <ctime>
#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace strata {
namespace {

using ::testing::HasSubstr;

TEST(ProcessMetricsTest, ReadsPlausibleFigures) {
  std::optional<ProcessStats> s = ReadProcessStats();
  ASSERT_TRUE(s.has_value());
  EXPECT_GT(s->resident_bytes, 0);
  EXPECT_GE(s->virtual_bytes, s->resident_bytes);
  EXPECT_GE(s->cpu_seconds, 0);
  EXPECT_GE(s->threads, 1);
  EXPECT_GT(s->max_fds, 0);
  // Started in the past, and after 2020.
  double now = static_cast<double>(std::time(nullptr));
  EXPECT_LE(s->start_time_seconds, now + 1);
  EXPECT_GT(s->start_time_seconds, 1577836800);
}

TEST(ProcessMetricsTest, OpenFdsFollowsOpenAndClose) {
  double before = ReadProcessStats()->open_fds;
  std::vector<int> fds;
  for (int i = 0; i < 5; ++i) fds.push_back(open("/dev/null", O_RDONLY));
  EXPECT_EQ(ReadProcessStats()->open_fds, before + 5);
  for (int fd : fds) close(fd);
  EXPECT_EQ(ReadProcessStats()->open_fds, before);
}

TEST(ProcessMetricsTest, CpuSecondsGrowWithWork) {
  double before = ReadProcessStats()->cpu_seconds;
  volatile double x = 0;
  while (ReadProcessStats()->cpu_seconds <= before) {
    for (int i = 0; i < 1000000; ++i) x = x + i;
  }
  SUCCEED();
}

TEST(ProcessMetricsTest, ExposedWithPrometheusNamesAndTypes) {
  MetricsRegistry registry;
  RegisterProcessMetrics(&registry);
  std::string text = registry.ExpositionText();
  EXPECT_THAT(text, HasSubstr("# TYPE process_cpu_seconds_total counter\n"));
  EXPECT_THAT(text, HasSubstr("# TYPE process_resident_memory_bytes gauge\n"));
  EXPECT_THAT(text, HasSubstr("# TYPE process_open_fds gauge\n"));
  EXPECT_THAT(text, HasSubstr("# TYPE process_max_fds gauge\n"));
  EXPECT_THAT(text, HasSubstr("# TYPE process_start_time_seconds gauge\n"));
  EXPECT_THAT(text, HasSubstr("# TYPE process_virtual_memory_bytes gauge\n"));
  UnregisterProcessMetrics(&registry);
  EXPECT_THAT(registry.ExpositionText(), ::testing::Not(HasSubstr("process_")));
}

}  // namespace
}  // namespace strata
