"""Shell completion, as the docker CLI has it (cobra's): ``berth completion bash|zsh|fish``
prints a thin script; the script runs the hidden ``berth __complete WORD... CURRENT`` at each
TAB, which prints the candidates for CURRENT, one a line (``value`` or ``value<TAB>help``),
then ``:<directive>``.

- ``engine``: ``__complete`` itself: which command the words name, which flag or argument
  the current word is, the candidates (commands, flags, flag values, names);
- ``rules``: what each command's arguments and flag values complete to;
- ``names``: names from the daemon (with a short deadline: a down or slow daemon gives no
  names) and from the context store;
- ``scripts``: the bash, zsh and fish scripts.
"""
