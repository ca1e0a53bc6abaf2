// Random-graph gradient fuzzing in CI: 1,000 seeded graphs, and proof that the fuzzer catches and
// shrinks a wrong VJP.
#include "helpers.hpp"

#include <map>

#include "fuzz/graphs.hpp"

namespace fz = tg::fuzz;

TEST_CASE("1,000 seeded random graphs over every op family have right first and second derivatives") {
  std::map<fz::Op, std::size_t> seen;
  std::size_t failed = 0, ops = 0;
  for (std::uint64_t seed = 1; seed <= 1000; ++seed) {
    const fz::Graph graph = fz::generate(seed);
    for (const auto& step : graph.steps) ++seen[step.op];
    ops += fz::op_count(graph);
    const bool second_order = seed % 4 == 0;
    const fz::CheckResult result = fz::check(graph, second_order);
    if (!result.ok()) {
      ++failed;
      INFO("graph seed ", seed, (second_order ? " (second order)" : ""), "\n", result.report, "\n",
           fz::reproducer(graph, second_order, "seed " + std::to_string(seed)));
      CHECK(result.ok());
    }
  }
  MESSAGE("fuzz_graphs: 1000 graphs, ", ops, " ops, ", failed, " failed");
  CHECK(readme_says("CI runs 1,000 seeded graphs"));
  CHECK(failed == 0);
  // Every public op the generator knows was drawn, in a graph that was checked.
  for (int op = static_cast<int>(fz::Op::neg); op < static_cast<int>(fz::Op::custom); ++op) {
    INFO(fz::op_name(static_cast<fz::Op>(op)));
    CHECK(seen[static_cast<fz::Op>(op)] >= 5);
  }
}

namespace {
// y = x^2 with the VJP of x^3: the bug the fuzzer must find.  dx = grad * 3x^2 (wrong: 2x)
TD wrong_square(const TD& x) {
  return tg::record<double>("wrong_square", {x}, Arr(x.value() * x.value()),
                            [x](const tg::VjpArgs<double>& g) { return std::vector<TD>{g.grad * x * x * 3.0}; });
}
}  // namespace

TEST_CASE("a wrong VJP among the ops is caught, shrunk to a few ops, and printed as a program") {
  fz::GraphOptions options;
  options.custom = wrong_square;
  std::uint64_t failing = 0;
  fz::Graph graph;
  for (std::uint64_t seed = 1; seed <= 200 && !failing; ++seed) {
    graph = fz::generate(seed, options);
    if (!fz::check(graph, false, options).ok()) failing = seed;
  }
  REQUIRE(failing != 0);
  const fz::Graph small =
      fz::shrink(graph, [&](const fz::Graph& g) { return fz::check(g, false, options).failure == "mismatch"; });
  const fz::CheckResult result = fz::check(small, false, options);
  INFO(result.report);
  CHECK(result.failure == "mismatch");
  CHECK(fz::op_count(small) <= 2);
  CHECK(readme_says("shrinks the failing graph to at most two ops"));
  CHECK(fz::op_count(small) < fz::op_count(graph));
  std::size_t elements = 0;
  for (const auto& in : small.inputs) elements += in.size();
  CHECK(elements <= 2);   // shapes shrunk too, where the ops allowed
  const std::string program = fz::reproducer(small, false, "shrunk");
  CHECK(program.find("custom(v") != std::string::npos);
  CHECK(program.find("tg::gradcheck(f, inputs, checks)") != std::string::npos);
}

TEST_CASE("a correct custom op among the ops passes the same fuzzing") {
  fz::GraphOptions options;
  options.custom = [](const TD& x) {   // y = x^2;  dx = grad * 2x
    return tg::record<double>("square", {x}, Arr(x.value() * x.value()),
                              [x](const tg::VjpArgs<double>& g) { return std::vector<TD>{g.grad * x * 2.0}; });
  };
  for (std::uint64_t seed = 1; seed <= 100; ++seed) {
    const fz::CheckResult result = fz::check(fz::generate(seed, options), seed % 2 == 0, options);
    INFO("seed ", seed, "\n", result.report);
    CHECK(result.ok());
  }
}

TEST_CASE("no false alarm: 10,000 correct gradients of random graphs pass gradcheck") {
  // Every op in these graphs is a built-in op, checked on its own elsewhere: a failing check here
  // is a false alarm of gradcheck (its finite differences or tolerances), or a real bug.
  std::size_t gradients = 0, graphs = 0, alarms = 0;
  for (std::uint64_t seed = 100001; gradients < 10000; ++seed) {
    const fz::Graph graph = fz::generate(seed);
    const fz::CheckResult result = fz::check(graph, false);
    ++graphs;
    gradients += graph.inputs.size();
    if (!result.ok()) {
      ++alarms;
      INFO("graph seed ", seed, "\n", result.report);
      CHECK(result.ok());
    }
  }
  MESSAGE("false alarms: ", alarms, " in ", gradients, " gradients of ", graphs, " random graphs");
  CHECK(alarms == 0);
}
