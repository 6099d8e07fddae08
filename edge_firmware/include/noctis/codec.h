// The contract's byte formats: 1-byte feature codes, CRC-32, flash/upload blocks.
// Portable: no hardware, no allocation. Mirrors noctis_contract (Python) byte for byte.
#pragma once
#include <cstddef>
#include <cstdint>

#include "noctis_schema.h"

namespace noctis {

// NaN (missing) -> 255; otherwise clip into the quantization range, 0..254, rounding
// half up exactly as noctis_contract.features.quantize does (double precision).
uint8_t quantize_feature(int feature, double value);
void quantize_epoch(const double values[kFeatureCount], uint8_t codes[kFeatureCount]);
double dequantize_feature(int feature, uint8_t code);  // NaN for 255

// Hours since the night began, the value of feature 14 (noctis_contract.features.night_hours).
inline double night_hours(uint32_t start, uint32_t night_start) {
  return start >= night_start ? (start - night_start) / 3600.0 : 0.0;
}
// Feature 14's code: what the device stages with, and what the flash queue restores on upload.
inline uint8_t hours_code(uint32_t start, uint32_t night_start) {
  return quantize_feature(kHoursSinceStart, night_hours(start, night_start));
}

// The mean code of every value seen since the night began, per feature (255 while none):
// the edge model's last input row (noctis_contract.features.night_so_far).
class NightSoFar {
 public:
  void reset() {
    for (int f = 0; f < kFeatureCount; ++f) sum_[f] = count_[f] = 0;
  }
  void add(const uint8_t codes[kFeatureCount]) {
    for (int f = 0; f < kFeatureCount; ++f)
      if (codes[f] != kMissingCode) sum_[f] += codes[f], ++count_[f];
  }
  void means(uint8_t out[kFeatureCount]) const {  // rounded half up, as in Python
    for (int f = 0; f < kFeatureCount; ++f)
      out[f] = count_[f] ? static_cast<uint8_t>((sum_[f] + count_[f] / 2) / count_[f]) : kMissingCode;
  }

 private:
  // 32 bits: 254 x 16.8 million epochs (16 years of a night) before a sum could wrap.
  uint32_t sum_[kFeatureCount] = {};
  uint32_t count_[kFeatureCount] = {};
};

uint32_t crc32_update(uint32_t crc, const uint8_t* data, size_t len);  // zlib.crc32 chaining
inline uint32_t crc32(const uint8_t* data, size_t len) { return crc32_update(0, data, len); }

struct BlockHeader {
  uint32_t first_seq = 0;
  uint32_t first_start = 0;  // Unix seconds UTC
  uint32_t model_version = 0;
  uint16_t count = 0;
  bool has_stages = false;
};

size_t block_bytes(int count, bool has_stages);

// Little-endian helpers shared by the codec and the flash queue.
inline void put_u16(uint8_t* p, uint16_t v) { p[0] = v & 0xff; p[1] = v >> 8; }
inline void put_u32(uint8_t* p, uint32_t v) {
  for (int i = 0; i < 4; ++i) p[i] = (v >> (8 * i)) & 0xff;
}
inline uint16_t get_u16(const uint8_t* p) { return static_cast<uint16_t>(p[0] | (p[1] << 8)); }
inline uint32_t get_u32(const uint8_t* p) {
  return static_cast<uint32_t>(p[0]) | (static_cast<uint32_t>(p[1]) << 8) | (static_cast<uint32_t>(p[2]) << 16) |
         (static_cast<uint32_t>(p[3]) << 24);
}

// Header layout offsets (see noctis_contract/blocks.py).
constexpr size_t kOffVersion = 4, kOffFlags = 5, kOffCount = 6, kOffFirstSeq = 8, kOffFirstStart = 12,
                 kOffModel = 16, kOffCrc = 20;

void pack_stages(const uint8_t* stages, int count, uint8_t* out);  // ceil(count/4) bytes
uint8_t stage_at(const uint8_t* packed, int index);

// Writes a complete block (header, codes, stages) to out; returns its size, 0 if it does not fit.
size_t encode_block(const BlockHeader& header, const uint8_t* codes, const uint8_t* stages, uint8_t* out,
                    size_t capacity);

enum class DecodeError { kNone, kTruncated, kBadMagic, kBadVersion, kBadCount, kBadCrc };

// Checks and parses the block at data; on success *size is its length in bytes.
DecodeError decode_block(const uint8_t* data, size_t len, BlockHeader* header, size_t* size);

}  // namespace noctis
