// Parity generator: uniform random bits; the answer token is the bit token of (#1s mod 2).
#include "tasks/parity.hpp"

namespace statelab {

ParityTask::ParityTask() : vocab_{{"<pad>", "0", "1"}} {}

std::string ParityTask::definition() const {
  return "bits b1..bL uniform; answer at the last bit: (b1 + ... + bL) mod 2; "
         "latent state: the parity of the prefix";
}

void ParityTask::sample(Rng& rng, int batch, int length, Batch& out) const {
  out.resize(batch, length);
  for (int b = 0; b < batch; ++b) {
    int parity = 0;
    for (int t = 0; t < length; ++t) {
      const int bit = int(rng.next_u32() & 1u);
      parity ^= bit;
      const size_t i = size_t(b) * length + t;
      out.tokens[i] = bit ? kOne : kZero;
      out.latent[i] = parity;
    }
    out.targets[size_t(b) * length + length - 1] = parity ? kOne : kZero;
  }
}

}  // namespace statelab
