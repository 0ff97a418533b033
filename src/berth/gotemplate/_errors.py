"""The one exception type of this package."""


class TemplateError(Exception):
    """A parse or execution error; the message reads like Go's, e.g.
    ``template: :1:2: executing "" at <.Foo>: can't evaluate field Foo in type string``.
    """
