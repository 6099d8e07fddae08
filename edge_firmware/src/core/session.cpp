#include "noctis/session.h"

#include <cstring>

namespace noctis {

size_t encode_session(uint32_t incarnation, const BatchInfo& batch, const DeviceHealth& health, uint8_t* out,
                      size_t capacity) {
  const size_t size = kSessionFixedBytes + kSessionGapBytes * batch.gap_count;
  if (size > capacity) return 0;
  std::memset(out, 0, size);
  std::memcpy(out, kSessionMagic, 4);
  out[4] = kSessionVersion;
  out[5] = static_cast<uint8_t>(batch.reason_below);
  put_u16(out + 6, batch.gap_count);
  const uint32_t fields[] = {incarnation,
                             batch.held_from,
                             health.boot_count,
                             health.dropped_epochs,
                             health.corrupt_blocks,
                             health.queue_pending,
                             health.queue_capacity,
                             health.firmware_version,
                             health.consecutive_failures,
                             health.model_version,
                             health.free_heap,
                             static_cast<uint32_t>(health.rssi_dbm)};
  for (size_t i = 0; i < sizeof fields / sizeof fields[0]; ++i) put_u32(out + 8 + 4 * i, fields[i]);
  for (uint16_t i = 0; i < batch.gap_count; ++i) {
    uint8_t* gap = out + kSessionFixedBytes + kSessionGapBytes * i;
    put_u32(gap, batch.gaps[i].first_seq);
    put_u32(gap + 4, batch.gaps[i].count);
    gap[8] = static_cast<uint8_t>(batch.gaps[i].reason);
  }
  uint32_t crc = crc32(out, kSessionFixedBytes - 4);
  crc = crc32_update(crc, out + kSessionFixedBytes, kSessionGapBytes * batch.gap_count);
  put_u32(out + kSessionFixedBytes - 4, crc);
  return size;
}

}  // namespace noctis
