// tapegrad: tape-based reverse-mode automatic differentiation on xtensor.
// The one header users include: #include <tapegrad/tapegrad.hpp>
#ifndef TAPEGRAD_TAPEGRAD_HPP
#define TAPEGRAD_TAPEGRAD_HPP

#include "core/errors.hpp"
#include "core/tensor.hpp"
#include "core/tape.hpp"
#include "core/forward.hpp"
#include "core/gradcheck.hpp"
#include "core/diagnose.hpp"
#include "core/parallel.hpp"
#include "core/random.hpp"
#include "ops/elementwise.hpp"
#include "ops/reduce.hpp"
#include "ops/shape.hpp"
#include "ops/linalg.hpp"
#include "ops/conv.hpp"
#include "ops/pool.hpp"
#include "ops/nn.hpp"
#include "ops/index.hpp"
#include "ops/recurrent.hpp"
#include "transforms/transforms.hpp"
#include "layers/init.hpp"
#include "layers/module.hpp"
#include "layers/layers.hpp"
#include "layers/recurrent.hpp"
#include "layers/optim.hpp"
#include "layers/data.hpp"
#include "io/numpy.hpp"
#include "io/idx.hpp"

#endif
