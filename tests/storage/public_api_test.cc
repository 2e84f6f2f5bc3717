// Uses nothing but the public header, as an embedding program would.
#include <unistd.h>

#include <filesystem>
#include <string>

#include "gtest/gtest.h"
#include "strata/db.h"

namespace {

class PublicApiTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = (std::filesystem::temp_directory_path() /
            ("strata_public_api_" + std::to_string(::getpid())))
               .string();
    std::filesystem::remove_all(dir_);
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }
  std::string dir_;
};

TEST_F(PublicApiTest, OpenAppendQueryCloseReopen) {
  strata::Options options;
  options.dir = dir_;
  options.flush_interval_ms = 0;
  {
    std::unique_ptr<strata::DB> db;
    strata::Status st = strata::DB::Open(options, &db);
    ASSERT_TRUE(st.ok()) << st.ToString();
    strata::AppendStats result;
    st = db->Append({{{{"__name__", "up"}, {"job", "node"}}, {{1000, 1}, {2000, 0}, {1500, 5}}},
                     {{{"job", "api"}, {"__name__", "up"}}, {{1000, 1}}}},
                    &result);
    ASSERT_TRUE(st.ok()) << st.ToString();
    EXPECT_EQ(result.appended, 3);
    EXPECT_EQ(result.out_of_order, 1);
    ASSERT_TRUE(db->Flush().ok());
    ASSERT_TRUE(db->Close().ok());
    EXPECT_FALSE(db->Append({}, &result).ok());
  }
  std::unique_ptr<strata::DB> db;
  ASSERT_TRUE(strata::DB::Open(options, &db).ok());
  std::vector<strata::SeriesData> series;
  strata::Status st = db->Query(
      {{"__name__", "up"}, {"job", "n.*", strata::Matcher::Op::kRegexMatch}}, 0, 10000, &series);
  ASSERT_TRUE(st.ok()) << st.ToString();
  ASSERT_EQ(series.size(), 1u);
  EXPECT_EQ(series[0].labels, (strata::LabelPairs{{"__name__", "up"}, {"job", "node"}}));
  ASSERT_EQ(series[0].samples.size(), 2u);
  EXPECT_EQ(series[0].samples[1].t, 2000);
  std::vector<std::string> values;
  ASSERT_TRUE(db->LabelValues("job", {}, &values).ok());
  EXPECT_EQ(values, (std::vector<std::string>{"api", "node"}));

  // A bad regex and a second opener are clear errors.
  st = db->Query({{"job", "(", strata::Matcher::Op::kRegexMatch}}, 0, 1, &series);
  EXPECT_EQ(st.code(), strata::Status::Code::kInvalidArgument);
  std::unique_ptr<strata::DB> second;
  st = strata::DB::Open(options, &second);
  EXPECT_EQ(st.code(), strata::Status::Code::kUnavailable);
  EXPECT_NE(st.message().find(dir_), std::string::npos) << st.message();
}

}  // namespace
