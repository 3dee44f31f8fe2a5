"""Feeds and sitemaps: a story's updates for feed readers (Atom, JSON Feed) and every
public story for search engines (sitemap.xml, the news sitemap, robots.txt).

Each is built from the database once per version (the story's, or the site's, newest event
id) and held, compressed, beside the pages (`reader/page_cache.py`), so a feed reader
polling every minute costs a 304 or a memory copy.
"""
