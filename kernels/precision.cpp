// Names of the matrix-product precisions.
#include "kernels/precision.hpp"

#include "kernels/error.hpp"

namespace statelab {

Precision precision_from_name(const std::string& name) {
  if (name == "fp32") return Precision::fp32;
  if (name == "tf32") return Precision::tf32;
  if (name == "bf16") return Precision::bf16;
  throw ConfigError("precision \"" + name + "\": expected \"fp32\", \"tf32\" or \"bf16\"");
}

const char* precision_name(Precision p) {
  switch (p) {
    case Precision::fp32: return "fp32";
    case Precision::tf32: return "tf32";
    case Precision::bf16: return "bf16";
  }
  return "?";
}

}  // namespace statelab
