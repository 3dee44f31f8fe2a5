"""Newsroom accounts: users with roles and API tokens (`users`), sign-in sessions and the
password-guessing throttle (`sessions`)."""
