"""Build hook for the optional C accelerator; all other metadata lives in pyproject.toml.

``optional=True``: without a C compiler the build warns and goes on, and the normaliser uses
its pure-Python path (same results, slower).
"""

from setuptools import Extension, setup

setup(
    ext_modules=[
        Extension("gensight.processor.normalise._spanscan", ["processor/normalise/_spanscan.c"], optional=True,
                  extra_compile_args=["-O2", "-Wall", "-Wextra", "-Wno-unused-parameter"]),
    ],
)
