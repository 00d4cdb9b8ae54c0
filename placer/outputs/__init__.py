"""What placer makes of a placement: the result and its JSON/YAML document, console
tables, the simulated schedule, HTML and Markdown reports, plan checks, model summaries
and split submodels.
"""
