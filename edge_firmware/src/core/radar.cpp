#include "noctis/radar.h"

namespace noctis {

namespace {
constexpr uint8_t kHead1 = 0x53, kHead2 = 0x59, kTail1 = 0x54, kTail2 = 0x43;
constexpr uint8_t kPresenceControl = 0x80, kBreathControl = 0x81, kHeartControl = 0x85;
}  // namespace

bool RadarParser::feed(uint8_t byte, RadarReport* report) {
  switch (step_) {
    case Step::kHeader1:
      if (byte == kHead1) step_ = Step::kHeader2, sum_ = byte;
      return false;
    case Step::kHeader2:
      if (byte == kHead2) step_ = Step::kControl, sum_ += byte;
      else step_ = byte == kHead1 ? Step::kHeader2 : Step::kHeader1;
      return false;
    case Step::kControl:
      control_ = byte, sum_ += byte, step_ = Step::kCommand;
      return false;
    case Step::kCommand:
      command_ = byte, sum_ += byte, step_ = Step::kLength1;
      return false;
    case Step::kLength1:
      length_ = static_cast<uint16_t>(byte << 8), sum_ += byte, step_ = Step::kLength2;
      return false;
    case Step::kLength2:
      length_ = static_cast<uint16_t>(length_ | byte), sum_ += byte, received_ = 0;
      if (length_ > kMaxData) reset();
      else step_ = length_ == 0 ? Step::kChecksum : Step::kData;
      return false;
    case Step::kData:
      data_[received_++] = byte, sum_ += byte;
      if (received_ == length_) step_ = Step::kChecksum;
      return false;
    case Step::kChecksum:
      if (byte != sum_) {
        ++checksum_errors_;
        reset();
      } else {
        step_ = Step::kTail1;
      }
      return false;
    case Step::kTail1:
      step_ = byte == kTail1 ? Step::kTail2 : Step::kHeader1;
      return false;
    case Step::kTail2:
      reset();
      if (byte != kTail2) return false;
      *report = decode();
      return true;
  }
  return false;
}

RadarReport RadarParser::decode() const {
  RadarReport r;
  r.control = control_;
  r.command = command_;
  const uint32_t first = length_ >= 1 ? data_[0] : 0;
  if (control_ == kPresenceControl && command_ == 0x01 && length_ == 1) r.kind = RadarReport::Kind::kPresence, r.value = first;
  else if (control_ == kPresenceControl && command_ == 0x02 && length_ == 1) r.kind = RadarReport::Kind::kMotionState, r.value = first;
  else if (control_ == kPresenceControl && command_ == 0x03 && length_ == 1) r.kind = RadarReport::Kind::kBodyMovement, r.value = first;
  else if (control_ == kPresenceControl && command_ == 0x04 && length_ == 2)
    r.kind = RadarReport::Kind::kDistanceCm, r.value = static_cast<uint32_t>(data_[0] << 8 | data_[1]);
  else if (control_ == kBreathControl && command_ == 0x02 && length_ == 1) r.kind = RadarReport::Kind::kBreathRate, r.value = first;
  else if (control_ == kHeartControl && command_ == 0x02 && length_ == 1) r.kind = RadarReport::Kind::kHeartRate, r.value = first;
  return r;
}

size_t radar_frame(uint8_t control, uint8_t command, const uint8_t* data, uint16_t len, uint8_t* out) {
  size_t n = 0;
  out[n++] = kHead1, out[n++] = kHead2, out[n++] = control, out[n++] = command;
  out[n++] = static_cast<uint8_t>(len >> 8), out[n++] = static_cast<uint8_t>(len & 0xff);
  for (uint16_t i = 0; i < len; ++i) out[n++] = data[i];
  uint8_t sum = 0;
  for (size_t i = 0; i < n; ++i) sum = static_cast<uint8_t>(sum + out[i]);
  out[n++] = sum, out[n++] = kTail1, out[n++] = kTail2;
  return n;
}

}  // namespace noctis
