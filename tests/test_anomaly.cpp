// Anomaly mode, labels, saved-value version checks, tape memory accounting, tape ownership.
#include "helpers.hpp"

#include <limits>
#include <thread>

namespace {
std::string message_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const std::exception& e) {
    return e.what();
  }
  return "";
}
bool contains(const std::string& text, const std::string& part) { return text.find(part) != std::string::npos; }
}  // namespace

TEST_CASE("anomaly mode names the op, its tape position, input shapes and label of a forward NaN") {
  const TD x(Arr{1.0, -2.0, 3.0}, true);
  {
    tg::Tape tape;
    const TD y = tg::exp(x);   // entry #0
    CHECK(std::isnan(tg::log(y - 2.0).value()(1)));   // off by default: no error
  }
  tg::Tape tape;
  tg::DetectAnomaly anomaly;
  const TD y = tg::exp(x);       // #0
  tg::Label decoder("decoder");
  tg::Label inner("attention");
  const TD shifted = y - 2.0;    // #1 (add_scalar)
  const std::string m = message_of([&] { tg::log(shifted); });
  INFO(m);
  CHECK(contains(m, "log: forward produced NaN at [1] in its output of shape (3)"));
  CHECK(contains(m, "#2 on the tape"));
  CHECK(contains(m, "label 'decoder/attention'"));
  CHECK(contains(m, "input shapes (3)"));
  CHECK(contains(m, "every input was finite"));
  CHECK_THROWS_AS(tg::log(shifted), tg::AnomalyError);
  CHECK(tape.size() == 2);   // the failing op appended nothing
}

TEST_CASE("anomaly mode says when the NaN came in through an input, and checks unrecorded ops") {
  tg::DetectAnomaly anomaly;
  const TD bad(Arr{1.0, std::numeric_limits<double>::infinity()});
  const std::string m = message_of([&] { tg::mul(bad, 0.5); });
  CHECK(contains(m, "mul_scalar: forward produced +Inf at [1]"));
  CHECK(contains(m, "(not recorded)"));
  CHECK(contains(m, "input 0 already held +Inf at [1]"));
}

TEST_CASE("anomaly mode names the op whose VJP produced a NaN or Inf in backward") {
  const TD x(Arr{4.0, 0.0}, true);
  tg::Tape tape;
  tg::DetectAnomaly anomaly;
  TD loss;
  {
    tg::Label label("norm");
    loss = tg::sum(tg::sqrt(x));   // sqrt'(0) = +Inf
  }
  const std::string m = message_of([&] { loss.backward(); });
  INFO(m);
  CHECK(contains(m, "sqrt: backward produced +Inf at [1] in the gradient of input 0 (shape (2))"));
  CHECK(contains(m, "op #0 on the tape, label 'norm'"));
  CHECK(contains(m, "its incoming gradient was finite"));
  CHECK_THROWS_AS(loss.backward(), tg::AnomalyError);
  CHECK(!x.has_grad());   // nothing accumulated
}

TEST_CASE("without anomaly mode the same backward gives Inf silently, as IEEE arithmetic does") {
  const TD x(Arr{4.0, 0.0}, true);
  tg::Tape tape;
  tg::sum(tg::sqrt(x)).backward();
  CHECK(x.grad()(0) == doctest::Approx(0.25).epsilon(1e-13));
  CHECK(std::isinf(x.grad()(1)));
}

TEST_CASE("labels nest, show in Tape::str, and are popped at the end of their scope") {
  const TD x = leaf({2}, 1);
  tg::Tape tape;
  {
    tg::Label a("encoder");
    tg::exp(x);
    {
      tg::Label b("block1");
      tg::tanh(x);
    }
  }
  tg::neg(x);
  const std::string s = tape.str();
  INFO(s);
  CHECK(contains(s, "#0 exp (2) -> (2) node 1 [encoder]\n"));
  CHECK(contains(s, "#1 tanh (2) -> (2) node 2 [encoder/block1]\n"));
  CHECK(contains(s, "#2 neg (2) -> (2) node 3\n"));
}

TEST_CASE("changing in place an input a VJP reads makes backward throw, naming the op and the input") {
  TD x(Arr{1.0, 2.0, 3.0}, true);
  TD c(Arr{2.0, 2.0, 2.0});
  tg::Tape tape;
  const TD y = tg::sum(tg::mul(x, c));   // mul reads both inputs
  c.assign(Arr{5.0, 5.0, 5.0});
  const std::string m = message_of([&] { y.backward(); });
  INFO(m);
  CHECK(contains(m, "backward: input 1 (shape (3)) of 'mul' (#0 on the tape) was modified in place"));
  CHECK(contains(m, "version 0 -> 1"));
  CHECK_THROWS_AS(y.backward(), tg::UsageError);
  CHECK(!x.has_grad());

  // A leaf changed through mutable_value (what optimizers use).
  const TD z = tg::sum(tg::log(x));
  x.mutable_value()(0) = 4.0;
  CHECK(contains(message_of([&] { z.backward(); }), "input 0 (shape (3)) of 'log' (#2 on the tape)"));
}

TEST_CASE("changing the saved output of exp in place is caught too") {
  const TD x(Arr{0.5, 1.0}, true);
  tg::Tape tape;
  TD y = tg::exp(x);
  const TD loss = tg::sum(y * 3.0);
  y.mutable_value() *= 2.0;
  CHECK(contains(message_of([&] { loss.backward(); }), "the output (shape (2)) of 'exp' (#0 on the tape) was modified"));
}

TEST_CASE("ops whose VJP reads no value let their inputs change, and the gradient stays right") {
  TD x(Arr{1.0, 2.0}, true);
  TD c(Arr{3.0, 4.0});
  tg::Tape tape;
  const TD y = tg::sum(tg::add(x, c) * 2.0);
  c.assign(Arr{-1.0, -1.0});
  x.assign(Arr{9.0, 9.0});
  y.backward();
  CHECK(all_close(x.grad(), Arr{2.0, 2.0}));
}

TEST_CASE("an optimizer step between forward and a later backward is reported, not silently wrong") {
  tg::Linear<double> layer(3, 2);
  const TD input = leaf({4, 3}, 2);
  layer.zero_grad();
  tg::Tape tape;
  const TD loss = tg::sum(layer(input));
  loss.backward();
  tg::SGD<double>(layer.parameters(), 0.1).step();   // the step, then a second backward

  const std::string m = message_of([&] { loss.backward(); });
  CHECK(contains(m, "of 'matmul' (#0 on the tape) was modified in place"));
}

TEST_CASE("the tape accounts its bytes; released and destroyed entries give them back") {
  const tg::MemoryStats before = tg::memory_stats();
  const TD x = leaf({100}, 3);
  {
    tg::Tape tape;
    CHECK(tape.bytes() == 0);
    const TD y = tg::exp(x);   // keeps its 100-double output
    const std::size_t one = tape.bytes();
    CHECK(one >= 100 * sizeof(double));
    const TD z = tg::sum(y * x);   // mul keeps both inputs; sum keeps nothing
    CHECK(tape.bytes() >= one + 200 * sizeof(double));
    CHECK(tg::memory_stats().tape_entries == before.tape_entries + 3);
    CHECK(tg::memory_stats().tape_bytes == before.tape_bytes + tape.bytes());
    const std::size_t full = tape.bytes();
    z.backward(/*retain_graph=*/false);
    CHECK(tape.bytes() <= full - 300 * sizeof(double));   // saved values released
    CHECK(tg::memory_stats().tape_bytes == before.tape_bytes + tape.bytes());
  }
  CHECK(tg::memory_stats().tape_entries == before.tape_entries);
  CHECK(tg::memory_stats().tape_bytes == before.tape_bytes);
}

TEST_CASE("a tape and what it recorded cannot be used from another thread") {
  const TD x = leaf({3}, 4);
  tg::Tape tape;
  const TD y = tg::sum(tg::exp(x));
  std::string backward_error, op_error, size_error;
  std::thread other([&] {
    backward_error = message_of([&] { y.backward(); });
    tg::Tape own;
    op_error = message_of([&] { tg::exp(y); });
    size_error = message_of([&] { tape.size(); });
  });
  other.join();
  CHECK(contains(backward_error, "backward: the tensor of shape () was recorded on tape #"));
  CHECK(contains(backward_error, "which belongs to another thread"));
  CHECK(contains(op_error, "exp: input 0 of shape () was recorded on another tape (#"));
  CHECK(contains(op_error, "which belongs to another thread"));
  CHECK(contains(size_error, "Tape::size: tape #"));
  CHECK(!x.has_grad());
  y.backward();   // on its own thread it works
  CHECK(x.has_grad());
}
