// Module: a callable with named parameters and sub-modules; Sequential chains modules.
#ifndef TAPEGRAD_LAYERS_MODULE_HPP
#define TAPEGRAD_LAYERS_MODULE_HPP

#include <memory>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include "../core/random.hpp"
#include "../core/tape.hpp"

namespace tapegrad {

// A state (Module::state_dict) in another element type: a float model's state for a double model
// of the same construction (to check its gradients in double: build it, then
// double_model.load_state_dict(cast_state<double>(model.state_dict()))), or back.
template <class U, class T>
StateDict<U> cast_state(const StateDict<T>& state) {
  StateDict<U> out;
  for (const auto& [name, value] : state) out.emplace_back(name, xt::xarray<U>(xt::cast<U>(value)));
  return out;
}

template <class T>
class Module;
// A fresh module of one configuration, in float or in double (Module::remake): one of the two is set.
struct Remade {
  std::shared_ptr<Module<float>> as_float;
  std::shared_ptr<Module<double>> as_double;
  // as_float or as_double, by element type.
  template <class U>
  const std::shared_ptr<Module<U>>& as() const {
    if constexpr (std::is_same_v<U, double>) return as_double;
    else return as_float;
  }
};
// remake()'s body for a module class template M built from `args`: M<double>(args...) or M<float>(args...).
template <template <class> class M, class... Args>
Remade remade(bool in_double, const Args&... args) {
  Remade r;
  if (in_double) r.as_double = std::make_shared<M<double>>(args...);
  else r.as_float = std::make_shared<M<float>>(args...);
  return r;
}

// The base of every layer and model: named parameters (trained), buffers (state that is not
// trained, as batch norm's running statistics), sub-modules, and a training flag.
//
// A module of one's own derives from it, registers its parameters and sub-modules in its
// constructor, and defines forward with whatever signature it needs: forward(const Tensor<T>&)
// overrides the virtual one that Sequential and operator() call; a forward of other arguments
// (several tensors in, a struct out) is a plain member function beside it. See the README.
template <class T>
class Module {
 public:
  using value_type = T;
  virtual ~Module() = default;
  // The one-tensor forward. A module that does not override it (its forward takes other
  // arguments) throws a UsageError naming it when called this way.
  virtual Tensor<T> forward(const Tensor<T>& x);
  Tensor<T> operator()(const Tensor<T>& x) { return forward(x); }
  // The module's class name, as messages print it ("Linear"; a class of one's own may override it).
  virtual std::string name() const;

  // Own parameters first, in registration order, then each sub-module's, prefixed "name.".
  // A tensor reachable by several paths (a shared layer) is listed once, under its first name.
  std::vector<std::pair<std::string, Tensor<T>>> named_parameters() const;
  std::vector<Tensor<T>> parameters() const;
  // Buffers likewise: tensors without gradient that forward reads or updates in place.
  std::vector<std::pair<std::string, Tensor<T>>> named_buffers() const;
  std::vector<Tensor<T>> buffers() const;
  const std::vector<std::pair<std::string, std::shared_ptr<Module<T>>>>& named_children() const { return children_; }
  // Copies of every parameter's and buffer's value, by name (parameters first).
  StateDict<T> state_dict() const;
  // Sets every parameter and buffer from `state`, which must hold each of them once with its shape
  // and nothing else; otherwise a ValueError names the entry and nothing changes.
  void load_state_dict(const StateDict<T>& state);
  // Training mode (the default) or evaluation mode, for this module and its sub-modules.
  void train(bool on = true);
  void eval() { train(false); }
  bool is_training() const { return training_; }
  // Drops every parameter's gradient (as PyTorch's zero_grad(set_to_none=True)): optimizers then
  // skip the parameters the next backward does not reach.
  void zero_grad();
  // A deep copy: the same configuration and mode, its own parameters and buffers with this one's
  // values. (A module held twice inside another, as a Sequential of one layer added twice, comes
  // out as two copies: the sharing is not kept.) Modules cannot be copied otherwise: a copy would
  // share the parameters unseen. The default is to<T>().
  virtual std::shared_ptr<Module<T>> clone() const;
  // The same model in element type U (float or double): a module of this one's configuration and
  // mode whose parameters and buffers hold this one's values, converted (model.to<double>() to
  // check a float model's gradients in double). Every built-in module has it and clone(); a
  // module of one's own gets both by overriding remake, else they throw a UsageError naming it.
  template <class U>
  std::shared_ptr<Module<U>> to() const {
    static_assert(std::is_same_v<U, float> || std::is_same_v<U, double>, "Module::to: float or double");
    return converted(std::is_same_v<U, double>).template as<U>();
  }
  // A fresh module of this one's configuration (its initial values are replaced after), in double
  // if in_double, else in float: `return remade<MyModule>(in_double, its constructor's arguments);`.
  virtual Remade remake(bool in_double) const;

 protected:
  Module() = default;
  Module(const Module&) = delete;
  Module& operator=(const Module&) = delete;
  Module(Module&&) = default;
  Module& operator=(Module&&) = default;
  // to()'s work: remake (its random initial values drawn without moving the thread's generator),
  // then this one's state, converted, and mode. Sequential converts module by module.
  virtual Remade converted(bool in_double) const;
  // clone()'s common part, for a module that overrides clone() rather than remake(): `make` builds
  // a module of the same configuration, which then gets this one's state and mode.
  template <class Make>
  std::shared_ptr<Module<T>> clone_from(Make make) const {
    std::shared_ptr<Module<T>> fresh;
    {
      ManualSeed untouched(0);   // the thread's generator is restored after
      fresh = make();
    }
    fresh->load_state_dict(state_dict());
    fresh->train(is_training());
    return fresh;
  }
  // Registers a parameter (requires_grad is set) and returns its handle.
  Tensor<T> register_parameter(const std::string& name, xt::xarray<T> value);
  // Registers a buffer (no gradient) and returns its handle; update it in place (Tensor::assign).
  Tensor<T> register_buffer(const std::string& name, xt::xarray<T> value);
  void register_module(const std::string& name, std::shared_ptr<Module<T>> module);

 private:
  using Named = std::vector<std::pair<std::string, Tensor<T>>>;
  void check_new_name(const std::string& name) const;
  void collect(const std::string& prefix, Named Module::*list, Named& out) const;
  Named parameters_, buffers_;
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
  // Module by module: each keeps its own clone() (a module of one's own may override clone alone).
  std::shared_ptr<Module<T>> clone() const override;
  Remade remake(bool in_double) const override;

 protected:
  Remade converted(bool in_double) const override;

 private:
  std::vector<std::shared_ptr<Module<T>>> modules_;
};

extern template class Module<float>;
extern template class Module<double>;
extern template class Sequential<float>;
extern template class Sequential<double>;

}  // namespace tapegrad

#endif
