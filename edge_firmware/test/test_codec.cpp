// The C++ codec against vectors that the Python contract generated for this build.
#include <doctest/doctest.h>

#include <cmath>
#include <cstring>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "noctis/codec.h"
#include "noctis/session.h"

using namespace noctis;

static std::string vectors_dir() { return NOCTIS_VECTORS_DIR; }

static std::vector<uint8_t> from_hex(const std::string& hex) {
  std::vector<uint8_t> out;
  if (hex == "-") return out;
  for (size_t i = 0; i + 1 < hex.size(); i += 2) out.push_back(static_cast<uint8_t>(std::stoi(hex.substr(i, 2), nullptr, 16)));
  return out;
}

TEST_CASE("quantizer matches Python bit for bit, edge cases included") {
  std::ifstream in(vectors_dir() + "/quantize.txt");
  REQUIRE(in.good());
  std::string line;
  int cases = 0;
  while (std::getline(in, line)) {
    std::istringstream row(line);
    double values[kFeatureCount];
    for (double& v : values) {
      std::string token;
      row >> token;
      v = token == "nan" ? NAN : std::stod(token);
    }
    std::string bar;
    row >> bar;
    REQUIRE(bar == "|");
    uint8_t codes[kFeatureCount];
    quantize_epoch(values, codes);
    for (int i = 0; i < kFeatureCount; ++i) {
      int expected;
      row >> expected;
      CHECK_MESSAGE(codes[i] == expected, "line ", cases, " feature ", i, " value ", values[i]);
    }
    ++cases;
  }
  CHECK(cases == 400);
}

TEST_CASE("crc32 matches zlib") {
  std::ifstream in(vectors_dir() + "/crc32.txt");
  std::string hex;
  uint32_t expected;
  int cases = 0;
  while (in >> hex >> expected) {
    auto data = from_hex(hex);
    CHECK(crc32(data.data(), data.size()) == expected);
    ++cases;
  }
  CHECK(cases == 6);
}

TEST_CASE("blocks encode to the Python bytes and decode back") {
  std::ifstream in(vectors_dir() + "/blocks.txt");
  uint32_t seq, start, model;
  int count;
  std::string codes_hex, stages_text, block_hex;
  int cases = 0;
  while (in >> seq >> start >> model >> count >> codes_hex >> stages_text >> block_hex) {
    auto codes = from_hex(codes_hex);
    auto expected = from_hex(block_hex);
    std::vector<uint8_t> stages;
    if (stages_text != "-")
      for (char c : stages_text) stages.push_back(static_cast<uint8_t>(c - '0'));
    BlockHeader header{seq, start, model, static_cast<uint16_t>(count), !stages.empty()};
    uint8_t out[kSectorBytes];
    size_t size = encode_block(header, codes.data(), stages.empty() ? nullptr : stages.data(), out, sizeof out);
    REQUIRE(size == expected.size());
    CHECK(std::vector<uint8_t>(out, out + size) == expected);
    BlockHeader back;
    size_t back_size = 0;
    REQUIRE(decode_block(expected.data(), expected.size(), &back, &back_size) == DecodeError::kNone);
    CHECK(back.first_seq == seq);
    CHECK(back.count == count);
    CHECK(back_size == expected.size());
    for (size_t i = 0; i < stages.size(); ++i) CHECK(stage_at(expected.data() + kBlockHeaderBytes + kFeatureCount * count, static_cast<int>(i)) == stages[i]);
    // Any flipped bit is caught.
    expected[expected.size() / 2] ^= 0x10;
    CHECK(decode_block(expected.data(), expected.size(), &back, &back_size) != DecodeError::kNone);
    ++cases;
  }
  CHECK(cases == 4);
}

TEST_CASE("a full block fills a 4 KiB sector") {
  CHECK(block_bytes(kMaxEpochsPerBlock, true) <= kSectorBytes);
  CHECK(block_bytes(kMaxEpochsPerBlock + 1, true) > kSectorBytes);
}

TEST_CASE("session records encode to the Python bytes") {
  std::ifstream in(vectors_dir() + "/session.txt");
  int cases = 0;
  uint32_t incarnation, held_from;
  DeviceHealth h;
  int gaps;
  while (in >> incarnation >> held_from >> h.boot_count >> h.dropped_epochs >> h.corrupt_blocks >> h.queue_pending >>
         h.queue_capacity >> h.firmware_version >> h.consecutive_failures >> h.model_version >> h.free_heap >>
         h.rssi_dbm >> gaps) {
    BatchInfo batch;
    batch.held_from = held_from;
    batch.reason_below = GapReason::kQueueFull;
    batch.gap_count = static_cast<uint16_t>(gaps);
    for (int i = 0; i < gaps; ++i) {
      in >> batch.gaps[i].first_seq >> batch.gaps[i].count;
      batch.gaps[i].reason = GapReason::kCorrupt;
    }
    std::string hex;
    in >> hex;
    const auto expected = from_hex(hex);
    uint8_t out[kSessionMaxBytes];
    const size_t size = encode_session(incarnation, batch, h, out, sizeof out);
    CHECK(std::vector<uint8_t>(out, out + size) == expected);
    ++cases;
  }
  CHECK(cases == 3);
}

TEST_CASE("hours since the night's start: the firmware's code equals the one training uses") {
  std::ifstream in(vectors_dir() + "/hours.txt");
  uint32_t start, night_start;
  int code, cases = 0;
  while (in >> start >> night_start >> code) {
    CHECK(quantize_feature(kHoursSinceStart, night_hours(start, night_start)) == code);
    ++cases;
  }
  CHECK(cases == 200);
}

TEST_CASE("the night so far: the firmware's row equals the one training uses") {
  std::ifstream in(vectors_dir() + "/night_so_far.txt");
  NightSoFar night;
  std::string line;
  int cases = 0;
  while (std::getline(in, line)) {
    std::istringstream fields(line);
    uint8_t codes[kFeatureCount], expected[kFeatureCount], got[kFeatureCount];
    int value;
    std::string bar;
    for (auto& c : codes) fields >> value, c = static_cast<uint8_t>(value);
    fields >> bar;
    for (auto& e : expected) fields >> value, e = static_cast<uint8_t>(value);
    night.add(codes);
    night.means(got);
    CHECK(std::memcmp(got, expected, kFeatureCount) == 0);
    ++cases;
  }
  CHECK(cases == 300);
  night.reset();
  uint8_t got[kFeatureCount];
  night.means(got);
  for (uint8_t code : got) CHECK(code == kMissingCode);
}
