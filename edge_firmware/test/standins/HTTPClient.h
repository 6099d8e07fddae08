// Declarations as in arduino-esp32 2.0.x (libraries/HTTPClient/src/HTTPClient.h).
#pragma once
#include <cstddef>
#include <cstdint>

#include "Arduino.h"
#include "WiFiClientSecure.h"

class WiFiClient {
 public:
  int readBytes(uint8_t* buffer, size_t length);
};

class HTTPClient {
 public:
  bool begin(WiFiClientSecure& client, const String& url);
  void addHeader(const String& name, const String& value);
  void collectHeaders(const char* names[], size_t count);
  int POST(uint8_t* payload, size_t size);
  int GET();
  WiFiClient* getStreamPtr();
  String getString();
  String header(const char* name);
  void end();
  void setTimeout(uint16_t timeout_ms);
  void setConnectTimeout(int32_t connect_timeout_ms);
};
