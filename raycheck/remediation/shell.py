"""The shell commands a remediation step gives, split the way ``sh`` splits them.

The catalog's commands are rendered strings that someone pastes into a shell: ``&&``-chains,
pipes, single-quoted JSON, heredocs (``kubectl apply -f - <<'EOF'``), ``$(...)`` subshells. To know
what a step would change, raycheck must read each command as the shell would, and must know
where it cannot: a word whose value the shell computes (``$(...)``, ``$VAR``, a glob) is marked,
so a step that changes objects through one is reported as not interpretable rather than guessed.

This is the POSIX shell's token recognition (quoting, operators, here-documents), not a shell:
nothing is expanded or run.
"""

from __future__ import annotations

from dataclasses import dataclass, field

OPERATORS = ("&&", "||", ";;", "<<-", "<<", ">>", ">&", "<&", "2>", ";", "|", "&", "<", ">", "(", ")")
SEPARATORS = ("&&", "||", ";", "&", "\n")


class ShellError(ValueError):
    """The text is not a complete shell command (an unterminated quote, subshell or here-document)."""


@dataclass(frozen=True)
class Word:
    """One word after quote removal. ``computed``: what in it the shell would compute (``$(...)``,
    ``$VAR``, a glob), empty when the word is exactly its text."""

    text: str
    computed: tuple[str, ...] = ()


@dataclass
class Command:
    """A simple command: its words, redirections and here-document body (``<<'EOF'`` ... ``EOF``)."""

    words: list[Word] = field(default_factory=list)
    redirects: list[tuple[str, str]] = field(default_factory=list)
    heredoc: str | None = None
    heredoc_expands: bool = False  # an unquoted delimiter: the body's $ and ` are expanded

    @property
    def argv(self) -> list[str]:
        return [w.text for w in self.words]

    @property
    def computed(self) -> list[str]:
        """Everything in this command whose value the shell computes."""
        out = [c for w in self.words for c in w.computed]
        if self.heredoc_expands and self.heredoc is not None and ("$" in self.heredoc or "`" in self.heredoc):
            out.append("an unquoted here-document with $ or ` in it")
        return out

    def __str__(self) -> str:
        return " ".join(w.text for w in self.words)


@dataclass
class Pipeline:
    """Commands joined by ``|``, and the operator that joins it to the previous pipeline."""

    commands: list[Command]
    joined_by: str | None = None  # None (the first), "&&", "||", ";", "&" or "\n"


def parse(text: str) -> list[Pipeline]:
    """The pipelines of ``text``, in order (ShellError when it is not a complete command)."""
    return _Parser(text).run()


class _Parser:
    def __init__(self, text: str) -> None:
        self.text = text
        self.i = 0
        self.pipelines: list[Pipeline] = []
        self.current: list[Command] = [Command()]
        self.joined_by: str | None = None
        self.pending: list[tuple[Command, str, bool, bool]] = []  # heredocs to read at the next newline
        self._raw_was_quoted = False  # whether the last word read had quotes (a quoted heredoc delimiter)

    def run(self) -> list[Pipeline]:
        text = self.text
        while self.i < len(text):
            c = text[self.i]
            if c in " \t":
                self.i += 1
            elif c == "\\" and text.startswith("\\\n", self.i):
                self.i += 2  # a line continuation
            elif c == "\n":
                self.i += 1
                self._read_heredocs()
                self._separate("\n")
            elif c == "#" and self._at_word_start():
                end = text.find("\n", self.i)
                self.i = len(text) if end < 0 else end
            elif (op := self._operator()) is not None:
                self._handle_operator(op)
            else:
                self._command().words.append(self._word())
        if self.pending:
            raise ShellError(f"here-document delimited by {self.pending[0][1]!r} has no body")
        self._separate(None)
        return self.pipelines

    # -- structure

    def _command(self) -> Command:
        return self.current[-1]

    def _at_word_start(self) -> bool:
        return self.i == 0 or self.text[self.i - 1] in " \t\n;&|()"

    def _operator(self) -> str | None:
        text = self.text
        for op in OPERATORS:
            if text.startswith(op, self.i):
                if op == "2>" and not self._at_word_start():
                    continue
                return op
        return None

    def _handle_operator(self, op: str) -> None:
        self.i += len(op)
        if op in ("(", ")", ";;"):
            raise ShellError(f"a {op!r} (subshell or case) is not a simple command")
        if op == "|":
            if not self._command().words:
                raise ShellError("a pipe with no command before it")
            self.current.append(Command())
        elif op in SEPARATORS:
            self._separate(op)
        else:
            self._skip_blanks()
            target = self._word()
            if op in ("<<", "<<-"):
                quoted = target.computed == () and self._raw_was_quoted
                self.pending.append((self._command(), target.text, op == "<<-", not quoted))
            else:
                self._command().redirects.append((op, target.text))

    def _separate(self, op: str | None) -> None:
        commands = [c for c in self.current if c.words or c.redirects]
        if commands:
            if len(commands) != len(self.current) and len(self.current) > 1:
                raise ShellError("a pipe with no command after it")
            self.pipelines.append(Pipeline(commands, self.joined_by))
            self.joined_by = op
        elif op in ("&&", "||", "|"):
            raise ShellError(f"{op!r} with no command before it")
        self.current = [Command()]

    def _skip_blanks(self) -> None:
        while self.i < len(self.text) and self.text[self.i] in " \t":
            self.i += 1

    def _read_heredocs(self) -> None:
        for command, delimiter, strip_tabs, expands in self.pending:
            lines = []
            while True:
                if self.i >= len(self.text):
                    raise ShellError(f"here-document delimited by {delimiter!r} is not terminated")
                end = self.text.find("\n", self.i)
                line = self.text[self.i:] if end < 0 else self.text[self.i:end]
                self.i = len(self.text) if end < 0 else end + 1
                if strip_tabs:
                    line = line.lstrip("\t")
                if line == delimiter:
                    break
                lines.append(line)
            command.heredoc = "".join(f"{line}\n" for line in lines)
            command.heredoc_expands = expands
        self.pending = []

    # -- words

    def _word(self) -> Word:
        """One word from here: quotes removed, what the shell would compute noted."""
        text, out, computed = self.text, [], []
        self._raw_was_quoted = False
        start = self.i
        while self.i < len(text):
            c = text[self.i]
            if c in " \t\n" or self._operator() is not None:
                break
            if c == "'":
                end = text.find("'", self.i + 1)
                if end < 0:
                    raise ShellError("unterminated single quote")
                out.append(text[self.i + 1:end])
                self._raw_was_quoted = True
                self.i = end + 1
            elif c == '"':
                self._raw_was_quoted = True
                out.append(self._double_quoted(computed))
            elif c == "\\":
                if self.i + 1 >= len(text):
                    raise ShellError("a backslash at the end of the command")
                if text[self.i + 1] != "\n":
                    out.append(text[self.i + 1])
                self.i += 2
            elif c == "$" or c == "`":
                raw = self._expansion()
                out.append(raw)
                computed.append(raw)
            else:
                if c in "*?[":
                    computed.append(f"the glob {c!r}")
                out.append(c)
                self.i += 1
        if self.i == start:
            raise ShellError(f"expected a word at {text[self.i:self.i + 10]!r}")
        return Word("".join(out), tuple(computed))

    def _double_quoted(self, computed: list[str]) -> str:
        text, out = self.text, []
        self.i += 1
        while self.i < len(text):
            c = text[self.i]
            if c == '"':
                self.i += 1
                return "".join(out)
            if c == "\\" and self.i + 1 < len(text) and text[self.i + 1] in '$`"\\\n':
                if text[self.i + 1] != "\n":
                    out.append(text[self.i + 1])
                self.i += 2
            elif c in "$`":
                raw = self._expansion()
                out.append(raw)
                computed.append(raw)
            else:
                out.append(c)
                self.i += 1
        raise ShellError("unterminated double quote")

    def _expansion(self) -> str:
        """``$(...)``, ``${...}``, ``$NAME``, `` `...` `` or a lone ``$``: the raw text, skipped."""
        text, start = self.text, self.i
        if text[self.i] == "`":
            end = text.find("`", self.i + 1)
            if end < 0:
                raise ShellError("unterminated backquote")
            self.i = end + 1
            return text[start:self.i]
        nxt = text[self.i + 1] if self.i + 1 < len(text) else ""
        if nxt in "({":
            closing = ")" if nxt == "(" else "}"
            depth, self.i = 0, self.i + 1
            while self.i < len(text):
                c = text[self.i]
                if c == "'":
                    end = text.find("'", self.i + 1)
                    if end < 0:
                        raise ShellError("unterminated single quote in a substitution")
                    self.i = end + 1
                    continue
                if c == nxt:
                    depth += 1
                elif c == closing:
                    depth -= 1
                    if depth == 0:
                        self.i += 1
                        return text[start:self.i]
                self.i += 1
            raise ShellError(f"unterminated {'$(' if nxt == '(' else '${'}")
        self.i += 1
        while self.i < len(text) and (text[self.i].isalnum() or text[self.i] == "_"):
            self.i += 1
        if self.i == start + 1 and self.i < len(text) and text[self.i] in "?#@*$!-0123456789":
            self.i += 1
        return text[start:self.i]
