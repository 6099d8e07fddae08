#include <doctest/doctest.h>

#include <cmath>
#include <vector>

#include "noctis/codec.h"
#include "noctis/epoch_features.h"
#include "noctis/radar.h"

using namespace noctis;

static std::vector<RadarReport> parse(const std::vector<uint8_t>& bytes, RadarParser& parser) {
  std::vector<RadarReport> out;
  RadarReport r;
  for (uint8_t b : bytes)
    if (parser.feed(b, &r)) out.push_back(r);
  return out;
}

static void append_frame(std::vector<uint8_t>& stream, uint8_t control, uint8_t command, std::vector<uint8_t> data) {
  uint8_t frame[80];
  size_t n = radar_frame(control, command, data.data(), static_cast<uint16_t>(data.size()), frame);
  stream.insert(stream.end(), frame, frame + n);
}

TEST_CASE("radar frames decode, noise and bad checksums are skipped") {
  std::vector<uint8_t> stream = {0x00, 0x53, 0x12, 0x59};  // line noise, a false start
  append_frame(stream, 0x85, 0x02, {62});
  append_frame(stream, 0x81, 0x02, {14});
  append_frame(stream, 0x80, 0x04, {0x00, 0x8C});  // 140 cm
  size_t corrupt_at = stream.size();
  append_frame(stream, 0x80, 0x01, {1});
  stream[corrupt_at + 6] ^= 0x01;  // breaks the checksum of this frame
  append_frame(stream, 0x80, 0x03, {37});
  RadarParser parser;
  auto reports = parse(stream, parser);
  REQUIRE(reports.size() == 4);
  CHECK(reports[0].kind == RadarReport::Kind::kHeartRate);
  CHECK(reports[0].value == 62);
  CHECK(reports[1].kind == RadarReport::Kind::kBreathRate);
  CHECK(reports[2].kind == RadarReport::Kind::kDistanceCm);
  CHECK(reports[2].value == 140);
  CHECK(reports[3].kind == RadarReport::Kind::kBodyMovement);
  CHECK(parser.checksum_errors() == 1);
}

TEST_CASE("a split stream parses the same as a whole one") {
  std::vector<uint8_t> stream;
  for (int i = 0; i < 50; ++i) append_frame(stream, 0x85, 0x02, {static_cast<uint8_t>(55 + i % 10)});
  RadarParser whole, split;
  auto a = parse(stream, whole);
  std::vector<RadarReport> b;
  RadarReport r;
  for (size_t i = 0; i < stream.size(); ++i)
    if (split.feed(stream[i], &r)) b.push_back(r);
  CHECK(a.size() == 50);
  CHECK(b.size() == 50);
}

TEST_CASE("an epoch of radar and accelerometer data becomes schema features") {
  EpochFeatures epoch;
  for (int s = 0; s < 30; ++s) {
    epoch.add_radar({RadarReport::Kind::kPresence, 0x80, 0x01, 1});
    epoch.add_radar({RadarReport::Kind::kHeartRate, 0x85, 0x02, static_cast<uint32_t>(s % 2 ? 60 : 64)});
    epoch.add_radar({RadarReport::Kind::kBreathRate, 0x81, 0x02, 14});
    epoch.add_radar({RadarReport::Kind::kDistanceCm, 0x80, 0x04, 120});
    epoch.add_radar({RadarReport::Kind::kBodyMovement, 0x80, 0x03, 4});
  }
  for (uint32_t ms = 0; ms < 30000; ms += 20) {  // 50 Hz, a 200 ms bump at 10 s
    double z = (ms >= 10000 && ms < 10200) ? 1100 : 1000;
    epoch.add_accel(0, 0, z, ms);
  }
  double f[kFeatureCount];
  epoch.finish(1.5, f);
  CHECK(f[kHrMean] == doctest::Approx(62));
  CHECK(f[kHrStd] == doctest::Approx(2));
  CHECK(f[kIbiRmssd] > 0);
  CHECK(f[kRespRateMean] == doctest::Approx(14));
  CHECK(std::isnan(f[kRespAmplitude]));  // not reported by the module: missing, not zero
  CHECK(f[kPresenceRatio] == doctest::Approx(1.0));
  CHECK(f[kTargetDistance] == doctest::Approx(1.2));
  CHECK(f[kMovementEvents] == 1);
  CHECK(f[kAccelPeak] == doctest::Approx(100));
  CHECK(f[kActivityCount] > 0);
  CHECK(f[kHoursSinceStart] == 1.5);
  uint8_t codes[kFeatureCount];
  quantize_epoch(f, codes);
  CHECK(codes[kRespAmplitude] == kMissingCode);
  CHECK(codes[kHoursSinceStart] != kMissingCode);
}

TEST_CASE("nobody in bed: vitals are missing, presence is zero") {
  EpochFeatures epoch;
  for (int s = 0; s < 30; ++s) {
    epoch.add_radar({RadarReport::Kind::kPresence, 0x80, 0x01, 0});
    epoch.add_radar({RadarReport::Kind::kHeartRate, 0x85, 0x02, 0});
  }
  double f[kFeatureCount];
  epoch.finish(0.1, f);
  CHECK(std::isnan(f[kHrMean]));
  CHECK(f[kPresenceRatio] == 0.0);
  CHECK(std::isnan(f[kActivityCount]));  // no accelerometer samples: missing
}

#include "noctis/placement.h"

TEST_CASE("placement check: a good spot passes, each fault names itself") {
  double still[kFeatureCount], turning[kFeatureCount];
  for (int i = 0; i < kFeatureCount; ++i) still[i] = turning[i] = NAN;
  still[kPresenceRatio] = 1.0, still[kTargetDistance] = 1.1, still[kAccelStd] = 0.5, turning[kAccelStd] = 8.0;
  CHECK(check_placement(still, turning).ok());
  still[kTargetDistance] = 2.2;
  CHECK(check_placement(still, turning).first_failure() == 2);
  still[kTargetDistance] = 1.1, turning[kAccelStd] = 1.0;  // a box on the bedside table
  CHECK(check_placement(still, turning).first_failure() == 3);
  still[kPresenceRatio] = 0.3;
  CHECK(check_placement(still, turning).first_failure() == 1);
}
