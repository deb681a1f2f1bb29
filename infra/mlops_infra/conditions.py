"""Evaluate the Azure role assignment conditions this program writes, to show what they allow.

The subset of the condition language the program emits (learn.microsoft.com/azure/
role-based-access-control/conditions-format): `(`, `)`, `AND`, `OR`, `!`,
`ActionMatches{'action'}`, and `@Source[attribute] OPERATOR value` with the operators
StringLike (`*` any run of characters, `/` included; `?` one), StringStartsWith,
StringEqualsIgnoreCase, GuidEquals and their `ForAnyOfAnyValues:` forms over `{a, b}`.
A request is an action and its attributes; `allows` answers as Azure would for that request.
Anything outside the subset raises ConditionError rather than guess.
"""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Callable

_TOKEN = re.compile(
    r"\s*(?:(?P<open>\()|(?P<close>\))|(?P<and>AND\b)|(?P<or>OR\b)|(?P<not>!)"
    r"|ActionMatches\{'(?P<action>[^']+)'\}"
    r"|(?P<attribute>@\w+\[[^\]]+\])\s+(?P<operator>(?:ForAnyOfAnyValues:)?\w+)\s+"
    r"(?P<value>'[^']*'|\{[^}]*\}|[0-9a-fA-F-]{36}))"
)


class ConditionError(ValueError):
    pass


def _tokens(text: str) -> list[re.Match]:
    found, position = [], 0
    text = text.rstrip()
    while position < len(text):
        match = _TOKEN.match(text, position)
        if not match or match.end() == position:
            raise ConditionError(f"cannot read the condition at {text[position : position + 40]!r}")
        found.append(match)
        position = match.end()
    return found


def _values(raw: str) -> list[str]:
    if raw.startswith("{"):
        return [v.strip().strip("'") for v in raw[1:-1].split(",") if v.strip()]
    return [raw.strip("'")]


def _compare(operator: str, actual: str, expected: str) -> bool:
    if operator == "StringLike":
        # fnmatch's * crosses '/', as the condition language's does; [ ] never appear here
        return fnmatch.fnmatchcase(actual, expected)
    if operator == "StringStartsWith":
        return actual.startswith(expected)
    if operator in ("StringEqualsIgnoreCase", "GuidEquals"):
        return actual.lower() == expected.lower()
    if operator == "StringEquals":
        return actual == expected
    raise ConditionError(f"operator {operator} is outside what this program writes")


def allows(condition: str, action: str, attributes: dict[str, str]) -> bool:
    """Whether a request (its action, and its attributes by `@Source[name]`) passes. AND and OR
    stop at the first side that decides, as Azure does: a write is never judged on the
    attributes of the delete clause it does not reach."""
    return parse(condition)(action, attributes)


Judge = Callable[[str, dict], bool]


def parse(condition: str) -> Judge:
    tokens = _tokens(condition)
    position = 0

    def joined(word: str, part: Callable[[], Judge], combine) -> Judge:
        nonlocal position
        parts = [part()]
        while position < len(tokens) and tokens[position].group(word):
            position += 1
            parts.append(part())
        return parts[0] if len(parts) == 1 else combine(parts)

    def expression() -> Judge:
        return joined("or", term, lambda ps: lambda a, at: any(p(a, at) for p in ps))

    def term() -> Judge:
        return joined("and", factor, lambda ps: lambda a, at: all(p(a, at) for p in ps))

    def factor() -> Judge:
        nonlocal position
        if position >= len(tokens):
            raise ConditionError("unexpected end of the condition")
        token = tokens[position]
        position += 1
        if token.group("not"):
            inner = factor()
            return lambda a, at: not inner(a, at)
        if token.group("open"):
            inner = expression()
            if position >= len(tokens) or not tokens[position].group("close"):
                raise ConditionError("unbalanced parentheses")
            position += 1
            return inner
        if token.group("action"):
            name = token.group("action")
            return lambda a, at: a == name
        if token.group("attribute"):
            return _comparison(token)
        raise ConditionError(f"unexpected {token.group(0)!r}")

    judge = expression()
    if position != len(tokens):
        raise ConditionError("trailing text in the condition")
    return judge


def _comparison(token: re.Match) -> Judge:
    operator, attribute = token.group("operator"), token.group("attribute")
    expected = _values(token.group("value"))
    bare = operator.removeprefix("ForAnyOfAnyValues:")
    if bare == operator and len(expected) != 1:
        raise ConditionError(f"{operator} takes one value")
    _compare(bare, "", "")  # refuses an operator outside the subset while parsing

    def judge(action: str, attributes: dict) -> bool:
        actual = attributes.get(attribute)
        if actual is None:
            raise ConditionError(f"the request has no {attribute}")
        return any(_compare(bare, actual, value) for value in expected)

    return judge
