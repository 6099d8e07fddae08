#pragma once
class WiFiClientSecure {
 public:
  void setCACert(const char* root_ca);
};
