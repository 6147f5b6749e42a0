"""The cost model behind ``clickstream cost``: ``model.py`` and its three data files, ``prices.json`` (dated AWS list
prices with their sources), ``workload.json`` (what an hour of traffic costs the stack in requests and bytes,
measured on the laptop stack by ``scripts/measure_workload.py``) and ``assumptions.json`` (the benchmarks'
durations and every other assumption, each with why)."""
