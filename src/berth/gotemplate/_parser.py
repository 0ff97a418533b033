"""Build parse trees from tokens, following Go's text/template/parse.

One Parser handles one template text: the main tree plus every
``{{define}}`` and ``{{block}}`` in it. Like Go, it checks at parse time
that functions exist, variables are declared, and break/continue sit
inside a range.
"""

from __future__ import annotations

from typing import Any

from . import _lexer as L
from ._errors import TemplateError
from ._gofmt import quote
from ._literals import make_number, unquote_string
from ._nodes import (
    ActionNode, BoolNode, BreakNode, ChainNode, CommandNode, ContinueNode, DotNode, ElseNode,
    EndNode, FieldNode, IdentifierNode, IfNode, ListNode, NilNode, Node, NumberNode, PipeNode,
    RangeNode, StringNode, TemplateNode, TextNode, VariableNode, WithNode, is_empty_tree,
)

_OPERAND_START = frozenset([
    L.BOOL, L.CHAR_CONSTANT, L.COMPLEX, L.DOT, L.FIELD, L.IDENTIFIER, L.NUMBER, "nil",
    L.RAW_STRING, L.STRING, L.VARIABLE, L.LEFT_PAREN,
])
_LITERALS = (BoolNode, DotNode, NilNode, NumberNode, StringNode)


class Parser:
    def __init__(self, name: str, text: str, funcs: dict[str, Any]) -> None:
        self.name = name
        self.funcs = funcs
        self.tokens = L.lex(text)
        self.index = 0
        self.seen = 0  # furthest token looked at: Go reports its line
        self.vars: list[str] = ["$"]
        self.range_depth = 0
        self.action_line = 0
        self.templates: dict[str, ListNode] = {}

    # --- token stream ------------------------------------------------------------

    def next(self) -> L.Token:
        i = min(self.index, len(self.tokens) - 1)
        self.index += 1
        self.seen = max(self.seen, i)
        return self.tokens[i]

    def backup(self, count: int = 1) -> None:
        self.index -= count

    def peek(self) -> L.Token:
        token = self.next()
        self.backup()
        return token

    def next_non_space(self) -> L.Token:
        token = self.next()
        while token.kind == L.SPACE:
            token = self.next()
        return token

    def peek_non_space(self) -> L.Token:
        token = self.next_non_space()
        self.backup()
        return token

    # --- errors --------------------------------------------------------------------

    def error(self, message: str) -> None:
        line = self.tokens[min(self.seen, len(self.tokens) - 1)].line
        raise TemplateError(f"template: {self.name}:{line}: {message}")

    def expect(self, kinds: tuple[str, ...], context: str) -> L.Token:
        token = self.next_non_space()
        if token.kind not in kinds:
            self.unexpected(token, context)
        return token

    def unexpected(self, token: L.Token, context: str) -> None:
        if token.kind == L.ERROR:
            extra = ""
            if self.action_line and self.action_line != token.line:
                extra = f" in action started at {self.name}:{self.action_line}"
                if token.val.endswith(" action"):
                    extra = extra[len(" in action"):]
            self.error(token.val + extra)
        self.error(f"unexpected {token} in {context}")

    # --- templates and lists ---------------------------------------------------------

    def parse(self) -> dict[str, ListNode]:
        """Parse the whole text; returns every template by name."""
        root = ListNode(self.peek().pos)
        while self.peek().kind != L.EOF:
            if self.peek().kind == L.LEFT_DELIM:
                delim_index = self.index
                self.next()
                if self.next_non_space().kind == "define":
                    self.parse_definition()
                    continue
                self.index = delim_index
            node = self.text_or_action()
            if isinstance(node, (EndNode, ElseNode)):
                self.error(f"unexpected {node}")
            root.nodes.append(node)
        self.add(self.name, root)
        return self.templates

    def add(self, name: str, root: ListNode) -> None:
        existing = self.templates.get(name)
        if existing is None or is_empty_tree(existing):
            self.templates[name] = root
        elif not is_empty_tree(root):
            self.error(f"template: multiple definition of template {quote(name)}")

    def parse_nested_tree(self) -> tuple[ListNode, Node]:
        """A define/block body: its own variable scope, not inside any range."""
        saved = self.vars, self.range_depth
        self.vars, self.range_depth = ["$"], 0
        try:
            return self.item_list()
        finally:
            self.vars, self.range_depth = saved

    def parse_definition(self) -> None:
        context = "define clause"
        name = self.string_value(self.expect((L.STRING, L.RAW_STRING), context))
        self.expect((L.RIGHT_DELIM,), context)
        root, end = self.parse_nested_tree()
        if not isinstance(end, EndNode):
            self.error(f"unexpected {end} in {context}")
        self.add(name, root)

    def item_list(self) -> tuple[ListNode, Node]:
        """Nodes up to {{end}} or {{else}}, which is returned separately."""
        body = ListNode(self.peek_non_space().pos)
        while self.peek_non_space().kind != L.EOF:
            node = self.text_or_action()
            if isinstance(node, (EndNode, ElseNode)):
                return body, node
            body.nodes.append(node)
        self.error("unexpected EOF")
        raise AssertionError("unreachable")

    def text_or_action(self) -> Node:
        token = self.next_non_space()
        if token.kind == L.TEXT:
            return TextNode(token.pos, token.val)
        if token.kind == L.LEFT_DELIM:
            self.action_line = token.line
            try:
                return self.action()
            finally:
                self.action_line = 0
        self.unexpected(token, "input")
        raise AssertionError("unreachable")

    # --- actions ---------------------------------------------------------------------

    def action(self) -> Node:
        token = self.next_non_space()
        kind = token.kind
        if kind == "block":
            return self.block_control()
        if kind in ("break", "continue"):
            return self.loop_control(token)
        if kind == "else":
            return self.else_control()
        if kind == "end":
            return EndNode(self.expect((L.RIGHT_DELIM,), "end").pos)
        if kind == "if":
            return IfNode(*self.parse_control("if"))
        if kind == "range":
            return RangeNode(*self.parse_control("range"))
        if kind == "with":
            return WithNode(*self.parse_control("with"))
        if kind == "template":
            return self.template_control()
        self.backup()
        token = self.peek()
        # Variables declared here live until the enclosing {{end}}.
        return ActionNode(token.pos, token.line, self.pipeline("command", L.RIGHT_DELIM))

    def loop_control(self, keyword: L.Token) -> Node:
        name = keyword.kind
        token = self.next_non_space()
        if token.kind != L.RIGHT_DELIM:
            self.unexpected(token, "{{" + name + "}}")
        if self.range_depth == 0:
            self.error("{{" + name + "}} outside {{range}}")
        return BreakNode(keyword.pos) if name == "break" else ContinueNode(keyword.pos)

    def else_control(self) -> Node:
        following = self.peek_non_space()
        if following.kind in ("if", "with"):
            # "{{else if x}}" is read as "{{else}}{{if x}}...{{end}}{{end}}";
            # leave the keyword for parse_control.
            return ElseNode(following.pos)
        return ElseNode(self.expect((L.RIGHT_DELIM,), "else").pos)

    def parse_control(self, context: str) -> tuple[int, int, PipeNode, ListNode, ListNode | None]:
        mark = len(self.vars)
        try:
            pipe = self.pipeline(context, L.RIGHT_DELIM)
            if context == "range":
                self.range_depth += 1
            body, next_node = self.item_list()
            if context == "range":
                self.range_depth -= 1
            else_list = None
            if isinstance(next_node, ElseNode):
                if context in ("if", "with") and self.peek().kind == context:
                    self.next()
                    else_list = ListNode(next_node.pos)
                    nested = IfNode if context == "if" else WithNode
                    else_list.nodes.append(nested(*self.parse_control(context)))
                else:
                    else_list, next_node = self.item_list()
                    if not isinstance(next_node, EndNode):
                        self.error(f"expected end; found {next_node}")
            return pipe.pos, pipe.line, pipe, body, else_list
        finally:
            del self.vars[mark:]

    def block_control(self) -> Node:
        context = "block clause"
        token = self.next_non_space()
        name = self.template_name(token, context)
        pipe = self.pipeline(context, L.RIGHT_DELIM)
        root, end = self.parse_nested_tree()
        if not isinstance(end, EndNode):
            self.error(f"unexpected {end} in {context}")
        self.add(name, root)
        return TemplateNode(token.pos, token.line, name, pipe)

    def template_control(self) -> Node:
        context = "template clause"
        token = self.next_non_space()
        name = self.template_name(token, context)
        pipe = None
        if self.next_non_space().kind != L.RIGHT_DELIM:
            self.backup()
            pipe = self.pipeline(context, L.RIGHT_DELIM)
        return TemplateNode(token.pos, token.line, name, pipe)

    def template_name(self, token: L.Token, context: str) -> str:
        if token.kind not in (L.STRING, L.RAW_STRING):
            self.unexpected(token, context)
        return self.string_value(token)

    def string_value(self, token: L.Token) -> str:
        try:
            return unquote_string(token.val)
        except ValueError as e:
            self.error(str(e))
            raise AssertionError("unreachable")

    # --- pipelines -------------------------------------------------------------------

    def pipeline(self, context: str, end: str) -> PipeNode:
        token = self.peek_non_space()
        pipe = PipeNode(token.pos, token.line)
        self.declarations(pipe, context)
        while True:
            token = self.next_non_space()
            if token.kind == end:
                self.check_pipeline(pipe, context)
                return pipe
            if token.kind in _OPERAND_START:
                self.backup()
                pipe.cmds.append(self.command())
            else:
                self.unexpected(token, context)

    def declarations(self, pipe: PipeNode, context: str) -> None:
        """Read "$x :=", "$x =" or (in range) "$i, $v :=" if present."""
        while self.peek_non_space().kind == L.VARIABLE:
            start = self.index
            variable = self.next_non_space()
            following = self.peek_non_space()
            if following.kind in (L.ASSIGN, L.DECLARE):
                pipe.is_assign = following.kind == L.ASSIGN
                self.next_non_space()
                pipe.decls.append(variable.val)
                self.vars.append(variable.val)
                return
            if following.kind == L.CHAR and following.val == ",":
                self.next_non_space()
                pipe.decls.append(variable.val)
                self.vars.append(variable.val)
                if context == "range" and len(pipe.decls) < 2:
                    if self.peek_non_space().kind in (L.VARIABLE, L.RIGHT_DELIM, L.RIGHT_PAREN):
                        continue
                    self.error("range can only initialize variables")
                self.error(f"too many declarations in {context}")
            self.index = start  # "$x" was an operand, not a declaration
            return

    def check_pipeline(self, pipe: PipeNode, context: str) -> None:
        if not pipe.cmds:
            self.error(f"missing value for {context}")
        for stage, cmd in enumerate(pipe.cmds[1:], start=2):
            if isinstance(cmd.args[0], _LITERALS):
                self.error(f"non executable command in pipeline stage {stage}")

    def command(self) -> CommandNode:
        cmd = CommandNode(self.peek_non_space().pos)
        while True:
            self.peek_non_space()
            operand = self.operand()
            if operand is not None:
                cmd.args.append(operand)
            token = self.next()
            if token.kind == L.SPACE:
                continue
            if token.kind in (L.RIGHT_DELIM, L.RIGHT_PAREN):
                self.backup()
            elif token.kind != L.PIPE:
                self.unexpected(token, "operand")
            break
        if not cmd.args:
            self.error("empty command")
        return cmd

    def operand(self) -> Node | None:
        """A term, possibly followed by .Field accesses."""
        node = self.term()
        if node is None or self.peek().kind != L.FIELD:
            return node
        pos = self.peek().pos
        fields: list[str] = []
        while self.peek().kind == L.FIELD:
            fields.append(self.next().val[1:])
        if isinstance(node, FieldNode):
            return FieldNode(pos, node.idents + tuple(fields))
        if isinstance(node, VariableNode):
            return VariableNode(pos, node.idents + tuple(fields))
        if isinstance(node, _LITERALS):
            self.error(f"unexpected . after term {quote(str(node))}")
        return ChainNode(pos, node, tuple(fields))

    def term(self) -> Node | None:
        token = self.next_non_space()
        kind = token.kind
        if kind == L.IDENTIFIER:
            func = self.funcs.get(token.val)
            if func is None:
                self.error(f"function {quote(token.val)} not defined")
            return IdentifierNode(token.pos, token.val, func)
        if kind == L.DOT:
            return DotNode(token.pos)
        if kind == "nil":
            return NilNode(token.pos)
        if kind == L.VARIABLE:
            if token.val not in self.vars:
                self.error(f"undefined variable {quote(token.val)}")
            return VariableNode(token.pos, (token.val,))
        if kind == L.FIELD:
            return FieldNode(token.pos, (token.val[1:],))
        if kind == L.BOOL:
            return BoolNode(token.pos, token.val == "true")
        if kind in (L.CHAR_CONSTANT, L.COMPLEX, L.NUMBER):
            try:
                return make_number(token.pos, token.val, kind == L.CHAR_CONSTANT)
            except ValueError as e:
                self.error(str(e))
        if kind == L.LEFT_PAREN:
            return self.pipeline("parenthesized pipeline", L.RIGHT_PAREN)
        if kind in (L.STRING, L.RAW_STRING):
            return StringNode(token.pos, token.val, self.string_value(token))
        self.backup()
        return None
