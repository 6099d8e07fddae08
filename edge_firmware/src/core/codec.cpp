#include "noctis/codec.h"

#include <cmath>
#include <cstring>

namespace noctis {

uint8_t quantize_feature(int feature, double value) {
  if (std::isnan(value)) return kMissingCode;
  const FeatureSpec& f = kFeatures[feature];
  double scaled = (value - f.quant_min) / (f.quant_max - f.quant_min) * kMaxValueCode;
  if (scaled < 0.0) scaled = 0.0;
  if (scaled > kMaxValueCode) scaled = kMaxValueCode;
  return static_cast<uint8_t>(std::floor(scaled + 0.5));
}

void quantize_epoch(const double values[kFeatureCount], uint8_t codes[kFeatureCount]) {
  for (int i = 0; i < kFeatureCount; ++i) codes[i] = quantize_feature(i, values[i]);
}

double dequantize_feature(int feature, uint8_t code) {
  if (code == kMissingCode) return NAN;
  const FeatureSpec& f = kFeatures[feature];
  return f.quant_min + code * (f.quant_max - f.quant_min) / kMaxValueCode;
}

namespace {
struct CrcTable {
  uint32_t entries[256];
  CrcTable() {
    for (uint32_t i = 0; i < 256; ++i) {
      uint32_t c = i;
      for (int k = 0; k < 8; ++k) c = (c & 1) ? 0xEDB88320u ^ (c >> 1) : c >> 1;
      entries[i] = c;
    }
  }
};
const CrcTable kCrcTable;
}  // namespace

uint32_t crc32_update(uint32_t crc, const uint8_t* data, size_t len) {
  crc = ~crc;
  for (size_t i = 0; i < len; ++i) crc = kCrcTable.entries[(crc ^ data[i]) & 0xff] ^ (crc >> 8);
  return ~crc;
}

size_t block_bytes(int count, bool has_stages) {
  return kBlockHeaderBytes + static_cast<size_t>(kFeatureCount) * count + (has_stages ? (count + 3) / 4 : 0);
}

void pack_stages(const uint8_t* stages, int count, uint8_t* out) {
  std::memset(out, 0, (count + 3) / 4);
  for (int i = 0; i < count; ++i) out[i / 4] |= static_cast<uint8_t>((stages[i] & 0x3) << (2 * (i % 4)));
}

uint8_t stage_at(const uint8_t* packed, int index) { return (packed[index / 4] >> (2 * (index % 4))) & 0x3; }

size_t encode_block(const BlockHeader& header, const uint8_t* codes, const uint8_t* stages, uint8_t* out,
                    size_t capacity) {
  const bool with_stages = stages != nullptr;
  const size_t size = block_bytes(header.count, with_stages);
  if (header.count < 1 || header.count > kMaxEpochsPerBlock || size > capacity) return 0;
  std::memcpy(out, kBlockMagic, 4);
  out[kOffVersion] = kBlockFormatVersion;
  out[kOffFlags] = with_stages ? kBlockFlagEdgeStages : 0;
  put_u16(out + kOffCount, header.count);
  put_u32(out + kOffFirstSeq, header.first_seq);
  put_u32(out + kOffFirstStart, header.first_start);
  put_u32(out + kOffModel, header.model_version);
  std::memcpy(out + kBlockHeaderBytes, codes, static_cast<size_t>(kFeatureCount) * header.count);
  if (with_stages) pack_stages(stages, header.count, out + kBlockHeaderBytes + kFeatureCount * header.count);
  uint32_t crc = crc32(out, kOffCrc);
  crc = crc32_update(crc, out + kBlockHeaderBytes, size - kBlockHeaderBytes);
  put_u32(out + kOffCrc, crc);
  return size;
}

DecodeError decode_block(const uint8_t* data, size_t len, BlockHeader* header, size_t* size) {
  if (len < kBlockHeaderBytes) return DecodeError::kTruncated;
  if (std::memcmp(data, kBlockMagic, 4) != 0) return DecodeError::kBadMagic;
  if (data[kOffVersion] != kBlockFormatVersion) return DecodeError::kBadVersion;
  const uint16_t count = get_u16(data + kOffCount);
  if (count < 1 || count > kMaxEpochsPerBlock) return DecodeError::kBadCount;
  const bool with_stages = (data[kOffFlags] & kBlockFlagEdgeStages) != 0;
  const size_t total = block_bytes(count, with_stages);
  if (total > len) return DecodeError::kTruncated;
  uint32_t crc = crc32(data, kOffCrc);
  crc = crc32_update(crc, data + kBlockHeaderBytes, total - kBlockHeaderBytes);
  if (crc != get_u32(data + kOffCrc)) return DecodeError::kBadCrc;
  header->first_seq = get_u32(data + kOffFirstSeq);
  header->first_start = get_u32(data + kOffFirstStart);
  header->model_version = get_u32(data + kOffModel);
  header->count = count;
  header->has_stages = with_stages;
  *size = total;
  return DecodeError::kNone;
}

}  // namespace noctis
