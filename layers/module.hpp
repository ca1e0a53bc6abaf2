// Module: a callable with named parameters and sub-modules; Sequential chains modules.
#ifndef TAPEGRAD_LAYERS_MODULE_HPP
#define TAPEGRAD_LAYERS_MODULE_HPP

#include <memory>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include "../core/tape.hpp"

namespace tapegrad {

template <class T>
class Module {
 public:
  virtual ~Module() = default;
  virtual Tensor<T> forward(const Tensor<T>& x) = 0;
  Tensor<T> operator()(const Tensor<T>& x) { return forward(x); }

  // Own parameters first, in registration order, then each sub-module's, prefixed "name.".
  // A tensor reachable by several paths (a shared layer) is listed once, under its first name.
  std::vector<std::pair<std::string, Tensor<T>>> named_parameters() const;
  std::vector<Tensor<T>> parameters() const;
  // Training mode (the default) or evaluation mode, for this module and its sub-modules.
  void train(bool on = true);
  void eval() { train(false); }
  bool is_training() const { return training_; }
  // Drops every parameter's gradient (as PyTorch's zero_grad(set_to_none=True)): optimizers then
  // skip the parameters the next backward does not reach.
  void zero_grad();

 protected:
  Module() = default;
  Module(const Module&) = default;
  Module& operator=(const Module&) = default;
  // Registers a parameter (requires_grad is set) and returns its handle.
  Tensor<T> register_parameter(const std::string& name, xt::xarray<T> value);
  void register_module(const std::string& name, std::shared_ptr<Module<T>> module);

 private:
  void check_new_name(const std::string& name) const;
  void collect(const std::string& prefix, std::vector<std::pair<std::string, Tensor<T>>>& out) const;
  std::vector<std::pair<std::string, Tensor<T>>> parameters_;
  std::vector<std::pair<std::string, std::shared_ptr<Module<T>>>> children_;
  bool training_ = true;
};

// Applies its modules in order; sub-modules are named "0", "1", ...
template <class T>
class Sequential : public Module<T> {
 public:
  Sequential() = default;
  // Sequential<float>(Linear<float>(4, 8), ReLU<float>(), ...): each module is moved in.
  template <class... Modules, class = std::enable_if_t<(sizeof...(Modules) > 0) &&
                                                       (std::is_base_of_v<Module<T>, std::decay_t<Modules>> && ...)>>
  explicit Sequential(Modules&&... modules) {
    (add(std::make_shared<std::decay_t<Modules>>(std::forward<Modules>(modules))), ...);
  }
  Sequential& add(std::shared_ptr<Module<T>> module);
  std::size_t size() const { return modules_.size(); }
  Module<T>& operator[](std::size_t i) const { return *modules_.at(i); }
  Tensor<T> forward(const Tensor<T>& x) override;

 private:
  std::vector<std::shared_ptr<Module<T>>> modules_;
};

extern template class Module<float>;
extern template class Module<double>;
extern template class Sequential<float>;
extern template class Sequential<double>;

}  // namespace tapegrad

#endif
