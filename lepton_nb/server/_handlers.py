"""Thin Tornado handlers: parse and validate at the edge, call a manager off the loop, reply JSON.

Every method is ``@tornado.web.authenticated`` then ``@authorized`` (resource ``lepton``: GET is
a read, everything else a write), so a server's authorizer can make the API read-only.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

import tornado.web
from jupyter_server.auth.decorator import authorized
from jupyter_server.base.handlers import APIHandler
from pydantic import BaseModel, ValidationError

from lepton_nb.errors import ConfigError, LeptonError, NotFoundError
from lepton_nb.jobs.store import StoreDamagedError
from lepton_nb.server._models import (
    ClusterPatch,
    JobFilter,
    JobSubmit,
    LaunchRequest,
    ScheduleCreate,
    SchedulePatch,
)
from lepton_nb.server._paths import PathOutsideRootError
from lepton_nb.server.clusters import ClusterManager
from lepton_nb.server.jobs import JobManager
from lepton_nb.server.schedules import ScheduleManager

M = TypeVar("M", bound=BaseModel)
AUTH_RESOURCE = "lepton"
# Deeper JSON than any real request; past this, parsing and validation would recurse too far.
MAX_DEPTH = 32


def json_depth(value: Any) -> int:
    """Nesting depth of a parsed JSON value, without recursion (so no RecursionError)."""
    deepest, stack = 0, [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, dict | list):
            deepest = max(deepest, depth)
            children = item.values() if isinstance(item, dict) else item
            stack.extend((c, depth + 1) for c in children)
    return deepest


def parse_body(body: bytes | None) -> dict[str, Any]:
    """A request body as a JSON object, or a ConfigError (400) saying what is wrong with it."""
    try:
        raw = json.loads(body or b"{}")
    except RecursionError:
        raise ConfigError(f"the request body nests deeper than {MAX_DEPTH} levels") from None
    except (ValueError, UnicodeDecodeError) as e:
        # JSONDecodeError, and ints past Python's 4300-digit conversion limit
        raise ConfigError(f"the request body is not valid JSON: {str(e)[:200]}") from None
    if not isinstance(raw, dict):
        raise ConfigError("the request body must be a JSON object")
    if json_depth(raw) > MAX_DEPTH:
        raise ConfigError(f"the request body nests deeper than {MAX_DEPTH} levels")
    return raw


def _status_for(error: LeptonError) -> int:
    if isinstance(error, StoreDamagedError):
        return 503  # not the request's fault; retrying will not help until it is repaired
    if isinstance(error, PathOutsideRootError):
        return 403
    if isinstance(error, NotFoundError):
        return 404
    if isinstance(error, ConfigError):
        return 400
    return 409  # the request was well-formed but conflicts with the current state


class LeptonHandler(APIHandler):
    auth_resource = AUTH_RESOURCE

    @property
    def clusters(self) -> ClusterManager:
        return self.settings["lepton_clusters"]  # type: ignore[no-any-return]

    @property
    def jobs(self) -> JobManager:
        return self.settings["lepton_jobs"]  # type: ignore[no-any-return]

    @property
    def schedules(self) -> ScheduleManager:
        return self.settings["lepton_schedules"]  # type: ignore[no-any-return]

    async def call(self, fn: Callable[..., Any], *args: Any) -> Any:
        """Run blocking manager work in the extension's pool, never on the event loop."""
        pool: ThreadPoolExecutor = self.settings["lepton_pool"]
        return await asyncio.get_running_loop().run_in_executor(pool, fn, *args)

    def body(self, model: type[M]) -> M:
        return self._validate(model, parse_body(self.request.body))

    @staticmethod
    def _validate(model: type[M], raw: dict[str, Any]) -> M:
        try:
            return model.model_validate(raw)
        except ValidationError as e:
            problems = "; ".join(
                f"{'.'.join(str(p) for p in err['loc'])[:100] or 'body'}: {err['msg']}"
                for err in e.errors()[:10]
            )
            raise ConfigError(f"invalid {model.__name__}: {problems}") from None

    def reply(self, data: Any, status: int = 200) -> None:
        if isinstance(data, BaseModel):
            data = data.model_dump(mode="json")
        elif isinstance(data, list):
            data = [d.model_dump(mode="json") if isinstance(d, BaseModel) else d for d in data]
        self.set_status(status)
        self.set_header("Content-Type", "application/json")
        self.finish(json.dumps(data))

    def write_error(self, status_code: int, **kwargs: Any) -> None:
        # Domain errors carry a message meant for the user; anything else is logged here and
        # answered without a traceback.
        exc = kwargs.get("exc_info", (None, None, None))[1]
        if isinstance(exc, LeptonError):
            status, name, message = _status_for(exc), type(exc).__name__, str(exc)
        elif isinstance(exc, tornado.web.HTTPError):
            status, name = exc.status_code, "HTTPError"
            message = exc.log_message or exc.reason or f"HTTP {exc.status_code}"
        else:
            status, name = status_code, "InternalError"
            message = "internal error; see the server log"
        self.set_status(status)
        self.set_header("Content-Type", "application/json")
        self.finish(json.dumps({"error": name, "message": message}))

    def log_exception(self, typ: Any, value: Any, tb: Any) -> None:
        if isinstance(value, LeptonError):
            self.log.info("lepton API %s: %s", type(value).__name__, value)
        else:
            super().log_exception(typ, value, tb)


class ClustersHandler(LeptonHandler):
    @tornado.web.authenticated
    @authorized
    async def get(self) -> None:
        self.reply(await self.call(self.clusters.list))

    @tornado.web.authenticated
    @authorized
    async def post(self) -> None:
        request = self.body(LaunchRequest)
        self.reply(await self.call(self.clusters.launch, request), status=201)


class ClusterHandler(LeptonHandler):
    @tornado.web.authenticated
    @authorized
    async def get(self, cluster_id: str) -> None:
        self.reply(await self.call(self.clusters.get, cluster_id))

    @tornado.web.authenticated
    @authorized
    async def patch(self, cluster_id: str) -> None:
        patch = self.body(ClusterPatch)
        self.reply(await self.call(self.clusters.patch, cluster_id, patch))

    @tornado.web.authenticated
    @authorized
    async def delete(self, cluster_id: str) -> None:
        self.reply(await self.call(self.clusters.stop, cluster_id))


class JobsHandler(LeptonHandler):
    @tornado.web.authenticated
    @authorized
    async def get(self) -> None:
        # Only the known filters: JupyterLab adds a cache-busting timestamp to every GET.
        query = {
            k: self.get_query_argument(k)
            for k in JobFilter.model_fields
            if k in self.request.query_arguments
        }
        filters = self._validate(JobFilter, query)
        self.reply(await self.call(self.jobs.list, filters))

    @tornado.web.authenticated
    @authorized
    async def post(self) -> None:
        request = self.body(JobSubmit)
        self.reply(await self.call(self.jobs.submit, request), status=202)


class JobHandler(LeptonHandler):
    @tornado.web.authenticated
    @authorized
    async def get(self, job_id: str) -> None:
        self.reply(await self.call(self.jobs.get, job_id))

    @tornado.web.authenticated
    @authorized
    async def delete(self, job_id: str) -> None:
        self.reply(await self.call(self.jobs.cancel, job_id))


class JobRerunHandler(LeptonHandler):
    @tornado.web.authenticated
    @authorized
    async def post(self, job_id: str) -> None:
        self.reply(await self.call(self.jobs.rerun, job_id), status=202)


class SchedulesHandler(LeptonHandler):
    @tornado.web.authenticated
    @authorized
    async def get(self) -> None:
        self.reply(await self.call(self.schedules.list))

    @tornado.web.authenticated
    @authorized
    async def post(self) -> None:
        request = self.body(ScheduleCreate)
        self.reply(await self.call(self.schedules.create, request), status=201)


class ScheduleHandler(LeptonHandler):
    @tornado.web.authenticated
    @authorized
    async def get(self, schedule_id: str) -> None:
        self.reply(await self.call(self.schedules.get, schedule_id))

    @tornado.web.authenticated
    @authorized
    async def patch(self, schedule_id: str) -> None:
        patch = self.body(SchedulePatch)
        self.reply(await self.call(self.schedules.patch, schedule_id, patch))

    @tornado.web.authenticated
    @authorized
    async def delete(self, schedule_id: str) -> None:
        self.reply(await self.call(self.schedules.remove, schedule_id))


class ScheduleRunHandler(LeptonHandler):
    @tornado.web.authenticated
    @authorized
    async def post(self, schedule_id: str) -> None:
        self.reply(await self.call(self.schedules.run, schedule_id), status=202)


__all__ = [
    "AUTH_RESOURCE",
    "MAX_DEPTH",
    "ClusterHandler",
    "ClustersHandler",
    "JobHandler",
    "JobRerunHandler",
    "JobsHandler",
    "LeptonHandler",
    "ScheduleHandler",
    "ScheduleRunHandler",
    "SchedulesHandler",
    "json_depth",
    "parse_body",
]
