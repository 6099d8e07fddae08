"""Hardware as data: the pin map and its checks, the wiring diagram, budgets, enclosure."""
