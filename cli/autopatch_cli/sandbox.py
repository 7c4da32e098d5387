"""`autopatch sandbox`: serve a scenario's simulated fleet on 127.0.0.1 until Ctrl-C."""

from __future__ import annotations

import json
import signal
import sys
import threading
from pathlib import Path
from typing import Any

from rehearsal.scenario import ScenarioError, load_scenario


def sandbox(
    path: Path,
    *,
    port_aws: int,
    port_k8s: int,
    tls: bool,
    speed: float,
    env_file: Path,
    kubeconfig_file: Path,
    state_out: Path | None,
) -> int:
    try:
        scenario = load_scenario(path)
    except ScenarioError as exc:
        print(f"autopatch: {exc}", file=sys.stderr)
        return 2
    from rehearsal.sandbox.server import Sandbox

    stop = threading.Event()

    def on_signal(signum: int, frame: Any) -> None:
        stop.set()

    previous = {sig: signal.signal(sig, on_signal) for sig in (signal.SIGINT, signal.SIGTERM)}
    box = Sandbox(scenario, port_aws=port_aws, port_k8s=port_k8s, tls=tls, speed=speed)
    try:
        try:
            box.start()
        except OSError as exc:
            print(f"autopatch: cannot start the sandbox: {exc}", file=sys.stderr)
            return 1
        try:
            box.write_files(env_file, kubeconfig_file)
            clusters = len(scenario.clusters)
            print(f"Sandbox: {scenario.name} ({clusters} clusters), ready in {box.started_seconds:.1f}s")
            print(f"simulated time starts at {scenario.now.isoformat()}, {speed:g}x real time")
            for line in box.environment_lines():
                print(f"export {line}")
            print(f"# environment written to {env_file}")
            print(f"export KUBECONFIG={kubeconfig_file.resolve()}")
            for name, url in box.kube_endpoints().items():
                print(f"# kubectl --context {name}  ->  {url}")
            print("Ctrl-C stops the sandbox.", flush=True)
            stop.wait()
            if state_out is not None:
                state_out.write_text(json.dumps(box.state(), indent=2) + "\n")
                print(f"state written to {state_out}")
        finally:
            box.stop()
            print("sandbox stopped", flush=True)
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    return 0
