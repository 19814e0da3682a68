"""The RiskAssessment narrative (`text.div`, contract §3): XHTML written by a Jinja template.

Autoescaping is on, so anything that came from the request (a code's text, a display) is text
in the narrative, never markup; characters XML cannot hold (control characters, lone
surrogates) are dropped, so the div always parses; the template uses only elements the R4
narrative rules allow.
"""

from __future__ import annotations

import re
from functools import cache
from typing import TYPE_CHECKING, Any

from jinja2 import Environment, PackageLoader, Template, select_autoescape

if TYPE_CHECKING:
    from service.assess.explain import Explanation, Reason


_NOT_XML = re.compile("[^\t\n\r\u0020-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")


@cache
def _template() -> Template:
    env = Environment(
        loader=PackageLoader("service.assess", "templates"),
        autoescape=select_autoescape(["xhtml", "html"]),
        trim_blocks=True,
        lstrip_blocks=True,
        finalize=_xml_text,
    )
    env.filters["attr_sentence"] = _sentence
    return env.get_template("narrative.xhtml")


def _xml_text(value: Any) -> Any:
    return _NOT_XML.sub("", value) if isinstance(value, str) else value


def _sentence(reason: Reason) -> str:
    return reason.sentence()


def render_narrative(explanation: Explanation) -> str:
    return _template().render(x=explanation).strip()
