"""What reaches the model: SillyTavern's Default story string (system, description,
personality, scenario, persona), then the dialogue examples each after the Default
template's `***` separator, with the macros substituted as SillyTavern does."""

from __future__ import annotations

from pipeline.personas.cards import Card
from pipeline.personas.render import examples, render, substitute
from pipeline.personas.user import UserPersona

CARD = Card(
    name="Mira",
    description="  {{char}} keeps the lighthouse. {{User}} is a visitor.\n",
    personality="calm, <BOT>-like",
    scenario="{{user}} knocks at night.",
    first_mes="Come in.",
    mes_example=(
        "<START>\n{{user}}: Hello?\n{{char}}: Mind the step.\n<start>\n<USER>: Tea?\n<BOT>: Yes."
    ),
    post_history_instructions="Answer as {{char}}, briefly.",
)


def test_the_default_story_string_order_then_the_examples() -> None:
    persona = render(CARD)
    assert persona.system == (
        "Mira keeps the lighthouse. User is a visitor.\n"
        "Mira's personality: calm, Mira-like\n"
        "Scenario: User knocks at night.\n"
        "***\n"
        "User: Hello?\nMira: Mind the step.\n"
        "***\n"
        "User: Tea?\nMira: Yes."
    )
    assert persona.after == "Answer as Mira, briefly."
    assert (persona.name, persona.user) == ("Mira", "User")


def test_the_user_persona_names_user_and_its_description_comes_after_the_scenario() -> None:
    me = UserPersona(name="Sam", description="{{user}} is a sailor who distrusts {{char}}.")
    system = render(CARD, me).system
    assert system.splitlines()[:4] == [
        "Mira keeps the lighthouse. Sam is a visitor.",
        "Mira's personality: calm, Mira-like",
        "Scenario: Sam knocks at night.",
        "Sam is a sailor who distrusts Mira.",
    ]
    assert "Sam: Tea?" in system and render(CARD, me).user == "Sam"


def test_a_persona_whose_position_is_none_names_user_but_adds_no_description() -> None:
    me = UserPersona(name="Sam", description="A sailor.", in_prompt=False)
    system = render(CARD, me).system
    assert "A sailor." not in system and "Sam knocks" in system


def test_the_cards_system_prompt_fills_the_system_slot_before_the_description() -> None:
    """As in SillyTavern: the card's system prompt replaces the main prompt (its
    `{{original}}`), not the card's description."""
    card = Card(
        name="Mira",
        description="A keeper.",
        system_prompt="{{original}}\nYou are {{char}}; never break character.",
    )
    assert render(card).system == "You are Mira; never break character.\nA keeper."


def test_only_the_fields_that_are_set_appear() -> None:
    assert render(Card(name="Solo", scenario="Nothing else.")).system == "Scenario: Nothing else."
    assert render(Card(name="Empty")).system == ""
    assert render(Card(name="Empty")).after == ""


def test_examples_split_at_start_as_sillytavern_does() -> None:
    assert examples("") == [] and examples("<START>") == []
    assert examples("no heading\nat all") == ["no heading\nat all"]
    assert examples("before\n<START>\nafter") == ["before", "after"]
    assert examples("<START>\n\n<START>\n one \n") == ["one"]


def test_macros_are_substituted_once_and_without_case() -> None:
    assert substitute("{{CHAR}} {{User}} <bot> <Char> <user>", "A", "B") == "A B A A B"
    # A name that holds a macro stays as it is: one pass, no re-substitution.
    assert substitute("{{char}}", "{{user}}", "B") == "{{user}}"
    assert substitute("a{{newline}}b{{noop}}{{// note}}", "A", "B") == "a\nb"
    assert substitute("a\n{{trim}}\nb", "A", "B") == "ab"
    assert substitute("{{random:a,b}} {{unknown}}", "A", "B") == "{{random:a,b}} {{unknown}}"
