"""The RiskAssessment narrative (`text.div`, contract §3): XHTML written by a Jinja template.

Autoescaping is on, so anything that came from the request (a code's text, a display) is text
in the narrative, never markup; the template uses only elements the R4 narrative rules allow.
"""

from __future__ import annotations

from functools import cache
from typing import TYPE_CHECKING

from jinja2 import Environment, PackageLoader, Template, select_autoescape

if TYPE_CHECKING:
    from service.report import Explanation, Reason


@cache
def _template() -> Template:
    env = Environment(loader=PackageLoader("service", "templates"),
                      autoescape=select_autoescape(["xhtml", "html"]),
                      trim_blocks=True, lstrip_blocks=True)
    env.filters["attr_sentence"] = _sentence
    return env.get_template("narrative.xhtml")


def _sentence(reason: Reason) -> str:
    return reason.sentence()


def render_narrative(explanation: Explanation) -> str:
    return _template().render(x=explanation).strip()
