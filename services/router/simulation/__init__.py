"""What if: the production routing engine (``services/router/domain/routing``) run on a simulated clock, so a
routing change can be tried on real or synthetic traffic before it goes live. Pure: no store, no bus, no
network; time and randomness are passed in, so a run is a function of its inputs and its seed.

Inputs are parsed by ``desk.py`` (queues, profiles, agents and their shifts), ``traffic.py`` (synthetic
arrivals) and ``trace.py`` (a JSON Lines trace); ``simulator.py`` drives the engine; ``outcomes.py`` records
what happened; ``report.py`` and ``comparison.py`` summarise it; ``staffing.py`` and ``erlang.py`` size the
desk; ``cli.py`` is ``switchboard simulate``. The guide is docs/simulation.md.
"""
