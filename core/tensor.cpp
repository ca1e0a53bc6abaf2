#include "tensor.hpp"

#include <algorithm>
#include <atomic>
#include <mutex>
#include <ostream>

#include <xtensor/xio.hpp>

namespace tapegrad {

namespace detail {
namespace {
constexpr std::size_t kinds = 3;   // the Counted values

// A thread's counts: written by that thread only (a relaxed load and store, no locked
// instruction), read by memory_stats on any thread.
struct ThreadCounts {
  std::atomic<std::ptrdiff_t> of[kinds];
};
enum class Registration : unsigned char { none, live, ended };
// Zero-initialized, trivially destructible: usable from any thread at any time, even while the
// thread's other thread_local objects are being destroyed.
thread_local ThreadCounts thread_counts;
thread_local Registration thread_registration = Registration::none;

// Every live thread's counts, and the sums of those that have ended. Never destroyed: threads
// (and their tensors) may end after main returns.
struct CountRegistry {
  std::mutex mutex;
  std::vector<ThreadCounts*> threads;
  std::ptrdiff_t ended[kinds] = {};
};
CountRegistry& registry() {
  static CountRegistry* const r = new CountRegistry;
  return *r;
}

// Folds the thread's counts into the registry's when the thread ends.
struct ThreadCountsOwner {
  ThreadCountsOwner() {
    std::lock_guard<std::mutex> lock(registry().mutex);
    registry().threads.push_back(&thread_counts);
    thread_registration = Registration::live;
  }
  ~ThreadCountsOwner() {
    auto& r = registry();
    std::lock_guard<std::mutex> lock(r.mutex);
    for (std::size_t k = 0; k < kinds; ++k) r.ended[k] += thread_counts.of[k].load(std::memory_order_relaxed);
    r.threads.erase(std::find(r.threads.begin(), r.threads.end(), &thread_counts));
    thread_registration = Registration::ended;
  }
};

void count_slowly(std::size_t kind, std::ptrdiff_t delta) {
  if (thread_registration == Registration::none) {
    static thread_local ThreadCountsOwner owner;   // registers the thread, folds it in at its end
  }
  if (thread_registration == Registration::live) {
    auto& c = thread_counts.of[kind];
    c.store(c.load(std::memory_order_relaxed) + delta, std::memory_order_relaxed);
  } else {   // a tensor destroyed by another thread_local object after the thread's counts were folded
    std::lock_guard<std::mutex> lock(registry().mutex);
    registry().ended[kind] += delta;
  }
}
}  // namespace

void count(Counted what, std::ptrdiff_t delta) {
  const auto kind = static_cast<std::size_t>(what);
  if (thread_registration != Registration::live) return count_slowly(kind, delta);
  auto& c = thread_counts.of[kind];
  c.store(c.load(std::memory_order_relaxed) + delta, std::memory_order_relaxed);
}

CountedTotals counted() {
  auto& r = registry();
  std::lock_guard<std::mutex> lock(r.mutex);
  CountedTotals totals{};
  for (std::size_t k = 0; k < kinds; ++k) {
    std::ptrdiff_t sum = r.ended[k];
    for (const ThreadCounts* t : r.threads) sum += t->of[k].load(std::memory_order_relaxed);
    // Below 0 only while another thread's release is seen before the matching creation.
    totals.of[k] = sum > 0 ? static_cast<std::size_t>(sum) : 0;
  }
  return totals;
}
}  // namespace detail

namespace {
Shape to_shape(const xt::svector<std::size_t, 4>& s) { return Shape(s.begin(), s.end()); }
}  // namespace

template <class T>
Tensor<T>::Tensor(xt::xarray<T> value, bool requires_grad)
    : impl_(std::make_shared<detail::TensorImpl<T>>(std::move(value))) {
  impl_->requires_grad = requires_grad;
}

template <class T>
detail::TensorImpl<T>& Tensor<T>::checked(const char* what) const {
  if (!impl_) throw_usage_error(what, "the tensor is undefined (a default-constructed handle)");
  return *impl_;
}

template <class T>
const xt::xarray<T>& Tensor<T>::value() const& { return checked("value").value; }

template <class T>
xt::xarray<T> Tensor<T>::value() const&& { return checked("value").value; }

template <class T>
Shape Tensor<T>::shape() const { return to_shape(checked("shape").value.shape()); }

template <class T>
std::size_t Tensor<T>::dim() const { return checked("dim").value.dimension(); }

template <class T>
std::size_t Tensor<T>::size() const { return checked("size").value.size(); }

template <class T>
T Tensor<T>::item() const {
  const auto& v = checked("item").value;
  if (v.size() != 1)
    throw_shape_error("item", "needs a one-element tensor, got shape " + shape_str(shape()));
  return v.data()[0];
}

template <class T>
bool Tensor<T>::requires_grad() const { return checked("requires_grad").requires_grad; }

template <class T>
Tensor<T>& Tensor<T>::set_requires_grad(bool requires_grad) {
  auto& im = checked("set_requires_grad");
  if (im.tape_id != 0)
    throw_usage_error("set_requires_grad",
                      "only a leaf's flag can change; this tensor was produced by a recorded op "
                      "(use detach() for a leaf copy)");
  im.requires_grad = requires_grad;
  return *this;
}

template <class T>
bool Tensor<T>::is_leaf() const { return checked("is_leaf").tape_id == 0; }

template <class T>
bool Tensor<T>::has_grad() const { return checked("has_grad").grad != nullptr; }

template <class T>
xt::xarray<T> Tensor<T>::grad() const&& {
  const Tensor<T>& self = *this;
  return self.grad();
}

template <class T>
const xt::xarray<T>& Tensor<T>::grad() const& {
  const auto& im = checked("grad");
  if (!im.grad)
    throw_usage_error("grad", "tensor of shape " + shape_str(shape()) +
                                  " has no gradient: backward() has not reached it "
                                  "(does it require grad, and does the output depend on it?)");
  return *im.grad;
}

template <class T>
xt::xarray<T>& Tensor<T>::mutable_grad() {
  const Tensor<T>& self = *this;
  self.grad();   // the error without a gradient
  return *checked("mutable_grad").grad;
}

template <class T>
void Tensor<T>::zero_grad() {
  auto& im = checked("zero_grad");
  im.grad = std::make_unique<xt::xarray<T>>(xt::zeros<T>(im.value.shape()));
}

template <class T>
void Tensor<T>::clear_grad() {
  auto& im = checked("clear_grad");
  im.grad.reset();
}

template <class T>
Tensor<T> Tensor<T>::detach() const {
  return Tensor<T>(checked("detach").value, false);
}

template <class T>
void Tensor<T>::assign(const xt::xarray<T>& value) {
  auto& im = checked("assign");
  if (!std::equal(value.shape().begin(), value.shape().end(), im.value.shape().begin(),
                  im.value.shape().end()))
    throw_shape_error("assign", "new value of shape " + shape_str(to_shape(value.shape())) +
                                    " does not match the tensor's shape " + shape_str(shape()));
  im.value = value;
  ++im.version;
}

template <class T>
xt::xarray<T>& Tensor<T>::mutable_value() {
  auto& im = checked("mutable_value");
  ++im.version;
  return im.value;
}

template <class T>
std::uint64_t Tensor<T>::version() const { return checked("version").version; }

template <class T>
void check_defined(const char* op, std::initializer_list<const Tensor<T>*> inputs) {
  std::size_t i = 0;
  for (const Tensor<T>* x : inputs) {
    if (!x->defined())
      throw_usage_error(op, "input " + std::to_string(i) + " is an undefined tensor (a default-constructed handle)");
    ++i;
  }
}


template <class T>
std::ostream& operator<<(std::ostream& os, const Tensor<T>& t) {
  if (!t.defined()) return os << "tensor(undefined)";
  os << "tensor(shape " << shape_str(t.shape());
  if (t.requires_grad()) os << ", requires_grad";
  return os << ")\n" << t.value();
}

template class Tensor<float>;
template class Tensor<double>;
template <class T>
void check_defined(const char* op, const std::vector<Tensor<T>>& inputs) {
  for (std::size_t i = 0; i < inputs.size(); ++i)
    if (!inputs[i].defined())
      throw_usage_error(op, "input " + std::to_string(i) + " is an undefined tensor (a default-constructed handle)");
}

template void check_defined(const char*, std::initializer_list<const Tensor<float>*>);
template void check_defined(const char*, const std::vector<Tensor<float>>&);
template void check_defined(const char*, const std::vector<Tensor<double>>&);
template void check_defined(const char*, std::initializer_list<const Tensor<double>*>);
template std::ostream& operator<<(std::ostream&, const Tensor<float>&);
template std::ostream& operator<<(std::ostream&, const Tensor<double>&);

}  // namespace tapegrad
