// The Arduino entry points live in board/board.cpp; this file exists so PlatformIO's
// src_dir has an obvious front door. All logic is in src/core (host-tested).
