// Sync protocol v2: the session record in front of every upload's blocks. Mirrors
// noctis_contract/session.py byte for byte (checked against vectors it writes).
#pragma once
#include <cstddef>
#include <cstdint>

#include "noctis/flash_queue.h"

namespace noctis {

constexpr uint8_t kSessionMagic[4] = {'N', 'C', 'T', 'S'};
constexpr uint8_t kSessionVersion = 3;
constexpr size_t kSessionFixedBytes = 60;
constexpr size_t kSessionGapBytes = 12;
constexpr size_t kSessionMaxBytes = kSessionFixedBytes + kSessionGapBytes * kMaxBatchGaps;

struct DeviceHealth {
  uint32_t boot_count = 0;
  uint32_t dropped_epochs = 0;
  uint32_t corrupt_blocks = 0;
  uint32_t queue_pending = 0;
  uint32_t queue_capacity = 0;
  uint32_t firmware_version = 0;
  uint32_t consecutive_failures = 0;
  uint32_t model_version = 0;
  uint32_t free_heap = 0;
  int32_t rssi_dbm = 0;  // 0: not known
};

// Writes the record for this batch; returns its size (0 if capacity is too small).
size_t encode_session(uint32_t incarnation, const BatchInfo& batch, const DeviceHealth& health, uint8_t* out,
                      size_t capacity);

}  // namespace noctis
