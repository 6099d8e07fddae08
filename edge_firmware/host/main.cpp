// noctis-device: the firmware as a host program, one process = one device.
//
//   noctis-device --flash FILE --nvs FILE [--server URL --device-id ID --secret S]
//                 [--sectors N] [--seed N]
//
// The server, device id and secret given on the command line are provisioned into NVS
// at start; without them the device uses what NVS holds (`provision` commands below).
//
// The device's own code (src/core: queue, sync, codec, time, seqs) runs unchanged; this
// file is only the board: it takes the sensors' epochs, the clock and the radio's state
// from commands on stdin, one per line, and answers each on stdout:
//   time MS            monotonic time is now MS (never goes back)  -> ok
//   clock UNIX         NTP answered: the wall clock is UNIX now     -> ok
//   epoch F0 .. F14 [STAGE]  an epoch that began 30 s ago ("nan" = missing; the edge
//                      model's stage, -1 if none)                   -> ok INCARNATION NEXT_SEQ
//   link up|down       the Wi-Fi link                               -> ok
//   sync               upload until the queue is drained or a wait is due
//                                                                   -> synced WAIT_MS PENDING FAILURES
//   status             -> status incarnation=.. next_seq=.. pending=.. dropped=.. corrupt=..
//   provision LINE     a provisioning console line (noctis/provisioning.h), as the
//                      board's serial console takes it   -> its reply
//   cut N              the N-th next flash write is torn and the process dies there
//   quit
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <iostream>
#include <sstream>
#include <string>
#include <utility>

#include "noctis/device.h"
#include "noctis/provisioning.h"
#include "posix_port.h"

using namespace noctis;

namespace {
const char* arg(int argc, char** argv, const char* name, const char* fallback) {
  for (int i = 1; i + 1 < argc; ++i)
    if (std::strcmp(argv[i], name) == 0) return argv[i + 1];
  if (fallback == nullptr) {
    std::fprintf(stderr, "noctis-device: %s is required\n", name);
    std::exit(2);
  }
  return fallback;
}
}  // namespace

int main(int argc, char** argv) {
  const uint32_t sectors = static_cast<uint32_t>(std::strtoul(arg(argc, argv, "--sectors", "2048"), nullptr, 10));
  const uint32_t seed = static_cast<uint32_t>(std::strtoul(arg(argc, argv, "--seed", "1"), nullptr, 10));
  host::FileFlash flash(arg(argc, argv, "--flash", nullptr), sectors, seed);
  host::FileStore nvs(arg(argc, argv, "--nvs", nullptr));
  for (const auto& [option, key] : {std::pair{"--server", "server"}, {"--device-id", "device_id"}, {"--secret", "secret"}})
    if (const char* value = arg(argc, argv, option, "")) {
      if (*value) nvs.set_str(key, value);
    }
  host::CurlTransport radio(nvs);
  ProvisioningConsole console(nvs);
  host::SeededRandom random(seed);
  host::ReplayStager stager;
  Device device(flash, radio, random, nvs, stager);
  const RecoveryReport report = device.boot();
  std::printf("boot incarnation=%u next_seq=%u pending=%llu blocks=%u corrupt=%u\n", device.incarnation(),
              device.next_seq(), static_cast<unsigned long long>(report.pending_epochs), report.blocks,
              report.corrupt_blocks);
  std::fflush(stdout);

  uint64_t now_ms = 0;
  std::string line;
  while (std::getline(std::cin, line)) {
    std::istringstream in(line);
    std::string command;
    in >> command;
    if (command == "time") {
      uint64_t ms = 0;
      in >> ms;
      if (ms > now_ms) now_ms = ms;
      std::printf("ok\n");
    } else if (command == "clock") {
      uint32_t unix_s = 0;
      in >> unix_s;
      device.set_time(now_ms, unix_s);
      std::printf("ok\n");
    } else if (command == "epoch") {
      double features[kFeatureCount];
      for (double& value : features) {
        std::string token;
        in >> token;
        value = token == "nan" ? NAN : std::strtod(token.c_str(), nullptr);
      }
      int stage = -1;
      in >> stage;
      stager.next.push_back(stage >= 0 && stage < 4 ? static_cast<uint8_t>(stage) : kNoStage);
      device.record_epoch(now_ms >= 30000 ? now_ms - 30000 : 0, features);
      std::printf("ok %u %u\n", device.incarnation(), device.next_seq());
    } else if (command == "link") {
      std::string state;
      in >> state;
      radio.link_up = state == "up";
      std::printf("ok\n");
    } else if (command == "sync") {
      uint32_t wait = 0;
      for (int i = 0; i < 10000 && (wait = device.sync(now_ms)) == 0; ++i) {
      }
      std::printf("synced %u %llu %u\n", wait, static_cast<unsigned long long>(device.queue().pending_epochs()),
                  device.sync_client().consecutive_failures());
    } else if (command == "status") {
      std::printf("status incarnation=%u next_seq=%u pending=%llu dropped=%llu corrupt=%u unanchored_dropped=%u\n",
                  device.incarnation(), device.next_seq(),
                  static_cast<unsigned long long>(device.queue().pending_epochs()),
                  static_cast<unsigned long long>(device.queue().dropped_epochs()), device.queue().corrupt_blocks(),
                  device.unanchored_dropped());
    } else if (command == "cut") {
      long writes = 0;
      in >> writes;
      flash.cut_after(writes);
      std::printf("ok\n");
    } else if (command == "provision") {
      std::string rest;
      std::getline(in >> std::ws, rest);
      char reply[1024];
      console.handle(rest.c_str(), reply, sizeof reply);
      std::printf("%s\n", reply);
    } else if (command == "quit") {
      break;
    } else {
      std::printf("error unknown command %s\n", command.c_str());
    }
    std::fflush(stdout);
  }
  return 0;
}
