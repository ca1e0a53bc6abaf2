// Random-graph gradient fuzzing from the command line:
//   fuzz_graphs [--graphs N] [--seed S] [--ops N] [--second-order-every K] [--reproducer SEED]
// Graph i is generated from seed S + i; every K-th graph also checks second derivatives through
// create_graph. A failing graph is shrunk and printed as a C++ program. Exit 1 if any failed.
#include <chrono>
#include <cstdlib>
#include <iostream>
#include <map>
#include <string>

#include "graphs.hpp"

namespace fz = tapegrad::fuzz;

namespace {
std::uint64_t parse_count(const std::string& flag, const char* text) {
  char* end = nullptr;
  const unsigned long long v = std::strtoull(text, &end, 10);
  if (!*text || *end || text[0] == '-') {
    std::cerr << "fuzz_graphs: " << flag << " needs a non-negative integer, got '" << text << "'\n";
    std::exit(2);
  }
  return v;
}
}  // namespace

int main(int argc, char** argv) {
  std::uint64_t graphs = 1000, seed = 1, every = 4;
  bool print_only = false;
  fz::GraphOptions options;
  for (int i = 1; i < argc; ++i) {
    const std::string flag = argv[i];
    if (i + 1 >= argc) {
      std::cerr << "fuzz_graphs: unknown flag or missing value: " << flag
                << "\nusage: fuzz_graphs [--graphs N] [--seed S] [--ops N] [--second-order-every K] "
                   "[--reproducer SEED]\n";
      return 2;
    }
    const char* value = argv[++i];
    if (flag == "--graphs") graphs = parse_count(flag, value);
    else if (flag == "--seed") seed = parse_count(flag, value);
    else if (flag == "--ops") options.ops = parse_count(flag, value);
    else if (flag == "--second-order-every") every = parse_count(flag, value);
    else if (flag == "--reproducer") {
      seed = parse_count(flag, value);
      print_only = true;
    } else {
      std::cerr << "fuzz_graphs: unknown flag: " << flag << '\n';
      return 2;
    }
  }
  if (print_only) {
    std::cout << fz::reproducer(fz::generate(seed, options), false,
                                "tests/fuzz_graphs --reproducer " + std::to_string(seed));
    return 0;
  }
  const auto start = std::chrono::steady_clock::now();
  std::map<std::string, std::size_t> ops;
  std::size_t failures = 0, second_order = 0;
  for (std::uint64_t i = 0; i < graphs; ++i) {
    const std::uint64_t s = seed + i;
    const bool second = every > 0 && s % every == 0;
    const fz::Graph graph = fz::generate(s, options);
    for (const auto& step : graph.steps) ++ops[fz::op_name(step.op)];
    second_order += second;
    const fz::CheckResult result = fz::check(graph, second, options);
    if (result.ok()) continue;
    ++failures;
    const fz::Graph small = fz::shrink(
        graph, [&](const fz::Graph& g) { return fz::check(g, second, options).failure == result.failure; });
    std::cout << "FAILED: graph seed " << s << (second ? " (second order)" : "") << ", " << fz::op_count(graph)
              << " ops, shrunk to " << fz::op_count(small) << "\n"
              << fz::check(small, second, options).report << "\n"
              << fz::reproducer(small, second, "tests/fuzz_graphs --seed " + std::to_string(s) + " --graphs 1, shrunk")
              << '\n';
  }
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  std::cout << "fuzz_graphs: " << graphs << " graphs (seeds " << seed << ".." << seed + graphs - 1 << "), "
            << second_order << " with second derivatives, " << failures << " failed, " << seconds << " s\nops:";
  for (const auto& [name, n] : ops) std::cout << ' ' << name << '=' << n;
  std::cout << '\n';
  return failures ? 1 : 0;
}
