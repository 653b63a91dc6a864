#!/usr/bin/env python3
"""Runs every ```console block of the docs and checks each command prints what the doc shows.

A block is a shell session: lines starting with "$ " are commands (a heredoc continues until its
terminator), the lines after a command up to the next "$ " are its expected output (stdout and
stderr together). Commands run with bash from the repository root, in order, so a block may
create files that later commands of any block use. Also checks that every `Usage: tollgate …`
line of a ```text block in docs/cli.md is the one that command's `--help` prints. Exits 1 on the
first difference. Each command runs in a session of its own, and whatever a command left running
in the background (docs/first-hour.md starts a hub) is stopped when the check ends, passed or
failed, so a failed run never leaves a process holding a port.
"""
import os
import pathlib
import re
import signal
import subprocess
import sys

ROOT = pathlib.Path(__file__).resolve().parent.parent
DOCS = sorted((ROOT / "docs").glob("*.md")) + [ROOT / "README.md"]
CLI_DOC = ROOT / "docs" / "cli.md"
BINARY = ROOT / "target" / "debug" / "tollgate"


def sessions(text):
    for block in re.findall(r"```console\n(.*?)```", text, re.S):
        yield block.splitlines()


def steps(lines):
    i = 0
    while i < len(lines):
        line = lines[i]
        if not line.startswith("$ "):
            i += 1
            continue
        command = [line[2:]]
        i += 1
        heredoc = re.search(r"<<-?'?(\w+)'?", line)
        if heredoc:
            end = heredoc.group(1)
            while i < len(lines):
                command.append(lines[i])
                i += 1
                if lines[i - 1].strip() == end:
                    break
        output = []
        while i < len(lines) and not lines[i].startswith("$ "):
            output.append(lines[i])
            i += 1
        yield "\n".join(command), "\n".join(output).rstrip()


def usage_lines():
    """The `Usage: tollgate COMMAND …` lines of the text blocks of docs/cli.md, with the command."""
    for block in re.findall(r"```text\n(.*?)```", CLI_DOC.read_text(), re.S):
        for line in block.splitlines():
            if line.startswith("Usage: tollgate "):
                yield line.split()[2], line


def main():
    checked = 0
    for command, line in usage_lines():
        run = subprocess.run([str(BINARY), command, "--help"], cwd=ROOT, stdout=subprocess.PIPE, text=True)
        printed = [l for l in run.stdout.splitlines() if l.startswith("Usage: ")]
        if run.returncode != 0 or printed != [line]:
            print(f"{CLI_DOC.relative_to(ROOT)}: usage of `tollgate {command}`")
            print(f"--- documented\n{line}\n--- printed by `tollgate {command} --help`\n{chr(10).join(printed)}")
            return 1
        checked += 1
    for doc in DOCS:
        for lines in sessions(doc.read_text()):
            for command, expected in steps(lines):
                run = subprocess.Popen(
                    ["bash", "-c", command],
                    cwd=ROOT,
                    stdout=subprocess.PIPE,
                    stderr=subprocess.STDOUT,
                    text=True,
                    start_new_session=True,
                )
                SESSIONS.append(run.pid)
                got = run.communicate()[0].rstrip()
                if got != expected:
                    print(f"{doc.relative_to(ROOT)}: `{command.splitlines()[0]}`")
                    print(f"--- expected\n{expected}\n--- got\n{got}")
                    return 1
                checked += 1
    print(f"docs: {checked} passed, 0 failed")
    return 0


SESSIONS = []


def stop_leftovers():
    """Stops every process the commands left running (each command led a session of its own)."""
    for pgid in SESSIONS:
        try:
            os.killpg(pgid, signal.SIGTERM)
        except ProcessLookupError:
            pass


if __name__ == "__main__":
    try:
        sys.exit(main())
    finally:
        stop_leftovers()
