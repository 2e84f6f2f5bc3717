// Runs every upstream PromQL test script (../shared/promql-tests/upstream/*.test) through
// the engine and prints, per file and in total, evals passed / failed / skipped.
//
// Evals that are known to fail are listed in promql_known_failures.txt (file:line). The
// test fails when an unlisted eval fails, and also when a listed one passes, so that the
// list only ever shrinks.
//
// Environment: PROMQL_ONLY=<substring> runs only the matching files; PROMQL_VERBOSE=1 also
// prints why each listed eval fails; PROMQL_WRITE_KNOWN=1 rewrites the list with the evals
// failing now (keeping the reasons of entries that stay; new ones get the failure text).
#include <algorithm>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <map>
#include <set>
#include <sstream>

#include "gtest/gtest.h"
#include "query/promql_test_script.h"
#include "src/strings.h"

namespace strata::promql {
namespace {

std::string ReadFile(const std::filesystem::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

std::filesystem::path KnownFailuresPath() {
  return std::filesystem::path(STRATA_SOURCE_DIR) / "tests" / "query" / "promql_known_failures.txt";
}

// file:line -> the comment after it.
std::map<std::string, std::string> ReadKnownFailures() {
  std::map<std::string, std::string> out;
  std::istringstream in(ReadFile(KnownFailuresPath()));
  std::string line;
  while (std::getline(in, line)) {
    auto hash = line.find('#');
    std::string reason;
    if (hash != std::string::npos) {
      reason = line.substr(hash);
      line.resize(hash);
    }
    while (!line.empty() && std::isspace(static_cast<unsigned char>(line.back()))) line.pop_back();
    size_t b = 0;
    while (b < line.size() && std::isspace(static_cast<unsigned char>(line[b]))) ++b;
    if (b < line.size()) out[line.substr(b)] = reason;
  }
  return out;
}

TEST(PromqlScripts, UpstreamScriptsPass) {
  std::filesystem::path dir =
      std::filesystem::path(STRATA_SHARED_DIR) / "promql-tests" / "upstream";
  std::vector<std::filesystem::path> files;
  for (const auto& entry : std::filesystem::directory_iterator(dir)) {
    if (entry.path().extension() == ".test") files.push_back(entry.path());
  }
  std::sort(files.begin(), files.end());
  ASSERT_FALSE(files.empty()) << "no scripts in " << dir;

  const std::map<std::string, std::string> known = ReadKnownFailures();
  // PROMQL_WRITE_KNOWN=1 rewrites the list with the evals that fail now (keeping reasons).
  const bool write_known = std::getenv("PROMQL_WRITE_KNOWN") != nullptr;
  std::vector<std::pair<std::string, std::string>> now_failing;
  const bool verbose = std::getenv("PROMQL_VERBOSE") != nullptr;
  const char* only = std::getenv("PROMQL_ONLY");
  int passed = 0, failed = 0, skipped = 0, unexpected_fail = 0, unexpected_pass = 0;
  std::map<std::string, int> skip_reasons;
  std::set<std::string> seen_known;

  for (const auto& path : files) {
    std::string name = path.filename().string();
    if (only && name.find(only) == std::string::npos) continue;
    auto report = RunTestScript(ReadFile(path), name, EngineOptions::AllFeatures());
    if (!report.ok()) {
      ADD_FAILURE() << name << ": script failed to run: " << std::string(report.status().message());
      continue;
    }
    int fp = 0, ff = 0, fs = 0;
    for (const EvalOutcome& o : report->evals) {
      std::string key = fmt::format("{}:{}", name, o.line);
      switch (o.status) {
        case EvalStatus::kPassed:
          ++fp;
          if (known.count(key)) {
            ++unexpected_pass;
            seen_known.insert(key);
            ADD_FAILURE() << key << " passes now; remove it from promql_known_failures.txt";
          }
          break;
        case EvalStatus::kFailed:
          ++ff;
          now_failing.emplace_back(
              key, known.count(key) ? known.at(key) : "# " + o.message.substr(0, 100));
          if (known.count(key)) {
            seen_known.insert(key);
            if (verbose) std::cout << "  known failure " << key << ": " << o.message << "\n";
          } else {
            ++unexpected_fail;
            ADD_FAILURE() << key << ": " << o.message;
          }
          break;
        case EvalStatus::kSkipped:
          ++fs;
          ++skip_reasons[o.message];
          break;
      }
    }
    std::cout << fmt::format("{:<28} passed {:4}  failed {:4}  skipped {:4}\n", name, fp, ff, fs);
    passed += fp;
    failed += ff;
    skipped += fs;
  }
  std::cout << fmt::format("{:<28} passed {:4}  failed {:4}  skipped {:4}\n", "TOTAL", passed,
                           failed, skipped);
  for (const auto& [reason, n] : skip_reasons) {
    std::cout << fmt::format("  skipped ({}): {}\n", reason, n);
  }
  std::cout << fmt::format("  unexpected failures: {}, listed failures now passing: {}\n",
                           unexpected_fail, unexpected_pass);
  if (write_known && !only) {
    std::string text;
    std::istringstream in(ReadFile(KnownFailuresPath()));
    std::string line;
    while (std::getline(in, line) && line.starts_with("#")) text += line + "\n";
    for (const auto& [k, reason] : now_failing) text += k + "  " + reason + "\n";
    std::ofstream(KnownFailuresPath(), std::ios::binary | std::ios::trunc) << text;
    std::cout << "rewrote " << KnownFailuresPath() << "\n";
    return;
  }
  if (!only) {
    for (const auto& [k, reason] : known) {
      if (!seen_known.count(k)) {
        ADD_FAILURE() << k << " is listed in promql_known_failures.txt but is not a failing eval";
      }
    }
  }
}

}  // namespace
}  // namespace strata::promql
