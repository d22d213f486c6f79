"""The ``factory`` cluster kind: any Dask cluster manager class, named in a profile.

The keys are the ones dask-labextension users already write for ``labextension.factory``
(``module``, ``class``, ``args``, ``kwargs``), so ``dask_jobqueue.SLURMCluster``,
``dask_kubernetes.operator.KubeCluster``, ``dask_cloudprovider.aws.FargateCluster`` or
``coiled.Cluster`` work unchanged; ``scale``, ``adapt``, ``close`` and the dashboard link then go
through that manager object.
"""

from __future__ import annotations

import difflib
import importlib
import inspect
from typing import Any

from lepton_nb.cluster._handle import Cluster
from lepton_nb.cluster._kinds import CLUSTER_KINDS, ClusterKind, LaunchSpec
from lepton_nb.errors import ClusterError, ConfigError

# import name -> what to pip install (the rest: the top-level name with '_' -> '-')
_PACKAGES = {
    "dask_jobqueue": "dask-jobqueue",
    "dask_kubernetes": "dask-kubernetes",
    "dask_cloudprovider": "dask-cloudprovider",
    "dask_gateway": "dask-gateway",
    "dask_cuda": "dask-cuda",
    "dask_yarn": "dask-yarn",
    "dask_mpi": "dask-mpi",
    "coiled": "coiled",
}
_MANAGER_API = ("scale", "close", "scheduler_address")


def _package_for(module: str) -> str:
    top = module.split(".")[0]
    return _PACKAGES.get(top, top.replace("_", "-"))


def _is_manager(obj: Any) -> bool:
    """A Dask cluster manager: distributed's Cluster or anything with its core API
    (dask-gateway's GatewayCluster, for one, does not subclass it)."""
    from distributed.deploy import Cluster as DaskCluster

    if isinstance(obj, type) and issubclass(obj, DaskCluster):
        return True
    return all(hasattr(obj, a) for a in _MANAGER_API)


def resolve_factory(module: Any, name: Any, where: str) -> Any:
    """The class (or factory function) ``module.name``, or a ConfigError saying what to fix."""
    if not isinstance(module, str) or not module or not isinstance(name, str) or not name:
        raise ConfigError(
            f"{where}: a factory profile needs 'module' and 'class' strings, e.g. "
            "module: dask_jobqueue, class: SLURMCluster; got "
            f"module={module!r}, class={name!r}"
        )
    try:
        mod = importlib.import_module(module)
    except ModuleNotFoundError as e:
        missing = e.name or module
        raise ConfigError(
            f"{where}: cannot import the cluster factory module {module!r} (no module named "
            f"{missing!r}); install it with: pip install {_package_for(missing)}"
        ) from e
    except ImportError as e:
        raise ConfigError(
            f"{where}: importing {module!r} failed ({e}); "
            f"reinstall it: pip install {_package_for(module)}"
        ) from e
    obj: Any = mod
    for part in name.split("."):
        obj = getattr(obj, part, None)
        if obj is None:
            close = difflib.get_close_matches(part, dir(mod), n=3)
            hint = f" (did you mean {', '.join(close)}?)" if close else ""
            raise ConfigError(
                f"{where}: module {module!r} has no class {name!r}{hint}; check 'class' "
                f"(and that your {_package_for(module)} version provides it)"
            )
    if not callable(obj):
        raise ConfigError(f"{where}: {module}.{name} is not a class or factory function")
    if isinstance(obj, type) and not _is_manager(obj):
        raise ConfigError(
            f"{where}: {module}.{name} is not a Dask cluster manager (it lacks "
            f"{', '.join(a for a in _MANAGER_API if not hasattr(obj, a))}); name a class such "
            "as distributed.LocalCluster, dask_jobqueue.SLURMCluster or "
            "dask_kubernetes.operator.KubeCluster"
        )
    return obj


def launch_factory(spec: LaunchSpec) -> Cluster:
    from distributed import Client

    p, where = spec.profile, spec.where()
    ctor = resolve_factory(p.get("module"), p.get("class"), where)
    args, kwargs = p.get("args") or [], dict(p.get("kwargs") or {})
    if not isinstance(args, list | tuple) or not isinstance(kwargs, dict):
        raise ConfigError(
            f"{where}: 'args' must be a list and 'kwargs' a mapping, "
            f"got {type(args).__name__} and {type(kwargs).__name__}"
        )
    kwargs.update(spec.extra)
    label = f"{p['module']}.{p['class']}"
    try:  # before anything starts: a misspelt keyword is a config error, not a dead nanny
        inspect.signature(ctor).bind(*args, **kwargs)
    except TypeError as e:
        raise ConfigError(
            f"{where}: {label} refused its arguments ({e}); fix the profile's 'args'/'kwargs'"
        ) from e
    except ValueError:  # no introspectable signature (a C extension): let the call decide
        pass
    try:
        manager = ctor(*args, **kwargs)
    except TypeError as e:
        raise ConfigError(
            f"{where}: {label} refused its arguments ({e}); fix the profile's 'args'/'kwargs'"
        ) from e
    except (OSError, TimeoutError, RuntimeError) as e:
        raise ClusterError(f"{where}: {label} could not start a cluster: {e}") from e
    if not _is_manager(manager):
        raise ConfigError(
            f"{where}: {label}(...) returned a {type(manager).__name__}, "
            "not a Dask cluster manager (it needs scale, close, "
            "scheduler_address)"
        )
    try:
        if spec.n_workers is not None:
            manager.scale(spec.n_workers)
        client = Client(manager)
    except BaseException:
        manager.close()
        raise
    return Cluster(client, manager, kind="factory")


CLUSTER_KINDS.add(
    "factory", ClusterKind(launch_factory, description="any Dask cluster manager class")
)

__all__ = ["launch_factory", "resolve_factory"]
