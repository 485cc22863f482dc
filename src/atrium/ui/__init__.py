"""Atrium's hosted pages (``/login``, ``/account`` ...) and admin console (``/admin``).

Server-rendered Jinja2 with htmx for partial updates; every page works without
JavaScript except the charts. Pages call the same services as the API routers (never HTTP
to themselves), so they share the API's rules, limits, errors and audit trail. A browser
signs in with a cookie that is an Atrium session (see :mod:`atrium.ui.browser`).
"""
