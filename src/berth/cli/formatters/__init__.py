"""docker's formatter contexts: one module per kind of list (containers, images, volumes,
networks, history, stats, diff, disk usage). Each builds ``format.Row`` objects whose fields
are what ``--format`` templates see, with docker's column titles and default tables."""
