#!/usr/bin/env python3
"""Renders chat templates with python3-jinja2 the way Hugging Face transformers does.

The environment matches transformers' chat-template compilation: an
ImmutableSandboxedEnvironment with trim_blocks=True, lstrip_blocks=True and the loopcontrols
extension, the raise_exception and strftime_now globals, a `tojson` filter that is json.dumps
with ensure_ascii=False, and the {% generation %} tag (rendered as its body).

  chat_template_reference.py TEMPLATE_FILE CONTEXT_JSON_FILE
      prints the rendered text; on a template error prints "Type: message" to stderr, exit 1.
  chat_template_reference.py --batch CASES_JSON_FILE
      CASES is a list of {"template": str, "context": object}; prints a JSON list with, for
      each case, {"ok": true, "output": str} or {"ok": false, "error": "Type: message"}.
"""
import datetime
import json
import sys

import jinja2
from jinja2 import nodes
from jinja2.ext import Extension
from jinja2.sandbox import ImmutableSandboxedEnvironment


class GenerationTag(Extension):
    """{% generation %}...{% endgeneration %}: transformers marks assistant text with it."""

    tags = {"generation"}

    def parse(self, parser):
        lineno = next(parser.stream).lineno
        body = parser.parse_statements(["name:endgeneration"], drop_needle=True)
        return nodes.CallBlock(self.call_method("_render"), [], [], body).set_lineno(lineno)

    def _render(self, caller):
        return caller()


def raise_exception(message):
    raise jinja2.exceptions.TemplateError(message)


def strftime_now(format):
    return datetime.datetime.now().strftime(format)


def tojson(x, ensure_ascii=False, indent=None, separators=None, sort_keys=False):
    return json.dumps(x, ensure_ascii=ensure_ascii, indent=indent, separators=separators,
                      sort_keys=sort_keys)


def make_environment():
    env = ImmutableSandboxedEnvironment(
        trim_blocks=True, lstrip_blocks=True,
        extensions=[GenerationTag, "jinja2.ext.loopcontrols"])
    env.filters["tojson"] = tojson
    env.globals["raise_exception"] = raise_exception
    env.globals["strftime_now"] = strftime_now
    return env


def render(env, template, context):
    try:
        return {"ok": True, "output": env.from_string(template).render(**context)}
    except Exception as e:  # every failure counts as "the template failed"
        return {"ok": False, "error": f"{type(e).__name__}: {e}"}


def main(argv):
    env = make_environment()
    if len(argv) == 3 and argv[1] == "--batch":
        with open(argv[2], encoding="utf-8") as f:
            cases = json.load(f)
        results = [render(env, c["template"], c["context"]) for c in cases]
        sys.stdout.write(json.dumps(results, ensure_ascii=False))
        return 0
    if len(argv) == 3:
        with open(argv[1], encoding="utf-8") as f:
            template = f.read()
        with open(argv[2], encoding="utf-8") as f:
            context = json.load(f)
        result = render(env, template, context)
        if not result["ok"]:
            sys.stderr.write(result["error"] + "\n")
            return 1
        sys.stdout.write(result["output"])
        return 0
    sys.stderr.write(__doc__)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv))
