"""Parsers and validators for the values of docker's flags (docker/cli's ``opts`` package).

Pure functions over strings; errors are ``ValueError`` with docker's text, which the flag
parser shows as ``invalid argument "<value>" for "<flag>" flag: <text>``.
"""
