"""Web Push: browser notifications for readers who opt in (in progress, see webpush.py)."""
