// Stand-in for PyTorch's ATen/ATen.h (see bench/device/torch-stub/README.md): declarations only.
#pragma once
#include <cstdint>
#include <ostream>
#include <sstream>
#include <stdexcept>
#include <string>

namespace c10 {
using DeviceIndex = int8_t;
enum class ScalarType : int8_t { Byte, Char, Short, Int, Long, Half, Float, Double, Bool, UInt32, BFloat16 };
std::ostream& operator<<(std::ostream& os, ScalarType t);
enum class DeviceType : int8_t { CPU, CUDA };
struct Device {
  Device(DeviceType type, DeviceIndex index = -1);
  DeviceType type() const noexcept;
  DeviceIndex index() const noexcept;
  bool is_cuda() const noexcept;
  bool operator==(const Device& other) const noexcept;
  bool operator!=(const Device& other) const noexcept;
};
std::ostream& operator<<(std::ostream& os, const Device& d);
namespace detail {
template <typename... Args>
std::string str(const Args&... args) {
  std::ostringstream s;
  (s << ... << args);
  return s.str();
}
}  // namespace detail
}  // namespace c10

namespace at {
using c10::Device;
using c10::DeviceType;
using c10::ScalarType;
constexpr ScalarType kByte = ScalarType::Byte;
constexpr ScalarType kInt = ScalarType::Int;
constexpr ScalarType kLong = ScalarType::Long;
constexpr ScalarType kHalf = ScalarType::Half;
constexpr ScalarType kBFloat16 = ScalarType::BFloat16;
constexpr ScalarType kFloat = ScalarType::Float;
constexpr ScalarType kDouble = ScalarType::Double;
constexpr ScalarType kBool = ScalarType::Bool;
constexpr ScalarType kUInt32 = ScalarType::UInt32;

class Tensor {
 public:
  bool defined() const;
  bool is_cuda() const;
  Device device() const;
  ScalarType scalar_type() const;
  bool is_contiguous() const;
  int64_t numel() const;
  int64_t dim() const;
  int64_t size(int64_t d) const;
  void* data_ptr() const;
  template <typename T>
  T* data_ptr() const;
};
}  // namespace at

#define TORCH_CHECK(cond, ...)                                                  \
  do {                                                                          \
    if (!(cond)) throw std::runtime_error(::c10::detail::str(__VA_ARGS__));    \
  } while (0)
