"""``berth completion bash|zsh|fish``: print the shell's completion script (cobra's command,
hidden from the help as docker hides it). The scripts call ``berth __complete``
(``berth.cli.completion.engine``)."""

from __future__ import annotations

from typing import Any

from berth.cli.command import Group, StatusError
from berth.cli.flags import BOOL, Flag

group = Group(
    "completion",
    "Generate the autocompletion script for the specified shell",
    long=(
        "Generate the autocompletion script for berth for the specified shell.\n"
        "See each sub-command's help for details on how to use the generated script."
    ),
    plain=True,
)

NO_DESCRIPTIONS = Flag("no-descriptions", kind=BOOL, help="disable completion descriptions")

_LONG = {
    "bash": """Generate the autocompletion script for the bash shell.

To load completions in your current shell session:

	source <(berth completion bash)

To load completions for every new session, execute once:

	berth completion bash > /etc/bash_completion.d/berth

You will need to start a new shell for this setup to take effect.
""",
    "zsh": """Generate the autocompletion script for the zsh shell.

If shell completion is not already enabled in your environment you will need
to enable it.  You can execute the following once:

	echo "autoload -U compinit; compinit" >> ~/.zshrc

To load completions in your current shell session:

	source <(berth completion zsh)

To load completions for every new session, execute once:

	berth completion zsh > "${fpath[1]}/_berth"

You will need to start a new shell for this setup to take effect.
""",
    "fish": """Generate the autocompletion script for the fish shell.

To load completions in your current shell session:

	berth completion fish | source

To load completions for every new session, execute once:

	berth completion fish > ~/.config/fish/completions/berth.fish

You will need to start a new shell for this setup to take effect.
""",
}


def _script_command(shell: str, usage: str) -> None:
    @group.command(
        shell,
        f"Generate the autocompletion script for {shell}",
        usage,
        flags=[NO_DESCRIPTIONS],
        long=_LONG[shell],
    )
    def print_script(cli: Any, opts: Any, args: list[str]) -> int:
        if args:  # cobra's text for a command that takes no arguments
            raise StatusError(f'unknown command "{args[0]}" for "berth completion {shell}"', 1)
        from berth.cli.completion.scripts import script

        cli.out.write(script(shell, descriptions=not opts.no_descriptions))
        return 0


# docker's usage lines: "completion bash" has no "[flags]", the others do
_script_command("bash", "")
_script_command("fish", "[flags]")
_script_command("zsh", "[flags]")
