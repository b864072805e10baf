"""Where this machine's web server listens: the one place that knows it.

``manage.py serve`` starts daphne on ``web_listening()`` (``OPS_HOST``/``OPS_PORT``, or its
``--host``/``--port``, which it passes on to the processes it starts as the same
variables), so a worker of that machine knows the port too. A web process started by hand
(``daphne -b … -p …``) must be given the same ``OPS_HOST``/``OPS_PORT`` in the environment
of every process of the machine (README "Processes"). Users: the outbound guard refuses this
port as the product's own (execution/outbound/own.py); links in notifications (``public_url()``).
"""

from __future__ import annotations

from dataclasses import dataclass

from django.conf import settings

# A host that means "every address of this machine".
WILDCARD_HOSTS = frozenset({"", "0.0.0.0", "::", "[::]"})


@dataclass(frozen=True)
class Listening:
    host: str
    port: int

    @property
    def every_address(self) -> bool:
        return self.host in WILDCARD_HOSTS

    @property
    def url(self) -> str:
        """``http://host:port`` as a browser on this machine reaches it (a wildcard is
        reached on loopback)."""
        host = "127.0.0.1" if self.every_address else self.host
        return f"http://{f'[{host}]' if ':' in host else host}:{self.port}"

    def environment(self) -> dict[str, str]:
        """The variables that give a child process the same answer."""
        return {"OPS_HOST": self.host, "OPS_PORT": str(self.port)}


def web_listening() -> Listening:
    return Listening(host=str(settings.OPS_HOST), port=int(settings.OPS_PORT))


def public_url() -> str:
    """The base of links to our pages: ``OPS_PUBLIC_URL`` when set, else where we listen."""
    return str(settings.OPS_PUBLIC_URL) or web_listening().url
