#!/usr/bin/env python3
"""The layout's two rules, checked (README, "Layout"):

1. No two modules of a crate import each other (`crate::a` in module b and `crate::b` in
   module a; test modules and comments aside): each file's dependencies point one way.
2. No crate depends on one above it: the crates under plugins/ depend on the plugin ABI alone,
   and the NATS worker does not depend on the HTTP service.

Exit status 1 with a line per violation. Runs in milliseconds (`.ci/run`).
"""
import os
import re
import sys
import tomllib

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SKIP = {"target", ".git", "node_modules", ".venv"}


def source_dirs():
    for root, dirs, _ in os.walk(ROOT):
        dirs[:] = [d for d in dirs if d not in SKIP and not d.startswith(".")]
        if os.path.basename(root) == "src" and os.path.isfile(os.path.join(os.path.dirname(root), "Cargo.toml")):
            yield root


def module_of(path, src):
    first = os.path.relpath(path, src).split(os.sep)[0]
    return first[:-3] if first.endswith(".rs") else first


def module_cycles():
    found = []
    for src in source_dirs():
        uses = {}
        for root, _, files in os.walk(src):
            for name in files:
                if not name.endswith(".rs") or name in ("tests.rs", "proptests.rs"):
                    continue
                path = os.path.join(root, name)
                module = module_of(path, src)
                if module in ("lib", "main"):
                    continue
                with open(path, encoding="utf-8") as f:
                    text = f.read().split("#[cfg(test)]\nmod tests")[0]
                code = "\n".join(l for l in text.split("\n") if not l.strip().startswith("//"))
                for used in re.findall(r"crate::([a-z_0-9]+)", code):
                    if used != module:
                        uses.setdefault(module, set()).add(used)
        crate = os.path.relpath(os.path.dirname(src), ROOT)
        for a, targets in uses.items():
            for b in targets:
                if a < b and a in uses.get(b, ()):
                    found.append(f"{crate}: modules `{a}` and `{b}` import each other")
    return found


def dependencies(manifest):
    with open(manifest, "rb") as f:
        toml = tomllib.load(f)
    return {name for name in toml.get("dependencies", {}) if name.startswith("pitchside")}


def crate_layers():
    found = []
    plugins = os.path.join(ROOT, "plugins")
    for name in sorted(os.listdir(plugins)):
        manifest = os.path.join(plugins, name, "Cargo.toml")
        if os.path.isfile(manifest):
            above = dependencies(manifest) - {"pitchside-plugin"}
            if above:
                found.append(f"plugins/{name} depends on {', '.join(sorted(above))}: plugins depend on the ABI alone")
    if "pitchside-service" in dependencies(os.path.join(ROOT, "worker", "Cargo.toml")):
        found.append("worker depends on pitchside-service: fetching is pitchside-fetch's")
    return found


problems = module_cycles() + crate_layers()
for p in problems:
    print(p, file=sys.stderr)
sys.exit(1 if problems else 0)
