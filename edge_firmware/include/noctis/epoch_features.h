// Turns 30 s of radar reports and accelerometer samples into the 15 features of
// schema v1. Running sums only: O(1) memory whatever the sample rate.
#pragma once
#include <cstdint>

#include "noctis/radar.h"
#include "noctis_schema.h"

namespace noctis {

struct Stat {  // count, mean and spread without storing samples (Welford)
  uint32_t n = 0;
  double mean = 0, m2 = 0, min = 0, max = 0;
  void add(double x);
  double stddev() const;
};

class EpochFeatures {
 public:
  // Accelerometer thresholds (mg above or below 1 g): activity counts and movement events.
  static constexpr double kActivityThresholdMg = 5.0;
  static constexpr double kMovementThresholdMg = 30.0;

  void add_radar(const RadarReport& report);
  void add_accel(double x_mg, double y_mg, double z_mg, uint32_t sample_ms);
  // The epoch's features (NaN = missing); resets for the next epoch.
  void finish(double hours_since_start, double out[kFeatureCount]);

 private:
  Stat heart_, breath_, distance_m_, movement_, accel_;
  double previous_ibi_ms_ = 0, ibi_sq_diff_ = 0;
  uint32_t ibi_diffs_ = 0;
  uint32_t presence_reports_ = 0, present_ = 0;
  double activity_ = 0, peak_ = 0;
  uint32_t events_ = 0, last_event_ms_ = 0;
  bool above_ = false, any_event_ = false;
};

}  // namespace noctis
