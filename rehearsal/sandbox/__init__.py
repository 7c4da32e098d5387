"""Sandbox mode: the simulated fleet served on 127.0.0.1 to any AWS or Kubernetes tool."""
