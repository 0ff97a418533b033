"""The container commands' machinery: create options, the run/attach/exec flows, copy,
stats and logs. ``cli/commands/container.py`` declares the commands and calls these."""
