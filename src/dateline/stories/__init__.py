"""Stories and their updates: stored (`story`, `entries`), logged (`events`), rendered
(`markup`, `embeds`, `photos`), and the rules every writer follows (`posting`)."""
