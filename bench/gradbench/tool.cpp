// tapegrad-gradbench: tapegrad as a GradBench tool. Speaks GradBench's JSON-Lines protocol on
// stdin/stdout (diagnostics on stderr) and exits 0 at end of input, 2 on a malformed line.
// One thread, as GradBench's C++ tools run; with --multithreaded (GradBench's flag for tools that
// use threads), the evals run under tg::Parallel on every core.
#include <malloc.h>

#include <algorithm>
#include <iostream>
#include <string>
#include <thread>

#include <tapegrad/core/parallel.hpp>

#include "protocol.hpp"

int main(int argc, char** argv) {
  bool multithreaded = false;
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    if (arg == "--multithreaded") {
      multithreaded = true;
      continue;
    }
    const bool help = arg == "--help" || arg == "-h";
    std::cerr << (help ? "" : "tapegrad-gradbench: unexpected argument '" + arg + "'\n")
              << "usage: tapegrad-gradbench [--multithreaded] < messages.jsonl\n"
                 "Answers GradBench's messages (one JSON object per line) on standard output; every eval is\n"
                 "implemented: ba, det, gmm, hello, ht, kmeans, llsq, lse, lstm, ode, particle, saddle.\n"
                 "One thread; --multithreaded splits tapegrad's\n"
                 "kernels over every core (tg::Parallel). Under GradBench: gradbench run --eval lse\n"
                 "--tool '<path>/tapegrad-gradbench'\n";
    return help ? 0 : 2;
  }
  // The same allocator settings as bench/gradbench/pytorch_tool.py: freed memory stays in the
  // process (gmm's 50 MB arrays were otherwise mapped afresh each run: page faults took half of
  // its time), and no fastbins (their consolidation took a fifth of lstm's, freeing the tape).
  mallopt(M_MMAP_THRESHOLD, 512 << 20);
  mallopt(M_TRIM_THRESHOLD, 1 << 30);
  mallopt(M_MXFAST, 0);
  std::ios::sync_with_stdio(false);
  const int threads = multithreaded ? std::clamp(int(std::thread::hardware_concurrency()), 1, 1024) : 1;
  tapegrad::Parallel parallel(threads);   // OpenBLAS on one thread; one thread runs inline
  return gradbench::serve(std::cin, std::cout, std::cerr, threads);
}
