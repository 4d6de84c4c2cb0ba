// Tests for lab/safetensors: round trips, the byte layout the format prescribes, every rejection
// of the hardened parser on hand-crafted headers, and a seeded mutation fuzz. Malformed files are
// built by hand rather than by corrupting writer output, so each test pins one problem and the
// message that names it.
#include <gtest/gtest.h>
#include <unistd.h>

#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <functional>
#include <initializer_list>
#include <map>
#include <random>
#include <stdexcept>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "kernels/error.hpp"
#include "lab/files.hpp"
#include "lab/safetensors.hpp"
#include "tests/support/temp_dir.hpp"

namespace fs = std::filesystem;
namespace st = statelab::safetensors;
using statelab::IoError;
using st::DType;

namespace {

using statelab::testing::TempDir;

// A file from a header string and raw data, with no padding, so tests control every byte.
std::string with_header(const std::string& header, const std::string& data = "") {
  std::string out;
  const uint64_t n = header.size();
  for (int i = 0; i < 8; ++i) out.push_back(static_cast<char>((n >> (8 * i)) & 0xff));
  return out + header + data;
}

std::string length_prefix(uint64_t n) {
  std::string out;
  for (int i = 0; i < 8; ++i) out.push_back(static_cast<char>((n >> (8 * i)) & 0xff));
  return out;
}

uint64_t read_length(const std::string& bytes) {
  uint64_t n = 0;
  for (int i = 0; i < 8; ++i) n |= uint64_t{static_cast<unsigned char>(bytes[i])} << (8 * i);
  return n;
}

// Parses `bytes` as source "runs/x/model.safetensors" and checks that the IoError names the
// source and contains every one of `parts`.
void expect_rejected(const std::string& bytes, std::initializer_list<const char*> parts) {
  const std::string source = "runs/x/model.safetensors";
  try {
    (void)st::parse(bytes, source);
    ADD_FAILURE() << "parse accepted a malformed file; expected IoError containing "
                  << *parts.begin();
    return;
  } catch (const IoError& e) {
    const std::string msg = e.what();
    EXPECT_EQ(msg.rfind(source + ": ", 0), 0u) << "message does not start with the source: " << msg;
    for (const char* p : parts) {
      EXPECT_NE(msg.find(p), std::string::npos) << "missing \"" << p << "\" in: " << msg;
    }
  } catch (const std::exception& e) {
    ADD_FAILURE() << "expected IoError, got another exception: " << e.what();
  }
}

std::string io_error_message(const std::function<void()>& f) {
  try {
    f();
  } catch (const IoError& e) {
    return e.what();
  } catch (const std::exception& e) {
    ADD_FAILURE() << "expected IoError, got another exception: " << e.what();
    return "";
  }
  ADD_FAILURE() << "expected IoError, nothing was thrown";
  return "";
}

bool contains(const std::string& haystack, const std::string& needle) {
  return haystack.find(needle) != std::string::npos;
}

template <typename T>
std::vector<T> decode(const st::Entry& e) {
  std::vector<T> out(e.bytes.size() / sizeof(T));
  std::memcpy(out.data(), e.bytes.data(), out.size() * sizeof(T));
  return out;
}

// A small valid file with every dtype, a scalar, an empty tensor and metadata.
struct Sample {
  std::vector<float> w = {0.5f, -1.25f, 3.0f, 1e-30f, -0.0f, 7.75f};
  double scalar = 3.141592653589793;
  std::vector<int32_t> ints = {-7, 0, 2147483647};
  std::vector<int64_t> longs = {-9000000000LL, 1, 42};
  std::vector<uint8_t> bytes = {0, 1, 255, 128};
  std::vector<st::TensorRef> refs() const {
    return {{"layer.0.w", DType::F32, {2, 3}, w.data()},
            {"scalar", DType::F64, {}, &scalar},
            {"empty", DType::F32, {0, 4}, nullptr},
            {"ints", DType::I32, {3}, ints.data()},
            {"longs", DType::I64, {3, 1}, longs.data()},
            {"u8", DType::U8, {2, 2}, bytes.data()}};
  }
  std::map<std::string, std::string> metadata() const {
    return {{"format", "pt"}, {"statelab.step", "1200"}, {"note", "unicode \xc3\xa9"}};
  }
};

TEST(Safetensors, DtypeSizesAndNamesMatchTheFormat) {
  EXPECT_EQ(st::dtype_size(DType::F32), 4u);
  EXPECT_EQ(st::dtype_size(DType::F64), 8u);
  EXPECT_EQ(st::dtype_size(DType::I32), 4u);
  EXPECT_EQ(st::dtype_size(DType::I64), 8u);
  EXPECT_EQ(st::dtype_size(DType::U8), 1u);
  EXPECT_EQ(st::dtype_name(DType::F32), "F32");
  EXPECT_EQ(st::dtype_name(DType::F64), "F64");
  EXPECT_EQ(st::dtype_name(DType::I32), "I32");
  EXPECT_EQ(st::dtype_name(DType::I64), "I64");
  EXPECT_EQ(st::dtype_name(DType::U8), "U8");
}

TEST(Safetensors, RoundTripPreservesDtypesShapesValuesMetadataAndOrder) {
  Sample s;
  st::Contents c = st::parse(st::serialize(s.refs(), s.metadata()), "mem");
  EXPECT_EQ(c.metadata, s.metadata());
  EXPECT_EQ(c.order, (std::vector<std::string>{"layer.0.w", "scalar", "empty", "ints", "longs", "u8"}));
  ASSERT_EQ(c.tensors.size(), 6u);

  const st::Entry& w = c.tensors.at("layer.0.w");
  EXPECT_EQ(w.dtype, DType::F32);
  EXPECT_EQ(w.shape, (std::vector<int64_t>{2, 3}));
  EXPECT_EQ(w.numel(), 6);
  EXPECT_EQ(decode<float>(w), s.w);
  EXPECT_TRUE(std::signbit(decode<float>(w)[4])) << "-0.0 must keep its sign bit";

  const st::Entry& sc = c.tensors.at("scalar");
  EXPECT_EQ(sc.dtype, DType::F64);
  EXPECT_TRUE(sc.shape.empty());
  EXPECT_EQ(sc.numel(), 1);
  EXPECT_EQ(decode<double>(sc), std::vector<double>{s.scalar});

  const st::Entry& e = c.tensors.at("empty");
  EXPECT_EQ(e.shape, (std::vector<int64_t>{0, 4}));
  EXPECT_EQ(e.numel(), 0);
  EXPECT_TRUE(e.bytes.empty());

  EXPECT_EQ(c.tensors.at("ints").dtype, DType::I32);
  EXPECT_EQ(decode<int32_t>(c.tensors.at("ints")), s.ints);
  EXPECT_EQ(c.tensors.at("longs").dtype, DType::I64);
  EXPECT_EQ(c.tensors.at("longs").shape, (std::vector<int64_t>{3, 1}));
  EXPECT_EQ(decode<int64_t>(c.tensors.at("longs")), s.longs);
  EXPECT_EQ(c.tensors.at("u8").dtype, DType::U8);
  EXPECT_EQ(decode<uint8_t>(c.tensors.at("u8")), s.bytes);
}

TEST(Safetensors, RoundTripWithoutTensorsOrMetadata) {
  const std::string bytes = st::serialize({}, {});
  st::Contents c = st::parse(bytes, "mem");
  EXPECT_TRUE(c.tensors.empty());
  EXPECT_TRUE(c.metadata.empty());
  EXPECT_TRUE(c.order.empty());
  EXPECT_EQ(bytes.size() % 8, 0u);
}

TEST(Safetensors, SaveThenLoadRoundTripsThroughAFile) {
  TempDir dir;
  Sample s;
  const std::string path = dir / "model.safetensors";
  st::save(path, s.refs(), s.metadata());
  EXPECT_EQ(statelab::read_file(path), st::serialize(s.refs(), s.metadata()));
  st::Contents c = st::load(path);
  EXPECT_EQ(c.metadata, s.metadata());
  EXPECT_EQ(decode<float>(c.tensors.at("layer.0.w")), s.w);
}

TEST(Safetensors, HeaderIsPaddedWithSpacesSoDataStartsOnAnEightByteBoundary) {
  const double v = 1.0;
  for (size_t len = 1; len <= 17; ++len) {
    const std::string name(len, 'n');
    const std::string bytes = st::serialize({{name, DType::F64, {}, &v}}, {});
    const uint64_t n = read_length(bytes);
    EXPECT_EQ((8 + n) % 8, 0u) << "name length " << len;
    ASSERT_EQ(bytes.size(), 8 + n + 8);
    EXPECT_EQ(bytes[8], '{') << "the reference reader requires the header to start with '{'";
    const std::string header = bytes.substr(8, n);
    const size_t close = header.rfind('}');
    EXPECT_EQ(header.find_first_not_of(' ', close + 1), std::string::npos)
        << "padding must be spaces: [" << header << "]";
    EXPECT_LT(n - 1 - close, 8u) << "no more padding than needed";
  }
}

TEST(Safetensors, TensorsAreContiguousInTheGivenOrder) {
  Sample s;
  const std::string bytes = st::serialize(s.refs(), s.metadata());
  const uint64_t n = read_length(bytes);
  const nlohmann::json h = nlohmann::json::parse(bytes.substr(8, n));
  int64_t offset = 0;
  for (const st::TensorRef& t : s.refs()) {
    const auto& offs = h.at(t.name).at("data_offsets");
    EXPECT_EQ(offs[0].get<int64_t>(), offset) << t.name;
    offset = offs[1].get<int64_t>();
    EXPECT_EQ(h.at(t.name).at("dtype").get<std::string>(), st::dtype_name(t.dtype));
    EXPECT_EQ(h.at(t.name).at("shape").get<std::vector<int64_t>>(), t.shape);
  }
  EXPECT_EQ(static_cast<uint64_t>(offset), bytes.size() - 8 - n);
  EXPECT_EQ(h.at("__metadata__").at("statelab.step").get<std::string>(), "1200");
  // Data bytes are the little-endian values, unchanged.
  float first;
  std::memcpy(&first, bytes.data() + 8 + n, 4);
  EXPECT_EQ(first, 0.5f);
}

TEST(Safetensors, SerializeRejectsEmptyDuplicateAndReservedNames) {
  const float v = 1.0f;
  EXPECT_THROW(st::serialize({{"", DType::F32, {}, &v}}, {}), statelab::Error);
  EXPECT_THROW(st::serialize({{"a", DType::F32, {}, &v}, {"a", DType::F32, {}, &v}}, {}),
               statelab::Error);
  EXPECT_THROW(st::serialize({{"__metadata__", DType::F32, {}, &v}}, {}), statelab::Error);
  try {
    (void)st::serialize({{"a", DType::F32, {}, &v}, {"a", DType::F32, {}, &v}}, {});
  } catch (const statelab::Error& e) {
    EXPECT_TRUE(contains(e.what(), "duplicate tensor name 'a'")) << e.what();
  }
}

TEST(Safetensors, SerializeRejectsNegativeDimensionsMissingDataAndInvalidUtf8) {
  const float v = 1.0f;
  EXPECT_THROW(st::serialize({{"a", DType::F32, {2, -1}, &v}}, {}), statelab::Error);
  EXPECT_THROW(st::serialize({{"a", DType::F32, {2}, nullptr}}, {}), statelab::Error);
  EXPECT_THROW(st::serialize({{"bad\xff", DType::F32, {}, &v}}, {}), statelab::Error);
  EXPECT_THROW(st::serialize({}, {{"k", "bad\xc3"}}), statelab::Error);
}

TEST(Safetensors, ParseAcceptsUnpaddedHeaderAndEmptyTensorsBetweenOthers) {
  const std::string header =
      R"({"a":{"dtype":"U8","shape":[2],"data_offsets":[0,2]},)"
      R"("z":{"dtype":"F32","shape":[0],"data_offsets":[2,2]},)"
      R"("b":{"dtype":"U8","shape":[1],"data_offsets":[2,3]}})";
  st::Contents c = st::parse(with_header(header, "xyz"), "mem");
  EXPECT_EQ(c.order, (std::vector<std::string>{"a", "z", "b"}));
  EXPECT_EQ(c.tensors.at("b").bytes, "z");
}

// --- rejections ------------------------------------------------------------------------------

TEST(Safetensors, RejectsFileShorterThanEightBytes) {
  expect_rejected("", {"file is 0 bytes", "shorter than the 8-byte header length"});
  expect_rejected(std::string(7, '\0'), {"file is 7 bytes"});
}

TEST(Safetensors, RejectsHeaderLengthBeyondFileSize) {
  expect_rejected(length_prefix(999999) + std::string(1226, ' '),
                  {"header length 999999 exceeds file size 1234"});
  expect_rejected(length_prefix(UINT64_MAX), {"header length 18446744073709551615"});
}

TEST(Safetensors, RejectsHeaderLengthAbove100MiB) {
  expect_rejected(length_prefix((uint64_t{100} << 20) + 1) + "{}",
                  {"header length 104857601", "100 MiB limit"});
}

TEST(Safetensors, RejectsHeaderThatIsNotJson) {
  expect_rejected(with_header("{\"a\": "), {"header is not valid JSON"});
  expect_rejected(with_header(""), {"header is not valid JSON"});
  expect_rejected(with_header("{\"a\xff\": 1}"), {"header is not valid JSON"});
  expect_rejected(with_header(std::string("{}\0", 3)), {"header is not valid JSON"});
}

TEST(Safetensors, RejectsHeaderThatIsNotAnObject) {
  expect_rejected(with_header("[1, 2]"), {"header is not a JSON object", "array"});
  expect_rejected(with_header("\"text\""), {"header is not a JSON object", "string"});
}

TEST(Safetensors, RejectsDuplicateKeysInsteadOfKeepingTheLast) {
  expect_rejected(with_header(R"({"a":{"dtype":"U8","shape":[0],"data_offsets":[0,0]},)"
                              R"("a":{"dtype":"U8","shape":[0],"data_offsets":[0,0]}})"),
                  {"duplicate key \"a\""});
  expect_rejected(with_header(R"({"a":{"dtype":"U8","dtype":"F32","shape":[0],"data_offsets":[0,0]}})"),
                  {"duplicate key \"dtype\""});
}

TEST(Safetensors, RejectsNestingDeeperThanTheFormatUses) {
  expect_rejected(with_header(std::string(100000, '[') + std::string(100000, ']')),
                  {"nests JSON deeper"});
  expect_rejected(with_header(R"({"a":{"dtype":"U8","shape":[[1]],"data_offsets":[0,1]}})", "x"),
                  {"nests JSON deeper"});
}

TEST(Safetensors, RejectsEntryThatIsNotAnObject) {
  expect_rejected(with_header(R"({"w": [1, 2]})"), {"tensor 'w'", "entry is not an object", "array"});
  expect_rejected(with_header(R"({"w": 5})"), {"tensor 'w'", "entry is not an object"});
}

TEST(Safetensors, RejectsUnknownDtype) {
  expect_rejected(with_header(R"({"w":{"dtype":"BF16","shape":[1],"data_offsets":[0,2]}})", "xx"),
                  {"tensor 'w'", "unknown dtype \"BF16\""});
}

TEST(Safetensors, RejectsMissingOrIllTypedFields) {
  expect_rejected(with_header(R"({"w":{"shape":[1],"data_offsets":[0,1]}})", "x"),
                  {"tensor 'w'", "missing \"dtype\""});
  expect_rejected(with_header(R"({"w":{"dtype":4,"shape":[1],"data_offsets":[0,1]}})", "x"),
                  {"tensor 'w'", "\"dtype\" is not a string", "number"});
  expect_rejected(with_header(R"({"w":{"dtype":"U8","data_offsets":[0,1]}})", "x"),
                  {"tensor 'w'", "missing \"shape\""});
  expect_rejected(with_header(R"({"w":{"dtype":"U8","shape":1,"data_offsets":[0,1]}})", "x"),
                  {"tensor 'w'", "\"shape\" is not an array"});
  expect_rejected(with_header(R"({"w":{"dtype":"U8","shape":[1.0],"data_offsets":[0,1]}})", "x"),
                  {"tensor 'w'", "shape[0] is not an integer"});
  expect_rejected(with_header(R"({"w":{"dtype":"U8","shape":["1"],"data_offsets":[0,1]}})", "x"),
                  {"tensor 'w'", "shape[0] is not an integer", "string"});
  expect_rejected(with_header(R"({"w":{"dtype":"U8","shape":[1]}})", "x"),
                  {"tensor 'w'", "missing \"data_offsets\""});
  expect_rejected(with_header(R"({"w":{"dtype":"U8","shape":[1],"data_offsets":[1]}})", "x"),
                  {"tensor 'w'", "\"data_offsets\" is not a [begin, end] pair", "array of 1"});
  expect_rejected(with_header(R"({"w":{"dtype":"U8","shape":[1],"data_offsets":"0-1"}})", "x"),
                  {"tensor 'w'", "\"data_offsets\" is not a [begin, end] pair", "string"});
  expect_rejected(with_header(R"({"w":{"dtype":"U8","shape":[1],"data_offsets":[0,1.5]}})", "x"),
                  {"tensor 'w'", "data_offsets[1] is not an integer"});
  expect_rejected(with_header(R"({"w":{"dtype":"U8","shape":[1],"data_offsets":[-1,0]}})", "x"),
                  {"tensor 'w'", "data_offsets[0] = -1 is negative"});
}

TEST(Safetensors, RejectsUnknownEntryKey) {
  expect_rejected(
      with_header(R"({"w":{"dtype":"U8","shape":[1],"data_offsets":[0,1],"scale":2}})", "x"),
      {"tensor 'w'", "unknown key \"scale\""});
}

TEST(Safetensors, RejectsNegativeDimension) {
  expect_rejected(with_header(R"({"w":{"dtype":"U8","shape":[2,-3],"data_offsets":[0,0]}})"),
                  {"tensor 'w'", "negative dimension shape[1] = -3"});
}

TEST(Safetensors, RejectsDimensionBeyondInt64) {
  expect_rejected(
      with_header(R"({"w":{"dtype":"U8","shape":[9223372036854775808],"data_offsets":[0,0]}})"),
      {"tensor 'w'", "shape[0] = 9223372036854775808 does not fit in int64"});
}

TEST(Safetensors, RejectsShapeWhoseElementCountOverflows) {
  expect_rejected(
      with_header(
          R"({"w":{"dtype":"U8","shape":[4294967296,4294967296,4],"data_offsets":[0,0]}})"),
      {"tensor 'w'", "element count that overflows int64"});
}

TEST(Safetensors, RejectsShapeWhoseByteSizeOverflows) {
  expect_rejected(
      with_header(R"({"w":{"dtype":"F64","shape":[2305843009213693952],"data_offsets":[0,0]}})"),
      {"tensor 'w'", "byte size that overflows int64"});
}

TEST(Safetensors, RefusesTrillionElementTensorBeforeAllocating) {
  // 10^12 F32 elements = 4 TB: if the parser allocated from the shape this would die of
  // bad_alloc or the OOM killer instead of returning an IoError at once.
  expect_rejected(
      with_header(
          R"({"w":{"dtype":"F32","shape":[1000000,1000000],"data_offsets":[0,4000000000000]}})",
          std::string(16, '\0')),
      {"tensor 'w'", "needs 4000000000000 bytes", "data section's 16"});
}

TEST(Safetensors, RejectsOffsetsWithBeginAfterEnd) {
  expect_rejected(with_header(R"({"w":{"dtype":"U8","shape":[0],"data_offsets":[2,1]}})", "xx"),
                  {"tensor 'w'", "data_offsets [2, 1] have begin > end"});
}

TEST(Safetensors, RejectsOffsetsBeyondTheDataSection) {
  expect_rejected(with_header(R"({"w":{"dtype":"U8","shape":[2],"data_offsets":[1,3]}})", "xx"),
                  {"tensor 'w'", "data_offsets [1, 3] end beyond the data section's 2 bytes"});
}

TEST(Safetensors, RejectsOffsetsWhoseSpanDiffersFromTheShape) {
  expect_rejected(with_header(R"({"w":{"dtype":"F32","shape":[2],"data_offsets":[0,4]}})",
                              std::string(8, '\0')),
                  {"tensor 'w'", "data_offsets [0, 4] span 4 bytes", "needs 8"});
}

TEST(Safetensors, RejectsOverlappingTensors) {
  expect_rejected(with_header(R"({"a":{"dtype":"U8","shape":[4],"data_offsets":[0,4]},)"
                              R"("b":{"dtype":"U8","shape":[4],"data_offsets":[2,6]}})",
                              "abcdef"),
                  {"tensors 'a' data_offsets [0, 4] and 'b' data_offsets [2, 6] overlap"});
}

TEST(Safetensors, RejectsGapBetweenTensors) {
  expect_rejected(with_header(R"({"a":{"dtype":"U8","shape":[2],"data_offsets":[0,2]},)"
                              R"("b":{"dtype":"U8","shape":[2],"data_offsets":[3,5]}})",
                              "abcde"),
                  {"data bytes [2, 3) before tensor 'b' belong to no tensor",
                   "must cover the data section exactly"});
}

TEST(Safetensors, RejectsBytesAfterTheLastTensor) {
  expect_rejected(with_header(R"({"a":{"dtype":"U8","shape":[2],"data_offsets":[0,2]}})", "abcd"),
                  {"data bytes [2, 4) after the last tensor belong to no tensor",
                   "must cover the data section exactly"});
  expect_rejected(with_header("{}", "x"), {"data bytes [0, 1) after the last tensor"});
}

TEST(Safetensors, RejectsMetadataThatIsNotAnObjectOfStrings) {
  expect_rejected(with_header(R"({"__metadata__":["a"]})"),
                  {"\"__metadata__\" is not an object of strings", "array"});
  expect_rejected(with_header(R"({"__metadata__":{"step":12}})"),
                  {"\"__metadata__\" value for \"step\" is not a string", "number"});
}

TEST(Safetensors, LoadOfMissingFileNamesThePath) {
  TempDir dir;
  const std::string path = dir / "absent.safetensors";
  const std::string msg = io_error_message([&] { (void)st::load(path); });
  EXPECT_TRUE(contains(msg, path)) << msg;
}

TEST(Safetensors, LoadNamesThePathInParseErrors) {
  TempDir dir;
  const std::string path = dir / "short.safetensors";
  statelab::write_file_atomic(path, "abc");
  const std::string msg = io_error_message([&] { (void)st::load(path); });
  EXPECT_EQ(msg.rfind(path + ": file is 3 bytes", 0), 0u) << msg;
}

TEST(Safetensors, MutationFuzzEitherParsesOrThrowsIoError) {
  Sample s;
  const std::string valid = st::serialize(s.refs(), s.metadata());
  const size_t header_end = 8 + static_cast<size_t>(read_length(valid));
  const std::string structural = "{}[]\",:-0123456789. e";
  std::mt19937 rng(20240611);
  auto uniform = [&](size_t lo, size_t hi) {  // inclusive
    return std::uniform_int_distribution<size_t>(lo, hi)(rng);
  };
  int accepted = 0;
  int rejected = 0;
  for (int iter = 0; iter < 3000; ++iter) {
    std::string m = valid;
    switch (iter % 5) {
      case 0:  // bit flips anywhere, including the length field
        for (size_t k = uniform(1, 4); k > 0; --k) {
          m[uniform(0, m.size() - 1)] ^= static_cast<char>(1u << uniform(0, 7));
        }
        break;
      case 1:  // truncation
        m.resize(uniform(0, m.size() - 1));
        break;
      case 2:  // random bytes in the header
        for (size_t k = uniform(1, 8); k > 0; --k) {
          m[uniform(8, header_end - 1)] = static_cast<char>(uniform(0, 255));
        }
        break;
      case 3:  // JSON punctuation and digits, which keep more headers parseable as JSON
        for (size_t k = uniform(1, 3); k > 0; --k) {
          m[uniform(8, header_end - 1)] = structural[uniform(0, structural.size() - 1)];
        }
        break;
      case 4: {  // one digit changed: reaches the shape, offset and coverage checks
        std::vector<size_t> digits;
        for (size_t i = 8; i < header_end; ++i) {
          if (m[i] >= '0' && m[i] <= '9') digits.push_back(i);
        }
        m[digits[uniform(0, digits.size() - 1)]] = static_cast<char>('0' + uniform(0, 9));
        break;
      }
    }
    try {
      st::Contents c = st::parse(m, "fuzz");
      ++accepted;
      for (const auto& [name, e] : c.tensors) {
        ASSERT_EQ(static_cast<int64_t>(e.bytes.size()), e.numel() * static_cast<int64_t>(st::dtype_size(e.dtype)))
            << "iteration " << iter << " tensor " << name;
      }
      ASSERT_EQ(c.order.size(), c.tensors.size()) << "iteration " << iter;
    } catch (const IoError& e) {
      ++rejected;
      ASSERT_EQ(std::string(e.what()).rfind("fuzz: ", 0), 0u) << e.what();
    } catch (const std::exception& e) {
      FAIL() << "iteration " << iter << " threw a non-IoError exception: " << e.what();
    } catch (...) {
      FAIL() << "iteration " << iter << " threw a non-std exception";
    }
  }
  EXPECT_EQ(accepted + rejected, 3000);
  EXPECT_GT(rejected, 0);
  EXPECT_GT(accepted, 0) << "mutations that hit only padding or values must still parse";
}

// --- copy_tensor -------------------------------------------------------------------------------

TEST(Safetensors, CopyTensorConvertsBetweenF32AndF64) {
  const std::vector<float> f = {1.5f, -2.25f, 1e-3f};
  const std::vector<double> d = {0.1, -1e300, 2.0};
  st::Contents c = st::parse(
      st::serialize({{"f", DType::F32, {3}, f.data()}, {"d", DType::F64, {3}, d.data()}}, {}), "mem");

  std::vector<double> f_as_double(3);
  st::copy_tensor(c, "f", {3}, f_as_double.data(), "mem");
  EXPECT_EQ(f_as_double, (std::vector<double>{1.5, -2.25, static_cast<double>(1e-3f)}));

  std::vector<float> f_as_float(3);
  st::copy_tensor(c, "f", {3}, f_as_float.data(), "mem");
  EXPECT_EQ(f_as_float, f);

  std::vector<float> d_as_float(3);
  st::copy_tensor(c, "d", {3}, d_as_float.data(), "mem");
  EXPECT_EQ(d_as_float[0], 0.1f);
  EXPECT_TRUE(std::isinf(d_as_float[1]) && d_as_float[1] < 0);
  EXPECT_EQ(d_as_float[2], 2.0f);

  std::vector<double> d_as_double(3);
  st::copy_tensor(c, "d", {3}, d_as_double.data(), "mem");
  EXPECT_EQ(d_as_double, d);
}

TEST(Safetensors, CopyTensorShapeMismatchNamesSourceTensorAndBothShapes) {
  const std::vector<float> f(6, 1.0f);
  st::Contents c = st::parse(st::serialize({{"w", DType::F32, {2, 3}, f.data()}}, {}), "m.st");
  std::vector<float> out(6);
  const std::string msg = io_error_message([&] { st::copy_tensor(c, "w", {3, 2}, out.data(), "m.st"); });
  EXPECT_EQ(msg, "m.st: tensor 'w' has shape [2, 3], expected [3, 2]");
}

TEST(Safetensors, CopyTensorRefusesMissingTensorAndIntegerDtype) {
  const std::vector<int32_t> i = {1, 2};
  st::Contents c = st::parse(st::serialize({{"i", DType::I32, {2}, i.data()}}, {}), "m.st");
  std::vector<double> out(2);
  EXPECT_EQ(io_error_message([&] { st::copy_tensor(c, "nope", {2}, out.data(), "m.st"); }),
            "m.st: tensor 'nope' is missing");
  EXPECT_EQ(io_error_message([&] { st::copy_tensor(c, "i", {2}, out.data(), "m.st"); }),
            "m.st: tensor 'i' has dtype I32, expected F32 or F64");
}

TEST(Safetensors, CopyTensorRefusesHandBuiltEntryWhoseBytesDoNotMatchItsShape) {
  st::Contents c;
  c.tensors["w"] = st::Entry{DType::F32, {4}, std::string(8, '\0')};
  c.order = {"w"};
  std::vector<float> out(4);
  const std::string msg = io_error_message([&] { st::copy_tensor(c, "w", {4}, out.data(), "m.st"); });
  EXPECT_TRUE(contains(msg, "m.st: tensor 'w' holds 8 bytes")) << msg;
}

}  // namespace
