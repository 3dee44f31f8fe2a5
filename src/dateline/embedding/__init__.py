"""A story inside a publisher's own articles: the framed views (`/stories/{slug}/embed`, and
the compact `/teaser`), the loader script publishers paste (`/embed.js`), and oEmbed, so
content systems that speak it embed a story by its address alone."""
