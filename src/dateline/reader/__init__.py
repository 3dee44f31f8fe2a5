"""The reader's pages: the front page, a story, an update's permalink, the service worker."""
