#pragma once
#include <cstdint>
enum wl_status_t { WL_IDLE_STATUS = 0, WL_CONNECTED = 3 };
class WiFiClass {
 public:
  int begin(const char* ssid, const char* password);
  wl_status_t status();
};
extern WiFiClass WiFi;
