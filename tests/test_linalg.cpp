#include "helpers.hpp"

#include <cstdlib>

#include <xtensor/xview.hpp>

#include <tapegrad/ops/kernels.hpp>

namespace {
// C[b, i, j] = sum_l A[b, i, l] B[b, l, j], by loops, with broadcasting of a batch of 1.
Arr naive_matmul(const Arr& a, const Arr& b) {
  const std::size_t m = a.shape(0), k = a.shape(1), n = b.shape(1);
  Arr c = xt::zeros<double>({m, n});
  for (std::size_t i = 0; i < m; ++i)
    for (std::size_t j = 0; j < n; ++j)
      for (std::size_t l = 0; l < k; ++l) c(i, j) += a(i, l) * b(l, j);
  return c;
}
}  // namespace

TEST_CASE("matmul 2-D: values against a naive triple loop") {
  const Arr a = random_array({5, 7}, 50), b = random_array({7, 3}, 51);
  CHECK(all_close(tg::matmul(TD(a), TD(b)).value(), naive_matmul(a, b), 1e-12));
  const auto fa = xt::xarray<float>(xt::cast<float>(a)), fb = xt::xarray<float>(xt::cast<float>(b));
  CHECK(all_close(tg::matmul(TF(fa), TF(fb)).value(), naive_matmul(a, b), 1e-5));
}

TEST_CASE("matmul batched with broadcast leading dimensions, and 1-D operands") {
  const Arr a = random_array({2, 1, 4, 3}, 52), b = random_array({5, 3, 2}, 53);
  const TD c = tg::matmul(TD(a), TD(b));
  REQUIRE(c.shape() == tg::Shape{2, 5, 4, 2});
  for (std::size_t i = 0; i < 2; ++i)
    for (std::size_t j = 0; j < 5; ++j) {
      const Arr expected = naive_matmul(xt::view(a, i, 0), xt::view(b, j));
      CHECK(all_close(Arr(xt::view(c.value(), i, j)), expected, 1e-12));
    }
  const Arr v = random_array({3}, 54), m = random_array({3, 4}, 55);
  const TD vm = tg::matmul(TD(v), TD(m));
  CHECK(vm.shape() == tg::Shape{4});
  CHECK(vm.value()(2) == doctest::Approx(v(0) * m(0, 2) + v(1) * m(1, 2) + v(2) * m(2, 2)).epsilon(1e-13));
  CHECK(tg::matmul(TD(m), TD(random_array({4}, 56))).shape() == tg::Shape{3});
  CHECK(tg::matmul(TD(v), TD(v)).item() == doctest::Approx(xt::sum(v * v)()).epsilon(1e-13));
  // k = 0 gives zeros; empty batches give empty results.
  CHECK(all_close(tg::matmul(TD(Arr::from_shape({2, 0})), TD(Arr::from_shape({0, 3}))).value(),
                  Arr(xt::zeros<double>({2, 3}))));
}

TEST_CASE("matmul where libxsmm's kernels take the product: values and gradients against naive loops") {
  // Shapes inside detail::prefers_jit_gemm (a batch of 64 times a 784 x 256 weight; its weight
  // gradient, k = 64; 100 columns: one block of 64 and a tail of 36; 32 columns, one narrow
  // block) and one outside it (1024 x 1024 first factor), in both types, each operand transposed.
  // Products beyond 2^18 multiply-adds go to the kernels only with OpenBLAS on one thread (ctest
  // starts it on all cores), and none does in a build without libxsmm.
  const BlasThreads one_blas_thread(1);
  struct Case { std::size_t m, k, n; bool inside; };
  for (const Case c : {Case{64, 784, 256, true}, Case{784, 64, 256, true}, Case{64, 300, 100, true},
                       Case{1000, 64, 32, true}, Case{1024, 1024, 96, false}})
    for (bool ta : {false, true})
      for (bool tb : {false, true}) {
        CAPTURE(c.m);
        CAPTURE(c.k);
        CAPTURE(c.n);
        CAPTURE(ta);
        CAPTURE(tb);
        CHECK(tg::detail::prefers_jit_gemm(tb, c.m, c.n, c.k, sizeof(double)) == (c.inside && !tb && tg::detail::jit_gemm_built()));
        const Arr a = random_array({c.m, c.k}, 72), b = random_array({c.k, c.n}, 73);
        const Arr stored_a = ta ? Arr(xt::transpose(a)) : a, stored_b = tb ? Arr(xt::transpose(b)) : b;
        const Arr expected = naive_matmul(a, b);
        CHECK(all_close(tg::matmul(TD(stored_a), TD(stored_b), ta, tb).value(), expected, 1e-12));
        const xt::xarray<float> fa = xt::cast<float>(stored_a), fb = xt::cast<float>(stored_b);
        CHECK(all_close(tg::matmul(TF(fa), TF(fb), ta, tb).value(), expected, 1e-4));
        if (c.m * c.k > 100000) continue;   // the naive gradients below would take seconds
        // d/dA sum(W * AB) = W B^T and d/dB = A^T W, stored transposed where the operand was.
        const Arr weights = random_array({c.m, c.n}, 74);
        const TD ta_leaf(stored_a, true), tb_leaf(stored_b, true);
        tg::Tape tape;
        tg::sum(tg::matmul(ta_leaf, tb_leaf, ta, tb) * TD(weights)).backward();
        const Arr da = naive_matmul(weights, xt::transpose(b)), db = naive_matmul(xt::transpose(a), weights);
        CHECK(all_close(ta_leaf.grad(), ta ? Arr(xt::transpose(da)) : da, 1e-11));
        CHECK(all_close(tb_leaf.grad(), tb ? Arr(xt::transpose(db)) : db, 1e-11));
      }
}

TEST_CASE("detail::jit_gemm: beta 0 and 1, A transposed or not, wide leading dimensions, and what it refuses") {
  // C (70 x 130, in a 70 x 140 array) = op(A) (70 x k; A in a 70 x (k + 10) array, or A^T in a
  // k x 80 one) B (k x 130, in k x 150) + beta C; k = 90 in one slice of the kernels' depth,
  // k = 600 in three (256, 256, 88), each after the first adding to C.
  const std::size_t m = 70, n = 130, ldb = 150, ldc = 140;
  for (const std::size_t k : {90, 600})
    for (const bool ta : {false, true}) {
      const Arr b_store = random_array({k, ldb}, 76), c_store = random_array({m, ldc}, 77);
      const Arr b = xt::view(b_store, xt::all(), xt::range(0, n));
      const Arr c_inside = xt::view(c_store, xt::all(), xt::range(0, n));
      const Arr c_outside = xt::view(c_store, xt::all(), xt::range(n, ldc));
      const std::size_t lda = ta ? 80 : k + 10;
      const Arr a_store = ta ? random_array({k, lda}, 75) : random_array({m, lda}, 75);
      const Arr a = ta ? Arr(xt::transpose(xt::view(a_store, xt::all(), xt::range(0, m))))
                       : Arr(xt::view(a_store, xt::all(), xt::range(0, k)));
      const Arr product = naive_matmul(a, b);
      for (const double beta : {0.0, 1.0}) {
        CAPTURE(k);
        CAPTURE(ta);
        CAPTURE(beta);
        Arr c = c_store;
        const bool ran =
            tg::detail::jit_gemm(ta, false, m, n, k, a_store.data(), lda, b_store.data(), ldb, beta, c.data(), ldc);
        // Where the library was built with libxsmm (as CMake found it) the kernels must run.
        CHECK(tg::detail::jit_gemm_built() == TAPEGRAD_TESTS_EXPECT_JIT);
        CHECK(ran == tg::detail::jit_gemm_built());
        if (!ran) continue;   // a build without libxsmm: nothing to check here, BLAS does it all
        CHECK(all_close(Arr(xt::view(c, xt::all(), xt::range(0, n))), product + beta * c_inside, 1e-12));
        CHECK(Arr(xt::view(c, xt::all(), xt::range(n, ldc))) == c_outside);   // the padding is not written
      }
    }
  const std::size_t k = 90;
  const Arr b_store = random_array({k, ldb}, 76), c_store = random_array({m, ldc}, 77);
  // A transposed B and a beta other than 0 or 1 have no kernel: false, and C is left as it was.
  const Arr a_store = random_array({m, 100}, 75);
  Arr c = c_store;
  CHECK_FALSE(tg::detail::jit_gemm(false, true, m, n, k, a_store.data(), 100, b_store.data(), ldb, 0.0, c.data(), ldc));
  CHECK_FALSE(tg::detail::jit_gemm(false, false, m, n, k, a_store.data(), 100, b_store.data(), ldb, 0.5, c.data(), ldc));
  CHECK(c == c_store);
}

TEST_CASE("matmul: gradients, 2-D, batched with broadcasting, transposed, 1-D") {
  check_gradients([](const Inputs& in) { return tg::matmul(in[0], in[1]); }, {leaf({3, 4}, 57), leaf({4, 2}, 58)});
  check_gradients([](const Inputs& in) { return tg::matmul(in[0], in[1]); },
                  {leaf({2, 1, 3, 4}, 59), leaf({3, 4, 2}, 60)});
  for (bool ta : {false, true})
    for (bool tb : {false, true}) {
      CAPTURE(ta);
      CAPTURE(tb);
      const TD a = ta ? leaf({4, 3}, 61) : leaf({3, 4}, 61);
      const TD b = tb ? leaf({2, 4}, 62) : leaf({4, 2}, 62);
      check_gradients([=](const Inputs& in) { return tg::matmul(in[0], in[1], ta, tb); }, {a, b});
    }
  check_gradients([](const Inputs& in) { return tg::matmul(in[0], in[1]); }, {leaf({4}, 63), leaf({2, 4, 3}, 64)});
  check_gradients([](const Inputs& in) { return tg::matmul(in[0], in[1]); }, {leaf({3, 4}, 65), leaf({4}, 66)});
  // Only one operand requires grad: the other is a constant.
  const TD constant(random_array({4, 2}, 67));
  check_gradients([&](const Inputs& in) { return tg::matmul(in[0], constant); }, {leaf({3, 4}, 68)});
}

TEST_CASE("matmul: second derivative, Hessian-vector product of x^T A x") {
  // f(x) = x^T A x: grad = (A + A^T) x, Hessian = A + A^T, so H v = (A + A^T) v.
  const Arr a = random_array({4, 4}, 69), v = random_array({4}, 70);
  const TD x = leaf({4}, 71);
  tg::Tape tape;
  const TD f = tg::matmul(x, tg::matmul(TD(a), x));
  const TD g = tg::grad(f, {x}, true)[0];
  const Arr sym = a + xt::transpose(a);
  auto matvec = [](const Arr& m, const Arr& u) {
    Arr r = xt::zeros<double>({m.shape(0)});
    for (std::size_t i = 0; i < m.shape(0); ++i)
      for (std::size_t j = 0; j < m.shape(1); ++j) r(i) += m(i, j) * u(j);
    return r;
  };
  CHECK(all_close(g.value(), matvec(sym, x.value()), 1e-12));
  // H v = d/dx (grad . v)
  const TD hv = tg::grad(tg::sum(g * TD(v)), {x})[0];
  CHECK(all_close(hv.value(), matvec(sym, v), 1e-12));
}
