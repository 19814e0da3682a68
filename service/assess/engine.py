"""The one module that touches durable-rules, kept clear of its C core's known defects.

See ../shared/design/durable-rules.md. In short:
- B3: the stock Host starts timer threads that walk freed sessions -> `_ThreadlessHost`.
- B4: sessions are found by a 32-bit hash of the sid -> one live session per process at a
  time (`_LOCK`), and every fact read back must carry the evaluation's sid.
- B1: deleting a session in which no action ran crashes -> a sentinel fact whose rule always fires.
- B2: non-equality joins crash -> `compile_rule` emits constants and equality joins only.
- B5 (found here, tests/test_engine.py): an equality join placed after an `$or` in the same
  `$and` is silently ignored -> `compile_rule` puts joins straight after the fact kind.
- A fact no rule matches makes a batch assert fail, and a derived fact no rule consumes fails
  silently -> a sink rule for every fact kind. Its second condition never matches, so facts are
  stored by the first without an action per fact (measured: a quarter of the engine's time).
- An exception inside an action is only stored in the session state -> checked after each run.
Callers hand in rules as plain data plus one Python function per rule; nothing else leaks out.
"""

from __future__ import annotations

import copy
import itertools
import threading
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from durable import engine as durable_engine

from service.errors import EngineFailure

Fact = dict[str, Any]
# (fact kind, ((field, accepted values), ...), ((field, index of the pattern it equals), ...))
Pattern = tuple[str, Sequence[tuple[str, Sequence[Any]]], Sequence[tuple[str, int]]]
# A rule's action: the matched facts by condition name -> the fact to derive and a record of this
# derivation for the caller (or None). The same fact may be derived many ways: it is asserted
# once, and every record is kept.
Action = Callable[[Mapping[str, Fact]], tuple[Fact, Any] | None]

SENTINEL_KIND = "sentinel"
_NEVER_KIND = "__never__"  # a fact kind nobody asserts
_RULE_PRIORITY = 10  # every clinical rule alike; ties fire in definition order
_SINK_PRIORITY = 65000  # after every clinical rule (lowest `pri` fires first)
_LOCK = threading.Lock()  # one live session per process (defect B4)
_SIDS = itertools.count(1)
_RECORDS: list[Any] = []  # the running evaluation's records (one evaluation at a time: _LOCK)


class _ThreadlessHost(durable_engine.Host):  # type: ignore[misc]
    """A Host that never starts the background dispatch threads (defect B3)."""

    def _run(self) -> None:
        return None


_HOST: _ThreadlessHost | None = None
_REGISTERED: set[str] = set()


def _host() -> _ThreadlessHost:
    """The process's single host, built on first use (a ruleset name registers once per host)."""
    global _HOST
    if _HOST is None:
        _HOST = _ThreadlessHost()
    return _HOST


class RuleEngine:
    """A compiled ruleset: `run(facts)` returns every fact in the session after chaining."""

    def __init__(
        self,
        name: str,
        rules: Mapping[str, dict[str, Any]],
        actions: Mapping[str, Action],
        fact_kinds: tuple[str, ...],
    ) -> None:
        self.name = name
        definition: dict[str, Any] = copy.deepcopy(dict(rules))  # registration mutates it
        for rule_name, body in definition.items():
            body["run"] = _wrap(actions[rule_name])
        definition["__sentinel"] = {"all": [{"m": {"t": SENTINEL_KIND}}], "run": _noop, "pri": 0}
        for kind in fact_kinds:  # stored by the first condition; the second never matches
            definition[f"__sink_{kind}"] = {
                "all": [{"m": {"t": kind}}, {"never": {"t": _NEVER_KIND}}],
                "run": _noop,
                "pri": _SINK_PRIORITY,
            }
        with _LOCK:
            if name not in _REGISTERED:  # same name = same compiled knowledge: reuse it
                _host().set_rulesets({name: definition})
                _REGISTERED.add(name)

    def run(self, facts: list[Fact]) -> tuple[list[Fact], list[Any]]:
        """Every fact in the session after chaining, and the actions' records."""
        sid = f"s{next(_SIDS)}"
        batch = [{**fact, "sid": sid} for fact in facts]
        batch.append({"t": SENTINEL_KIND, "id": "sentinel", "sid": sid})
        host = _host()
        with _LOCK:
            _RECORDS.clear()
            try:
                host.assert_facts(self.name, batch)
                state = host.get_state(self.name, sid)
                result: list[Fact] = host.get_facts(self.name, sid)
                records = list(_RECORDS)
            except Exception as exc:  # engine internals: never shown to a client
                raise EngineFailure.single("exception", f"rule engine failed: {exc!r}") from exc
            finally:
                _delete(host, self.name, sid)
        if state.get("exception"):
            raise EngineFailure.single("exception", f"rule action failed: {state['exception']}")
        foreign = [f for f in result if f.get("sid") != sid]
        if foreign:
            raise EngineFailure.single("exception", "rule engine returned another session's facts")
        return [
            {k: v for k, v in f.items() if k != "sid"} for f in result if f.get("t") != SENTINEL_KIND
        ], records


def compile_rule(conditions: Sequence[Pattern]) -> dict[str, Any]:
    """Patterns -> durable-rules data form. Each pattern: (fact kind, field -> accepted values,
    field -> index of an earlier pattern it must equal). Condition i is named `c{i}`."""
    compiled = []
    for i, (kind, match, joins) in enumerate(conditions):
        terms: list[dict[str, Any]] = [{"t": kind}]
        terms += [{field: {f"c{index}": field}} for field, index in joins]  # first: defect B5
        for field, values in match:
            if len(values) == 1:
                terms.append({field: values[0]})
            else:
                terms.append({"$or": [{field: value} for value in values]})
        compiled.append({f"c{i}": {"$and": terms}})
    return {"all": compiled, "pri": _RULE_PRIORITY}


def _delete(host: _ThreadlessHost, name: str, sid: str) -> None:
    try:
        host.delete_state(name, sid)
    except Exception:  # nothing to delete when assert failed before creating the session
        pass


def _wrap(action: Action) -> Callable[[Any], None]:
    def run(closure: Any) -> None:
        matched = {key: value for key, value in closure._m.items()}
        derived = action(matched)
        if derived is not None:
            fact, record = derived
            _RECORDS.append(record)
            try:
                closure.assert_fact(fact)
            except durable_engine.MessageObservedException:
                pass  # the same fact derived another way: already known, its record kept

    return run


def _noop(closure: Any) -> None:
    return None
