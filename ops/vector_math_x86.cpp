// vector_math on x86-64: the SSE2 kernels (the baseline every x86-64 CPU has) compiled here, the
// AVX2 and AVX-512 ones in their own files, and the tables the CPU can run, from what it reports.
#include "vector_math_kernels.hpp"

namespace tapegrad {
namespace detail {

std::vector<NamedVectorMathTable> vector_math_tables() {
  const auto cpu = xsimd::available_architectures();
  std::vector<NamedVectorMathTable> tables;
  if (cpu.avx512f) tables.push_back({"AVX-512", avx512_vector_math()});
  if (cpu.fma3_avx2) tables.push_back({"AVX2 with FMA", avx2_vector_math()});
  tables.push_back({"SSE2", make_vector_math_table<xsimd::sse2>()});
  return tables;
}

}  // namespace detail
}  // namespace tapegrad
