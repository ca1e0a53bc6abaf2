#include "module.hpp"

#include <algorithm>
#include <cstdlib>
#include <cxxabi.h>
#include <typeinfo>

namespace tapegrad {

template <class T>
Tensor<T> Module<T>::forward(const Tensor<T>&) {
  throw_usage_error(name(), "has no forward of one tensor: call its own forward (its arguments are others)");
}

template <class T>
std::shared_ptr<Module<T>> Module<T>::clone() const {
  return to<T>();
}

template <class T>
Remade Module<T>::remake(bool) const {
  throw_usage_error(name(), "does not override remake(), which clone() and to() build on: "
                            "return remade<ItsClass>(in_double, its constructor's arguments) (see Module::remake)");
}

template <class T>
Remade Module<T>::converted(bool in_double) const {
  Remade r;
  {
    ManualSeed untouched(0);   // the thread's generator is restored after
    r = remake(in_double);
  }
  const auto fill = [&](auto& m) {
    using U = typename std::decay_t<decltype(*m)>::value_type;
    if (!m)
      throw_usage_error(name(), std::string("remake(") + (in_double ? "true" : "false") + ") gave no module of " +
                                    (in_double ? "double" : "float") + " (a module of one element type only converts to it)");
    m->load_state_dict(cast_state<U>(state_dict()));
    m->train(is_training());
  };
  if (in_double) fill(r.as_double);
  else fill(r.as_float);
  return r;
}

template <class T>
std::string Module<T>::name() const {
  std::string raw = typeid(*this).name();
  int status = 0;
  std::unique_ptr<char, void (*)(void*)> demangled(abi::__cxa_demangle(raw.c_str(), nullptr, nullptr, &status), std::free);
  if (status == 0 && demangled) raw = demangled.get();
  // "tapegrad::Linear<float>" -> "Linear"
  const std::size_t angle = raw.find('<');
  if (angle != std::string::npos) raw.erase(angle);
  const std::size_t colon = raw.rfind("::");
  return colon == std::string::npos ? raw : raw.substr(colon + 2);
}

template <class T>
void Module<T>::collect(const std::string& prefix, Named Module::*list, Named& out) const {
  for (const auto& named : this->*list) {
    const auto& impl = named.second.impl();   // not a structured binding: C++17 lambdas can't capture one
    const bool seen = std::any_of(out.begin(), out.end(), [&](const auto& e) { return e.second.impl() == impl; });
    if (!seen) out.emplace_back(prefix + named.first, named.second);
  }
  for (const auto& [child_name, child] : children_) child->collect(prefix + child_name + ".", list, out);
}

template <class T>
std::vector<std::pair<std::string, Tensor<T>>> Module<T>::named_parameters() const {
  Named all;
  collect("", &Module::parameters_, all);
  return all;
}

template <class T>
std::vector<Tensor<T>> Module<T>::parameters() const {
  std::vector<Tensor<T>> all;
  for (auto& [n, p] : named_parameters()) all.push_back(p);
  return all;
}

template <class T>
std::vector<std::pair<std::string, Tensor<T>>> Module<T>::named_buffers() const {
  Named all;
  collect("", &Module::buffers_, all);
  return all;
}

template <class T>
std::vector<Tensor<T>> Module<T>::buffers() const {
  std::vector<Tensor<T>> all;
  for (auto& [n, b] : named_buffers()) all.push_back(b);
  return all;
}

template <class T>
StateDict<T> Module<T>::state_dict() const {
  StateDict<T> state;
  for (const auto& [n, p] : named_parameters()) state.emplace_back(n, p.value());
  for (const auto& [n, b] : named_buffers()) state.emplace_back(n, b.value());
  return state;
}

template <class T>
void Module<T>::load_state_dict(const StateDict<T>& state) {
  Named targets = named_parameters();
  for (auto& named : named_buffers()) targets.push_back(named);
  // Everything is checked before anything changes.
  std::vector<const xt::xarray<T>*> values(targets.size(), nullptr);
  for (const auto& named : state) {
    const std::string& entry = named.first;   // not a structured binding: C++17 lambdas can't capture one
    const xt::xarray<T>& value = named.second;
    const auto it = std::find_if(targets.begin(), targets.end(), [&](const auto& t) { return t.first == entry; });
    if (it == targets.end()) throw_value_error("load_state_dict", "entry '" + entry + "' matches no parameter or buffer of " + name());
    const std::size_t i = static_cast<std::size_t>(it - targets.begin());
    if (values[i]) throw_value_error("load_state_dict", "entry '" + entry + "' appears twice");
    const Shape got = detail::shape_of(value);
    if (got != it->second.shape())
      throw_value_error("load_state_dict", "entry '" + entry + "' has shape " + shape_str(got) + ", " + name() + "'s has shape " +
                                               shape_str(it->second.shape()));
    values[i] = &value;
  }
  for (std::size_t i = 0; i < targets.size(); ++i)
    if (!values[i]) throw_value_error("load_state_dict", "no entry for '" + targets[i].first + "'");
  for (std::size_t i = 0; i < targets.size(); ++i) targets[i].second.assign(*values[i]);
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
void Module<T>::check_new_name(const std::string& entry) const {
  if (entry.empty() || entry.find('.') != std::string::npos)
    throw_value_error(name(), "name '" + entry + "' must be non-empty and contain no '.'");
  for (const auto& [n, p] : parameters_)
    if (n == entry) throw_value_error(name(), "a parameter named '" + entry + "' is already registered");
  for (const auto& [n, b] : buffers_)
    if (n == entry) throw_value_error(name(), "a buffer named '" + entry + "' is already registered");
  for (const auto& [n, c] : children_)
    if (n == entry) throw_value_error(name(), "a sub-module named '" + entry + "' is already registered");
}

template <class T>
Tensor<T> Module<T>::register_parameter(const std::string& entry, xt::xarray<T> value) {
  check_new_name(entry);
  Tensor<T> p(std::move(value), true);
  parameters_.emplace_back(entry, p);
  return p;
}

template <class T>
Tensor<T> Module<T>::register_buffer(const std::string& entry, xt::xarray<T> value) {
  check_new_name(entry);
  Tensor<T> b(std::move(value));
  buffers_.emplace_back(entry, b);
  return b;
}

template <class T>
void Module<T>::register_module(const std::string& entry, std::shared_ptr<Module<T>> module) {
  if (!module) throw_value_error(name(), "sub-module '" + entry + "' is null");
  check_new_name(entry);
  children_.emplace_back(entry, std::move(module));
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

namespace {
// A Sequential of float or of double (in_double) holding part(module, element) for each module
// in order, element a value of the element type; in `mode`'s training mode if given.
template <class T, class Part>
Remade sequence_of(const std::vector<std::shared_ptr<Module<T>>>& modules, bool in_double, Part part,
                   const bool* mode = nullptr) {
  const auto build = [&](auto element) {
    auto s = std::make_shared<Sequential<decltype(element)>>();
    for (const auto& m : modules) s->add(part(*m, element));
    if (mode) s->train(*mode);
    return s;
  };
  Remade r;
  if (in_double) r.as_double = build(0.0);
  else r.as_float = build(0.0f);
  return r;
}
}  // namespace

template <class T>
Remade Sequential<T>::remake(bool in_double) const {
  return sequence_of(modules_, in_double, [](const Module<T>& m, auto element) {
    using U = decltype(element);
    return m.remake(std::is_same_v<U, double>).template as<U>();
  });
}

template <class T>
std::shared_ptr<Module<T>> Sequential<T>::clone() const {
  auto copy = std::make_shared<Sequential<T>>();
  for (const auto& m : modules_) copy->add(m->clone());
  copy->train(this->is_training());
  return copy;
}

// Module by module, each with its own state: a module held twice comes out as two.
template <class T>
Remade Sequential<T>::converted(bool in_double) const {
  const bool training = this->is_training();
  return sequence_of(
      modules_, in_double,
      [](const Module<T>& m, auto element) { return m.template to<decltype(element)>(); }, &training);
}

template class Module<float>;
template class Module<double>;
template class Sequential<float>;
template class Sequential<double>;

}  // namespace tapegrad
