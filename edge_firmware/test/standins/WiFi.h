// Declarations as in arduino-esp32 2.0.x (libraries/WiFi).
#pragma once
#include <cstdint>
enum wl_status_t { WL_IDLE_STATUS = 0, WL_CONNECTED = 3 };
class WiFiClass {
 public:
  int begin(const char* ssid, const char* password);
  wl_status_t status();
  int8_t RSSI();
};
extern WiFiClass WiFi;
