// GradBench's JSON-Lines protocol (bench/gradbench/README.md): one message per line in, one
// response per line out, lock-step, until end of input.
#ifndef TAPEGRAD_BENCH_GRADBENCH_PROTOCOL_HPP
#define TAPEGRAD_BENCH_GRADBENCH_PROTOCOL_HPP

#include <iosfwd>

namespace gradbench {

// Answers every message read from `in` on `out` (flushed after each), diagnostics on `err`.
// Returns 0 at end of input, or 2 after a line that is not a protocol message (not JSON, not an
// object, no integer id or string kind, a define or evaluate without its fields); `err` then
// names the line and what is wrong. An evaluate that fails (unknown function, bad input) is
// answered with success: false and the error, and the session goes on. `threads` is what the
// start message's reply reports in its config (the caller runs the evals on them).
int serve(std::istream& in, std::ostream& out, std::ostream& err, int threads = 1);

}  // namespace gradbench

#endif
