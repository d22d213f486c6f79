"""GET lepton/api/profiles: the cluster profiles the sidebar's Profile field offers."""

from __future__ import annotations

import tornado.web
from jupyter_server.auth.decorator import authorized
from pydantic import BaseModel

from lepton_nb.server._handlers import LeptonHandler


class ProfileInfo(BaseModel):
    name: str
    kind: str
    description: str = ""


def list_profiles() -> list[ProfileInfo]:
    from lepton_nb.cluster._profiles import describe_profiles

    return [ProfileInfo(**row) for row in describe_profiles()]


class ProfilesHandler(LeptonHandler):
    @tornado.web.authenticated
    @authorized
    async def get(self) -> None:
        self.reply(await self.call(list_profiles))


__all__ = ["ProfileInfo", "ProfilesHandler", "list_profiles"]
