"""onnxruntime sessions on one device, and the times of their runs (calibration).

Every run is sequential with the runtime's threads fixed; on the CPU with one thread the
graph runs in the calling thread, so that its thread CPU time is the run's, which other
processes on a shared machine do not inflate.
"""

from __future__ import annotations

import math
import time

import numpy as np

from placer.errors import InputError
from placer.util.text import first_line

#: Timed runs of one measurement: at least this many seconds and repeats, at most
#: this many repeats.
_MIN_SECONDS = 0.2
_MIN_REPEATS = 5
_MAX_REPEATS = 200


def require_cuda(ort, device: str) -> None:
    """Refuse ``--device DEVICE`` (a CUDA device) where this onnxruntime build has no
    CUDA execution provider, naming the build's version and the providers it has."""
    available = ort.get_available_providers()
    if "CUDAExecutionProvider" not in available:
        raise InputError(
            f"--device {device}: no CUDA provider in this onnxruntime build "
            f"({ort.__version__}: {', '.join(available)}); install onnxruntime-gpu"
        )


class Runner:
    """Sessions on one device, and the seconds of their runs (:meth:`samples`)."""

    def __init__(self, ort, providers: list[str], threads: int, device: str) -> None:
        self.ort = ort
        self.providers = providers
        if device.startswith("cuda:"):
            index = device.split(":", 1)[1]
            if not index.isdigit():
                raise InputError(f"--device {device!r}: expected cuda:N with N a GPU index")
            self.providers = [("CUDAExecutionProvider", {"device_id": int(index)})]
        self.threads = threads
        on_cpu = providers == ["CPUExecutionProvider"]
        # one thread runs the graph in the calling thread: its CPU time is the op's
        self.thread_clock = on_cpu and threads == 1
        self.timer = "thread CPU time" if self.thread_clock else "wall time"

    def session(self, model, optimised: bool = False):
        """An onnxruntime session of ``model`` (an ONNX model, or its serialised bytes)
        on this runner's device and threads: the graph as built, unless ``optimised``
        (the runtime's default optimisation level)."""
        options = self.ort.SessionOptions()
        options.intra_op_num_threads = self.threads
        options.inter_op_num_threads = 1
        options.execution_mode = self.ort.ExecutionMode.ORT_SEQUENTIAL
        level = self.ort.GraphOptimizationLevel
        options.graph_optimization_level = (
            level.ORT_ENABLE_ALL if optimised else level.ORT_DISABLE_ALL
        )
        options.log_severity_level = 3
        serialised = model if isinstance(model, bytes) else model.SerializeToString()
        try:
            return self.ort.InferenceSession(serialised, options, providers=self.providers)
        except Exception as err:  # onnxruntime raises its own exception types
            raise InputError(
                f"onnxruntime cannot run on this device (no GPU, or its driver is missing?): "
                f"{first_line(err)}"
            ) from err

    def samples(self, session, feeds: dict[str, np.ndarray], share: float = 1.0) -> list[float]:
        """Seconds of each timed run: at least :data:`_MIN_REPEATS` and
        :data:`_MIN_SECONDS` in all, at most :data:`_MAX_REPEATS`; ``share`` of each
        (at least 2 repeats) for one of several passes whose samples are pooled."""
        clock = time.thread_time if self.thread_clock else time.perf_counter
        repeats = max(2, math.ceil(_MIN_REPEATS * share))
        seconds, most = _MIN_SECONDS * share, max(repeats, math.ceil(_MAX_REPEATS * share))
        samples: list[float] = []
        spent = 0.0
        while len(samples) < most and (len(samples) < repeats or spent < seconds):
            start = clock()
            session.run(None, feeds)
            elapsed = clock() - start
            samples.append(elapsed)
            spent += elapsed
        return samples
