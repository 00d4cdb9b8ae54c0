"""onnxruntime sessions on one device, and the median time of a run (calibration).

Every run is sequential with the runtime's threads fixed; on the CPU with one thread the
graph runs in the calling thread, so that its thread CPU time is the run's, which other
processes on a shared machine do not inflate.
"""

from __future__ import annotations

import statistics
import time

import numpy as np

from placer.errors import InputError
from placer.util.text import first_line

#: Timed runs of one measurement: at least this many seconds and repeats, at most
#: this many repeats.
_MIN_SECONDS = 0.2
_MIN_REPEATS = 5
_MAX_REPEATS = 200


class Runner:
    """Sessions on one device; :meth:`time` is the median seconds of one run."""

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

    def time(self, model, feeds: dict[str, np.ndarray], optimised: bool = False) -> float:
        """Median seconds of a run of ``model`` on ``feeds``, after two to warm up."""
        session = self.session(model, optimised)
        for _ in range(2):
            session.run(None, feeds)
        return statistics.median(self.samples(session, feeds))

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

    def samples(self, session, feeds: dict[str, np.ndarray]) -> list[float]:
        """Seconds of each timed run: at least :data:`_MIN_REPEATS` and
        :data:`_MIN_SECONDS` in all, at most :data:`_MAX_REPEATS`."""
        clock = time.thread_time if self.thread_clock else time.perf_counter
        samples: list[float] = []
        spent = 0.0
        while len(samples) < _MAX_REPEATS and (
            len(samples) < _MIN_REPEATS or spent < _MIN_SECONDS
        ):
            start = clock()
            session.run(None, feeds)
            elapsed = clock() - start
            samples.append(elapsed)
            spent += elapsed
        return samples
