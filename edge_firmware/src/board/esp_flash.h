// The queue partition (hardware/partitions.csv: "queue", data 0x42) as a noctis::Flash.
#pragma once
#include <esp_partition.h>

#include "noctis/flash_queue.h"

namespace noctis::board {

class PartitionFlash : public Flash {
 public:
  explicit PartitionFlash(const esp_partition_t* partition) : partition_(partition) {}
  uint32_t sector_count() const override { return static_cast<uint32_t>(partition_->size / kSectorBytes); }
  void read(uint32_t address, uint8_t* out, size_t len) override { esp_partition_read(partition_, address, out, len); }
  void program(uint32_t address, const uint8_t* data, size_t len) override {
    esp_partition_write(partition_, address, data, len);
  }
  void erase_sector(uint32_t sector) override {
    esp_partition_erase_range(partition_, sector * kSectorBytes, kSectorBytes);
  }

 private:
  const esp_partition_t* partition_;
};

}  // namespace noctis::board
