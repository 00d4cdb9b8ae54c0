"""Reading what users bring: ONNX models (loading, checks, shape inference, folding, op
costs, the runtime's fusion, coarsening, layers) and the paper's workload JSON; plan files.
"""
