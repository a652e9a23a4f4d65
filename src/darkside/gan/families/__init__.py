"""The generator families, one module each; importing this package registers them all.

Adding a family: one module here with a :class:`~darkside.gan.family.GanBundle` subclass decorated
by :func:`~darkside.gan.family.register_family` (its settings, networks and training step), and its
entry ``gan.families.<name>`` in params.yaml. A family from outside the package is a module named
in params.yaml's ``plugins``.
"""

import importlib
import pkgutil

for _module in pkgutil.iter_modules(__path__):
    importlib.import_module(f"{__name__}.{_module.name}")
