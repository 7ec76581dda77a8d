"""Local processes as the workers of a `MultiWorkerMirroredStrategy` on loopback: what
the distributed tests and `benchmarks/bench_distribute.py` start their runs with."""

from __future__ import annotations

import json
import socket
import subprocess


def free_ports(n: int) -> list[int]:
    """`n` distinct free TCP ports on 127.0.0.1."""
    sockets = [socket.socket() for _ in range(n)]
    try:
        for s in sockets:
            s.bind(("127.0.0.1", 0))
        return [s.getsockname()[1] for s in sockets]
    finally:
        for s in sockets:
            s.close()


def loopback_tf_configs(n_workers: int) -> list[str]:
    """The `TF_CONFIG` (JSON) of each of `n_workers` workers on free 127.0.0.1 ports."""
    cluster = {"worker": [f"127.0.0.1:{port}" for port in free_ports(n_workers)]}
    return [json.dumps({"cluster": cluster, "task": {"type": "worker", "index": i}})
            for i in range(n_workers)]


def run_processes(commands, envs, timeout: float) -> list[str]:
    """Runs the commands side by side (each with its environment) and returns their
    output (stdout and stderr). Every process still running after `timeout` seconds,
    or when another fails, is killed; a failure raises RuntimeError with its output."""
    processes = []
    try:
        for command, env in zip(commands, envs, strict=True):
            processes.append(subprocess.Popen(command, env=env, stdout=subprocess.PIPE,
                                              stderr=subprocess.STDOUT, text=True))
        outputs = []
        for process in processes:
            output, _ = process.communicate(timeout=timeout)
            if process.returncode != 0:
                raise RuntimeError(f"{command[0]} exited with {process.returncode}:\n"
                                   f"{output[-3000:]}")
            outputs.append(output)
        return outputs
    finally:
        for process in processes:
            if process.poll() is None:
                process.kill()
                process.wait(timeout=10)
