"""experiment: experiment files validated into a frozen `ExperimentSpec`, compiled and run."""

from esper.experiment.loading import load, load_text, spec_from_dict, stored_spec
from esper.experiment.spec_builder import spec_to_dict

__all__ = ["load", "load_text", "spec_from_dict", "spec_to_dict", "stored_spec"]
