"""Every REST route of the extension in one table: URL pattern -> handler.

To add a route: write the handler (a :class:`~lepton_nb.server._handlers.LeptonHandler`
subclass over a manager) in its module, then add its line here.  Its own module so that handler
modules may import ``handlers`` (for ``LeptonHandler``) without ``handlers`` importing them back.
"""

from __future__ import annotations

from jupyter_server.utils import url_path_join
from tornado.web import RequestHandler

from lepton_nb.server._dashboard import DashboardProxyHandler, DashboardSocketHandler
from lepton_nb.server._handlers import (
    ClusterHandler,
    ClustersHandler,
    JobHandler,
    JobRerunHandler,
    JobsHandler,
    ScheduleHandler,
    ScheduleRunHandler,
    SchedulesHandler,
)
from lepton_nb.server._profiles import ProfilesHandler

_ID = r"(?P<{}>[A-Za-z0-9_.\-]+)"


def routes(base_url: str) -> list[tuple[str, type[RequestHandler]]]:
    api = url_path_join(base_url, "lepton", "api")
    dashboard = url_path_join(base_url, "lepton", "dashboard", _ID.format("cluster_id"))
    return [
        (url_path_join(api, "profiles") + "/?", ProfilesHandler),
        (url_path_join(api, "clusters") + "/?", ClustersHandler),
        (url_path_join(api, "clusters", _ID.format("cluster_id")) + "/?", ClusterHandler),
        (url_path_join(api, "jobs") + "/?", JobsHandler),
        (url_path_join(api, "jobs", _ID.format("job_id"), "rerun") + "/?", JobRerunHandler),
        (url_path_join(api, "jobs", _ID.format("job_id")) + "/?", JobHandler),
        (url_path_join(api, "schedules") + "/?", SchedulesHandler),
        (
            url_path_join(api, "schedules", _ID.format("schedule_id"), "run") + "/?",
            ScheduleRunHandler,
        ),
        (url_path_join(api, "schedules", _ID.format("schedule_id")) + "/?", ScheduleHandler),
        # bokeh's live plots: websockets at .../ws (status/ws, individual-task-stream/ws, ...)
        (dashboard + "/(?P<path>(?:.*/)?ws)", DashboardSocketHandler),
        (dashboard + "/(?P<path>.*)", DashboardProxyHandler),
    ]


__all__ = ["routes"]
