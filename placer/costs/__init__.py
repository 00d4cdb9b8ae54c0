"""From graph to costed problem: the device catalog, cluster files, the roofline cost
model, measured costs, and calibrating and profiling on this machine.
"""
