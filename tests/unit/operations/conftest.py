"""The operations run against the same moto stack fixtures as the pipeline steps."""

from tests.unit.pipeline.conftest import lake, sim_clock, state  # noqa: F401  (fixtures)
