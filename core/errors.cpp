#include "errors.hpp"

#include <charconv>

namespace tapegrad {

std::string shape_str(const Shape& shape) {
  std::string s = "(";
  for (std::size_t i = 0; i < shape.size(); ++i) {
    if (i) s += ", ";
    s += std::to_string(shape[i]);
  }
  return s + ")";
}

namespace {
template <class V>
std::string shortest(V value) {
  char text[64];
  return std::string(text, std::to_chars(text, text + sizeof text, value).ptr);
}
}  // namespace

std::string number_str(double value) { return shortest(value); }
std::string number_str(float value) { return shortest(value); }

Shape unravel_index(std::size_t flat, const Shape& shape) {
  Shape index(shape.size());
  for (std::size_t k = shape.size(); k-- > 0;) {
    index[k] = shape[k] ? flat % shape[k] : 0;
    flat = shape[k] ? flat / shape[k] : 0;
  }
  return index;
}

void throw_shape_error(std::string_view op, const std::string& message) {
  throw ShapeError(std::string(op) + ": " + message);
}

void throw_value_error(std::string_view op, const std::string& message) {
  throw ValueError(std::string(op) + ": " + message);
}

void throw_usage_error(std::string_view op, const std::string& message) {
  throw UsageError(std::string(op) + ": " + message);
}

}  // namespace tapegrad
