// The placement check of hardware/MOUNTING.md: one epoch lying still, one turning over.
#pragma once
#include "noctis_schema.h"

namespace noctis {

struct PlacementResult {
  bool presence = false;  // presence_ratio >= 0.8 while lying still
  bool distance = false;  // target 0.5 .. 1.5 m away
  bool coupling = false;  // turning over moves the accelerometer 5x more than lying still
  bool ok() const { return presence && distance && coupling; }
  int first_failure() const { return !presence ? 1 : !distance ? 2 : !coupling ? 3 : 0; }  // LED blink code
};

PlacementResult check_placement(const double still[kFeatureCount], const double turning[kFeatureCount]);

}  // namespace noctis
