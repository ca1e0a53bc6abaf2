#include "module.hpp"

#include <algorithm>

namespace tapegrad {

template <class T>
void Module<T>::collect(const std::string& prefix, std::vector<std::pair<std::string, Tensor<T>>>& out) const {
  for (const auto& named : parameters_) {
    const auto& impl = named.second.impl();   // not a structured binding: C++17 lambdas can't capture one
    const bool seen = std::any_of(out.begin(), out.end(), [&](const auto& e) { return e.second.impl() == impl; });
    if (!seen) out.emplace_back(prefix + named.first, named.second);
  }
  for (const auto& [name, child] : children_) child->collect(prefix + name + ".", out);
}

template <class T>
std::vector<std::pair<std::string, Tensor<T>>> Module<T>::named_parameters() const {
  std::vector<std::pair<std::string, Tensor<T>>> all;
  collect("", all);
  return all;
}

template <class T>
std::vector<Tensor<T>> Module<T>::parameters() const {
  std::vector<Tensor<T>> all;
  for (auto& [name, p] : named_parameters()) all.push_back(p);
  return all;
}

template <class T>
void Module<T>::train(bool on) {
  training_ = on;
  for (auto& [name, child] : children_) child->train(on);
}

template <class T>
void Module<T>::zero_grad() {
  for (auto& p : parameters()) p.clear_grad();
}

template <class T>
void Module<T>::check_new_name(const std::string& name) const {
  if (name.empty() || name.find('.') != std::string::npos)
    throw_value_error("Module", "name '" + name + "' must be non-empty and contain no '.'");
  for (const auto& [n, p] : parameters_)
    if (n == name) throw_value_error("Module", "a parameter named '" + name + "' is already registered");
  for (const auto& [n, c] : children_)
    if (n == name) throw_value_error("Module", "a sub-module named '" + name + "' is already registered");
}

template <class T>
Tensor<T> Module<T>::register_parameter(const std::string& name, xt::xarray<T> value) {
  check_new_name(name);
  Tensor<T> p(std::move(value), true);
  parameters_.emplace_back(name, p);
  return p;
}

template <class T>
void Module<T>::register_module(const std::string& name, std::shared_ptr<Module<T>> module) {
  if (!module) throw_value_error("Module", "sub-module '" + name + "' is null");
  check_new_name(name);
  children_.emplace_back(name, std::move(module));
}

template <class T>
Sequential<T>& Sequential<T>::add(std::shared_ptr<Module<T>> module) {
  this->register_module(std::to_string(modules_.size()), module);
  modules_.push_back(std::move(module));
  return *this;
}

template <class T>
Tensor<T> Sequential<T>::forward(const Tensor<T>& x) {
  Tensor<T> y = x;
  for (auto& m : modules_) y = m->forward(y);
  return y;
}

template class Module<float>;
template class Module<double>;
template class Sequential<float>;
template class Sequential<double>;

}  // namespace tapegrad
