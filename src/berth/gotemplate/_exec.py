"""Run a parse tree against data, following Go's text/template/exec.go.

An Executor walks the nodes, writing text to ``out``. It keeps Go's
variable stack (``$`` at the bottom; declarations live until the end of the
enclosing control structure) and remembers the node being evaluated so
errors can say where they happened, like Go does.
"""

from __future__ import annotations

from typing import Any, NoReturn

from ._errors import TemplateError
from ._funcs import ANY, INT, NILLABLE, RAW, STR, STR_LIST, GoFunc, python_func
from ._gofmt import format_value, quote
from ._nodes import (
    ActionNode, BoolNode, BreakNode, ChainNode, CommandNode, ContinueNode, DotNode, FieldNode,
    IdentifierNode, IfNode, ListNode, NilNode, Node, NumberNode, PipeNode, RangeNode, StringNode,
    TemplateNode, TextNode, VariableNode, WithNode,
)
from ._values import METHOD_TYPES, MISSING, go_type_name, is_plain_object, is_true

MAX_TEMPLATE_DEPTH = 64

# "No value piped in": Go's missingVal, distinct from MISSING (a piped invalid value).
NO_FINAL: Any = object()


class _Break(Exception):
    pass


class _Continue(Exception):
    pass


class Executor:
    def __init__(self, source: Any, name: str, out: list[str], dot: Any, depth: int = 0) -> None:
        self.source = source  # the Template: its text, name and trees
        self.name = name  # the template now executing (a define's name, or the main one)
        self.out = out
        self.vars: list[list[Any]] = [["$", dot]]
        self.depth = depth
        self.node: Node | None = None  # for error messages

    # --- errors ------------------------------------------------------------------

    def fail(self, message: str) -> NoReturn:
        node = self.node
        if node is None:
            raise TemplateError(f"template: {self.name}: {message}")
        text = self.source.text[: node.pos]
        line = text.count("\n") + 1
        column = len(text[text.rfind("\n") + 1:].encode("utf-8", "surrogatepass"))
        location = f"{self.source.name}:{line}:{column}"
        raise TemplateError(f"template: {location}: executing {quote(self.name)} at <{node}>: {message}")

    # --- variables -----------------------------------------------------------------

    def var_value(self, name: str) -> Any:
        for entry in reversed(self.vars):
            if entry[0] == name:
                return entry[1]
        self.fail(f"undefined variable: {name}")

    def set_var(self, name: str, value: Any) -> None:
        for entry in reversed(self.vars):
            if entry[0] == name:
                entry[1] = value
                return
        self.fail(f"undefined variable: {name}")

    # --- walking -------------------------------------------------------------------

    def walk(self, dot: Any, node: Node) -> None:
        self.node = node
        if isinstance(node, TextNode):
            self.out.append(node.text)
        elif isinstance(node, ActionNode):
            value = self.lookup_fast(dot, node.field_path)
            if value is NO_FINAL:
                value = self.eval_pipeline(dot, node.pipe)
                if node.pipe.decls:  # "{{$x := 1}}" prints nothing
                    return
            self.print_value(node, value)
        elif isinstance(node, ListNode):
            for child in node.nodes:
                self.walk(dot, child)
        elif isinstance(node, (IfNode, WithNode)):
            self.walk_if_or_with(dot, node)
        elif isinstance(node, RangeNode):
            self.walk_range(dot, node)
        elif isinstance(node, TemplateNode):
            self.walk_template(dot, node)
        elif isinstance(node, BreakNode):
            raise _Break
        elif isinstance(node, ContinueNode):
            raise _Continue
        else:
            self.fail(f"unknown node: {node}")

    @staticmethod
    def lookup_fast(dot: Any, path: tuple[str, ...] | None) -> Any:
        """{{.A.B}} through dicts only; NO_FINAL means "take the general path"."""
        if path is None:
            return NO_FINAL
        value = dot
        for name in path:
            if type(value) is not dict:
                return NO_FINAL if value is not MISSING else MISSING
            value = value.get(name, MISSING)
        return MISSING if value is None else value

    def print_value(self, node: Node, value: Any) -> None:
        self.node = node
        if isinstance(value, str):
            self.out.append(value)
        elif value is MISSING:
            self.out.append("<no value>")
        else:
            self.out.append(format_value(value))

    def walk_if_or_with(self, dot: Any, node: IfNode | WithNode) -> None:
        mark = len(self.vars)
        try:
            value = self.eval_pipeline(dot, node.pipe)
            if is_true(value):
                self.walk(value if isinstance(node, WithNode) else dot, node.list)
            elif node.else_list is not None:
                self.walk(dot, node.else_list)
        finally:
            del self.vars[mark:]

    def walk_range(self, dot: Any, node: RangeNode) -> None:
        self.node = node
        mark = len(self.vars)
        try:
            value = self.eval_pipeline(dot, node.pipe)
            body_mark = len(self.vars)  # the pipeline's $i, $v sit just below
            declared = len(node.pipe.decls)
            ran = False
            try:
                for key, elem in self.range_items(node, value, declared):
                    ran = True
                    if declared > 0:
                        self.vars[body_mark - 1][1] = elem
                    if declared > 1:
                        self.vars[body_mark - 2][1] = key
                    try:
                        self.walk(elem, node.list)
                    except _Continue:
                        pass
                    finally:
                        del self.vars[body_mark:]
            except _Break:
                return
            if not ran and node.else_list is not None:
                self.walk(dot, node.else_list)
        finally:
            del self.vars[mark:]

    def range_items(self, node: RangeNode, value: Any, declared: int) -> Any:
        """(key, element) pairs: lists by index, maps by sorted key, ints 0..n-1."""
        if isinstance(value, (list, tuple)):
            return enumerate(value)
        if isinstance(value, dict):
            try:
                keys = sorted(value)
            except TypeError:
                keys = sorted(value, key=lambda k: (type(k).__name__, str(k)))
            return ((k, value[k]) for k in keys)
        if isinstance(value, int) and not isinstance(value, bool):
            if declared > 1:
                self.fail(f"can't use {value} to iterate over more than one variable")
            return ((i, i) for i in range(value))
        if value is MISSING:
            return ()
        self.fail(f"range can't iterate over {format_value(value)}")

    def walk_template(self, dot: Any, node: TemplateNode) -> None:
        self.node = node
        root = self.source.trees.get(node.name)
        if root is None:
            self.fail(f"template {quote(node.name)} not defined")
        if self.depth >= MAX_TEMPLATE_DEPTH:
            self.fail(f"exceeded maximum template depth ({MAX_TEMPLATE_DEPTH})")
        value = self.eval_pipeline(dot, node.pipe)
        # No dynamic scoping: the called template sees only its own "$".
        child = Executor(self.source, node.name, self.out, value, self.depth + 1)
        child.walk(value, root)

    # --- evaluation ------------------------------------------------------------------

    def eval_pipeline(self, dot: Any, pipe: PipeNode | None) -> Any:
        if pipe is None:
            return MISSING
        self.node = pipe
        value = NO_FINAL
        for cmd in pipe.cmds:
            value = self.eval_command(dot, cmd, value)
            if value is None:  # Go digs a nil interface{} down to "no value"
                value = MISSING
        for name in pipe.decls:
            if pipe.is_assign:
                self.set_var(name, value)
            else:
                self.vars.append([name, value])
        return value

    def eval_command(self, dot: Any, cmd: CommandNode, final: Any) -> Any:
        first = cmd.args[0]
        if isinstance(first, FieldNode):
            self.node = first
            return self.eval_field_chain(dot, dot, first, first.idents, cmd.args, final)
        if isinstance(first, ChainNode):
            return self.eval_chain(dot, first, cmd.args, final)
        if isinstance(first, IdentifierNode):
            self.node = first
            return self.eval_call(dot, first.func, cmd, first.name, cmd.args, final)
        if isinstance(first, PipeNode):
            self.not_a_function(cmd.args, final)
            return self.eval_pipeline(dot, first)
        if isinstance(first, VariableNode):
            return self.eval_variable(dot, first, cmd.args, final)
        self.node = first
        self.not_a_function(cmd.args, final)
        if isinstance(first, DotNode):
            return dot
        if isinstance(first, StringNode):
            return first.text
        if isinstance(first, BoolNode):
            return first.value
        if isinstance(first, NumberNode):
            return self.ideal_number(first)
        if isinstance(first, NilNode):
            self.fail("nil is not a command")
        self.fail(f"can't evaluate command {quote(str(first))}")

    def not_a_function(self, args: list[Node] | None, final: Any) -> None:
        if (args is not None and len(args) > 1) or final is not NO_FINAL:
            self.fail(f"can't give argument to non-function {args[0] if args else ''}")

    def ideal_number(self, node: NumberNode) -> Any:
        self.node = node
        if node.ideal_error:
            self.fail(node.ideal_error)
        return node.ideal

    def eval_variable(self, dot: Any, node: VariableNode, args: list[Node] | None, final: Any) -> Any:
        self.node = node
        value = self.var_value(node.idents[0])
        if len(node.idents) == 1:
            self.not_a_function(args, final)
            return value
        return self.eval_field_chain(dot, value, node, node.idents[1:], args, final)

    def eval_chain(self, dot: Any, node: ChainNode, args: list[Node] | None, final: Any) -> Any:
        self.node = node
        if isinstance(node.node, NilNode):
            self.fail(f"indirection through explicit nil in {node}")
        receiver = self.eval_arg(dot, RAW, node.node)
        return self.eval_field_chain(dot, receiver, node, node.fields, args, final)

    def eval_field_chain(
        self, dot: Any, receiver: Any, node: Node, idents: tuple[str, ...],
        args: list[Node] | None, final: Any,
    ) -> Any:
        """.X.Y.Z: every step but the last takes no arguments."""
        from_map = False
        last = len(idents) - 1
        for i, name in enumerate(idents):
            if i == last:
                return self.eval_field(dot, name, node, args, final, receiver, from_map)
            from_map = isinstance(receiver, dict)
            receiver = self.eval_field(dot, name, node, None, NO_FINAL, receiver, from_map)
        raise AssertionError("no fields")

    def eval_field(
        self, dot: Any, name: str, node: Node, args: list[Node] | None, final: Any,
        receiver: Any, from_map: bool = False,
    ) -> Any:
        """One .Name step: a map key, an attribute, or a method call."""
        if receiver is MISSING:
            return MISSING
        if receiver is None:
            self.fail(f"nil pointer evaluating interface {{}}.{name}")
        has_args = (args is not None and len(args) > 1) or final is not NO_FINAL
        if isinstance(receiver, dict):
            if has_args:
                self.fail(f"{name} is not a method but has arguments")
            return receiver.get(name, MISSING)
        if is_plain_object(receiver) and not name.startswith("_"):
            try:
                attr = getattr(receiver, name)
            except AttributeError:
                pass
            except Exception as e:  # a property that failed
                self.fail(f"error calling {name}: {e}")
            else:
                if isinstance(attr, METHOD_TYPES):
                    return self.eval_call(dot, python_func(name, attr), node, name, args, final)
                if has_args:
                    self.fail(f"{name} has arguments but cannot be invoked as function")
                return attr
        type_name = "interface {}" if from_map else go_type_name(receiver)
        self.fail(f"can't evaluate field {name} in type {type_name}")

    def eval_call(
        self, dot: Any, func: GoFunc, node: Node, name: str, args: list[Node] | None, final: Any,
    ) -> Any:
        """Call a function or method with the command's arguments (+ the piped value)."""
        arg_nodes = args[1:] if args is not None else []
        given = len(arg_nodes) + (final is not NO_FINAL)
        self.check_arity(func, name, given, len(arg_nodes))
        if func.short_circuit:
            return self.eval_and_or(dot, name, arg_nodes, final)
        fixed = func.params or ()
        argv = [
            self.eval_arg(dot, fixed[i] if i < len(fixed) else func.variadic or ANY, arg)
            for i, arg in enumerate(arg_nodes)
        ]
        if final is not NO_FINAL:
            position = given - 1
            wanted = fixed[position] if position < len(fixed) else func.variadic or ANY
            argv.append(self.validate(final, wanted))
        try:
            return func.fn(*argv)
        except TemplateError:
            raise
        except Exception as e:  # FuncError, or whatever a user function raised
            self.node = node
            self.fail(f"error calling {name}: {e}")

    def check_arity(self, func: GoFunc, name: str, given: int, explicit: int) -> None:
        if func.params is None:
            return
        want = len(func.params)
        if func.variadic is not None:
            if given < want:
                self.fail(f"wrong number of args for {name}: want at least {want} got {explicit}")
        elif given != want:
            self.fail(f"wrong number of args for {name}: want {want} got {given}")

    def eval_and_or(self, dot: Any, name: str, arg_nodes: list[Node], final: Any) -> Any:
        """and/or stop at the first false/true operand and return it, as Go does."""
        stop_on = name == "or"
        value: Any = None
        for arg in arg_nodes:
            value = self.eval_arg(dot, ANY, arg)
            if is_true(value) == stop_on:
                return value
        if final is not NO_FINAL:
            value = self.validate(final, ANY)
        return value

    def eval_arg(self, dot: Any, wanted: str, node: Node) -> Any:
        """Evaluate one argument for a parameter of Go type `wanted`."""
        self.node = node
        if isinstance(node, DotNode):
            return self.validate(dot, wanted)
        if isinstance(node, NilNode):
            if wanted in NILLABLE:
                return None
            self.fail(f"cannot assign nil to {wanted}")
        if isinstance(node, FieldNode):
            value = self.eval_field_chain(dot, dot, node, node.idents, [node], NO_FINAL)
            return self.validate(value, wanted)
        if isinstance(node, VariableNode):
            return self.validate(self.eval_variable(dot, node, None, NO_FINAL), wanted)
        if isinstance(node, PipeNode):
            return self.validate(self.eval_pipeline(dot, node), wanted)
        if isinstance(node, IdentifierNode):
            return self.validate(self.eval_call(dot, node.func, node, node.name, None, NO_FINAL), wanted)
        if isinstance(node, ChainNode):
            return self.validate(self.eval_chain(dot, node, None, NO_FINAL), wanted)
        return self.literal_arg(node, wanted)

    def literal_arg(self, node: Node, wanted: str) -> Any:
        """A literal where Go knows the parameter type (Go's evalString, evalInteger...)."""
        if wanted == STR:
            if isinstance(node, StringNode):
                return node.text
            self.fail(f"expected string; found {node}")
        if wanted == INT:
            if isinstance(node, NumberNode) and node.int_value is not None:
                return node.int_value
            self.fail(f"expected integer; found {node}")
        if wanted == STR_LIST:
            self.fail(f"can't handle {node} for arg of type []string")
        if isinstance(node, StringNode):
            return node.text
        if isinstance(node, BoolNode):
            return node.value
        if isinstance(node, NumberNode):
            return self.ideal_number(node)
        self.fail(f"can't handle {node} for arg of type {wanted}")

    def validate(self, value: Any, wanted: str) -> Any:
        """Check a computed value against a Go parameter type (Go's validateType)."""
        if wanted == ANY:
            return None if value is MISSING else value
        if wanted == RAW:
            return value
        if wanted == STR and isinstance(value, str):
            return value
        if wanted == INT and isinstance(value, int) and not isinstance(value, bool):
            return value
        if wanted == STR_LIST:
            if value is MISSING:
                return []
            if isinstance(value, (list, tuple)) and all(isinstance(v, str) for v in value):
                return value
        if value is MISSING:
            self.fail(f"invalid value; expected {wanted}")
        got = "interface {}" if value is None else go_type_name(value)
        self.fail(f"wrong type for value; expected {wanted}; got {got}")
