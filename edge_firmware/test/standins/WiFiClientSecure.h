// Declarations as in arduino-esp32 2.0.x (libraries/WiFiClientSecure).
#pragma once
class WiFiClientSecure {
 public:
  void setCACert(const char* root_ca);
};
