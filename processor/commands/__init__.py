"""The processor's command entry points: ``gensight serve``, ``replay``, ``baseline`` and ``compare``
(``progress`` draws their progress bars on a terminal).

Each module has ``configure(parser)`` and ``run(args) -> exit code``; the CLI (``gensight.cli``)
imports them on demand. The server object they share is ``gensight.processor.server``."""
