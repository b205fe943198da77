"""execplanner.operator: the kopf operator that reconciles ExecutionPlans and TaskRuns.

Import it as ``execplanner.operator`` (setup.py maps this folder there); see README.md.
"""

if __name__ == "operator":
    # This folder sits in the checkout's root, so a Python started there (`python -c`,
    # `python -m pytest`) finds it before the standard library's `operator`. Never be
    # that module: load the stdlib's under its own name and hand it to the importer,
    # which returns whatever sys.modules holds once this file has run. Only modules
    # that never import `operator` themselves may be used here (os is always loaded).
    import os
    import sys
    from importlib.machinery import ModuleSpec, SourceFileLoader

    _loader = SourceFileLoader("operator", os.path.join(os.path.dirname(os.__file__), "operator.py"))
    _stdlib_operator = type(sys)("operator")
    _stdlib_operator.__spec__ = ModuleSpec("operator", _loader, origin=_loader.path)
    _stdlib_operator.__file__, _stdlib_operator.__loader__ = _loader.path, _loader
    sys.modules["operator"] = _stdlib_operator
    _loader.exec_module(_stdlib_operator)
