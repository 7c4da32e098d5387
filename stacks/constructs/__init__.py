"""One construct per capability; `AutopatchStack` wires them together."""
