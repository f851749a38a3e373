"""The Gensight processor: an OTLP receiver that turns GenAI spans into SLI/SLO/drift/anomaly metrics.

Stages, one module each, data flowing one way::

    receive -> decode -> normalise into call records -> analysers -> metric builder -> export

See ``docs/architecture.md``.
"""
