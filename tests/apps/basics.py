"""Prompts for the basic loop tests."""

from lmthing import prompt
from lmthing.testing import scripted_model, text

HELLO = scripted_model("basics-hello", [text("Hello, Ann!")])


@prompt(model=HELLO)
def hello(p):
    p.def_system("role", "You are a helpful assistant.")
    p.user("Say hello to Ann.")
