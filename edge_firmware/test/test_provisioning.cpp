#include <doctest/doctest.h>

#include <string>

#include "memory_store.h"
#include "noctis/provisioning.h"

using namespace noctis;

namespace {
std::string say(ProvisioningConsole& console, const char* line) {
  char reply[1024];
  console.handle(line, reply, sizeof reply);
  return reply;
}
}  // namespace

TEST_CASE("the console stores every setting, shows secrets only as set, and says what is missing") {
  MemoryStore nvs;
  ProvisioningConsole console(nvs);
  CHECK(say(console, "check") == "missing ssid");
  CHECK(say(console, "set ssid Bedroom Wi-Fi") == "ok ssid");  // a value may hold spaces
  CHECK(say(console, "set wifi_pw hunter2 hunter2") == "ok wifi_pw");
  CHECK(say(console, "set server https://noctis.example:8443") == "ok server");
  CHECK(say(console, "set device_id 0b1f2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d") == "ok device_id");
  CHECK(say(console, "set secret s3cr3t-device-secret") == "ok secret");
  CHECK(say(console, "check") == "missing ota_key");
  CHECK(say(console, "set ota_key 00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff") == "ok ota_key");
  CHECK(say(console, "check") == "ready");
  CHECK(say(console, "ca-begin") == "ok");
  CHECK(say(console, "-----BEGIN CERTIFICATE-----") == "ok");
  CHECK(say(console, "MIIBszCCAVmgAwIBAgIU") == "ok");
  CHECK(say(console, "-----END CERTIFICATE-----") == "ok");
  CHECK(say(console, "ca-end").rfind("ok ca ", 0) == 0);
  CHECK(nvs.strings["ca"] == "-----BEGIN CERTIFICATE-----\nMIIBszCCAVmgAwIBAgIU\n-----END CERTIFICATE-----\n");
  CHECK(nvs.strings["ssid"] == "Bedroom Wi-Fi");

  const std::string shown = say(console, "show");
  CHECK(shown.find("ssid=Bedroom Wi-Fi") != std::string::npos);
  CHECK(shown.find("server=https://noctis.example:8443") != std::string::npos);
  CHECK(shown.find("wifi_pw=(set)") != std::string::npos);
  CHECK(shown.find("secret=(set)") != std::string::npos);
  CHECK(shown.find("hunter2") == std::string::npos);  // secrets are never printed back
  CHECK(shown.find("s3cr3t") == std::string::npos);
  CHECK(shown.find("ca=(") != std::string::npos);
}

TEST_CASE("the console refuses what a device could not use, and stores nothing then") {
  MemoryStore nvs;
  ProvisioningConsole console(nvs);
  CHECK(say(console, "set server ftp://example.org").rfind("error server must start with https://", 0) == 0);
  CHECK(say(console, "set ota_key abc").rfind("error ota_key is 64 hex digits", 0) == 0);
  CHECK(say(console, "set device_id 42").rfind("error device_id is a UUID", 0) == 0);
  CHECK(say(console, "set colour blue").rfind("error unknown setting colour", 0) == 0);
  CHECK(say(console, "set ssid").rfind("error", 0) == 0);
  CHECK(say(console, "reboot").rfind("error unknown command reboot", 0) == 0);
  CHECK(say(console, "ca-begin") == "ok");
  CHECK(say(console, "not a certificate") == "ok");
  CHECK(say(console, "ca-end") == "error the CA is not a PEM certificate");
  CHECK(say(console, "ca-begin") == "ok");
  const std::string line(200, 'A');
  std::string reply;
  for (int i = 0; i < 30 && reply.rfind("error", 0) != 0; ++i) reply = say(console, line.c_str());
  CHECK(reply.rfind("error the CA is longer than", 0) == 0);
  CHECK(nvs.strings.empty());
}
