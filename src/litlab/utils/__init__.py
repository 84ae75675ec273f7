"""Small helpers of the task functions: instantiation, logging, config printing, the task wrapper.

Import from the submodules (`from litlab.utils.utils import extras`): the package itself stays empty so that
light modules (the logger, the execution whitelist) load without Lightning.
"""
