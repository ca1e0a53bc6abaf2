#include "errors.hpp"

namespace tapegrad {

std::string shape_str(const Shape& shape) {
  std::string s = "(";
  for (std::size_t i = 0; i < shape.size(); ++i) {
    if (i) s += ", ";
    s += std::to_string(shape[i]);
  }
  return s + ")";
}

void throw_shape_error(const std::string& op, const std::string& message) {
  throw ShapeError(op + ": " + message);
}

void throw_value_error(const std::string& op, const std::string& message) {
  throw ValueError(op + ": " + message);
}

void throw_usage_error(const std::string& op, const std::string& message) {
  throw UsageError(op + ": " + message);
}

}  // namespace tapegrad
