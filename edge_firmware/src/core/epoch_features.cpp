#include "noctis/epoch_features.h"

#include <cmath>

namespace noctis {

void Stat::add(double x) {
  ++n;
  const double delta = x - mean;
  mean += delta / n;
  m2 += delta * (x - mean);
  if (n == 1 || x < min) min = x;
  if (n == 1 || x > max) max = x;
}

double Stat::stddev() const { return n >= 2 ? std::sqrt(m2 / n) : NAN; }

void EpochFeatures::add_radar(const RadarReport& report) {
  using Kind = RadarReport::Kind;
  switch (report.kind) {
    case Kind::kPresence:
      ++presence_reports_;
      present_ += report.value != 0;
      break;
    case Kind::kHeartRate:
      if (report.value == 0) break;  // the module reports 0 while it has no lock
      heart_.add(report.value);
      {
        // Beat-interval proxy from successive rate reports, as for the training data.
        const double ibi_ms = 60000.0 / report.value;
        if (previous_ibi_ms_ > 0) ibi_sq_diff_ += (ibi_ms - previous_ibi_ms_) * (ibi_ms - previous_ibi_ms_), ++ibi_diffs_;
        previous_ibi_ms_ = ibi_ms;
      }
      break;
    case Kind::kBreathRate:
      if (report.value != 0) breath_.add(report.value);
      break;
    case Kind::kDistanceCm:
      distance_m_.add(report.value / 100.0);
      break;
    case Kind::kBodyMovement:
      movement_.add(report.value);
      break;
    default:
      break;
  }
}

void EpochFeatures::add_accel(double x_mg, double y_mg, double z_mg, uint32_t sample_ms) {
  const double magnitude = std::sqrt(x_mg * x_mg + y_mg * y_mg + z_mg * z_mg);
  const double deviation = std::fabs(magnitude - 1000.0);
  accel_.add(magnitude);
  if (deviation > kActivityThresholdMg) activity_ += (deviation - kActivityThresholdMg) / 10.0;
  if (deviation > peak_) peak_ = deviation;
  const bool above = deviation > kMovementThresholdMg;
  // A movement event is a rising edge, at most one per second.
  if (above && !above_ && (!any_event_ || sample_ms - last_event_ms_ >= 1000)) {
    ++events_;
    last_event_ms_ = sample_ms;
    any_event_ = true;
  }
  above_ = above;
}

void EpochFeatures::finish(double hours_since_start, double out[kFeatureCount]) {
  const bool someone = presence_reports_ == 0 || present_ > 0;
  out[kHrMean] = someone && heart_.n ? heart_.mean : NAN;
  out[kHrStd] = someone ? heart_.stddev() : NAN;
  out[kIbiRmssd] = someone && ibi_diffs_ >= 2 ? std::sqrt(ibi_sq_diff_ / ibi_diffs_) : NAN;
  out[kRespRateMean] = someone && breath_.n ? breath_.mean : NAN;
  out[kRespRateStd] = someone ? breath_.stddev() : NAN;
  // The MR60BHA1's standard reports carry no breathing amplitude or waveform.
  out[kRespAmplitude] = NAN;
  out[kRespRegularity] = NAN;
  out[kPresenceRatio] = presence_reports_ ? static_cast<double>(present_) / presence_reports_ : NAN;
  out[kTargetDistance] = distance_m_.n ? distance_m_.mean : NAN;
  out[kRadarMotion] = movement_.n ? movement_.mean : NAN;
  out[kActivityCount] = accel_.n ? activity_ : NAN;
  out[kAccelStd] = accel_.stddev();
  out[kAccelPeak] = accel_.n ? peak_ : NAN;
  out[kMovementEvents] = accel_.n ? events_ : NAN;
  out[kHoursSinceStart] = hours_since_start;
  // Clip into the schema's valid ranges: a wild reading must not make the epoch unstorable.
  for (int i = 0; i < kFeatureCount; ++i) {
    if (std::isnan(out[i])) continue;
    if (out[i] < kFeatures[i].valid_min) out[i] = kFeatures[i].valid_min;
    if (out[i] > kFeatures[i].valid_max) out[i] = kFeatures[i].valid_max;
  }
  const uint32_t keep_last_event = last_event_ms_;
  *this = EpochFeatures();
  last_event_ms_ = keep_last_event;
}

}  // namespace noctis
