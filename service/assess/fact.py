"""One fact as the rules read it, and the set of them for a patient.

A fact's kind and its fields come from the knowledge vocabulary (`service.knowledge.vocabulary`),
so a misspelt field or kind is a type error, not a rule that silently never matches.
"""

from __future__ import annotations

from dataclasses import dataclass

from service.knowledge.vocabulary import InputField, InputKind

FactValue = str | bool


@dataclass(frozen=True)
class InputFact:
    kind: InputKind
    attrs: tuple[tuple[InputField, FactValue], ...]
    label: str
    source: str | None

    def get(self, name: InputField) -> FactValue | None:
        return dict(self.attrs).get(name)

    def sort_key(self) -> tuple[str, ...]:
        return (self.kind, repr(self.attrs), self.source or "", self.label)

    def revised(self, changes: dict[InputField, FactValue], note: str) -> InputFact:
        """This fact with some fields changed and a note in its label, before its resource."""
        attrs = tuple(sorted({**dict(self.attrs), **changes}.items()))
        return InputFact(self.kind, attrs, self.label.replace(" [", f", {note} [", 1), self.source)


@dataclass(frozen=True)
class FactSet:
    facts: tuple[InputFact, ...]
    documented: frozenset[str]  # concepts recorded at all, present or absent
    notes: tuple[str, ...]
    unreadable: tuple[str, ...] = ()  # values recorded but not readable: data gaps
