"""Hostile code a model (or a prompt injection) might send to ``runToolCode``.

Each entry: ``(id, code, fragment)``. Running the snippet must end with ``success: false``
and an error (static ``errors`` or run-time ``error``) containing ``fragment``. Nothing in
here may reach the host Python: no object of the interpreter, no module, no file.
"""

from __future__ import annotations

HOSTILE: list[tuple[str, str, str]] = [
    # --- introspection escapes
    ("class-of-tuple", "().__class__", "names starting with '_' are blocked"),
    ("subclasses", "x = ().__class__.__bases__[0].__subclasses__()", "names starting with '_' are blocked"),
    ("globals-of-function", "calculate.__globals__", "names starting with '_' are blocked"),
    ("builtins-name", "__builtins__", "names starting with '_' are not allowed"),
    ("builtins-subscript", "b = __builtins__['eval']", "names starting with '_' are not allowed"),
    ("import-dunder", "__import__('os').system('id')", "names starting with '_' are not allowed"),
    ("frames", "f = print.__self__", "names starting with '_' are blocked"),
    ("frame-attr", "x = [1]\ny = x.gi_frame", "attribute access '.gi_frame' is not allowed"),
    ("function-code", "c = calculate.__code__.co_consts", "names starting with '_' are blocked"),
    ("mro", "str.mro()", "method '.mro()' is not allowed"),
    ("format-attr-trick", "'{0.__class__}'.format(1)", "method '.format()' is not allowed"),
    ("format-map-trick", "'{x.__class__}'.format_map({'x': 1})", "method '.format_map()' is not allowed"),
    ("percent-format", "'%s%s' % (1, 2)", "'%' string formatting is not supported"),
    ("namespace-value", "m = math\nm.multiply(a=1, b=2)", "'math' is a namespace"),
    ("function-as-value", "f = calculate\nf(a=1, b=2)", "'calculate' can only be called"),
    ("builtin-as-value", "p = print", "'print' can only be called"),
    # --- forbidden builtins and statements
    ("getattr", "getattr(1, '__class__')", "unknown function 'getattr'"),
    ("eval", "eval('1+1')", "unknown function 'eval'"),
    ("exec", "exec('import os')", "unknown function 'exec'"),
    ("compile", "compile('1', 'x', 'eval')", "unknown function 'compile'"),
    ("open", "open('/etc/passwd').read()", "unknown function 'open'"),
    ("vars", "vars()", "unknown function 'vars'"),
    ("type-builtin", "type(1)", "unknown function 'type'"),
    ("import", "import os\nos.system('id')", "imports are not allowed"),
    ("from-import", "from subprocess import run", "imports are not allowed"),
    ("lambda", "f = lambda: 1", "lambda is not allowed"),
    ("def", "def f():\n    return f()\nf()", "defining functions is not allowed"),
    ("class", "class A:\n    pass", "defining classes is not allowed"),
    ("try", "try:\n    x = 1\nexcept Exception as e:\n    pass", "try/except is not allowed"),
    ("with", "with open('x') as f:\n    pass", "'with' is not allowed"),
    ("global", "global x", "global is not allowed"),
    ("raise", "raise SystemExit", "raise is not allowed"),
    ("generator", "x = (i for i in range(3))", "generator expressions are not supported"),
    ("assign-builtin", "print = 1", "cannot be assigned"),
    ("shadow-function", "calculate = 3", "cannot be assigned"),
    # --- bounded in time
    ("infinite-while", "while True:\n    pass", "stopped after"),
    ("infinite-counter", "i = 0\nwhile i >= 0:\n    i = i + 1", "stopped after"),
    ("long-for", "for i in range(10**12):\n    x = i", "stopped after"),
    ("nested-loops", "n = 0\nfor i in range(10000):\n    for j in range(10000):\n        n += 1", "stopped after"),
    ("min-of-huge-range", "min(range(10**18))", "too large"),
    ("sum-of-huge-range", "sum(range(10**12))", "too large"),
    ("any-of-huge-range", "any(range(1, 10**15))", "too large"),
    # --- bounded in memory
    ("str-bomb", "x = 'x' * 10**9", "too large"),
    ("str-doubling", "s = 'ab'\nfor i in range(40):\n    s = s + s", "too large"),
    ("list-bomb", "x = [0] * 10**9", "too large"),
    ("range-list", "x = list(range(10**9))", "too large"),
    ("int-bomb", "x = 10 ** 10 ** 10", "too large"),
    ("int-doubling", "x = 2\nfor i in range(100):\n    x = x * x", "too large"),
    ("replace-bomb", "s = 'a' * 1000\ns = s.replace('a', 'a' * 1000)", "too large"),
    ("join-bomb", "s = 'x' * 50000\nt = s.join(['a'] * 5000)", "too large"),
    ("append-bomb", "xs = []\nwhile True:\n    xs.append('x' * 99999)", "memory limit"),
    ("comprehension-bomb", "x = [[0] * 9000 for i in range(10000)]", "memory limit"),
    ("shared-structure", "a = [1]\nfor i in range(40):\n    a = [a, a]\nprint(a)", "too large"),
    ("self-reference", "a = [1]\na.append(a)\nprint(a)", "nested more than"),
    ("deep-nesting", "a = []\nfor i in range(5000):\n    a = [a]\na", "nested more than"),
    ("format-width", "x = f'{1:>999999999}'", "format width/precision"),
    ("format-precision", "x = f'{1.5:.999999999f}'", "format width/precision"),
    # --- bounded output
    ("print-flood", "for i in range(100000):\n    print('spam spam spam')", "printed output exceeds"),
    ("huge-result", "['x' * 90000, 'y' * 90000, 'z' * 90000]", "too large"),
    # --- parser abuse
    ("deep-parens", "x = " + "(" * 500 + "1" + ")" * 500, "nested"),
    ("huge-code", "x = 1\n" * 10000, "the limit is"),
    ("syntax", "x = = 1", "syntax error"),
]

__all__ = ["HOSTILE"]
