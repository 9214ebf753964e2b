"""Conditions of extraction rules: a subset of CEL, compiled once into Python closures.

Keep evaluates an extraction rule's `condition` with cel-python against the event, compiling it
for every event (docs/keep-compatibility.md#extraction-rules). farm parses it at load, then runs a
tree of closures per event. Supported: literals (strings, ints, doubles, true, false, null, lists,
maps), field names and `a.b` / `a["b"]` / `list[0]`, `! - * / % + -`, `== != < <= > >= in`,
`&& ||` (with CEL's error absorption: `error || true` is true), `c ? a : b`, `has(a.b)`,
`size()`, `string() int() double()`, and the string methods `contains startsWith endsWith
matches lowerAscii upperAscii trim size`. Anything else is rejected at load with the position.
`matches` takes a literal regex only (never one read from the event) and searches the first
SEARCH_CHARS characters of its string.

Evaluation errors (a missing field, a type mismatch) make the condition false for that rule.
In Keep an error aborts every remaining extraction rule of the event; farm goes on with the next
rule, a deliberate difference.
"""

from __future__ import annotations

import re
from collections.abc import Callable

from farm.alert import SEVERITY_ORDER
from farm.rules import SEARCH_CHARS

Fn = Callable[[dict], object]


class ConditionError(ValueError):
    """The condition is not valid in the supported CEL subset."""


class _EvalError(Exception):
    """A CEL runtime error: the condition does not hold."""


_TOKEN = re.compile(r"""
    (?P<space>\s+)
  | (?P<num>0[xX][0-9a-fA-F]+[uU]?|\d+\.\d+(?:[eE][+-]?\d+)?|\d+[eE][+-]?\d+|\.\d+|\d+[uU]?)
  | (?P<str>[rR]?(?:"(?:[^"\\\n]|\\.)*"|'(?:[^'\\\n]|\\.)*'))
  | (?P<id>[A-Za-z_][A-Za-z0-9_]*)
  | (?P<op>\|\||&&|==|!=|<=|>=|[<>!+\-*/%?:.,\[\](){}])
""", re.X)
_ESCAPE = re.compile(r"\\(u[0-9a-fA-F]{4}|x[0-9a-fA-F]{2}|[0-7]{3}|.)", re.S)
_SIMPLE_ESCAPES = {"n": "\n", "t": "\t", "r": "\r", "a": "\a", "b": "\b", "f": "\f",
                   "v": "\v", "\\": "\\", "'": "'", '"': '"', "`": "`", "?": "?"}


def _unescape(body: str, where: int) -> str:
    def one(match: re.Match) -> str:
        code = match.group(1)
        if code in _SIMPLE_ESCAPES:
            return _SIMPLE_ESCAPES[code]
        if code[0] in "ux":
            return chr(int(code[1:], 16))
        if code.isdigit():
            return chr(int(code, 8))
        raise ConditionError(f"unknown escape \\{code} in the string at {where}")
    return _ESCAPE.sub(one, body)


def _tokens(text: str) -> list[tuple[str, object, int]]:
    out: list[tuple[str, object, int]] = []
    pos = 0
    while pos < len(text):
        match = _TOKEN.match(text, pos)
        if not match:
            raise ConditionError(f"unexpected {text[pos]!r} at {pos}")
        kind, raw = match.lastgroup, match.group()
        if kind == "num":
            body = raw.rstrip("uU")
            if body[:2] in ("0x", "0X"):
                out.append(("lit", int(body, 16), pos))
            elif any(c in body for c in ".eE"):
                out.append(("lit", float(body), pos))
            else:
                out.append(("lit", int(body), pos))
        elif kind == "str":
            raw_string = raw[0] in "rR"
            body = raw[2:-1] if raw_string else raw[1:-1]
            out.append(("lit", body if raw_string else _unescape(body, pos), pos))
        elif kind == "id":
            if raw in ("true", "false", "null"):
                out.append(("lit", {"true": True, "false": False, "null": None}[raw], pos))
            elif raw == "in":
                out.append(("op", "in", pos))
            else:
                out.append(("id", raw, pos))
        elif kind == "op":
            out.append(("op", raw, pos))
        pos = match.end()
    out.append(("end", None, len(text)))
    return out


def _is_num(value: object) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _eq(a: object, b: object) -> bool:
    if isinstance(a, bool) != isinstance(b, bool):
        return False
    if (a is None) != (b is None):
        return False
    return a == b


def _order(a: object, b: object) -> tuple[object, object]:
    if (_is_num(a) and _is_num(b)) or (type(a) is type(b) and isinstance(a, (str, bool))):
        return a, b
    raise _EvalError(f"cannot order {type(a).__name__} and {type(b).__name__}")


def _add(a, b):
    if (_is_num(a) and _is_num(b)) or (isinstance(a, str) and isinstance(b, str)) or (
            isinstance(a, list) and isinstance(b, list)):
        return a + b
    raise _EvalError("+ needs two numbers, strings or lists")


def _arith(op: str) -> Callable[[object, object], object]:
    def apply(a, b):
        if not (_is_num(a) and _is_num(b)):
            raise _EvalError(f"{op} needs numbers")
        if op == "-":
            return a - b
        if op == "*":
            return a * b
        if b == 0:
            raise _EvalError("division by zero")
        if isinstance(a, int) and isinstance(b, int):  # CEL truncates towards zero
            quotient = abs(a) // abs(b) * (1 if (a >= 0) == (b >= 0) else -1)
            return quotient if op == "/" else a - b * quotient
        return a / b if op == "/" else a % b
    return apply


_BINARY: dict[str, Callable[[object, object], object]] = {
    "==": _eq,
    "!=": lambda a, b: not _eq(a, b),
    "<": lambda a, b: (lambda x, y: x < y)(*_order(a, b)),
    "<=": lambda a, b: (lambda x, y: x <= y)(*_order(a, b)),
    ">": lambda a, b: (lambda x, y: x > y)(*_order(a, b)),
    ">=": lambda a, b: (lambda x, y: x >= y)(*_order(a, b)),
    "+": _add, "-": _arith("-"), "*": _arith("*"), "/": _arith("/"), "%": _arith("%"),
}


def _in(a, b):
    if isinstance(b, list):
        return any(_eq(a, item) for item in b)
    if isinstance(b, dict):
        return a in b
    raise _EvalError("'in' needs a list or a map")


def _string_method(name: str, check: Callable[[str, object], object]):
    def apply(target, args):
        if not isinstance(target, str):
            raise _EvalError(f"{name}() is a string method")
        return check(target, *args)
    return apply


def _needs_str(value: object) -> str:
    if not isinstance(value, str):
        raise _EvalError("a string argument is needed")
    return value


def _size(value: object) -> int:
    if isinstance(value, (str, list, dict, bytes)):
        return len(value)
    raise _EvalError("size() needs a string, list or map")


def _to_string(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (str, int, float)):
        return str(value)
    raise _EvalError("string() needs a scalar")


def _to_int(value: object) -> int:
    if isinstance(value, bool):
        raise _EvalError("int() of a bool")
    try:
        return int(value)
    except (TypeError, ValueError):
        raise _EvalError("int() needs a number or a numeric string") from None


def _to_double(value: object) -> float:
    if isinstance(value, bool):
        raise _EvalError("double() of a bool")
    try:
        return float(value)
    except (TypeError, ValueError):
        raise _EvalError("double() needs a number or a numeric string") from None


_METHODS = {
    "contains": (1, _string_method("contains", lambda s, x: _needs_str(x) in s)),
    "startsWith": (1, _string_method("startsWith", lambda s, x: s.startswith(_needs_str(x)))),
    "endsWith": (1, _string_method("endsWith", lambda s, x: s.endswith(_needs_str(x)))),
    "lowerAscii": (0, _string_method("lowerAscii", lambda s: s.lower())),
    "upperAscii": (0, _string_method("upperAscii", lambda s: s.upper())),
    "trim": (0, _string_method("trim", lambda s: s.strip())),
    "size": (0, lambda target, args: _size(target)),
}
_FUNCTIONS = {"size": _size, "string": _to_string, "int": _to_int, "double": _to_double}


_COMPARISONS = frozenset(("==", "!=", "<", "<=", ">", ">="))


def _severity_orders(toks: list[tuple[str, object, int]]) -> list[tuple[str, object, int]]:
    """`severity <op> "<severity>"` compares orders (critical 5 > high 4 > warning 3 > info 2 >
    low 1), as Keep's filters do: the literal becomes its order. Only the alert's own top-level
    `severity` field is meant, never `labels.severity`."""
    out = list(toks)
    for i in range(len(out) - 2):
        (kind, name, _), (op_kind, op, _), (lit_kind, value, pos) = out[i:i + 3]
        after_dot = i > 0 and out[i - 1][:2] == ("op", ".")
        if (kind == "id" and name == "severity" and not after_dot and op_kind == "op"
                and op in _COMPARISONS and lit_kind == "lit" and isinstance(value, str)
                and value.lower() in SEVERITY_ORDER):
            out[i + 2] = ("lit", SEVERITY_ORDER[value.lower()], pos)
    return out


class _Parser:
    def __init__(self, text: str, severity_order: bool = False):
        self.text = text
        self.toks = _tokens(text)
        if severity_order:
            self.toks = _severity_orders(self.toks)
        self.i = 0
        self.selections: list[Fn] = []  # every field path built, for read_paths()

    def read_paths(self) -> frozenset[tuple[str, ...]]:
        """The field paths the condition reads: each chain `a.b.c` that is not itself the start
        of a longer one. Every read of the document starts with a top-level field, so two
        documents with the same values at these paths get the same verdict."""
        return frozenset(fn.path for fn in self.selections if not getattr(fn, "extended", False))

    def peek(self) -> tuple[str, object, int]:
        return self.toks[self.i]

    def take(self) -> tuple[str, object, int]:
        tok = self.toks[self.i]
        self.i += 1
        return tok

    def accept(self, op: str) -> bool:
        kind, value, _ = self.peek()
        if kind == "op" and value == op:
            self.i += 1
            return True
        return False

    def expect(self, op: str) -> None:
        if not self.accept(op):
            self.fail(f"expected {op!r}")

    def fail(self, message: str):
        kind, value, pos = self.peek()
        seen = "the end" if kind == "end" else repr(value)
        raise ConditionError(f"{message} at {pos} (found {seen})")

    def parse(self) -> Fn:
        fn = self.expr()
        if self.peek()[0] != "end":
            self.fail("unexpected token")
        return fn

    def expr(self) -> Fn:
        cond = self.or_()
        if not self.accept("?"):
            return cond
        yes = self.or_()
        self.expect(":")
        no = self.expr()

        def ternary(doc):
            test = cond(doc)
            if not isinstance(test, bool):
                raise _EvalError("?: needs a bool")
            return yes(doc) if test else no(doc)
        return ternary

    def or_(self) -> Fn:
        left = self.and_()
        while self.accept("||"):
            left = _logical(left, self.and_(), absorbing=True)
        return left

    def and_(self) -> Fn:
        left = self.relation()
        while self.accept("&&"):
            left = _logical(left, self.relation(), absorbing=False)
        return left

    def relation(self) -> Fn:
        left = self.addition()
        while True:
            kind, op, _ = self.peek()
            if kind != "op" or op not in ("==", "!=", "<", "<=", ">", ">=", "in"):
                return left
            self.take()
            right = self.addition()
            left = _binary(_in if op == "in" else _BINARY[op], left, right)

    def addition(self) -> Fn:
        left = self.multiplication()
        while True:
            kind, op, _ = self.peek()
            if kind != "op" or op not in ("+", "-"):
                return left
            self.take()
            left = _binary(_BINARY[op], left, self.multiplication())

    def multiplication(self) -> Fn:
        left = self.unary()
        while True:
            kind, op, _ = self.peek()
            if kind != "op" or op not in ("*", "/", "%"):
                return left
            self.take()
            left = _binary(_BINARY[op], left, self.unary())

    def unary(self) -> Fn:
        if self.accept("!"):
            inner = self.unary()

            def negate(doc):
                value = inner(doc)
                if not isinstance(value, bool):
                    raise _EvalError("! needs a bool")
                return not value
            return negate
        if self.accept("-"):
            inner = self.unary()

            def minus(doc):
                value = inner(doc)
                if not _is_num(value):
                    raise _EvalError("- needs a number")
                return -value
            return minus
        return self.member()

    def member(self) -> Fn:
        fn = self.primary()
        while True:
            if self.accept("."):
                kind, name, _ = self.take()
                if kind != "id":
                    self.i -= 1
                    self.fail("expected a field or method name")
                if self.accept("("):
                    fn = self.method(fn, name, self.args(")"))
                else:
                    selected = _select(fn, name)
                    if hasattr(fn, "path"):
                        fn.extended = True
                        selected.path = (*fn.path, name)
                        self.selections.append(selected)
                    fn = selected
            elif self.accept("["):
                index = self.expr()
                self.expect("]")
                fn = _index(fn, index)
            else:
                return fn

    def args(self, closing: str) -> list[Fn]:
        out: list[Fn] = []
        if self.accept(closing):
            return out
        while True:
            out.append(self.expr())
            if self.accept(closing):
                return out
            self.expect(",")

    def method(self, target: Fn, name: str, args: list[Fn]) -> Fn:
        if name == "matches":
            if len(args) != 1:
                self.fail("matches() takes one regex")
            return _matches(target, args[0], self)
        if name not in _METHODS:
            self.fail(f"method {name}() is not supported (supported: matches, "
                      f"{', '.join(_METHODS)})")
        arity, apply = _METHODS[name]
        if len(args) != arity:
            self.fail(f"{name}() takes {arity} argument(s)")

        def call(doc):
            return apply(target(doc), [a(doc) for a in args])
        return call

    def primary(self) -> Fn:
        kind, value, pos = self.take()
        if kind == "lit":
            return lambda doc: value
        if kind == "id":
            if self.accept("("):
                return self.function(value)
            fn = _field(value)
            fn.path = (value,)
            self.selections.append(fn)
            return fn
        if kind == "op" and value == "(":
            inner = self.expr()
            self.expect(")")
            return inner
        if kind == "op" and value == "[":
            items = self.args("]")
            return lambda doc: [item(doc) for item in items]
        if kind == "op" and value == "{":
            return self.map_literal()
        self.i -= 1
        self.fail("expected a value")

    def function(self, name: str) -> Fn:
        if name == "has":
            args = self.args(")")
            if len(args) != 1 or not hasattr(args[0], "base"):
                self.fail("has() needs one field selection like has(a.b)")
            return _has(args[0])
        args = self.args(")")
        if name == "matches" and len(args) == 2:
            return _matches(args[0], args[1], self)
        if name not in _FUNCTIONS or len(args) != 1:
            self.fail(f"function {name}() is not supported (supported: has, matches, "
                      f"{', '.join(_FUNCTIONS)}, each with one argument)")
        apply = _FUNCTIONS[name]
        arg = args[0]
        return lambda doc: apply(arg(doc))

    def map_literal(self) -> Fn:
        pairs: list[tuple[Fn, Fn]] = []
        if not self.accept("}"):
            while True:
                key = self.expr()
                self.expect(":")
                pairs.append((key, self.expr()))
                if self.accept("}"):
                    break
                self.expect(",")
        return lambda doc: {k(doc): v(doc) for k, v in pairs}


class _Missing:
    pass


_MISSING = _Missing()


def _field(name: str) -> Fn:
    def get(doc):
        value = doc.get(name, _MISSING)
        if value is _MISSING:
            raise _EvalError(f"no such field {name!r}")
        return value
    return get


def _select(target: Fn, name: str) -> Fn:
    def get(doc):
        base = target(doc)
        if not isinstance(base, dict):
            raise _EvalError(f"cannot select {name!r} from a {type(base).__name__}")
        value = base.get(name, _MISSING)
        if value is _MISSING:
            raise _EvalError(f"no such key {name!r}")
        return value
    get.base, get.name = target, name  # has() reads them
    return get


def _has(selection: Fn) -> Fn:
    target, name = selection.base, selection.name

    def has(doc):
        base = target(doc)
        if not isinstance(base, dict):
            raise _EvalError("has() on a non-map")
        return name in base
    return has


def _index(target: Fn, index: Fn) -> Fn:
    def get(doc):
        base, key = target(doc), index(doc)
        if isinstance(base, dict):
            if key not in base:
                raise _EvalError(f"no such key {key!r}")
            return base[key]
        if isinstance(base, list) and isinstance(key, int) and not isinstance(key, bool):
            if not 0 <= key < len(base):
                raise _EvalError("index out of range")
            return base[key]
        raise _EvalError("cannot index this value")
    return get


def _matches(target: Fn, pattern: Fn, parser: _Parser) -> Fn:
    """`matches` with a regex fixed when the rule is loaded: a pattern taken from the event would
    let a payload choose a regex that backtracks for ever."""
    try:
        fixed = pattern({})  # a literal (or constant) regex evaluates without a document
    except Exception:
        fixed = None
    if not isinstance(fixed, str):
        parser.fail("matches() needs a literal regex string, like matches('^db-[0-9]+$'); a "
                    "pattern read from the alert is not allowed")
    try:
        regex = re.compile(fixed)
    except re.error as exc:
        parser.fail(f"regex {fixed!r} does not compile ({exc})")

    def match_fixed(doc):
        return regex.search(_needs_str(target(doc))[:SEARCH_CHARS]) is not None
    return match_fixed


def _binary(op: Callable[[object, object], object], left: Fn, right: Fn) -> Fn:
    return lambda doc: op(left(doc), right(doc))


def _logical(left: Fn, right: Fn, absorbing: bool) -> Fn:
    """|| (absorbing=True: true wins) or && (false wins), commutative over errors as in CEL."""
    def apply(doc):
        try:
            a = left(doc)
        except Exception as exc:  # an error on one side can be absorbed by the other
            a = exc
        if a is absorbing:
            return absorbing
        b = right(doc)
        if b is absorbing:
            return absorbing
        if isinstance(a, Exception):
            raise a
        if not isinstance(a, bool) or not isinstance(b, bool):
            raise _EvalError("&& and || need bools")
        return not absorbing
    return apply


_OPEN, _CLOSE = "([{", ")]}"


def _depth_steps(toks: list[tuple[str, object, int]]) -> list[int]:
    """The nesting depth before each token."""
    depth, out = 0, []
    for kind, value, _ in toks:
        out.append(depth)
        if kind == "op" and value in _OPEN:
            depth += 1
        elif kind == "op" and value in _CLOSE:
            depth -= 1
    return out


# String methods a term may test a field with, besides ==, as the conditions evaluate them.
STRING_TESTS: dict[str, Callable[[str, str], bool]] = {
    "contains": lambda value, literal: literal in value,
    "startsWith": str.startswith,
    "endsWith": str.endswith,
}
FieldTerm = tuple[tuple[str, ...], str, str]
# A term ready to run: (path, None for `==` or the STRING_TESTS function, string).
FieldTest = tuple[tuple[str, ...], Callable[[str, str], bool] | None, str]


def field_tests(terms: list[FieldTerm]) -> tuple[FieldTest, ...]:
    """`field_terms`' terms with each test as the function that runs it (None for `==`)."""
    return tuple((path, None if test == "==" else STRING_TESTS[test], literal)
                 for path, test, literal in terms)


def _path(toks: list[tuple[str, object, int]]) -> tuple[str, ...] | None:
    """The field path of tokens that are exactly `a.b.c`."""
    if len(toks) % 2 == 0 or any(kind != "id" for kind, _, _ in toks[0::2]):
        return None
    if any(tok[:2] != ("op", ".") for tok in toks[1::2]):
        return None
    return tuple(name for _, name, _ in toks[0::2])


def _field_term(term: list[tuple[str, object, int]]) -> FieldTerm | None:
    """(path, test, string) when the term is exactly `a.b == "x"`, `"x" == a.b` or
    `a.b.contains("x")` (or startsWith, endsWith)."""
    if len(term) >= 3 and term[0][0] == "lit":
        term = term[2:] + term[1:2] + term[:1]  # "x" == path  ->  path == "x"
    if len(term) >= 3 and term[-2][:2] == ("op", "==") and isinstance(term[-1][1], str) \
            and term[-1][0] == "lit":
        path = _path(term[:-2])
        return None if path is None else (path, "==", term[-1][1])
    if len(term) >= 6 and [t[:2] for t in term[-5:-3]] == [("op", "."), ("id", term[-4][1])] \
            and term[-4][1] in STRING_TESTS and term[-3][:2] == ("op", "(") \
            and term[-2][0] == "lit" and isinstance(term[-2][1], str) \
            and term[-1][:2] == ("op", ")"):
        path = _path(term[:-5])
        return None if path is None else (path, term[-4][1], term[-2][1])
    return None


def _wrapped(toks: list[tuple[str, object, int]]) -> bool:
    """True when the tokens are one parenthesised expression, `( ... )`."""
    return (len(toks) >= 2 and toks[0][:2] == ("op", "(") and toks[-1][:2] == ("op", ")")
            and 0 not in _depth_steps(toks)[1:])


def _required(toks: list[tuple[str, object, int]]) -> tuple[list[FieldTerm], bool]:
    while _wrapped(toks):
        toks = toks[1:-1]
    terms: list[list[tuple[str, object, int]]] = [[]]
    for tok, depth in zip(toks, _depth_steps(toks), strict=True):
        if depth == 0 and tok[0] == "op" and tok[1] in ("||", "?", ":"):
            return [], False
        if depth == 0 and tok[:2] == ("op", "&&"):
            terms.append([])
        else:
            terms[-1].append(tok)
    found, whole = [], True
    for term in terms:
        tested = _field_term(term)
        if tested is not None:
            found.append(tested)
        elif _wrapped(term):
            inner, inner_whole = _required(term)
            found += inner
            whole = whole and inner_whole
        else:
            whole = False
    return found, whole


def field_terms(text: str) -> tuple[list[FieldTerm], bool]:
    """The field tests a condition cannot hold without: its `&&` terms (at the top, or inside a
    parenthesised term) of the form `a.b == "x"` or `a.b.startsWith("x")` (contains, endsWith),
    as (path, "==" or the method's name, string); and whether the condition is nothing but such
    terms. Such a term holds only when the field is a string that passes the test (CEL equality
    has no conversions, the methods need a string, and `&&` is true only when every term is),
    so a caller may skip the condition for documents whose field fails a test, and decide a
    condition made of nothing but such terms by running the tests (STRING_TESTS). ([], False)
    when there is no such term or the condition does not parse."""
    try:
        found, whole = _required(_tokens(text)[:-1])
    except ConditionError:
        return [], False
    return found, whole and bool(found)


def with_field_tests(holds: Callable[[dict], bool], skip: frozenset[str] = frozenset()
                     ) -> Callable[[dict], bool]:
    """`holds` (a compiled condition) behind its field terms (`field_terms`): a document whose
    field fails a term is refused without running the condition, and a condition made of
    nothing but terms is decided by them. Terms on a top-level field named in `skip` (one the
    caller's documents hold in another form than the literal, such as a maintenance window's
    severity order) are left to the condition. `holds` itself when it has no term to use."""
    terms, whole = field_terms(holds.source)
    kept = [term for term in terms if term[0][0] not in skip]
    if not kept:
        return holds
    whole = whole and len(kept) == len(terms)
    tests = field_tests(kept)

    def tested(doc: dict) -> bool:
        for path, test, literal in tests:
            value: object = doc
            for key in path:
                value = value.get(key) if isinstance(value, dict) else None
            if test is None:
                if value != literal:
                    return False
            elif not isinstance(value, str) or not test(value, literal):
                return False
        return True if whole else holds(doc)
    tested.source = holds.source
    tested.paths = holds.paths
    return tested


def compile_condition(text: str, severity_order: bool = False) -> Callable[[dict], bool]:
    """A predicate over an event dict; raises ConditionError if `text` is not in the subset.
    The predicate never raises: an evaluation error means False. With `severity_order`,
    `severity <op> "high"` compares with the order 4 (the caller hands in documents whose
    severity is its order, as maintenance windows do). The predicate's `paths` are the field
    paths it reads (_Parser.read_paths)."""
    parser = _Parser(text, severity_order)
    fn = parser.parse()

    def holds(doc: dict) -> bool:
        try:
            return bool(fn(doc))
        except Exception:  # CEL runtime errors (missing fields, type mismatches): no match
            return False
    holds.source = text
    holds.paths = parser.read_paths()
    return holds
