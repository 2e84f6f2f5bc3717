#include "server/logging.h"

#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <string>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "server/data_dir.h"

namespace strata {
namespace {

using ::testing::HasSubstr;

spdlog::log_clock::time_point At(int64_t ms) {
  return spdlog::log_clock::time_point(std::chrono::milliseconds(ms));
}

TEST(LogLine, LogfmtQuotesOnlyWhatNeedsIt) {
  EXPECT_EQ(FormatLogLine(LogFormat::kLogfmt, At(1435781451781), spdlog::level::info, "Ready"),
            "time=2015-07-01T20:10:51.781Z level=INFO msg=Ready");
  EXPECT_EQ(FormatLogLine(LogFormat::kLogfmt, At(0), spdlog::level::warn, "two words"),
            "time=1970-01-01T00:00:00.000Z level=WARN msg=\"two words\"");
  EXPECT_EQ(FormatLogLine(LogFormat::kLogfmt, At(0), spdlog::level::err,
                          "x\x1f"
                          "err\x1e"
                          "quote \" here\x1f"
                          "n\x1e"
                          "5\x1f"
                          "e\x1e"),
            "time=1970-01-01T00:00:00.000Z level=ERROR msg=x err=\"quote \\\" here\" n=5 e=\"\"");
}

TEST(LogLine, JsonHasTimeLevelMsgAndFields) {
  EXPECT_EQ(
      FormatLogLine(LogFormat::kJson, At(1500), spdlog::level::debug,
                    "Starting\x1fversion\x1e"
                    "0.1.0\x1fpath\x1e"
                    "a\"b"),
      R"({"time":"1970-01-01T00:00:01.500Z","level":"DEBUG","msg":"Starting","version":"0.1.0","path":"a\"b"})");
}

TEST(SetupLogging, RejectsUnknownLevelsAndFormats) {
  EXPECT_TRUE(SetupLogging("info", "logfmt").ok());
  EXPECT_TRUE(SetupLogging("debug", "json").ok());
  EXPECT_THAT(std::string(SetupLogging("loud", "json").message()), HasSubstr("\"loud\""));
  EXPECT_THAT(std::string(SetupLogging("info", "xml").message()), HasSubstr("\"xml\""));
}

class DataDirTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = std::filesystem::temp_directory_path() /
           ("strata_data_dir_test_" + std::to_string(::getpid()));
    std::filesystem::remove_all(dir_);
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }
  std::filesystem::path dir_;
};

TEST_F(DataDirTest, CreatesTheDirectoryAndRefusesASecondHolder) {
  std::string path = (dir_ / "nested" / "data").string();
  auto first = DataDirLock::Acquire(path);
  ASSERT_TRUE(first.ok()) << first.status();
  EXPECT_TRUE(std::filesystem::is_directory(path));
  auto second = DataDirLock::Acquire(path);
  ASSERT_FALSE(second.ok());
  EXPECT_THAT(std::string(second.status().message()),
              HasSubstr("is in use by another Strata process"));
  EXPECT_THAT(std::string(second.status().message()), HasSubstr(std::to_string(::getpid())));
  first->reset();
  auto third = DataDirLock::Acquire(path);
  EXPECT_TRUE(third.ok()) << third.status();
}

TEST_F(DataDirTest, FailsClearlyWhenTheDirectoryCannotBeCreated) {
  std::filesystem::create_directories(dir_);
  std::string file = (dir_ / "plain_file").string();
  {
    std::FILE* f = std::fopen(file.c_str(), "w");
    std::fclose(f);
  }
  auto lock = DataDirLock::Acquire(file + "/data");
  ASSERT_FALSE(lock.ok());
  EXPECT_THAT(std::string(lock.status().message()), HasSubstr("cannot create data directory"));
}

}  // namespace
}  // namespace strata
