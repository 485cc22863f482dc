"""Retention: what Atrium keeps and for how long (GDPR art. 5(1)(e), storage limitation).

:mod:`atrium.retention.policies` lists the policies, :mod:`atrium.retention.service`
applies them (the ``retention.run`` job and ``atrium retention run [--dry-run]``).
"""
