// A 2-D trajectory plot (e.g. hidden states projected on two principal components): points
// joined in order by thin lines, coloured by a categorical label, with axes, a legend of the
// labels and a hover read-out. No decimation: meant for up to a few thousand points, each a
// small circle; the hover search is a linear scan run only while hovered.
#pragma once

#include <cstdint>

namespace statelab::widgets {

// xy: [n, 2] row-major; labels: [n] or null (one colour, no legend). Non-finite points are
// skipped and break the line. Legend entries "state k" for up to 12 distinct labels, in
// ascending order ("unlabelled" for k < 0). height in px; width: available.
void trajectory(const char* id, const float* xy, const int32_t* labels, int n, float height,
                const char* x_label = "PC1", const char* y_label = "PC2");

}  // namespace statelab::widgets
