"""Built-in device types, with the vendor's published figures and where they come from.

A cluster file names a type (``type: a100-80gb``) instead of spelling out its figures;
any figure may still be overridden in the file (see ``docs/cluster.md``).

Conventions
-----------
- Peak FLOP/s are dense (no 2:4 structured sparsity).  Where a datasheet only prints the
  sparse figure (marked ``*`` on NVIDIA's Hopper and Ada datasheets), the dense one is
  half of it.  ``tf32``, ``fp16`` and ``bf16`` are tensor-core figures; ``fp32`` is the
  plain (non-TF32) CUDA-core figure.  A dtype is absent where the hardware has no native
  support for it (bf16 and tf32 before Ampere); :meth:`placer.costs.cluster.DeviceGroup.peak`
  then falls back to fp32, which is how frameworks run it.
- Memory capacity: the "GB" of DRAM capacity on GPU datasheets is binary (an A100 80GB
  has 80 GiB of HBM2e), so capacities are in GiB.  Bandwidths are decimal (GB/s = 1e9).
- NVLink figures on datasheets are the sum over both directions; the catalog keeps the
  datasheet figure and :mod:`placer.costs.cluster` uses half of it per direction.
- The efficiency factors (fraction of peak each class of operator reaches, and fraction
  of the memory bandwidth streaming ops reach) and the per-operator overhead are not
  datasheet figures.  For the GPUs they are set per op class from the published
  measurements cited below (:func:`gpu_efficiency`), or marked as estimates where none
  was found; ``docs/costs.md`` compares the predictions they give with published
  throughputs.  The CPU keeps one assumed efficiency for every class.

References
----------
.. [1] NVIDIA A100 Tensor Core GPU datasheet (nvidia-a100-datasheet-us-nvidia-1758950-r4).
.. [2] NVIDIA H100 Tensor Core GPU datasheet (SXM form factor column).
.. [3] NVIDIA Tesla V100 GPU datasheet (V100 SXM2 column, 32 GB).
.. [4] NVIDIA T4 Tensor Core GPU datasheet.
.. [5] NVIDIA L4 Tensor Core GPU datasheet.
.. [6] Intel ARK, Intel Xeon Platinum 8380 processor (Ice Lake-SP): 40 cores, 2.30 GHz
   base, 8 channels of DDR4-3200, 64 lanes of PCIe 4.0, two AVX-512 FMA units per core.
.. [7] PCI-SIG, PCI Express Base Specification 3.0 / 4.0 / 5.0: 8, 16, 32 GT/s per lane,
   128b/130b encoding.
.. [8] Bekman, S. Machine Learning Engineering Open Book, "Maximum Achievable Matmul
   FLOPS comparison table" (``compute/accelerator/README.md``): the best BF16 ``matmul``
   over a search of shapes reaches 271.2 of 312 TFLOPS on an A100 SXM (86.9%) and 794.5
   of 989 on an H100 SXM (80.3%).
.. [9] GPUInspector.jl documentation, device pages (``docs/src/devices``): an
   A100-SXM4-40GB streams 1,310.7 GB/s (84% of 1,555); a V100-SXM2-32GB 794.6 GB/s
   copying and 810.0 GB/s in SAXPY (88-90% of 900).
.. [10] CUDA samples' ``bandwidthTest`` on a Tesla T4: 239.6 GB/s device to device,
   read and write counted (75% of 320), as published in ``router-gao/cuda-demo``
   (``cuda-samples/02-cuda-bandwidth.md``).
.. [11] Ultrasonics Sonochemistry 99 (2023) 106546, Table 3, "Hardware features of
   different Nvidia GPU architectures": L2 cache 6 / 40 / 50 MB and L2 bandwidth
   3,133 / 7,219 / 8,986 GB/s for V100 / A100 / H100 (bytes per clock times clock).
.. [12] CUDA.jl documentation, "Graphs": 80 small broadcast kernels take 260 µs launched
   one by one and 70 µs as one CUDA graph, about 3.3 and 0.9 µs per kernel.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import Enum

from placer.problem import DeviceClass

__all__ = [
    "ASSUMED",
    "CATALOG",
    "DTYPES",
    "FUSED_GPU_OVERHEAD",
    "Assumption",
    "DeviceType",
    "PcieGen",
    "device_type_names",
    "gpu_efficiency",
]

DTYPES = ("fp32", "fp16", "bf16")
"""Data types every catalog entry is described for (absent ones fall back to fp32)."""

GPU_EFFICIENCY = 0.5  # assumption: mixed DNN operators reach about half of peak on GPUs
CPU_EFFICIENCY = 0.3  # assumption: CPU DNN kernels sit further from their vector peak
GPU_OVERHEAD = 5e-6  # s, CUDA kernel launch plus framework dispatch per operator
CPU_OVERHEAD = 1e-6  # s, a function call and dispatch per operator
#: The catalog ``cpu``'s ``scalar`` class (onnxruntime's ``LRN``): a scalar ``pow`` per
#: element dominates it, about 31 ns an element (0.42 GFLOP/s of its counted FLOPs) on
#: one core of this project's test machines; onnxruntime spreads that step over its
#: threads (``TryParallelFor``), so 40 cores reach about 17 GFLOP/s, 0.0028 of the
#: socket's vector peak (estimate: the core's rate taken as the Xeon's).
CPU_SCALAR_EFFICIENCY = 0.0028

#: Seconds a catalog GPU pays per operator: a fused inference runtime (TensorRT, or a
#: CUDA graph) launches its kernels back to back, at about 0.9 µs each in a graph and
#: 3.3 µs each one by one [12]_; 2 µs lies between them and takes in a kernel's fill
#: and drain (estimate).  The published BERT-base batch-1 latency pins it: 1 µs would
#: predict it 64% fast, 3 µs 34% slow (docs/costs.md).
FUSED_GPU_OVERHEAD = 2e-6


def gpu_efficiency(memory: float) -> dict[str, float]:
    """Per-class efficiencies of a catalog GPU whose streaming ops reach ``memory`` of
    its bandwidth (a cluster file's ``efficiency`` mapping; ``default`` is
    :data:`GPU_EFFICIENCY`).

    The compute figures multiply the peak of the run's dtype: tensor-core peaks for
    tf32, fp16 and bf16.  Elementwise, transcendental and reduction ops run on the CUDA
    cores, below that peak, but they move several bytes per FLOP and are bound by
    memory on every GPU here, so their FLOP figure never decides their time.

    Examples
    --------
    >>> figures = gpu_efficiency(0.84)
    >>> figures["gemm"], figures["memory"], figures["transpose"]
    (0.8, 0.84, 0.756)
    """
    return {
        # [8]: the best BF16 matmul reaches 87% (A100) and 80% (H100) of peak; the
        # shapes of a model's layers do a little worse (estimate)
        "gemm": 0.8,
        # estimate: batched products of two activations (attention's scores and
        # context, head dimension 64) tile less well than a weight GEMM
        "matmul": 0.5,
        # estimate: implicit-GEMM convolutions, a little under a GEMM (docs/costs.md:
        # ResNet-50 inference stays within 25% of its published figures from 0.7 to 0.9;
        # training with AMP, whose step is mostly BatchNorm and ReLU traffic, comes out
        # 18-23% fast, which tensor-core convolutions reaching less would explain)
        "conv": 0.75,
        # estimate: depthwise convolutions do a few FLOPs per byte (bound by memory)
        "grouped_conv": 0.1,
        "elementwise": GPU_EFFICIENCY,
        "transcendental": GPU_EFFICIENCY,
        "reduction": GPU_EFFICIENCY,
        # cuDNN's LRN is a vector kernel like a reduction's (no scalar pow per element)
        "scalar": GPU_EFFICIENCY,
        "view": GPU_EFFICIENCY,  # a view costs the overhead alone
        "other": GPU_EFFICIENCY,
        "memory": memory,  # [9], [10]: STREAM-like kernels' share of the bandwidth
        "movement": memory,  # contiguous copies stream like any kernel
        # estimate: a tiled transpose through shared memory moves about 90% of a copy
        "transpose": round(0.9 * memory, 3),
    }


#: Fraction of the memory bandwidth streaming kernels reach: measured [9]_, [10]_, or
#: assumed like the measured device of the same memory (estimate).
STREAM_A100 = 0.84  # [9]: A100 40GB; assumed for the 80GB's HBM2e and the H100's HBM3
STREAM_V100 = 0.88  # [9]: V100, between the copy (0.88) and SAXPY (0.90) figures
STREAM_T4 = 0.75  # [10]: T4; assumed for the L4's GDDR6


@dataclass(frozen=True)
class Assumption:
    """What placer assumes of a device group given by explicit figures alone (no
    ``type``): one efficiency for every op class, a per-op overhead, no cache."""

    efficiency: float
    overhead: float
    class_efficiency: Mapping[str, float] = field(default_factory=dict)
    cache_bytes: float = 0.0
    cache_bandwidth: float = 0.0


ASSUMED: dict[DeviceClass, Assumption] = {
    DeviceClass.ACCELERATOR: Assumption(GPU_EFFICIENCY, GPU_OVERHEAD),
    DeviceClass.CPU: Assumption(CPU_EFFICIENCY, CPU_OVERHEAD),
}
"""The assumptions for a group of explicit figures, by its class (docs/cluster.md)."""


class PcieGen(str, Enum):
    """PCI Express generation of a device's host link (x16 lanes assumed)."""

    GEN3 = "pcie3"
    GEN4 = "pcie4"
    GEN5 = "pcie5"

    @property
    def raw_bandwidth(self) -> float:
        """Bytes/s per direction of an x16 link: GT/s x 16 lanes x 128/130 / 8 [7]_."""
        giga_transfers = {"pcie3": 8, "pcie4": 16, "pcie5": 32}[self.value]
        return giga_transfers * 1e9 * 16 * (128 / 130) / 8


@dataclass(frozen=True)
class DeviceType:
    """One kind of device as its vendor describes it.

    Parameters
    ----------
    name : str
        The name a cluster file uses (``type: a100-80gb``).
    description : str
        The product, in words.
    device_class : DeviceClass
        Accelerator or CPU.
    peak_flops : dict of str to float
        Dense peak FLOP/s per dtype.
    memory_bytes : float
        Device memory, bytes.
    memory_bandwidth : float
        Device memory bandwidth, bytes/s.
    efficiency : float
        Default fraction of peak achieved (assumption).
    overhead : float
        Default fixed cost per operator, seconds (assumption).
    host_link : PcieGen
        PCIe generation of the link to the host.
    nvlink_bandwidth : float or None
        Total NVLink bandwidth (both directions, as on the datasheet), bytes/s, or None
        for a device without NVLink.
    source : str
        Where the figures come from.
    class_efficiency : Mapping of str to float
        Per op class, the fraction of peak its ops reach, overriding ``efficiency``
        (keys as a cluster file's ``efficiency`` mapping: the
        :class:`~placer.frontends.opcost.OpClass` values, ``memory`` and ``movement``).
    cache_bytes, cache_bandwidth : float
        The last cache level (L2 on GPUs): an op whose traffic fits in it streams at its
        bandwidth (0: none modelled).
    """

    name: str
    description: str
    device_class: DeviceClass
    peak_flops: dict[str, float]
    memory_bytes: float
    memory_bandwidth: float
    efficiency: float
    overhead: float
    host_link: PcieGen
    nvlink_bandwidth: float | None
    source: str
    class_efficiency: Mapping[str, float] = field(default_factory=dict)
    cache_bytes: float = 0.0
    cache_bandwidth: float = 0.0


GiB = 2.0**30
MiB = 2.0**20
TERA = 1e12
GIGA = 1e9

# [1]: FP32 19.5 TF; TF32 tensor core 156 TF; BF16 and FP16 tensor core 312 TF (624 sparse).
A100_PEAKS = {"fp32": 19.5 * TERA, "tf32": 156 * TERA, "fp16": 312 * TERA, "bf16": 312 * TERA}

# A table of datasheet figures, one entry per device type, field for field, each figure
# beside its source: the entries share their shape on purpose (duplicates lists them).
_TYPES = (
    DeviceType(
        name="a100-40gb",
        description="NVIDIA A100 40GB SXM4",
        device_class=DeviceClass.ACCELERATOR,
        # [1]: FP32 19.5 TF; TF32 156 TF; BF16 and FP16 tensor core 312 TF (624 sparse).
        peak_flops=A100_PEAKS,
        memory_bytes=40 * GiB,  # [1]: 40GB HBM2
        memory_bandwidth=1555 * GIGA,  # [1]: 1,555 GB/s
        efficiency=GPU_EFFICIENCY,
        overhead=FUSED_GPU_OVERHEAD,
        host_link=PcieGen.GEN4,  # [1]: PCIe Gen4 64 GB/s
        nvlink_bandwidth=600 * GIGA,  # [1]: NVLink 600 GB/s
        source="NVIDIA A100 datasheet, SXM column",
        class_efficiency=gpu_efficiency(STREAM_A100),
        cache_bytes=40 * MiB,  # [11]: 40 MB of L2
        cache_bandwidth=7219 * GIGA,  # [11]
    ),
    DeviceType(
        name="a100-80gb",
        description="NVIDIA A100 80GB SXM4",
        device_class=DeviceClass.ACCELERATOR,
        peak_flops=A100_PEAKS,  # [1]
        memory_bytes=80 * GiB,  # [1]: 80GB HBM2e
        memory_bandwidth=2039 * GIGA,  # [1]: 2,039 GB/s (SXM)
        efficiency=GPU_EFFICIENCY,
        overhead=FUSED_GPU_OVERHEAD,
        host_link=PcieGen.GEN4,
        nvlink_bandwidth=600 * GIGA,
        source="NVIDIA A100 datasheet, A100 80GB SXM column",
        class_efficiency=gpu_efficiency(STREAM_A100),
        cache_bytes=40 * MiB,  # [11]: the same GA100 chip and L2 as the 40GB
        cache_bandwidth=7219 * GIGA,  # [11]
    ),
    DeviceType(
        name="h100-sxm",
        description="NVIDIA H100 SXM5 80GB",
        device_class=DeviceClass.ACCELERATOR,
        # [2]: FP32 67 TF; TF32 tensor core 989 TF, BF16 and FP16 tensor core 1,979 TF,
        # both with sparsity -> 494.5 and 989.5 dense.
        peak_flops={
            "fp32": 67 * TERA, "tf32": 494.5 * TERA, "fp16": 989.5 * TERA, "bf16": 989.5 * TERA,
        },
        memory_bytes=80 * GiB,  # [2]: 80GB HBM3
        memory_bandwidth=3350 * GIGA,  # [2]: 3.35 TB/s
        efficiency=GPU_EFFICIENCY,
        overhead=FUSED_GPU_OVERHEAD,
        host_link=PcieGen.GEN5,  # [2]: PCIe Gen5 128 GB/s
        nvlink_bandwidth=900 * GIGA,  # [2]: NVLink 900 GB/s
        source="NVIDIA H100 datasheet, H100 SXM column",
        class_efficiency=gpu_efficiency(STREAM_A100),
        cache_bytes=50 * MiB,  # [11]: 50 MB of L2
        cache_bandwidth=8986 * GIGA,  # [11]: at the full GH100's clock (an upper bound)
    ),
    DeviceType(
        name="v100-32gb",
        description="NVIDIA Tesla V100 SXM2 32GB",
        device_class=DeviceClass.ACCELERATOR,
        # [3]: single precision 15.7 TF; tensor performance (fp16) 125 TF; no bf16 or tf32.
        peak_flops={"fp32": 15.7 * TERA, "fp16": 125 * TERA},
        memory_bytes=32 * GiB,  # [3]: 32 GB HBM2
        memory_bandwidth=900 * GIGA,  # [3]: 900 GB/s
        efficiency=GPU_EFFICIENCY,
        overhead=FUSED_GPU_OVERHEAD,
        host_link=PcieGen.GEN3,  # [3]: PCIe 32 GB/s (Gen3 x16, both directions)
        nvlink_bandwidth=300 * GIGA,  # [3]: NVLink 300 GB/s
        source="NVIDIA V100 datasheet, V100 SXM2 column",
        class_efficiency=gpu_efficiency(STREAM_V100),
        cache_bytes=6 * MiB,  # [11]: 6 MB of L2
        cache_bandwidth=3133 * GIGA,  # [11]
    ),
    DeviceType(
        name="t4",
        description="NVIDIA T4 16GB",
        device_class=DeviceClass.ACCELERATOR,
        # [4]: single precision 8.1 TF; mixed precision (FP16/FP32) 65 TF; no bf16 or tf32.
        peak_flops={"fp32": 8.1 * TERA, "fp16": 65 * TERA},
        memory_bytes=16 * GiB,  # [4]: 16 GB GDDR6
        memory_bandwidth=320 * GIGA,  # [4]: 320+ GB/s
        efficiency=GPU_EFFICIENCY,
        overhead=FUSED_GPU_OVERHEAD,
        host_link=PcieGen.GEN3,  # [4]: PCIe Gen3 x16
        nvlink_bandwidth=None,
        source="NVIDIA T4 datasheet",
        # no L2 modelled: no published figure of its bandwidth was found
        class_efficiency=gpu_efficiency(STREAM_T4),
    ),
    DeviceType(
        name="l4",
        description="NVIDIA L4 24GB",
        device_class=DeviceClass.ACCELERATOR,
        # [5]: FP32 30.3 TF; TF32 tensor core 120 TF, FP16 and BF16 tensor core 242 TF,
        # both with sparsity -> 60 and 121 dense.
        peak_flops={
            "fp32": 30.3 * TERA, "tf32": 60 * TERA, "fp16": 121 * TERA, "bf16": 121 * TERA,
        },
        memory_bytes=24 * GiB,  # [5]: 24GB GDDR6
        memory_bandwidth=300 * GIGA,  # [5]: 300 GB/s
        efficiency=GPU_EFFICIENCY,
        overhead=FUSED_GPU_OVERHEAD,
        host_link=PcieGen.GEN4,  # [5]: PCIe Gen4 x16 64 GB/s
        nvlink_bandwidth=None,
        source="NVIDIA L4 datasheet",
        # no L2 modelled: no published figure of the 48 MB L2's bandwidth was found
        class_efficiency=gpu_efficiency(STREAM_T4),
    ),
    DeviceType(
        name="cpu",
        description="generic server CPU: one Intel Xeon Platinum 8380 socket",
        device_class=DeviceClass.CPU,
        # [6]: 40 cores x 2.30 GHz x 2 AVX-512 FMA units x 16 fp32 lanes x 2 FLOP per FMA
        # = 5.89 TF at base clock (an upper bound: AVX-512 clocks run lower).  No native
        # fp16/bf16 arithmetic on Ice Lake, so those fall back to fp32.
        peak_flops={"fp32": 40 * 2.3e9 * 2 * 16 * 2},
        memory_bytes=256 * GiB,  # assumption: a typical fit-out; [6] allows up to 6 TB
        memory_bandwidth=8 * 25.6 * GIGA,  # [6]: 8 channels x DDR4-3200 (25.6 GB/s each)
        efficiency=CPU_EFFICIENCY,
        overhead=CPU_OVERHEAD,
        host_link=PcieGen.GEN4,  # [6]: PCIe 4.0
        nvlink_bandwidth=None,
        source="Intel ARK, Xeon Platinum 8380, peak derived from core count and clock",
        class_efficiency={"scalar": CPU_SCALAR_EFFICIENCY},
    ),
)

CATALOG: dict[str, DeviceType] = {t.name: t for t in _TYPES}
"""Every built-in device type, by name."""


def device_type_names() -> str:
    """The catalog's names, comma-separated, for error messages.

    Examples
    --------
    >>> device_type_names()
    'a100-40gb, a100-80gb, h100-sxm, v100-32gb, t4, l4, cpu'
    """
    return ", ".join(CATALOG)
