"""pipeline.backends.gbnf: grammars rewritten for servers that crash on repetitions."""

from __future__ import annotations

import pytest

from pipeline.backends.gbnf import expand_repetitions


@pytest.mark.parametrize(
    ("grammar", "expanded"),
    [
        (
            'root ::= [a-z]+ (" " [a-z]+){2,5}',
            'root ::= [a-z]+ ((" " [a-z]+) (" " [a-z]+) (" " [a-z]+)? (" " [a-z]+)? (" " [a-z]+)?)',
        ),
        ('root ::= x{3} y{1,}\nx ::= "a"', 'root ::= (x x x) (y y*)\nx ::= "a"'),
        ("root ::= (a | (b c)){0,2} d", "root ::= ((a | (b c))? (a | (b c))?) d"),
        ('root ::= "{2}" [{}]{2} "\\"" # a{3}', 'root ::= "{2}" ([{}] [{}]) "\\"" # a{3}'),
        ("root ::= [a-z]+ [0-9]*", "root ::= [a-z]+ [0-9]*"),  # nothing to do
    ],
)
def test_grammar_repetitions_for_old_servers(grammar: str, expanded: str) -> None:
    """llamafile's server crashes on x{m,n}: pipe writes it with ? and * for that server."""
    assert expand_repetitions(grammar) == expanded
    assert "{" not in expanded.replace('"{2}"', "").replace("[{}]", "").split("#")[0]
