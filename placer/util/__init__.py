"""Small helpers every layer uses: text, units, reading inputs, writing outputs atomically,
safe YAML, Ctrl-C handling and isolating native calls.
"""
