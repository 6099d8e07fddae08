// The Seeed MR60BHA1 (60 GHz breathing and heartbeat radar) UART protocol, 115200 8N1:
//   0x53 0x59 | control | command | length (2 bytes, big-endian) | data | checksum | 0x54 0x43
// checksum = low 8 bits of the sum of every byte from the header through the data.
#pragma once
#include <cstddef>
#include <cstdint>

namespace noctis {

struct RadarReport {
  enum class Kind { kPresence, kMotionState, kBodyMovement, kDistanceCm, kBreathRate, kHeartRate, kOther };
  Kind kind = Kind::kOther;
  uint8_t control = 0;
  uint8_t command = 0;
  uint32_t value = 0;  // the report's value, for the kinds above
};

class RadarParser {
 public:
  // Feeds one byte; returns true when it completed a valid frame, stored in *report.
  bool feed(uint8_t byte, RadarReport* report);
  uint32_t checksum_errors() const { return checksum_errors_; }

  static constexpr size_t kMaxData = 64;  // longer frames are not ours to decode: resync

 private:
  enum class Step { kHeader1, kHeader2, kControl, kCommand, kLength1, kLength2, kData, kChecksum, kTail1, kTail2 };
  void reset() { step_ = Step::kHeader1; }
  RadarReport decode() const;

  Step step_ = Step::kHeader1;
  uint8_t control_ = 0, command_ = 0, sum_ = 0;
  uint16_t length_ = 0, received_ = 0;
  uint8_t data_[kMaxData] = {};
  uint32_t checksum_errors_ = 0;
};

// Builds a frame (for tests and for commands sent to the radar).
size_t radar_frame(uint8_t control, uint8_t command, const uint8_t* data, uint16_t len, uint8_t* out);

}  // namespace noctis
