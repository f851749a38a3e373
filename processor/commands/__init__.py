"""The processor's command entry points: ``gensight serve``, ``replay`` and ``baseline``.

Each module has ``configure(parser)`` and ``run(args) -> exit code``; the CLI (``gensight.cli``)
imports them on demand. The server object they share is ``gensight.processor.server``."""
