"""The embedded KFP-compatible server (``kfp-ci serve``): the local default and the test double.

``LocalServer(ServerOptions(data_dir=...)).start()`` serves the KFP v2beta1 and v1beta1 REST APIs (under ``/``
and ``/pipeline``) from SQLite, runs pipelines with ``kfp.local`` in worker processes and fires recurring
runs. Importing this package is cheap: starlette, uvicorn and kfp are imported only when a server starts.

Modules, lowest first (each imports only modules earlier in this list, never this package):

- ``_options``: ``ServerOptions``; ``_compat``: what differs between the imitated KFP releases;
  ``_store``: SQLite records and packages.
- ``_http``: ``Req``, ``Resp``, ``Router``, ``HttpError``; ``_fields``: field values (timestamps, enums, protojson);
  ``_lists``: list filters, sorting and page tokens; ``_packages``: uploaded packages and run parameters.
- ``_argo_exec`` (one Argo container on the host), ``_argo`` (the run process of a KFP v1 Argo workflow),
  ``_executor``, ``_worker`` (the run process), ``_scheduler``: running runs and firing recurring runs.
- ``_model``: the resource rules of both API generations; ``_handlers``: handlers both generations share;
  ``_v1``, ``_v2``: the routes of each generation; ``_dag`` (a run's graph as SVG) and ``_page``: the small KFP
  UI; ``_mlmd``: the ML Metadata route.
- ``_app``: the API app (routes, page, error bodies); ``_outer``: faults and the access log;
  ``_login_pages``: Dex's and oauth2-proxy's HTML pages; ``_login``: the login emulation (ASGI middleware).
- ``_server``: ``LocalServer``; ``_command``: ``kfp-ci serve``; ``_demo``: ``kfp-ci demo`` (the CI flow on the
  examples against a server with Dex login).
"""

from __future__ import annotations

from kfp_ci.local._command import serve_command
from kfp_ci.local._demo import demo_command
from kfp_ci.local._options import ServerOptions
from kfp_ci.local._server import LocalServer

__all__ = ["LocalServer", "ServerOptions", "demo_command", "serve_command"]
