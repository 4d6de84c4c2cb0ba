// RecurrentBlock: wiring of norms, gate projections, the recurrence kernel and the FFN.
#include "cells/recurrent_block.hpp"

#include <algorithm>
#include <cmath>
#include <functional>
#include <vector>

#include "cells/non_finite.hpp"
#include "cells/probe_fill.hpp"
#include "kernels/ops.hpp"

namespace statelab {

template <typename S>
RecurrentBlock<S>::RecurrentBlock(ParamStore<S>& ps, Arena<S>& arena, const std::string& name,
                                  cpu::NonlinearCell cell, const ModelConfig& cfg, int n_blocks)
    : ps_(ps),
      arena_(arena),
      cell_(cell),
      exp_forget_(cell == cpu::NonlinearCell::slstm && cfg.slstm.forget_gate == "exp"),
      D_(cfg.d_model),
      H_(cell == cpu::NonlinearCell::slstm ? cfg.heads : 1),
      Dh_(D_ / H_),
      norm1_(ps, arena, name + ".norm", 1, D_, true),
      gate_if_(ps, name + ".cell.if_proj", D_, 2 * D_, true,
               init::normal(1.0 / std::sqrt(double(D_))),
               // Bias layout [H, 2, Dh]: input gate 0; forget gate open, so memory starts long.
               // sLSTM: per-unit linspace 3..6 in each head; LSTM: the customary 1.
               [lstm = cell == cpu::NonlinearCell::lstm, dh = Dh_](Rng&, int64_t i) {
                 if ((i / dh) % 2 == 0) return 0.0;
                 if (lstm) return 1.0;
                 return dh > 1 ? 3.0 + 3.0 * double(i % dh) / double(dh - 1) : 3.0;
               }),
      gate_zo_(ps, name + ".cell.zo_proj", D_, 2 * D_, true,
               init::normal(1.0 / std::sqrt(double(D_)))),
      head_norm_(ps, arena, name + ".cell.head_norm", H_, Dh_, false) {
  if (cell == cpu::NonlinearCell::slstm && cfg.slstm.conv_kernel > 0)
    conv_.emplace(ps, name + ".cell.conv", D_, cfg.slstm.conv_kernel);
  // Recurrent weights [H, Dh, 4, Dh]: zero for sLSTM (the reference initialisation), and
  // PyTorch's LSTM range U(±1/√D) for the LSTM.
  const double bound = 1.0 / std::sqrt(double(D_));
  R_ = ps.add(name + ".cell.recurrent", {H_, Dh_, 4, Dh_},
              cell == cpu::NonlinearCell::slstm ? init::zeros() : init::uniform(-bound, bound),
              true);
  if (cfg.ffn_factor > 0) {
    norm2_.emplace(ps, arena, name + ".ffn_norm", 1, D_, true);
    ffn_.emplace(ps, arena, name + ".ffn", D_, ffn_width(cfg.ffn_factor, D_),
                 cpu::Activation::gelu, 1.0 / std::sqrt(2.0 * n_blocks));
  }
  const int64_t D = D_;
  xn_ = arena.reserve(D);
  if (conv_) {
    xc_ = arena.reserve(D);
    xif_ = arena.reserve(D);
  }
  pre_ = arena.reserve(4 * D);
  // Only the sLSTM reads its pre-activations back (σ-forget backward, probes): the LSTM's
  // forward skips four of its ten stores per cell and step.
  if (cell == cpu::NonlinearCell::slstm) raw_ = arena.reserve(4 * D);
  gates_ = arena.reserve(4 * D);
  c_ = arena.reserve(D);
  n_ = arena.reserve(D);
  m_ = arena.reserve(D);
  h_ = arena.reserve(D);
  hn_ = arena.reserve(D);
  y1_ = arena.reserve(D);
  if (ffn_) {
    xn2_ = arena.reserve(D);
    dy1_ = arena.reserve(D, SlotUse::backward);
    dxn2_ = arena.reserve(D, SlotUse::backward);
  }
  dh_ = arena.reserve(D, SlotUse::backward);
  dpre_ = arena.reserve(4 * D, SlotUse::backward);
  dxif_ = arena.reserve(D, SlotUse::backward);
  if (conv_) dxc_ = arena.reserve(D, SlotUse::backward);
  dxn_ = arena.reserve(D, SlotUse::backward);
  if (conv_) dxn_b_ = arena.reserve(D, SlotUse::backward);
}

template <typename S>
std::string RecurrentBlock<S>::cell() const {
  return cell_ == cpu::NonlinearCell::slstm ? "slstm" : "lstm";
}

template <typename S>
cpu::NonlinearRecurrence<S> RecurrentBlock<S>::recurrence(Pass p) {
  cpu::NonlinearRecurrence<S> r;
  r.cell = cell_;
  r.exp_forget = exp_forget_;
  r.B = p.B, r.T = p.T, r.H = H_, r.Dh = Dh_;
  r.pre = arena_(pre_);
  r.R = ps_.value(R_);
  r.h = arena_(h_);
  // An evaluation stores h alone: the stores of a cell and step took 18% of the LSTM forward's
  // stall samples at L (ncu), and h is one of six.
  if (!p.saves_activations) return r;
  if (cell_ == cpu::NonlinearCell::slstm) r.raw = arena_(raw_);
  r.gates = arena_(gates_);
  r.c = arena_(c_);
  r.n = arena_(n_);
  r.m = arena_(m_);
  return r;
}

template <typename S>
void RecurrentBlock<S>::forward(Pass p, const S* x, S* y) {
  const Exec& ex = p.exec();
  const int64_t N = p.tokens(), D = D_;
  S* xn = arena_(xn_);
  norm1_.forward(ps_, arena_, p, x, xn);
  const S* xif = xn;
  if (conv_) {
    conv_->forward(ps_, p, xn, arena_(xc_));
    ops::activation_fwd(ex, cpu::Activation::silu, arena_(xif_), arena_(xc_), N * D);
    xif = arena_(xif_);
  }
  // The recurrence takes the two projections' [N, H, 2, Dh] outputs one after the other.
  S* pre = arena_(pre_);
  gate_if_.forward(ps_, p, xif, pre);
  gate_zo_.forward(ps_, p, xn, pre + N * 2 * D);
  ops::nonlinear_recurrence_fwd(ex, recurrence(p));
  head_norm_.forward(ps_, arena_, p, arena_(h_), arena_(hn_));
  S* y1 = ffn_ ? arena_(y1_) : y;
  ops::add(ex, y1, x, arena_(hn_), N * D);
  if (ffn_) {
    norm2_->forward(ps_, arena_, p, y1, arena_(xn2_));
    ffn_->forward(ps_, arena_, p, arena_(xn2_), y, y1);
  }
}

template <typename S>
void RecurrentBlock<S>::backward(Pass p, const S* x, const S* dy, S* dx) {
  const Exec& ex = p.exec();
  const int64_t N = p.tokens(), D = D_;
  const S* dy1 = dy;
  if (ffn_) {
    ffn_->backward(ps_, arena_, p, arena_(xn2_), dy, arena_(dxn2_));
    norm2_->backward(ps_, arena_, p, arena_(y1_), arena_(dxn2_), arena_(dy1_), dy);
    dy1 = arena_(dy1_);
  }
  head_norm_.backward(ps_, arena_, p, arena_(h_), dy1, arena_(dh_));
  const auto r = recurrence(p);
  ops::nonlinear_recurrence_bwd(ex, r, arena_(dh_), arena_(dpre_), ps_.grad(R_),
                                work_.get(ex, ops::nonlinear_recurrence_work_size(ex, r)));
  const S* dpre_if = arena_(dpre_);
  const S* dpre_zo = dpre_if + N * 2 * D;
  const S* xn = arena_(xn_);
  S* dxn = arena_(dxn_);
  gate_zo_.backward(ps_, p, xn, dpre_zo, dxn);
  if (conv_) {
    gate_if_.backward(ps_, p, arena_(xif_), dpre_if, arena_(dxif_));
    ops::activation_bwd(ex, cpu::Activation::silu, arena_(dxc_), arena_(dxif_), arena_(xc_), N * D);
    conv_->backward(ps_, p, xn, arena_(dxc_), arena_(dxn_b_));
    ops::add_inplace(ex, dxn, arena_(dxn_b_), N * D);
  } else {
    gate_if_.backward(ps_, p, xn, dpre_if, dxn, cpu::Into::add);
  }
  norm1_.backward(ps_, arena_, p, x, dxn, dx, dy1);
}

template <typename S>
std::string RecurrentBlock<S>::find_non_finite(Pass p) const {
  const int64_t D = D_, Dh = Dh_;
  // Per-head tensors of the cell: [B, T, H, width·Dh] with `width` gates or states per head.
  auto headed = [&](const std::string& what, Slot s, int64_t width) -> std::string {
    const auto at = earliest_non_finite(arena_.host(s), p, width * D);
    if (!at) return "";
    const int64_t head = at->index / (width * Dh), within = at->index % (width * Dh);
    static const char* const kGate[4] = {"i", "f", "z", "o"};
    return what + (width == 4 ? std::string(" (gate ") + kGate[within / Dh] + ")" : "") +
           " at batch row " + std::to_string(at->batch) + ", time step " +
           std::to_string(at->time) + ", head " + std::to_string(head) + ", unit " +
           std::to_string(within % Dh);
  };
  auto plain = [&](const std::string& what, Slot s, int64_t width) -> std::string {
    const auto at = earliest_non_finite(arena_.host(s), p, width);
    return at ? describe(what, *at) : "";
  };
  std::vector<std::function<std::string()>> checks = {[&] { return plain("input norm", xn_, D); }};
  if (conv_) {
    checks.push_back([&] { return plain("conv output", xc_, D); });
    checks.push_back([&] { return plain("conv SiLU", xif_, D); });
  }
  // The two gate projections, one after the other in pre_.
  auto projection = [&](const std::string& what, int64_t half) -> std::string {
    const auto at = earliest_non_finite(arena_.host(pre_) + half * p.tokens() * 2 * D, p, 2 * D);
    return at ? describe(what, *at) : "";
  };
  checks.push_back([&] { return projection("i/f gate projection", 0); });
  checks.push_back([&] { return projection("z/o gate projection", 1); });
  // An evaluation saved no gates or states to look at: h is the first tensor of the cell.
  if (p.saves_activations) {
    if (cell_ == cpu::NonlinearCell::slstm)
      checks.push_back([&] { return headed("gate pre-activations", raw_, 4); });
    checks.push_back([&] { return headed("gates", gates_, 4); });
    checks.push_back([&] { return headed("cell state c", c_, 1); });
    if (cell_ == cpu::NonlinearCell::slstm) {
      checks.push_back([&] { return headed("stabilizer m", m_, 1); });
      checks.push_back([&] { return headed("normalizer n", n_, 1); });
    }
  }
  checks.push_back([&] { return headed("hidden state h", h_, 1); });
  checks.push_back([&] { return plain("head norm", hn_, D); });
  if (ffn_) {
    checks.push_back([&] { return plain("residual after the cell", y1_, D); });
    checks.push_back([&] { return plain("FFN input norm", xn2_, D); });
  }
  for (const auto& check : checks)
    if (auto found = check(); !found.empty()) return found;
  return "";
}

template <typename S>
void RecurrentBlock<S>::probe(Pass p, const std::string& prefix, ProbeSink& sink) {
  const S* gates = arena_.host(gates_);
  const int64_t H = H_, Dh = Dh_, G = 4 * Dh;
  const std::string at = prefix + ".";
  auto gate = [&](const std::string& name, const S* base, ProbeKind kind, const std::string& m) {
    add_unit_series(sink, p, H, Dh, at + name, base, H * G, G, kind, m);
  };
  if (cell_ == cpu::NonlinearCell::lstm) {
    gate("input_gate", gates, ProbeKind::gate, "input gate i = sigmoid(i~) per unit");
    gate("forget_gate", gates + Dh, ProbeKind::gate, "forget gate f = sigmoid(f~) per unit");
    gate("output_gate", gates + 3 * Dh, ProbeKind::gate, "output gate o = sigmoid(o~) per unit");
  } else {
    const S* raw = arena_.host(raw_);
    gate("input_preact", raw, ProbeKind::value, "input gate pre-activation i~ per unit");
    gate("forget_preact", raw + Dh, ProbeKind::value, "forget gate pre-activation f~ per unit");
    gate("input_gate", gates, ProbeKind::gate,
         "stabilized input gate i' = exp(i~ - m_t) per unit, in (0, 1]");
    gate("forget_gate", gates + Dh, ProbeKind::gate,
         std::string("stabilized forget gate f' = exp(log f + m_{t-1} - m_t) per unit, log f = ") +
             (exp_forget_ ? "f~" : "log sigmoid(f~)"));
    gate("output_gate", gates + 3 * Dh, ProbeKind::gate, "output gate o = sigmoid(o~) per unit");
    add_unit_series(sink, p, H, Dh, at + "stabilizer", arena_.host(m_), H * Dh, Dh,
                    ProbeKind::value,
                    "stabilizer m_t = max(log f + m_{t-1}, i~) per unit (log scale)");
    add_unit_series(sink, p, H, Dh, at + "normalizer", arena_.host(n_), H * Dh, Dh, ProbeKind::norm,
                    "normalizer n_t = f' n_{t-1} + i' per unit");
  }
  add_head_norms(sink, p, H, Dh, at + "cell_norm", arena_.host(c_), H * Dh, Dh,
                 "L2 norm of the cell state c_t over the head's units");
  add_head_norms(sink, p, H, Dh, at + "hidden_norm", arena_.host(h_), H * Dh, Dh,
                 "L2 norm of the cell output h_t over the head's units");
}

template class RecurrentBlock<float>;
template class RecurrentBlock<double>;

}  // namespace statelab
