#include "src/labels.h"

#include <random>
#include <string>
#include <utility>
#include <vector>

#include "fmt/format.h"
#include "gtest/gtest.h"

namespace strata {
namespace {

TEST(Labels, SortsByNameAndDropsEmptyValues) {
  Labels l{{"job", "api"}, {"__name__", "up"}, {"instance", ""}, {"a", "1"}};
  ASSERT_EQ(l.size(), 3u);
  std::vector<std::string> names;
  for (const auto& x : l) names.emplace_back(x.name);
  EXPECT_EQ(names, (std::vector<std::string>{"__name__", "a", "job"}));
  EXPECT_EQ(l.Get("job"), "api");
  EXPECT_EQ(l.Get("instance"), "");
  EXPECT_FALSE(l.Has("instance"));
  EXPECT_EQ(l.MetricName(), "up");
}

TEST(Labels, RepeatedNameKeepsTheLastValue) {
  Labels l = Labels::FromPairs({{"a", "1"}, {"b", "2"}, {"a", "3"}});
  EXPECT_EQ(l.ToString(), "{a=\"3\", b=\"2\"}");
}

TEST(Labels, PrintsPrometheusTextFormWithEscaping) {
  Labels l{{"a", "b"}, {"c", "d\"e"}, {"n", "x\\y\nz"}};
  EXPECT_EQ(l.ToString(), "{a=\"b\", c=\"d\\\"e\", n=\"x\\\\y\\nz\"}");
  EXPECT_EQ(Labels().ToString(), "{}");
  // Names that PromQL cannot write bare are quoted; UTF-8 stays readable.
  Labels u{{"service.name", "café"}};
  EXPECT_EQ(u.ToString(), "{\"service.name\"=\"café\"}");
}

TEST(Labels, QuoteStringFollowsGoStrconvQuote) {
  EXPECT_EQ(QuoteString("plain"), "\"plain\"");
  EXPECT_EQ(QuoteString("tab\there"), "\"tab\\there\"");
  EXPECT_EQ(QuoteString(std::string("nul\0x", 5)), "\"nul\\x00x\"");
  EXPECT_EQ(QuoteString("bad\xffutf8"), "\"bad\\xffutf8\"");
  EXPECT_EQ(QuoteString("\x7f"), "\"\\x7f\"");
  EXPECT_EQ(QuoteString("it's", '\''), "'it\\'s'");
  EXPECT_EQ(QuoteString("日本"), "\"日本\"");
}

TEST(Labels, HashIsStableAcrossRunsAndBuilds) {
  // XXH64 (seed 0) of "__name__\xffup\xffjob\xffapi\xff": a fixed value, so a change to the
  // hash function (which would orphan series_by_hash on disk) fails here.
  Labels l{{"__name__", "up"}, {"job", "api"}};
  EXPECT_EQ(l.Hash(), Labels({{"job", "api"}, {"__name__", "up"}}).Hash());
  EXPECT_EQ(Labels().Hash(), 0xef46db3751d8e999ULL);  // XXH64 of no bytes
  EXPECT_NE(l.Hash(), Labels({{"__name__", "up"}, {"job", "apI"}}).Hash());
  // Moving the separator must change the hash: {a="bc"} vs {ab="c"}.
  EXPECT_NE(Labels({{"a", "bc"}}).Hash(), Labels({{"ab", "c"}}).Hash());
  // Pinned values, computed with libxxhash's one-shot XXH64 over the bytes above.
  EXPECT_EQ(l.Hash(), 0x27967ec87265eaefULL);
  // A label set longer than the hasher's buffer (2,080 bytes hashed) hashes the same way.
  std::vector<std::pair<std::string, std::string>> long_pairs;
  for (int i = 0; i < 40; ++i) {
    long_pairs.emplace_back(fmt::format("label_name_{:02d}", i),
                            std::string(37, static_cast<char>('a' + i % 26)));
  }
  EXPECT_EQ(Labels::FromPairs(long_pairs).Hash(), 0x124a28f9e4727f7ULL);
  // A single label longer than the buffer, alone and between short ones.
  Labels huge{{"__name__", std::string(3000, 'x')}};
  EXPECT_EQ(huge.Hash(), 0x2058e00c3f542326ULL);
  EXPECT_EQ(Labels({{"a", "1"}, {"b", std::string(3000, 'y')}, {"c", "2"}}).Hash(),
            0xde2a7ee2b22dc40eULL);
}

TEST(Labels, HashForAndWithoutNames) {
  Labels a{{"__name__", "x"}, {"job", "j"}, {"instance", "1"}};
  Labels b{{"__name__", "y"}, {"job", "j"}, {"instance", "2"}};
  std::vector<std::string> job{"job"};
  EXPECT_EQ(a.HashForNames(job), b.HashForNames(job));
  std::vector<std::string> instance{"instance"};
  EXPECT_NE(a.HashWithoutNames(instance), Labels({{"job", "k"}}).HashWithoutNames(instance));
  // Without also drops __name__.
  EXPECT_EQ(a.HashWithoutNames(instance), b.HashWithoutNames(instance));
}

TEST(Labels, CompareOrdersLabelByLabel) {
  Labels a{{"a", "1"}};
  Labels ab{{"a", "1"}, {"b", "1"}};
  Labels a2{{"a", "2"}};
  Labels b{{"b", "0"}};
  EXPECT_LT(Compare(a, ab), 0);
  EXPECT_LT(Compare(ab, a2), 0);
  EXPECT_LT(Compare(a2, b), 0);
  EXPECT_EQ(Compare(ab, Labels{{"b", "1"}, {"a", "1"}}), 0);
  EXPECT_GT(Compare(b, Labels()), 0);
}

// Compare skips the packed bytes two sets share; check it against comparing decoded labels
// one by one, on sets built to share long prefixes, differ in lengths (so varints differ
// before the text does), hold long labels (two-byte varints) and prefixes of each other.
TEST(Labels, CompareAgreesWithLabelByLabelOrder) {
  auto naive = [](const Labels& a, const Labels& b) {
    std::vector<std::pair<std::string, std::string>> x, y;
    for (const LabelView& l : a) x.emplace_back(l.name, l.value);
    for (const LabelView& l : b) y.emplace_back(l.name, l.value);
    return x < y ? -1 : (y < x ? 1 : 0);
  };
  std::mt19937_64 rng(7);
  auto pick = [&](std::vector<std::string> options) { return options[rng() % options.size()]; };
  auto random_set = [&] {
    std::vector<std::pair<std::string, std::string>> pairs;
    const std::vector<std::string> names{
        "__name__", "a", "ab", "b", "cpu", "instance", "job", std::string(200, 'n'), "mode", "z"};
    for (const std::string& n : names) {
      if (rng() % 3 == 0) continue;
      pairs.emplace_back(
          n, pick({"", "0", "1", "10", "a", "aa", "ab", "b", std::string(130, 'v'),
                   std::string(129, 'v'), std::string(130, 'v') + "x", "node_cpu_seconds_total"}));
    }
    return Labels::FromPairs(pairs);
  };
  std::vector<Labels> sets;
  for (int i = 0; i < 400; ++i) sets.push_back(random_set());
  int differing = 0;
  for (const Labels& a : sets) {
    for (const Labels& b : sets) {
      int want = naive(a, b);
      ASSERT_EQ(Compare(a, b), want) << a.ToString() << " vs " << b.ToString();
      differing += want != 0;
    }
  }
  EXPECT_GT(differing, 100000);
}

TEST(Labels, WithoutDropsNamedLabelsWherever) {
  Labels l{{"A", "upper"}, {"__name__", "m"}, {"job", "j"}, {"zz", std::string(300, 'z')}};
  EXPECT_EQ(l.Without({"__name__"}),
            (Labels{{"A", "upper"}, {"job", "j"}, {"zz", std::string(300, 'z')}}));
  EXPECT_EQ(l.Without({"A", "zz"}), (Labels{{"__name__", "m"}, {"job", "j"}}));
  EXPECT_EQ(l.Without({"A", "__name__", "job", "zz"}), Labels());
  EXPECT_EQ(l.Without({"absent"}), l);
  EXPECT_EQ(l.Without({}), l);
  EXPECT_EQ(Labels().Without({"__name__"}), Labels());
  // The result is a valid set: it round-trips through its packed form.
  auto again = Labels::FromEncoded(l.Without({"job"}).encoded());
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(*again, (Labels{{"A", "upper"}, {"__name__", "m"}, {"zz", std::string(300, 'z')}}));
}

TEST(Labels, WithoutOnATemporaryEditsInPlace) {
  const std::string long_value(300, 'z');
  Labels l{{"A", "upper"}, {"__name__", "m"}, {"job", "j"}, {"zz", long_value}};
  const Labels copy = l;
  EXPECT_EQ(Labels(copy).Without({"__name__", "zz"}), (Labels{{"A", "upper"}, {"job", "j"}}));
  EXPECT_EQ(Labels(copy).Without({"absent"}), copy);
  Labels moved = std::move(l).Without({"A"});
  EXPECT_EQ(moved, (Labels{{"__name__", "m"}, {"job", "j"}, {"zz", long_value}}));
  auto again = Labels::FromEncoded(moved.encoded());
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(*again, moved);
  EXPECT_EQ(Labels().Without({"__name__"}), Labels());
}

TEST(Labels, AssignSubsetKeepsOrDropsTheListedNames) {
  const std::string long_value(300, 'v');
  const Labels l{{"A", "upper"}, {"__name__", "m"}, {"job", "j"}, {"zz", long_value}};
  const std::vector<std::string> names = {"__name__", "absent", "zz"};  // sorted
  Labels out{{"stale", "contents"}};
  out.AssignSubset(l, names, /*keep=*/true);
  EXPECT_EQ(out, (Labels{{"__name__", "m"}, {"zz", long_value}}));
  out.AssignSubset(l, names, /*keep=*/false);
  EXPECT_EQ(out, (Labels{{"A", "upper"}, {"job", "j"}}));
  out.AssignSubset(l, {}, /*keep=*/true);
  EXPECT_EQ(out, Labels());
  out.AssignSubset(l, {}, /*keep=*/false);
  EXPECT_EQ(out, l);
  out.AssignSubset(Labels(), names, /*keep=*/false);
  EXPECT_TRUE(out.empty());
  // Equal subsets hash alike, whatever else the sources hold.
  Labels a, b;
  a.AssignSubset(l, names, true);
  b.AssignSubset(Labels{{"__name__", "m"}, {"other", "x"}, {"zz", long_value}}, names, true);
  EXPECT_EQ(a, b);
  EXPECT_EQ(a.Hash(), b.Hash());
}

TEST(Labels, EncodedFormRoundTripsAndRejectsGarbage) {
  Labels l{{"__name__", std::string(300, 'n')}, {"z", "last"}};
  auto back = Labels::FromEncoded(l.encoded());
  ASSERT_TRUE(back.ok()) << back.status();
  EXPECT_EQ(*back, l);
  std::string enc = l.encoded();
  // A cut at the end of the first label leaves a valid, shorter set; any other cut fails.
  const size_t boundary = Labels{{"__name__", std::string(300, 'n')}}.encoded().size();
  for (size_t cut = 1; cut < enc.size(); ++cut) {
    auto r = Labels::FromEncoded(std::string_view(enc).substr(0, cut));
    EXPECT_EQ(r.ok(), cut == boundary) << "cut at " << cut;
  }
  std::mt19937 rng(7);
  for (int i = 0; i < 2000; ++i) {
    std::string junk(rng() % 20, '\0');
    for (auto& c : junk) c = static_cast<char>(rng());
    auto r = Labels::FromEncoded(junk);  // must not crash; may or may not be valid
    if (r.ok()) {
      for (const auto& x : *r) EXPECT_FALSE(x.name.empty());
    }
  }
}

TEST(LabelsBuilder, SetsDeletesAndKeeps) {
  Labels base{{"__name__", "m"}, {"a", "1"}, {"b", "2"}};
  LabelsBuilder b(base);
  b.Set("c", "3").Del("a").Set("b", "");
  EXPECT_EQ(b.Build().ToString(), "{__name__=\"m\", c=\"3\"}");
  std::vector<std::string> keep{"c"};
  b.Keep(keep);
  EXPECT_EQ(b.Build().ToString(), "{c=\"3\"}");
  EXPECT_EQ(b.Get("c"), "3");
}

TEST(Labels, ValidatesInput) {
  EXPECT_TRUE(ValidateLabels(Labels{{"__name__", "up"}}, true).ok());
  auto no_name = ValidateLabels(Labels{{"job", "x"}}, true);
  EXPECT_EQ(no_name.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(std::string(no_name.message()).find("no metric name"), std::string::npos);
  auto bad = ValidateLabels(Labels{{"__name__", "up"}, {"a", "\xc3\x28"}}, true);
  EXPECT_FALSE(bad.ok());
  EXPECT_NE(std::string(bad.message()).find("not valid UTF-8"), std::string::npos);
  EXPECT_TRUE(IsValidUtf8("héllo ☃ 𝄞"));
  EXPECT_FALSE(IsValidUtf8("\xed\xa0\x80"));  // surrogate
  EXPECT_FALSE(IsValidUtf8("\xc0\xaf"));      // overlong
  EXPECT_FALSE(IsValidUtf8("\xe2\x82"));      // truncated
}

TEST(Labels, LegacyNames) {
  EXPECT_TRUE(IsLegacyLabelName("_a1"));
  EXPECT_FALSE(IsLegacyLabelName("1a"));
  EXPECT_FALSE(IsLegacyLabelName("a:b"));
  EXPECT_TRUE(IsLegacyMetricName("a:b_c"));
  EXPECT_FALSE(IsLegacyMetricName("a.b"));
  EXPECT_FALSE(IsLegacyMetricName(""));
}

}  // namespace
}  // namespace strata
