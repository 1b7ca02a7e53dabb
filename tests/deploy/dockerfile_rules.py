"""Our own Dockerfile rules, on top of hadolint (deploy/docker/Dockerfile).

check(text, make_targets) returns a list of problems, empty when every rule holds:
- every FROM names a pinned tag (no `latest`, no bare image) or a digest;
- no ADD of a URL, no curl/wget piped into a shell;
- apt-get install with --no-install-recommends, followed by removal of the lists
  in the same RUN;
- the build stage builds through `make <target>` with targets the Makefile has,
  and nothing else calls cmake, cargo or ninja directly;
- the final stage sets USER to a numeric non-root uid, has HEALTHCHECK, EXPOSE,
  an exec-form ENTRYPOINT, and installs no compiler or build tool.
"""
from __future__ import annotations

import re

BUILD_TOOLS = {"gcc", "g++", "clang", "clang-19", "cmake", "ninja-build", "make", "build-essential",
               "cargo", "rustc", "npm", "nodejs", "golang", "libc6-dev", "binutils"}


def instructions(text: str) -> list[tuple[str, str]]:
    """(KEYWORD, arguments) per instruction, continuation lines joined, comments dropped."""
    out, buf = [], ""
    for raw in text.splitlines():
        line = raw.strip()
        if not buf and (not line or line.startswith("#")):
            continue
        if line.startswith("#"):
            continue
        if line.endswith("\\"):
            buf += line[:-1] + " "
            continue
        buf += line
        keyword, _, args = buf.partition(" ")
        out.append((keyword.upper(), args.strip()))
        buf = ""
    return out


def stages(text: str) -> list[list[tuple[str, str]]]:
    result: list[list[tuple[str, str]]] = []
    for ins in instructions(text):
        if ins[0] == "FROM":
            result.append([])
        if result:
            result[-1].append(ins)
    return result


def _from_pinned(args: str) -> bool:
    image = [w for w in args.split() if not w.startswith("--")][0]
    if "@sha256:" in image:
        return True
    last = image.rsplit("/", 1)[-1]
    return ":" in last and last.rsplit(":", 1)[1] not in ("", "latest")


def _command(run_args: str) -> str:
    """A RUN's shell command without its leading --mount/--network options."""
    return re.sub(r"^(--\S+\s+)+", "", run_args)


def check(text: str, make_targets: set[str]) -> list[str]:
    problems: list[str] = []
    all_stages = stages(text)
    if len(all_stages) < 2:
        problems.append("not a multi-stage build")
        return problems
    aliases = set()
    for st in all_stages:
        args = st[0][1]
        words = args.split()
        image = [w for w in words if not w.startswith("--")][0]
        if image not in aliases and not _from_pinned(args):
            problems.append(f"FROM {image}: base image not pinned to a tag or digest")
        if len(words) >= 3 and words[-2].upper() == "AS":
            aliases.add(words[-1])
    for keyword, args in instructions(text):
        if keyword == "ADD" and re.search(r"https?://", args):
            problems.append(f"ADD of a URL: {args}")
        if keyword == "RUN":
            if re.search(r"(curl|wget)[^|;&]*\|\s*(ba)?sh", args):
                problems.append(f"RUN pipes a download into a shell: {args[:80]}")
            if re.search(r"apt-get\s+(-\S+\s+)*install", args):
                # Each install command of the RUN, not just one of them.
                for install in re.split(r"&&|;|\|\|", args):
                    if (re.search(r"apt-get\s+(-\S+\s+)*install", install)
                            and "--no-install-recommends" not in install):
                        problems.append("apt-get install without --no-install-recommends")
                if "rm -rf /var/lib/apt/lists" not in args:
                    problems.append("apt-get install without removing /var/lib/apt/lists in the same RUN")
            if re.search(r"\bapt\s+install\b", args):
                problems.append("`apt install` (use apt-get)")
            if re.search(r"\b(cmake|cargo|ninja)\s", args):
                problems.append(f"RUN calls a build tool directly instead of a Makefile target: {args[:80]}")
    build = all_stages[:-1]
    targets = [t for st in build for kw, a in st if kw == "RUN"
               for t in re.findall(r"(?:^|&&|;)\s*make\s+([\w-]+)", _command(a))]
    if not targets:
        problems.append("the build stages call no Makefile target")
    for t in targets:
        if t not in make_targets:
            problems.append(f"make {t}: no such Makefile target")
    final = all_stages[-1]
    keywords = [kw for kw, _ in final]
    users = [a for kw, a in final if kw == "USER"]
    if not users:
        problems.append("final stage sets no USER")
    else:
        uid = users[-1].split(":")[0]
        if not uid.isdigit() or int(uid) == 0:
            problems.append(f"final USER {users[-1]!r} is not a numeric non-root uid")
    for kw in ("HEALTHCHECK", "EXPOSE", "ENTRYPOINT"):
        if kw not in keywords:
            problems.append(f"final stage has no {kw}")
    for kw, a in final:
        if kw in ("ENTRYPOINT", "CMD") and not a.startswith("["):
            problems.append(f"{kw} is not in exec form")
        if kw == "RUN" and "install" in a:
            pkgs = set(re.findall(r"[\w.+-]+", a.split("install", 1)[1].split("&&")[0]))
            bad = pkgs & BUILD_TOOLS
            if bad:
                problems.append(f"final stage installs build tools: {sorted(bad)}")
    return problems


def makefile_targets(makefile_text: str) -> set[str]:
    return set(re.findall(r"^([A-Za-z][\w-]*):", makefile_text, re.M))
