#pragma once
#include <cstddef>
#include <cstdint>

#include "Arduino.h"
#include "WiFiClientSecure.h"

class HTTPClient {
 public:
  bool begin(WiFiClientSecure& client, const String& url);
  void addHeader(const String& name, const String& value);
  void collectHeaders(const char* names[], size_t count);
  int POST(uint8_t* payload, size_t size);
  String getString();
  String header(const char* name);
  void end();
};
