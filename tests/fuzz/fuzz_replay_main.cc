// A driver for fuzz targets where libFuzzer is not available (g++ builds, CI).
//
//   promql_parser_fuzz [--mutations N] [--seed S] PATH...
//
// Each PATH is a file or a directory of files. A file ending in ".test" is a PromQL test
// script: every eval line's expression becomes one input. Any other file is one input.
// Each input is run as is and then as N deterministic mutations (byte flips, insertions of
// PromQL punctuation, truncations, splices with other inputs). Prints a summary line.
#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <random>
#include <sstream>
#include <string>
#include <string_view>
#include <vector>

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size);

namespace {

void Run(const std::string& input) {
  LLVMFuzzerTestOneInput(reinterpret_cast<const uint8_t*>(input.data()), input.size());
}

std::string ReadFile(const std::filesystem::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// The expression of an eval line: after "eval[...] instant at T" or
// "eval[...] range from A to B step S".
bool EvalExpression(std::string_view line, std::string* out) {
  size_t start = line.find_first_not_of(" \t");
  if (start == std::string_view::npos || line.substr(start, 4) != "eval") return false;
  line.remove_prefix(start);
  std::vector<std::string_view> words;
  size_t pos = 0;
  auto next_word = [&]() -> std::string_view {
    while (pos < line.size() && (line[pos] == ' ' || line[pos] == '\t')) ++pos;
    size_t b = pos;
    while (pos < line.size() && line[pos] != ' ' && line[pos] != '\t') ++pos;
    return line.substr(b, pos - b);
  };
  next_word();  // eval...
  std::string_view kind = next_word();
  int skip = kind == "instant" ? 2 : kind == "range" ? 6 : -1;
  if (skip < 0) return false;
  for (int i = 0; i < skip; ++i) next_word();
  while (pos < line.size() && (line[pos] == ' ' || line[pos] == '\t')) ++pos;
  *out = std::string(line.substr(pos));
  return !out->empty();
}

void CollectInputs(const std::filesystem::path& p, std::vector<std::string>* inputs) {
  if (std::filesystem::is_directory(p)) {
    std::vector<std::filesystem::path> files;
    for (const auto& e : std::filesystem::directory_iterator(p)) files.push_back(e.path());
    std::sort(files.begin(), files.end());
    for (const auto& f : files) CollectInputs(f, inputs);
    return;
  }
  std::string content = ReadFile(p);
  if (p.extension() != ".test") {
    inputs->push_back(std::move(content));
    return;
  }
  std::istringstream lines(content);
  std::string line, expr;
  while (std::getline(lines, line)) {
    if (EvalExpression(line, &expr)) inputs->push_back(expr);
  }
}

std::string Mutate(const std::string& in, const std::vector<std::string>& all, std::mt19937& rng) {
  static const char* kTokens[] = {"(",     ")",
                                  "[",     "]",
                                  "{",     "}",
                                  ",",     "\"",
                                  "'",     "`",
                                  "@",     " offset ",
                                  " by ",  "[5m:1m]",
                                  "^",     "-",
                                  "+",     "/",
                                  "==",    " bool ",
                                  " on(",  " group_left(",
                                  "\\",    "#",
                                  "1e308", "0x",
                                  "Inf",   "NaN",
                                  " and ", "start()",
                                  "\n",    "\xff"};
  std::string s = in;
  int edits = 1 + static_cast<int>(rng() % 4);
  for (int i = 0; i < edits; ++i) {
    size_t at = s.empty() ? 0 : rng() % (s.size() + 1);
    switch (rng() % 5) {
      case 0:
        if (!s.empty() && at < s.size()) s[at] = static_cast<char>(rng());
        break;
      case 1:
        s.insert(at, kTokens[rng() % std::size(kTokens)]);
        break;
      case 2:
        s.resize(at);
        break;
      case 3:
        if (!s.empty() && at < s.size()) s.erase(at, 1 + rng() % 8);
        break;
      case 4: {
        const std::string& other = all[rng() % all.size()];
        size_t from = other.empty() ? 0 : rng() % other.size();
        s.insert(at, other.substr(from, 1 + rng() % 40));
        break;
      }
    }
  }
  return s;
}

}  // namespace

int main(int argc, char** argv) {
  int mutations = 0;
  unsigned seed = 1;
  std::vector<std::string> inputs;
  for (int i = 1; i < argc; ++i) {
    std::string_view arg = argv[i];
    if (arg == "--mutations" && i + 1 < argc) {
      mutations = std::atoi(argv[++i]);
    } else if (arg == "--seed" && i + 1 < argc) {
      seed = static_cast<unsigned>(std::strtoul(argv[++i], nullptr, 10));
    } else {
      CollectInputs(argv[i], &inputs);
    }
  }
  if (inputs.empty()) {
    std::fprintf(stderr, "no inputs: give files, directories or .test scripts\n");
    return 2;
  }
  std::mt19937 rng(seed);
  size_t runs = 0;
  for (const auto& in : inputs) {
    Run(in);
    ++runs;
    for (int m = 0; m < mutations; ++m) {
      Run(Mutate(in, inputs, rng));
      ++runs;
    }
  }
  std::printf("fuzz replay: %zu seeds, %zu inputs run, no crash\n", inputs.size(), runs);
  return 0;
}
