// Schedule and AdamW wiring over the flat parameter buffers.
#include "lab/optimizer.hpp"

#include <algorithm>
#include <cmath>

#include "kernels/cpu/optim.hpp"

namespace statelab {

double learning_rate(const TrainConfig& c, int step) {
  if (c.warmup_steps > 0 && step <= c.warmup_steps) return c.lr * step / c.warmup_steps;
  const int decay_steps = c.steps - c.warmup_steps;
  if (decay_steps <= 0) return c.lr;
  const double progress = std::clamp(double(step - c.warmup_steps) / decay_steps, 0.0, 1.0);
  return c.min_lr + 0.5 * (c.lr - c.min_lr) * (1.0 + std::cos(M_PI * progress));
}

template <typename S>
double AdamW<S>::clip(ParamStore<S>& ps) const {
  const double norm = cpu::global_norm(ps.grads(), ps.size());
  if (std::isfinite(norm) && cfg_.grad_clip > 0 && norm > cfg_.grad_clip)
    cpu::scale_inplace(ps.grads(), ps.size(), cfg_.grad_clip / norm);
  return norm;
}

template <typename S>
double AdamW<S>::step(ParamStore<S>& ps, double lr) {
  const double norm = clip(ps);
  apply(ps, lr);
  return norm;
}

template <typename S>
void AdamW<S>::apply(ParamStore<S>& ps, double lr) {
  const int64_t n = ps.size();
  ++t_;
  cpu::AdamWStep s{lr, cfg_.beta1, cfg_.beta2, cfg_.eps, cfg_.weight_decay, t_};
  const int64_t nd = ps.decay_size();
  cpu::adamw_update(ps.values(), ps.grads(), ps.moment1(), ps.moment2(), nd, s);
  s.weight_decay = 0;
  cpu::adamw_update(ps.values() + nd, ps.grads() + nd, ps.moment1() + nd, ps.moment2() + nd,
                    n - nd, s);
}

template class AdamW<float>;
template class AdamW<double>;

}  // namespace statelab
