// The backpropagation notes (docs/derivations.md gives each formula N1-N18 as written) as code: one header per section with the
// hand-derived formulas as written and corrected, and the three-way check of all of them.
#ifndef TAPEGRAD_NOTES_NOTES_HPP
#define TAPEGRAD_NOTES_NOTES_HPP

#include "avg_pool.hpp"
#include "check.hpp"
#include "convolution.hpp"
#include "fully_connected.hpp"
#include "softmax_output.hpp"

#endif
