// The arithmetic of matrix products on the GPU. Master weights, optimizer moments, recurrent
// states and gate arithmetic stay fp32 whatever is chosen; only the operands of GEMM-like
// products (projections, R·h, intra-chunk products, attention scores) may be rounded to tf32 or
// bf16 by the tensor cores. The CPU path computes in its scalar type and ignores this.
#pragma once

#include <string>

namespace statelab {

enum class Precision { fp32, tf32, bf16 };

// "fp32" | "tf32" | "bf16"; throws ConfigError naming the value otherwise.
Precision precision_from_name(const std::string& name);
const char* precision_name(Precision p);

}  // namespace statelab
