// tapegrad-gradbench: tapegrad as a GradBench tool. Speaks GradBench's JSON-Lines protocol on
// stdin/stdout (diagnostics on stderr) and exits 0 at end of input, 2 on a malformed line.
// Single-threaded, as GradBench's C++ tools run.
#include <malloc.h>

#include <iostream>
#include <string>

#include <tapegrad/ops/linalg.hpp>

#include "protocol.hpp"

int main(int argc, char** argv) {
  if (argc > 1) {
    const std::string arg = argv[1];
    std::cerr << (arg == "--help" || arg == "-h" ? "" : "tapegrad-gradbench: unexpected argument '" + arg + "'\n")
              << "usage: tapegrad-gradbench < messages.jsonl\n"
                 "Answers GradBench's messages (one JSON object per line) on standard output; the evals hello,\n"
                 "lse, llsq, ode, gmm and lstm are implemented. Under GradBench: gradbench run --eval lse\n"
                 "--tool '<path>/tapegrad-gradbench'\n";
    return arg == "--help" || arg == "-h" ? 0 : 2;
  }
  // The same allocator settings as bench/gradbench/pytorch_tool.py: freed memory stays in the
  // process (gmm's 50 MB arrays were otherwise mapped afresh each run: page faults took half of
  // its time), and no fastbins (their consolidation took a fifth of lstm's, freeing the tape).
  mallopt(M_MMAP_THRESHOLD, 512 << 20);
  mallopt(M_TRIM_THRESHOLD, 1 << 30);
  mallopt(M_MXFAST, 0);
  std::ios::sync_with_stdio(false);
  tapegrad::set_num_threads(1);
  return gradbench::serve(std::cin, std::cout, std::cerr);
}
