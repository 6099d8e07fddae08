// noctis-device: the firmware as a host program, one process = one device.
//
//   noctis-device --flash FILE --nvs FILE [--server URL --device-id ID --secret S]
//                 [--sectors N] [--seed N] [--lookahead N]
//
// --lookahead: the edge model's lookahead in epochs, by default the compiled-in model's
// (kEdgeModelLookahead), as on the board; the stages come from the `epoch` lines.
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
//   sync               upload until nothing is ready or a wait is due
//                                                             -> synced WAIT_MS READY FAILURES HELD
//                      (READY: epochs in flash it would upload now; HELD: the newest
//                      ones, waiting for their stage under a lookahead)
//   status             -> status incarnation=.. next_seq=.. pending=.. held=.. dropped=.. corrupt=..
//                      (pending: in flash, not acknowledged; held: of those, waiting for a stage)
//   provision LINE     a provisioning console line (noctis/provisioning.h), as the
//                      board's serial console takes it   -> its reply
//
// With --tasks the device runs as the board does, in two tasks (host/network_task.h):
// `epoch` is handed to the network thread and answered at once -> queued WAITING;
// `sync` is that thread's business; `drain MS` waits up to MS real milliseconds (and
// lets simulated time follow real time meanwhile) until everything is recorded and
// uploaded that can be -> drained READY; `status` gives what the network thread last published.
//   cut N              the N-th next flash write is torn and the process dies there
//   quit
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <iostream>
#include <sstream>
#include <string>
#include <thread>
#include <utility>

#include "noctis/device.h"
#include "noctis_model_data.h"
#include "network_task.h"
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
bool read_epoch(std::istringstream& in, double features[kFeatureCount], uint8_t* stage) {
  for (int i = 0; i < kFeatureCount; ++i) {
    std::string token;
    if (!(in >> token)) return false;
    features[i] = token == "nan" ? NAN : std::strtod(token.c_str(), nullptr);
  }
  int value = -1;
  in >> value;
  *stage = value >= 0 && value < 4 ? static_cast<uint8_t>(value) : kNoStage;
  return true;
}

// The rest of the line, to the provisioning console as the board's serial gives it.
void provision(std::istringstream& in, ProvisioningConsole& console) {
  std::string rest;
  std::getline(in >> std::ws, rest);
  char reply[1024];
  console.handle(rest.c_str(), reply, sizeof reply);
  std::printf("%s\n", reply);
}

int run_tasks(Device& device, host::ReplayStager& stager, ProvisioningConsole& console) {
  host::NetworkTask network(device, stager);
  network.start();
  uint64_t now_ms = 0;
  std::string line;
  while (std::getline(std::cin, line)) {
    std::istringstream in(line);
    std::string command;
    in >> command;
    if (command == "time") {
      uint64_t ms = 0;
      in >> ms;
      if (ms > now_ms) network.set_now(now_ms = ms);
      std::printf("ok\n");
    } else if (command == "clock") {
      uint32_t unix_s = 0;
      in >> unix_s;
      network.set_clock(unix_s);
      std::printf("ok\n");
    } else if (command == "epoch") {
      double features[kFeatureCount];
      uint8_t stage;
      if (!read_epoch(in, features, &stage)) {
        std::printf("error epoch needs %d features\n", kFeatureCount);
      } else {
        network.hand_over(now_ms >= 30000 ? now_ms - 30000 : 0, features, stage);
        std::printf("queued %zu\n", network.waiting());
      }
    } else if (command == "drain") {
      uint64_t budget_ms = 0;
      in >> budget_ms;
      for (uint64_t waited = 0; waited < budget_ms && (network.waiting() > 0 || network.ready() > 0); waited += 20) {
        std::this_thread::sleep_for(std::chrono::milliseconds(20));
        network.advance(20);
      }
      std::printf("drained %llu\n", static_cast<unsigned long long>(network.ready() + network.waiting()));
    } else if (command == "status") {
      std::printf("status incarnation=%u next_seq=%u pending=%llu held=%llu waiting=%zu failures=%u\n",
                  network.incarnation(), network.next_seq(), static_cast<unsigned long long>(network.pending()),
                  static_cast<unsigned long long>(network.held()), network.waiting(),
                  network.failures());
    } else if (command == "provision") {
      provision(in, console);
    } else if (command == "quit") {
      break;
    } else {
      std::printf("error %s is not a --tasks command\n", command.c_str());
    }
    std::fflush(stdout);
  }
  network.stop();
  return 0;
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
  DeviceConfig config;
  config.lookahead_epochs = static_cast<uint32_t>(
      std::strtoul(arg(argc, argv, "--lookahead", std::to_string(kEdgeModelLookahead).c_str()), nullptr, 10));
  Device device(flash, radio, random, nvs, stager, config);
  const bool tasks = arg(argc, argv, "--tasks", "")[0] != '\0';
  const RecoveryReport report = device.boot();
  std::printf("boot incarnation=%u next_seq=%u pending=%llu blocks=%u corrupt=%u\n", device.incarnation(),
              device.next_seq(), static_cast<unsigned long long>(report.pending_epochs), report.blocks,
              report.corrupt_blocks);
  std::fflush(stdout);
  if (tasks) return run_tasks(device, stager, console);

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
      uint8_t stage;
      if (!read_epoch(in, features, &stage)) {
        std::printf("error epoch needs %d features\n", kFeatureCount);
      } else {
        stager.next.push_back(stage);
        device.record_epoch(now_ms >= 30000 ? now_ms - 30000 : 0, features);
        std::printf("ok %u %u\n", device.incarnation(), device.next_seq());
      }
    } else if (command == "link") {
      std::string state;
      in >> state;
      radio.link_up = state == "up";
      std::printf("ok\n");
    } else if (command == "sync") {
      uint32_t wait = 0;
      for (int i = 0; i < 10000 && (wait = device.sync(now_ms)) == 0; ++i) {
      }
      const FlashQueue& queue = device.queue();
      std::printf("synced %u %llu %u %llu\n", wait, static_cast<unsigned long long>(queue.ready_epochs()),
                  device.sync_client().consecutive_failures(),
                  static_cast<unsigned long long>(queue.held_back()));
    } else if (command == "status") {
      const FlashQueue& queue = device.queue();
      std::printf("status incarnation=%u next_seq=%u pending=%llu held=%llu dropped=%llu corrupt=%u "
                  "unanchored_dropped=%u\n",
                  device.incarnation(), device.next_seq(), static_cast<unsigned long long>(queue.pending_epochs()),
                  static_cast<unsigned long long>(queue.held_back()),
                  static_cast<unsigned long long>(queue.dropped_epochs()), queue.corrupt_blocks(),
                  device.unanchored_dropped());
    } else if (command == "cut") {
      long writes = 0;
      in >> writes;
      flash.cut_after(writes);
      std::printf("ok\n");
    } else if (command == "provision") {
      provision(in, console);
    } else if (command == "quit") {
      break;
    } else {
      std::printf("error unknown command %s\n", command.c_str());
    }
    std::fflush(stdout);
  }
  return 0;
}
