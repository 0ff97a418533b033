"""Image commands' machinery (pull/push progress, listing rows); ``cli/commands/image.py``
declares the commands."""
