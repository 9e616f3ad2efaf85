// Stand-in for PyTorch's torch/types.h, which load_inline puts first in the CUDA source. The real
// header pulls in the C++ standard library; these make the same names visible to the kernels.
#pragma once
#include <algorithm>
#include <cmath>
#include <limits>
#include <math.h>
#include <ATen/ATen.h>
