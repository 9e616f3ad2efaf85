// Stand-in for PyTorch's torch/extension.h, which load_inline puts first in the C++ source.
#pragma once
#include <torch/types.h>
