// Declarations as in arduino-esp32 2.0.x (libraries/Preferences/src/Preferences.h).
#pragma once
#include <cstdint>

#include "Arduino.h"

class Preferences {
 public:
  bool begin(const char* name, bool read_only = false);
  String getString(const char* key, const String& fallback = String());
  uint32_t getUInt(const char* key, uint32_t fallback = 0);
  size_t putUInt(const char* key, uint32_t value);
  size_t putString(const char* key, const char* value);
  void end();
};
