#include "noctis/placement.h"

#include <cmath>

namespace noctis {

PlacementResult check_placement(const double still[kFeatureCount], const double turning[kFeatureCount]) {
  PlacementResult r;
  r.presence = !std::isnan(still[kPresenceRatio]) && still[kPresenceRatio] >= 0.8;
  r.distance = !std::isnan(still[kTargetDistance]) && still[kTargetDistance] >= 0.5 && still[kTargetDistance] <= 1.5;
  const double quiet = std::isnan(still[kAccelStd]) ? NAN : std::fmax(still[kAccelStd], 0.2);  // noise floor, mg
  r.coupling = !std::isnan(quiet) && !std::isnan(turning[kAccelStd]) && turning[kAccelStd] >= 5 * quiet;
  return r;
}

}  // namespace noctis
