// Exports probe traces (per layer/head/time-step gate values, memory norms) as
// traces.safetensors and traces.npz holding the same arrays, plus manifest.json. Shapes are
// declared up front, so every element has a known place in the safetensors file: appends go
// straight there on disk and memory stays bounded whatever the export size, at the price of
// arrays whose size must be known before the first append. Checked against safetensors::load
// and numpy.load in tests/probes/test_trace_writer.cpp.
#pragma once

#include <cstdint>
#include <filesystem>
#include <string>
#include <unordered_map>
#include <vector>

#include <nlohmann/json.hpp>

#include "lab/safetensors.hpp"

namespace statelab {

struct TraceArray {
  std::string name;               // e.g. "blocks.0.forget_gate"; becomes "<name>.npy" in the NPZ
  std::vector<std::string> axes;  // e.g. {"sample", "time", "head"}
  std::vector<int64_t> shape;     // same rank as axes
  safetensors::DType dtype;       // F32 or I32
  std::string meaning;            // one line for the manifest (units, meaning)
  std::string kind;               // optional: how to read it ("gate", "norm", ...), in the manifest
};

// Used from one thread at a time.
class TraceWriter {
 public:
  // Validates the specs (at least one array; unique, non-empty names without '/' or '\' and other
  // than "__metadata__", which safetensors reserves; rank equal to the number of axes;
  // non-negative dimensions; F32 or I32; a total size that fits in int64) and manifest_info (a
  // JSON object, or null for none, without an "arrays" key), each an Error naming the array or
  // key. Then creates `dir` if missing and the temporary data file in it: IoError naming the path
  // and the reason.
  TraceWriter(std::filesystem::path dir, std::vector<TraceArray> arrays,
              nlohmann::json manifest_info);
  TraceWriter(const TraceWriter&) = delete;
  TraceWriter& operator=(const TraceWriter&) = delete;
  // Without a successful finish(), removes the temporaries and leaves no file behind.
  ~TraceWriter();

  // Appends the next `count` elements of array `name` in row-major order; arrays may be appended
  // interleaved in any order. Error on an unknown name, the other dtype, a negative count, null
  // data or more elements than the shape holds (nothing is written then); IoError naming the
  // temporary file when the write fails (a full disk).
  void append(const std::string& name, const float* data, int64_t count);
  void append(const std::string& name, const int32_t* data, int64_t count);

  // Error naming every incomplete array and how many elements it misses (the writer stays usable,
  // so the missing data may still be appended). Otherwise writes traces.safetensors, traces.npz
  // and manifest.json under `dir`, each complete under its final name, manifest.json last. An IO
  // failure is an IoError naming the file (with libzip's message for the NPZ), after which every
  // file this writer made, temporary or final, is removed and the writer is spent.
  void finish();

 private:
  struct Slot {
    TraceArray spec;
    std::string npy_header;  // what precedes the data in the NPZ member
    int64_t numel;
    int64_t file_offset;  // where the array's data starts in the safetensors file
    int64_t written;      // elements appended so far
  };

  std::string who() const;  // the prefix of error messages
  void append_bytes(const std::string& name, safetensors::DType dtype, const void* data,
                    int64_t count);
  void write_npz() const;
  // Closes the data file and removes the temporaries and `finals`; never throws.
  void discard(const std::vector<std::filesystem::path>& finals) noexcept;

  std::filesystem::path dir_;
  std::vector<Slot> slots_;  // in file order
  std::unordered_map<std::string, size_t> index_;
  std::string manifest_text_;
  std::filesystem::path data_temp_;  // traces.safetensors while it is filled
  std::filesystem::path npz_temp_;
  int fd_ = -1;
  bool done_ = false;  // finish() succeeded or failed past the point of retrying
};

}  // namespace statelab
