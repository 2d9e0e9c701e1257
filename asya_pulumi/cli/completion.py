"""``asya completion bash|zsh|fish``: a shell completion script, generated from asya's own argparse parser.

Nothing is written by hand per command: the script is built by walking the parser (every command of
:data:`asya_pulumi.cli.main.COMMANDS`, their subcommands, options, option choices and positional choices), so a new
command or option completes as soon as it is registered. The bash script is plain bash (``complete -F``); zsh runs
the same function through its ``bashcompinit`` layer; fish gets ``complete`` lines of its own. Commands, options and
choices need no Python at completion time, so a Tab costs nothing.

Arguments that take an actor or route name (marked with :func:`completes_names`: ``dev --send``, ``send ROUTE``,
``dlq redrive ACTOR``, ``replay --to``/``--from-dlq``) complete the names of the pipeline on the line — ``asya dev``'s
PIPELINE_DIR or ``--mesh``'s, else the current directory — which the script asks ``asya completion --names DIR``
for (one Python start, only for those arguments).

    eval "$(asya completion bash)"                 # in ~/.bashrc
    eval "$(asya completion zsh)"                  # in ~/.zshrc (after compinit)
    asya completion fish | source                  # in ~/.config/fish/config.fish
"""

from __future__ import annotations

import argparse
import shlex
from dataclasses import dataclass, field
from pathlib import Path

from asya_pulumi.cli.errors import EXIT_OK, UsageError

SHELLS = ("bash", "zsh", "fish")
#: The attribute :func:`completes_names` sets on an argparse action.
_NAMES_MARK = "asya_completes_names"


def completes_names(action: argparse.Action) -> argparse.Action:
    """Mark ``action`` (an option's or a positional's) as taking an actor or route name of the pipeline."""
    setattr(action, _NAMES_MARK, True)
    return action


def add_parser(commands: argparse._SubParsersAction) -> None:
    parser = commands.add_parser(
        "completion",
        help="print a shell completion script (bash, zsh, fish)",
        description='Print a completion script for SHELL. Load it from your shell\'s rc file: eval "$(asya '
        'completion bash)" in ~/.bashrc, eval "$(asya completion zsh)" in ~/.zshrc, asya completion fish | source '
        "in ~/.config/fish/config.fish.",
    )
    parser.add_argument("shell", nargs="?", choices=SHELLS, metavar="SHELL", help="bash, zsh or fish")
    parser.add_argument("--names", metavar="PIPELINE_DIR",
                        help="print the pipeline's route and actor names, one per line (what the scripts complete)")
    parser.set_defaults(run=run)


@dataclass
class _Level:
    """What can follow one command path (``""``, ``"dev"``, ``"dlq redrive"``)."""

    subcommands: list[str] = field(default_factory=list)
    options: list[str] = field(default_factory=list)
    takes_value: list[str] = field(default_factory=list)
    choices: dict[str, list[str]] = field(default_factory=dict)
    positional_choices: list[str] = field(default_factory=list)
    #: Options whose value is an actor or route name; whether a positional is one.
    name_options: list[str] = field(default_factory=list)
    positional_names: bool = False


def command_tree(parser: argparse.ArgumentParser) -> dict[str, _Level]:
    """Every command path of ``parser`` and what it accepts, by walking argparse's actions."""
    levels: dict[str, _Level] = {}

    def walk(current: argparse.ArgumentParser, path: str) -> None:
        level = levels.setdefault(path, _Level())
        for action in current._actions:
            if isinstance(action, argparse._SubParsersAction):
                for name, sub in action.choices.items():
                    level.subcommands.append(name)
                    walk(sub, f"{path} {name}".strip())
            elif action.option_strings:
                level.options += action.option_strings
                if action.nargs != 0:
                    level.takes_value += action.option_strings
                    if action.choices:
                        for option in action.option_strings:
                            level.choices[option] = [str(c) for c in action.choices]
                if getattr(action, _NAMES_MARK, False):
                    level.name_options += action.option_strings
            elif action.choices:
                level.positional_choices += [str(c) for c in action.choices]
            elif getattr(action, _NAMES_MARK, False):
                level.positional_names = True

    walk(parser, "")
    return levels


def bash_script(levels: dict[str, _Level]) -> str:
    """The bash completion function for ``levels`` (see :func:`command_tree`)."""

    def cases(function: str, pick: dict[str, list[str]]) -> str:
        arms = "".join(f"        {shlex.quote(key)}) echo {shlex.quote(' '.join(words))} ;;\n"
                       for key, words in pick.items() if words)
        return f"{function}() {{\n    case \"$1\" in\n{arms}    esac\n}}\n"

    choices = {f"{path}|{option}": words for path, level in levels.items() for option, words in level.choices.items()}
    return "".join([
        "# asya shell completion (generated by `asya completion` from asya's own parser; regenerate after upgrading)\n",
        cases("_asya_subcommands", {p: lv.subcommands for p, lv in levels.items()}),
        cases("_asya_options", {p: lv.options for p, lv in levels.items()}),
        cases("_asya_takes_value", {p: lv.takes_value for p, lv in levels.items()}),
        cases("_asya_positional_choices", {p: lv.positional_choices for p, lv in levels.items()}),
        cases("_asya_choices", choices),
        cases("_asya_name_options", {p: lv.name_options for p, lv in levels.items()}),
        cases("_asya_positional_names", {p: ["yes"] for p, lv in levels.items() if lv.positional_names}),
        _BASH_FUNCTION,
    ])


_BASH_FUNCTION = r"""_asya_completion() {
    local cur="${COMP_WORDS[COMP_CWORD]}" prev="${COMP_WORDS[COMP_CWORD-1]}" path="" word i skip="" pipeline=""
    for ((i = 1; i < COMP_CWORD; i++)); do
        word="${COMP_WORDS[i]}"
        if [[ -n $skip ]]; then
            [[ $skip == --mesh ]] && pipeline="$word"
            skip=""; continue
        fi
        if [[ $word == -* ]]; then
            [[ " $(_asya_takes_value "$path") " == *" $word "* ]] && skip="$word"
            continue
        fi
        if [[ " $(_asya_subcommands "$path") " == *" $word "* ]]; then
            path="${path:+$path }$word"
        elif [[ $path == dev && -z $pipeline ]]; then
            pipeline="$word"
        fi
    done
    local words
    if [[ " $(_asya_name_options "$path") " == *" $prev "* && $prev == -* ]] \
        || [[ $prev != -* && -n $(_asya_positional_names "$path") && $cur != -* ]]; then
        COMPREPLY=($(compgen -W "$(asya completion --names "${pipeline:-.}" 2>/dev/null)" -- "$cur"))
        [[ ${#COMPREPLY[@]} -gt 0 || $prev == -* ]] && return 0
    fi
    if [[ $prev == -* && " $(_asya_takes_value "$path") " == *" $prev "* ]]; then
        words="$(_asya_choices "$path|$prev")"
        if [[ -n $words ]]; then
            COMPREPLY=($(compgen -W "$words" -- "$cur"))
        else
            COMPREPLY=($(compgen -f -- "$cur"))
        fi
        return 0
    fi
    if [[ $cur == -* ]]; then
        COMPREPLY=($(compgen -W "$(_asya_options "$path")" -- "$cur"))
        return 0
    fi
    words="$(_asya_subcommands "$path") $(_asya_positional_choices "$path")"
    if [[ -n ${words// /} ]]; then
        COMPREPLY=($(compgen -W "$words" -- "$cur"))
    else
        COMPREPLY=($(compgen -f -- "$cur"))
    fi
    return 0
}
complete -o filenames -F _asya_completion asya
"""

#: zsh runs bash completion functions through bashcompinit (part of zsh); compinit must have run first.
_ZSH_PREAMBLE = """# asya completion for zsh: the bash function below, through zsh's bashcompinit
autoload -U +X compinit && { (( ${+functions[compdef]} )) || compinit; }
autoload -U +X bashcompinit && bashcompinit
"""


def fish_script(levels: dict[str, _Level]) -> str:
    """``complete`` lines for fish: per command path (found on the line by ``__asya_path``, which skips option
    values as the bash function does), its subcommands and positional choices, then each option with its value."""
    def quoted(words: list[str]) -> str:
        return shlex.quote(" ".join(words))

    def switch(function: str, pick: dict[str, list[str]]) -> str:
        arms = "".join(f"        case {shlex.quote('x' + key)}\n            echo {quoted(words)}\n"
                       for key, words in pick.items() if words)
        return f"function {function}\n    switch \"x$argv[1]\"\n{arms}    end\nend\n"

    lines = [
        "# asya completion for fish (generated by `asya completion fish` from asya's own parser; regenerate after "
        "upgrading)\n",
        switch("__asya_subcommands", {p: lv.subcommands for p, lv in levels.items()}),
        switch("__asya_takes_value", {p: lv.takes_value for p, lv in levels.items()}),
        _FISH_FUNCTIONS,
        "complete -c asya -e\n",
    ]
    for path, level in levels.items():
        when = f"-n {shlex.quote(f'test (__asya_path) = {shlex.quote(path)}')}"
        if level.subcommands or level.positional_choices:
            lines.append(f"complete -c asya {when} -f -a {quoted(level.subcommands + level.positional_choices)}\n")
        if level.positional_names:
            lines.append(f"complete -c asya {when} -f -a '(__asya_names)'\n")
        for option in dict.fromkeys(level.options):
            flag = f"-l {option[2:]}" if option.startswith("--") else f"-s {option[1:]}"
            if option in level.name_options:
                value = " -x -a '(__asya_names)'"
            elif option in level.choices:
                value = f" -x -a {quoted(level.choices[option])}"
            else:
                value = " -r" if option in level.takes_value else ""
            lines.append(f"complete -c asya {when} {flag}{value}\n")
    return "".join(lines)


_FISH_FUNCTIONS = r"""function __asya_path
    set -l path ""
    set -l skip 0
    for word in (commandline -opc)[2..-1]
        if test $skip = 1
            set skip 0
            continue
        end
        if string match -q -- '-*' $word
            contains -- $word (string split ' ' -- (__asya_takes_value "$path")); and set skip 1
            continue
        end
        if contains -- $word (string split ' ' -- (__asya_subcommands "$path"))
            set path (string trim -- "$path $word")
        end
    end
    echo $path
end
function __asya_names
    set -l words (commandline -opc)[2..-1]
    set -l pipeline .
    set -l index (contains -i -- --mesh $words); and set pipeline $words[(math $index + 1)]
    if test "$words[1]" = dev; and not contains -- --mesh $words
        for word in $words[2..-1]
            string match -q -- '-*' $word; or begin; set pipeline $word; break; end
        end
    end
    asya completion --names $pipeline 2>/dev/null
end
"""


def pipeline_names(directory: str) -> list[str]:
    """The route names, then the actor names, of the pipeline in ``directory``; none when it is not one."""
    from asya_pulumi.spec import SpecError, load_pipeline_dir

    try:
        mesh = load_pipeline_dir(Path(directory))
    except (SpecError, OSError, ValueError):
        return []
    return [*sorted(mesh.routes), *sorted(a.name for a in mesh.actors)]


def script(*, shell: str) -> str:
    """The completion script for ``shell``, from the full parser (every command's module is imported once)."""
    from asya_pulumi.cli.main import build_parser

    levels = command_tree(build_parser(None))
    if shell == "fish":
        return fish_script(levels)
    body = bash_script(levels)
    return _ZSH_PREAMBLE + body if shell == "zsh" else body


def run(args: argparse.Namespace) -> int:
    if args.names is not None:
        print("\n".join(pipeline_names(args.names)))
        return EXIT_OK
    if args.shell is None:
        raise UsageError("name a shell: asya completion bash|zsh|fish (or --names PIPELINE_DIR)")
    print(script(shell=args.shell), end="")
    return EXIT_OK
