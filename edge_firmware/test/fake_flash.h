// RAM-backed NOR flash for host tests, with a power cut after a chosen number of writes
// that tears the write in flight at any byte and bit.
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
    if (!tick()) {
      for (size_t i = 0; i < len; ++i) bytes_[address + i] &= data[i];  // NOR: 1 -> 0 only
      return;
    }
    // Torn: nothing is atomic, not even one byte. Some prefix lands, then some of the
    // next byte's bits, then nothing.
    const size_t applied = tear_ % len;
    for (size_t i = 0; i < applied; ++i) bytes_[address + i] &= data[i];
    bytes_[address + applied] &= static_cast<uint8_t>(data[applied] | (tear_ * 0x9E3779B1u >> 24));
    throw PowerCut();
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

  void cut_after(long count, uint32_t tear = 0) { budget_ = count, tear_ = tear; }
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
  uint32_t tear_ = 0;
};
