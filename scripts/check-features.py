#!/usr/bin/env python3
"""Fails when `cargo build -p scimsync` would resolve dependency features
other than the workspace test build's (`cargo test --workspace
--all-targets`): each difference rebuilds that crate and everything above
it, which makes `make run` after `make test` recompile for minutes.

    python3 scripts/check-features.py      (run by `make lint`)

The fix for a difference it reports: add the crate with the missing
features to the feature-unification block of crates/scimsync/Cargo.toml."""

import re
import subprocess
import sys


def features(*args: str) -> dict[tuple[str, str], set[str]]:
    out = subprocess.run(
        ["cargo", "tree", "--prefix", "none", "-f", "{p} [{f}]", *args],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    found: dict[tuple[str, str], set[str]] = {}
    for line in out.splitlines():
        m = re.match(r"(\S+) (v\S+)(?: \(.*?\))? \[(.*)\]", line.strip())
        if m:
            found.setdefault((m[1], m[2]), set()).update(f for f in m[3].split(",") if f)
    return found


def main() -> int:
    cli = features("-p", "scimsync", "-e", "normal,build")
    workspace = features("--workspace", "-e", "normal,build,dev")
    drift = [
        (name, version, sorted(workspace[(name, version)] - cli_features))
        for (name, version), cli_features in sorted(cli.items())
        if (name, version) in workspace and workspace[(name, version)] != cli_features
    ]
    for name, version, extra in drift:
        print(f"check-features: {name} {version}: the test build adds {extra}", file=sys.stderr)
    if drift:
        print(
            "check-features: add these to the feature-unification block of "
            "crates/scimsync/Cargo.toml",
            file=sys.stderr,
        )
        return 1
    print("check-features: the CLI build resolves the test build's features")
    return 0


if __name__ == "__main__":
    sys.exit(main())
