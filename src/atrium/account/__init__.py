"""The signed-in account's own account: ``/users/me`` (basics, password change, sessions,
deletion) over the account store of :mod:`atrium.users`."""
