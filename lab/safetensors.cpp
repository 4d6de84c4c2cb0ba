// Writer and hardened reader for safetensors files. The reader checks sizes in a fixed order
// (header length, JSON shape, each entry's element count against the data section, offsets,
// coverage) so that no size taken from the file is used to index or allocate before it is proven
// to fit; the cost is a strict reader that refuses files other readers might tolerate (unknown
// entry keys, gaps between tensors, duplicate JSON keys).
#include "lab/safetensors.hpp"

#include <algorithm>
#include <cstring>
#include <limits>
#include <set>
#include <tuple>
#include <utility>

#include <nlohmann/json.hpp>

#include "kernels/error.hpp"
#include "lab/files.hpp"

#if !defined(__BYTE_ORDER__) || __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "lab/safetensors.cpp copies tensor bytes as they are, which needs a little-endian host"
#endif

namespace statelab::safetensors {
namespace {

using nlohmann::json;

constexpr uint64_t kMaxHeaderBytes = uint64_t{100} << 20;  // the limit the reference reader uses
constexpr int64_t kInt64Max = std::numeric_limits<int64_t>::max();
const char* const kMetadataKey = "__metadata__";

std::string shape_str(const std::vector<int64_t>& shape) {
  std::string s = "[";
  for (size_t i = 0; i < shape.size(); ++i) {
    if (i > 0) s += ", ";
    s += std::to_string(shape[i]);
  }
  return s + "]";
}

bool dtype_from_name(const std::string& name, DType* out) {
  for (DType d : {DType::F32, DType::F64, DType::I32, DType::I64, DType::U8}) {
    if (dtype_name(d) == name) {
      *out = d;
      return true;
    }
  }
  return false;
}

// Element count, or false if it does not fit in int64. A zero dimension makes the product zero
// whatever the others are, so it is checked first and the others cannot overflow it.
bool checked_numel(const std::vector<int64_t>& shape, int64_t* out) {
  if (std::find(shape.begin(), shape.end(), int64_t{0}) != shape.end()) {
    *out = 0;
    return true;
  }
  int64_t n = 1;
  for (int64_t d : shape) {
    if (d < 0 || n > kInt64Max / d) return false;
    n *= d;
  }
  *out = n;
  return true;
}

// An entry as read from the header, validated against the data section but not yet copied.
struct Pending {
  std::string name;
  DType dtype;
  std::vector<int64_t> shape;
  int64_t begin;
  int64_t end;
};

class HeaderReader {
 public:
  HeaderReader(const std::string& source, int64_t data_size)
      : source_(source), data_size_(data_size) {}

  [[noreturn]] void fail(const std::string& what) const { throw IoError(source_ + ": " + what); }
  [[noreturn]] void fail_tensor(const std::string& name, const std::string& what) const {
    fail("tensor '" + name + "': " + what);
  }

  // A non-negative JSON integer that fits in int64; `what` names it in messages.
  int64_t non_negative(const std::string& name, const json& v, const std::string& what) const {
    if (!v.is_number_integer()) {
      fail_tensor(name, what + " is not an integer (got " + std::string(v.type_name()) + ")");
    }
    if (v.is_number_unsigned()) {
      uint64_t u = v.get<uint64_t>();
      if (u > static_cast<uint64_t>(kInt64Max)) {
        fail_tensor(name, what + " = " + std::to_string(u) + " does not fit in int64");
      }
      return static_cast<int64_t>(u);
    }
    int64_t i = v.get<int64_t>();
    if (i < 0) fail_tensor(name, what + " = " + std::to_string(i) + " is negative");
    return i;
  }

  Pending entry(const std::string& name, const json& v) const {
    if (!v.is_object()) {
      fail_tensor(name, "entry is not an object (got " + std::string(v.type_name()) + ")");
    }
    for (const auto& item : v.items()) {
      const std::string& key = item.key();
      if (key != "dtype" && key != "shape" && key != "data_offsets") {
        fail_tensor(name, "unknown key \"" + key + "\" (expected dtype, shape, data_offsets)");
      }
    }
    Pending p{name, DType::U8, {}, 0, 0};

    auto dt = v.find("dtype");
    if (dt == v.end()) fail_tensor(name, "missing \"dtype\"");
    if (!dt->is_string()) {
      fail_tensor(name, "\"dtype\" is not a string (got " + std::string(dt->type_name()) + ")");
    }
    const std::string& dname = dt->get_ref<const std::string&>();
    if (!dtype_from_name(dname, &p.dtype)) {
      fail_tensor(name, "unknown dtype \"" + dname + "\" (supported: F32, F64, I32, I64, U8)");
    }

    auto sh = v.find("shape");
    if (sh == v.end()) fail_tensor(name, "missing \"shape\"");
    if (!sh->is_array()) {
      fail_tensor(name, "\"shape\" is not an array (got " + std::string(sh->type_name()) + ")");
    }
    for (size_t i = 0; i < sh->size(); ++i) {
      const json& d = (*sh)[i];
      if (d.is_number_integer() && !d.is_number_unsigned() && d.get<int64_t>() < 0) {
        fail_tensor(name, "negative dimension shape[" + std::to_string(i) +
                              "] = " + std::to_string(d.get<int64_t>()));
      }
      p.shape.push_back(non_negative(name, d, "shape[" + std::to_string(i) + "]"));
    }

    // Both products are checked before anything is sized from them, so a header that claims
    // 10^12 elements is refused here, not by a failed allocation.
    int64_t numel = 0;
    if (!checked_numel(p.shape, &numel)) {
      fail_tensor(name, "shape " + shape_str(p.shape) + " has an element count that overflows int64");
    }
    const int64_t esize = static_cast<int64_t>(dtype_size(p.dtype));
    if (numel > kInt64Max / esize) {
      fail_tensor(name, "shape " + shape_str(p.shape) + " of " + dname +
                            " has a byte size that overflows int64");
    }
    const int64_t nbytes = numel * esize;
    if (nbytes > data_size_) {
      fail_tensor(name, "shape " + shape_str(p.shape) + " of " + dname + " needs " +
                            std::to_string(nbytes) + " bytes, more than the data section's " +
                            std::to_string(data_size_));
    }

    auto off = v.find("data_offsets");
    if (off == v.end()) fail_tensor(name, "missing \"data_offsets\"");
    if (!off->is_array() || off->size() != 2) {
      fail_tensor(name, "\"data_offsets\" is not a [begin, end] pair (got " +
                            (off->is_array() ? "an array of " + std::to_string(off->size())
                                             : std::string(off->type_name())) +
                            ")");
    }
    p.begin = non_negative(name, (*off)[0], "data_offsets[0]");
    p.end = non_negative(name, (*off)[1], "data_offsets[1]");
    const std::string range = "data_offsets [" + std::to_string(p.begin) + ", " +
                              std::to_string(p.end) + "]";
    if (p.begin > p.end) fail_tensor(name, range + " have begin > end");
    if (p.end > data_size_) {
      fail_tensor(name, range + " end beyond the data section's " + std::to_string(data_size_) +
                            " bytes");
    }
    if (p.end - p.begin != nbytes) {
      fail_tensor(name, range + " span " + std::to_string(p.end - p.begin) + " bytes but shape " +
                            shape_str(p.shape) + " of " + dname + " needs " +
                            std::to_string(nbytes));
    }
    return p;
  }

  std::map<std::string, std::string> metadata(const json& v) const {
    if (!v.is_object()) {
      fail("\"__metadata__\" is not an object of strings (got " + std::string(v.type_name()) + ")");
    }
    std::map<std::string, std::string> out;
    for (const auto& item : v.items()) {
      if (!item.value().is_string()) {
        fail("\"__metadata__\" value for \"" + item.key() + "\" is not a string (got " +
             std::string(item.value().type_name()) + ")");
      }
      out.emplace(item.key(), item.value().get<std::string>());
    }
    return out;
  }

 private:
  const std::string& source_;
  int64_t data_size_;
};

// Parses the header text, refusing nesting deeper than the format uses and duplicate keys
// (which nlohmann would silently collapse to the last one). The depth bound also bounds the
// parser's memory by a small multiple of the header length.
json parse_header_json(const std::string& text, const std::string& source) {
  std::vector<std::set<std::string>> keys;  // one set per open object
  auto callback = [&](int depth, json::parse_event_t event, json& parsed) -> bool {
    switch (event) {
      case json::parse_event_t::object_start:
      case json::parse_event_t::array_start:
        // depth is that of the enclosing value: root 0, entry 1, shape/offsets 2.
        if (depth > 2) {
          throw IoError(source + ": header nests JSON deeper than a safetensors header can");
        }
        if (event == json::parse_event_t::object_start) keys.emplace_back();
        break;
      case json::parse_event_t::object_end:
        keys.pop_back();
        break;
      case json::parse_event_t::key:
        if (!keys.back().insert(parsed.get<std::string>()).second) {
          throw IoError(source + ": header has duplicate key \"" + parsed.get<std::string>() + "\"");
        }
        break;
      default:
        break;
    }
    return true;
  };
  // nlohmann stops at a NUL as if the input ended there, which would accept "{}\0<anything>";
  // valid JSON never holds a raw NUL, so refuse it up front.
  const size_t nul = text.find('\0');
  if (nul != std::string::npos) {
    throw IoError(source + ": header is not valid JSON: NUL byte at header offset " +
                  std::to_string(nul));
  }
  try {
    return json::parse(text, callback);
  } catch (const json::exception& e) {
    throw IoError(source + ": header is not valid JSON: " + e.what());
  }
}

}  // namespace

size_t dtype_size(DType dtype) {
  switch (dtype) {
    case DType::F32: return 4;
    case DType::F64: return 8;
    case DType::I32: return 4;
    case DType::I64: return 8;
    case DType::U8: return 1;
  }
  throw Error("dtype_size: invalid DType value " + std::to_string(static_cast<int>(dtype)));
}

std::string dtype_name(DType dtype) {
  switch (dtype) {
    case DType::F32: return "F32";
    case DType::F64: return "F64";
    case DType::I32: return "I32";
    case DType::I64: return "I64";
    case DType::U8: return "U8";
  }
  throw Error("dtype_name: invalid DType value " + std::to_string(static_cast<int>(dtype)));
}

int64_t Entry::numel() const {
  int64_t n = 1;
  for (int64_t d : shape) n *= d;
  return n;
}

std::string serialize_header(const std::vector<TensorInfo>& tensors,
                             const std::map<std::string, std::string>& metadata) {
  json header = json::object();
  // An empty __metadata__ is legal, but leaving it out matches what the Python writer produces.
  if (!metadata.empty()) header[kMetadataKey] = metadata;
  int64_t offset = 0;
  for (const TensorInfo& t : tensors) {
    if (t.name.empty()) throw Error("safetensors::serialize: tensor with an empty name");
    if (t.name == kMetadataKey) {
      throw Error("safetensors::serialize: tensor name \"__metadata__\" is reserved by the format");
    }
    if (header.contains(t.name)) {
      throw Error("safetensors::serialize: duplicate tensor name '" + t.name + "'");
    }
    for (int64_t d : t.shape) {
      if (d < 0) {
        throw Error("safetensors::serialize: tensor '" + t.name + "' has negative dimension in " +
                    shape_str(t.shape));
      }
    }
    int64_t numel = 0;
    const int64_t esize = static_cast<int64_t>(dtype_size(t.dtype));
    if (!checked_numel(t.shape, &numel) || numel > kInt64Max / esize ||
        numel * esize > kInt64Max - offset) {
      throw Error("safetensors::serialize: tensor '" + t.name + "' of shape " +
                  shape_str(t.shape) + " makes the file size overflow int64");
    }
    const int64_t nbytes = numel * esize;
    header[t.name] = {{"dtype", dtype_name(t.dtype)},
                      {"shape", t.shape},
                      {"data_offsets", json::array({offset, offset + nbytes})}};
    offset += nbytes;
  }

  std::string text;
  try {
    text = header.dump();
  } catch (const json::exception& e) {
    throw Error(std::string("safetensors::serialize: a tensor name or metadata string is not "
                            "valid UTF-8: ") + e.what());
  }
  // Padding puts the data section on an 8-byte boundary, so a reader that maps the file can
  // view F64/I64 tensors in place.
  text.append((8 - (8 + text.size()) % 8) % 8, ' ');
  if (text.size() > kMaxHeaderBytes) {
    throw Error("safetensors::serialize: header of " + std::to_string(text.size()) +
                " bytes exceeds the 100 MiB that readers accept");
  }

  std::string out;
  uint64_t n = text.size();
  for (int i = 0; i < 8; ++i) out.push_back(static_cast<char>((n >> (8 * i)) & 0xff));
  return out + text;
}

std::string serialize(const std::vector<TensorRef>& tensors,
                      const std::map<std::string, std::string>& metadata) {
  std::vector<TensorInfo> infos;
  infos.reserve(tensors.size());
  for (const TensorRef& t : tensors) infos.push_back({t.name, t.dtype, t.shape});
  std::string out = serialize_header(infos, metadata);
  // serialize_header proved every size fits, so these products cannot overflow.
  std::vector<size_t> sizes;
  size_t total = out.size();
  for (const TensorRef& t : tensors) {
    int64_t numel = 0;
    checked_numel(t.shape, &numel);
    sizes.push_back(static_cast<size_t>(numel) * dtype_size(t.dtype));
    if (sizes.back() > 0 && t.data == nullptr) {
      throw Error("safetensors::serialize: tensor '" + t.name + "' has no data pointer");
    }
    total += sizes.back();
  }
  out.reserve(total);
  for (size_t i = 0; i < tensors.size(); ++i) {
    if (sizes[i] > 0) out.append(static_cast<const char*>(tensors[i].data), sizes[i]);
  }
  return out;
}

void save(const std::string& path, const std::vector<TensorRef>& tensors,
          const std::map<std::string, std::string>& metadata) {
  write_file_atomic(path, serialize(tensors, metadata));
}

Contents parse(const std::string& bytes, const std::string& source_name) {
  const std::string& src = source_name;
  if (bytes.size() < 8) {
    throw IoError(src + ": file is " + std::to_string(bytes.size()) +
                  " bytes, shorter than the 8-byte header length field");
  }
  uint64_t header_len = 0;
  for (int i = 0; i < 8; ++i) {
    header_len |= uint64_t{static_cast<unsigned char>(bytes[i])} << (8 * i);
  }
  if (header_len > kMaxHeaderBytes) {
    throw IoError(src + ": header length " + std::to_string(header_len) +
                  " exceeds the 100 MiB limit for a safetensors header");
  }
  const uint64_t after_len = bytes.size() - 8;
  if (header_len > after_len) {
    throw IoError(src + ": header length " + std::to_string(header_len) + " exceeds file size " +
                  std::to_string(bytes.size()) + " (at most " + std::to_string(after_len) +
                  " bytes follow the length field)");
  }
  const size_t data_begin = 8 + static_cast<size_t>(header_len);
  const int64_t data_size = static_cast<int64_t>(bytes.size() - data_begin);

  const json root = parse_header_json(bytes.substr(8, static_cast<size_t>(header_len)), src);
  if (!root.is_object()) {
    throw IoError(src + ": header is not a JSON object (got " + std::string(root.type_name()) + ")");
  }

  HeaderReader reader(src, data_size);
  Contents out;
  std::vector<Pending> pending;
  for (const auto& item : root.items()) {
    if (item.key() == kMetadataKey) {
      out.metadata = reader.metadata(item.value());
    } else {
      pending.push_back(reader.entry(item.key(), item.value()));
    }
  }

  // Sorting by (begin, end) puts an empty tensor at an offset before the tensor that starts
  // there, so back-to-back layouts with empty tensors pass and anything else shows as a gap
  // or an overlap with its neighbour.
  std::sort(pending.begin(), pending.end(), [](const Pending& a, const Pending& b) {
    return std::tie(a.begin, a.end, a.name) < std::tie(b.begin, b.end, b.name);
  });
  int64_t covered = 0;
  const Pending* prev = nullptr;
  for (const Pending& p : pending) {
    if (p.begin < covered) {
      throw IoError(src + ": tensors '" + prev->name + "' data_offsets [" +
                    std::to_string(prev->begin) + ", " + std::to_string(prev->end) + "] and '" +
                    p.name + "' data_offsets [" + std::to_string(p.begin) + ", " +
                    std::to_string(p.end) + "] overlap");
    }
    if (p.begin > covered) {
      throw IoError(src + ": data bytes [" + std::to_string(covered) + ", " +
                    std::to_string(p.begin) + ") before tensor '" + p.name +
                    "' belong to no tensor (tensors must cover the data section exactly)");
    }
    covered = p.end;
    prev = &p;
  }
  if (covered != data_size) {
    throw IoError(src + ": data bytes [" + std::to_string(covered) + ", " +
                  std::to_string(data_size) +
                  ") after the last tensor belong to no tensor (tensors must cover the data "
                  "section exactly)");
  }

  for (Pending& p : pending) {
    Entry e{p.dtype, std::move(p.shape),
            bytes.substr(data_begin + static_cast<size_t>(p.begin),
                         static_cast<size_t>(p.end - p.begin))};
    out.order.push_back(p.name);
    out.tensors.emplace(std::move(p.name), std::move(e));
  }
  return out;
}

Contents load(const std::string& path) { return parse(read_file(path), path); }

template <typename S>
void copy_tensor(const Contents& contents, const std::string& name,
                 const std::vector<int64_t>& expected_shape, S* out,
                 const std::string& source_name) {
  auto it = contents.tensors.find(name);
  if (it == contents.tensors.end()) {
    throw IoError(source_name + ": tensor '" + name + "' is missing");
  }
  const Entry& e = it->second;
  if (e.shape != expected_shape) {
    throw IoError(source_name + ": tensor '" + name + "' has shape " + shape_str(e.shape) +
                  ", expected " + shape_str(expected_shape));
  }
  if (e.dtype != DType::F32 && e.dtype != DType::F64) {
    throw IoError(source_name + ": tensor '" + name + "' has dtype " + dtype_name(e.dtype) +
                  ", expected F32 or F64");
  }
  const size_t esize = dtype_size(e.dtype);
  const size_t n = static_cast<size_t>(e.numel());
  // An Entry built by hand need not match its shape; reading past bytes would be the result.
  if (e.bytes.size() != n * esize) {
    throw IoError(source_name + ": tensor '" + name + "' holds " + std::to_string(e.bytes.size()) +
                  " bytes, but shape " + shape_str(e.shape) + " of " + dtype_name(e.dtype) +
                  " needs " + std::to_string(n * esize));
  }
  // memcpy per element because std::string storage carries no alignment guarantee for double.
  const char* p = e.bytes.data();
  if (e.dtype == DType::F32) {
    for (size_t i = 0; i < n; ++i) {
      float v;
      std::memcpy(&v, p + i * 4, 4);
      out[i] = static_cast<S>(v);
    }
  } else {
    for (size_t i = 0; i < n; ++i) {
      double v;
      std::memcpy(&v, p + i * 8, 8);
      out[i] = static_cast<S>(v);
    }
  }
}

template void copy_tensor<float>(const Contents&, const std::string&, const std::vector<int64_t>&,
                                 float*, const std::string&);
template void copy_tensor<double>(const Contents&, const std::string&,
                                  const std::vector<int64_t>&, double*, const std::string&);

}  // namespace statelab::safetensors
