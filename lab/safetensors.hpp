// Checkpoints in the standard safetensors format, so Python (safetensors, numpy, torch) reads
// what StateLab writes and the other way round. The reader treats every file as hostile: it
// validates the whole header before it copies any tensor, and it copies each tensor into its own
// buffer instead of memory-mapping, trading a second copy of the data for simple ownership.
// Little-endian hosts only (x86-64, AArch64): the format's byte order is then the host's.
#pragma once

#include <cstddef>
#include <cstdint>
#include <map>
#include <string>
#include <vector>

namespace statelab::safetensors {

enum class DType { F32, F64, I32, I64, U8 };

size_t dtype_size(DType dtype);
std::string dtype_name(DType dtype);  // "F32", "F64", "I32", "I64", "U8"

// For writing: a view of caller-owned memory, row-major, `numel * dtype_size` bytes.
// `data` may be null only when the tensor has no elements.
struct TensorRef {
  std::string name;
  DType dtype;
  std::vector<int64_t> shape;
  const void* data;
};

// A tensor's name, dtype and shape: what the header says about it.
struct TensorInfo {
  std::string name;
  DType dtype;
  std::vector<int64_t> shape;
};

// The bytes before the data section (the 8-byte length and the JSON header, padded so the data
// starts on an 8-byte boundary) for tensors laid out back to back in the order given. For writers
// that stream the data section themselves; throws Error as serialize does, bar the data pointer.
std::string serialize_header(const std::vector<TensorInfo>& tensors,
                             const std::map<std::string, std::string>& metadata);

// The file's bytes: serialize_header, then the tensors' data in the order given. Throws Error on
// an empty, duplicate or reserved ("__metadata__") name, a negative dimension, a size that
// overflows, a null pointer for a non-empty tensor, or names and metadata that are not valid
// UTF-8.
std::string serialize(const std::vector<TensorRef>& tensors,
                      const std::map<std::string, std::string>& metadata);
// serialize, then write_file_atomic.
void save(const std::string& path, const std::vector<TensorRef>& tensors,
          const std::map<std::string, std::string>& metadata);

struct Entry {
  DType dtype;
  std::vector<int64_t> shape;
  std::string bytes;  // little-endian, row-major
  int64_t numel() const;
};

struct Contents {
  std::map<std::string, std::string> metadata;
  std::map<std::string, Entry> tensors;  // name -> entry
  std::vector<std::string> order;        // names in file order (by data offset)
};

// Validates and decodes a whole file; IoError naming `source_name` and the problem otherwise.
Contents parse(const std::string& bytes, const std::string& source_name);
// read_file + parse.
Contents load(const std::string& path);

// Copies tensor `name` into `out` (expected_shape's numel elements) as float or double,
// converting from F32 or F64. IoError naming the source, the tensor and the mismatch if the
// tensor is missing, has another shape, or has an integer dtype.
template <typename S>
void copy_tensor(const Contents& contents, const std::string& name,
                 const std::vector<int64_t>& expected_shape, S* out, const std::string& source_name);

}  // namespace statelab::safetensors
