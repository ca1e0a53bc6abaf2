// The exceptions tapegrad throws, and the helpers that format their messages.
// Every message reads "<op>: <what was wrong> <shapes or values>".
#ifndef TAPEGRAD_CORE_ERRORS_HPP
#define TAPEGRAD_CORE_ERRORS_HPP

#include <cstddef>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

namespace tapegrad {

using Shape = std::vector<std::size_t>;

// Shapes that do not fit the op (wrong rank, incompatible dimensions).
class ShapeError : public std::invalid_argument {
 public:
  using std::invalid_argument::invalid_argument;
};

// Values that do not fit the op (a stride of 0, a label out of range, an axis out of range).
class ValueError : public std::invalid_argument {
 public:
  using std::invalid_argument::invalid_argument;
};

// Autodiff used the wrong way (backward with no tape, tensors of two tapes, a released tape).
class UsageError : public std::logic_error {
 public:
  using std::logic_error::logic_error;
};

// A file that cannot be read or written, or whose content is not what it should be.
class IoError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// A NaN or Inf produced by an op or by its VJP while tg::DetectAnomaly is alive.
class AnomalyError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// "(2, 3)"; a 1-D shape prints as "(3)", a scalar as "()".
std::string shape_str(const Shape& shape);

// A number as messages print it: the shortest form that reads back as the same value ("0.1",
// "-1", "100", "1e-08", "inf", "nan"; a float as a float: 0.1f is "0.1"), whatever the locale,
// never std::to_string's six fixed decimals.
std::string number_str(double value);
std::string number_str(float value);

// The multi-index of element `flat` of a row-major array of `shape`: (1, 2) for flat 5 of (2, 3).
Shape unravel_index(std::size_t flat, const Shape& shape);

// "op: message"
[[noreturn]] void throw_shape_error(std::string_view op, const std::string& message);
[[noreturn]] void throw_value_error(std::string_view op, const std::string& message);
[[noreturn]] void throw_usage_error(std::string_view op, const std::string& message);

}  // namespace tapegrad

#endif
