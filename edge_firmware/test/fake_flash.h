// RAM-backed NOR flash for host tests, with a power cut after a chosen number of writes.
#pragma once
#include <cstring>
#include <stdexcept>
#include <vector>

#include "noctis/flash_queue.h"

struct PowerCut : std::runtime_error {
  PowerCut() : std::runtime_error("power cut") {}
};

class FakeFlash : public noctis::Flash {
 public:
  explicit FakeFlash(uint32_t sectors) : sectors_(sectors), bytes_(sectors * noctis::kSectorBytes, 0xFF) {}

  uint32_t sector_count() const override { return sectors_; }
  void read(uint32_t address, uint8_t* out, size_t len) override {
    check(address, len);
    std::memcpy(out, &bytes_[address], len);
  }
  void program(uint32_t address, const uint8_t* data, size_t len) override {
    check(address, len);
    size_t applied = len;
    if (tick()) applied = len <= 4 ? 0 : len / 2;  // a word (<= 4 bytes) is all or nothing
    for (size_t i = 0; i < applied; ++i) bytes_[address + i] &= data[i];  // NOR: 1 -> 0 only
    if (applied != len) throw PowerCut();
  }
  void erase_sector(uint32_t sector) override {
    if (sector >= sectors_) throw std::out_of_range("sector");
    const size_t begin = sector * noctis::kSectorBytes;
    if (tick()) {  // a cut mid-erase leaves the first half erased, the rest as it was
      std::memset(&bytes_[begin], 0xFF, noctis::kSectorBytes / 2);
      throw PowerCut();
    }
    std::memset(&bytes_[begin], 0xFF, noctis::kSectorBytes);
    ++erases;
  }

  void cut_after(long count) { budget_ = count; }
  void never_cut() { budget_ = -1; }
  long writes = 0;
  long erases = 0;

 private:
  bool tick() {
    ++writes;
    if (budget_ < 0) return false;
    return budget_-- == 0;
  }
  void check(uint32_t address, size_t len) const {
    if (address + len > bytes_.size()) throw std::out_of_range("flash address");
  }
  uint32_t sectors_;
  std::vector<uint8_t> bytes_;
  long budget_ = -1;
};
