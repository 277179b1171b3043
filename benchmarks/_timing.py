"""The benchmark scripts' timing helpers: the same code as ``jaxgen bench`` (:mod:`jaxgen.core.timing`)."""
from jaxgen.core.timing import *  # noqa: F401,F403
from jaxgen.core.timing import __all__  # noqa: F401
