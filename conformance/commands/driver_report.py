"""``conformance driver-report``: what a checking back-end saw of a driver."""
from __future__ import annotations

import argparse
import json
import os
import sys

from device_ref.cli_base import CliError
from device_ref.checking.report import ReportError, read
from device_ref.checking.requirements import VectorsError, load_map

HELP = "Print a driver-check report (device-ref serve --check-driver): violations by requirement."
DEFAULT_VECTORS = "out/vectors"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("report", metavar="FILE", help="the JSON report serve --report wrote")
    parser.add_argument("--vectors", metavar="DIR",
                        help=f"vector files naming each property's requirement ids "
                             f"(default {DEFAULT_VECTORS} when it exists)")
    parser.add_argument("--format", choices=("text", "json"), default="text")


def run(args: argparse.Namespace) -> int:

    vectors = args.vectors or (DEFAULT_VECTORS if os.path.isdir(DEFAULT_VECTORS) else None)
    try:
        doc = read(args.report)
        rmap = load_map(vectors)
    except (ReportError, VectorsError) as exc:
        raise CliError(str(exc)) from None
    try:
        summary = summarise(doc, rmap)
    except (KeyError, TypeError, AttributeError, ValueError) as exc:
        raise CliError(f"{args.report}: malformed report ({exc!r})") from None
    if args.format == "json":
        json.dump(summary, sys.stdout, indent=1, sort_keys=True)
        sys.stdout.write("\n")
    else:
        sys.stdout.write(render(summary))
    return 1 if summary["violations"] else 0


def summarise(doc: dict, rmap) -> dict:
    """Violations grouped by requirement id, with labels and evidence."""
    device = doc.get("device", "?")
    groups: dict[str, dict] = {}
    conns = []
    total = 0
    for c in doc["connections"]:
        q = c.get("queues", {})
        conns.append({"index": c["index"], "layout": c["layout"], "offered": c["offered"],
                      "accepted": c["accepted"], "violations": len(c["violations"]),
                      "chains": sum(v.get("chains", 0) for v in q.values()),
                      "kicks": sum(v.get("kicks", 0) for v in q.values()),
                      "notes": c.get("notes", []), "dropped": c.get("dropped", {})})
        for v in c["violations"]:
            total += 1
            ids = rmap.ids(v["property"], c["layout"], device) if rmap.targets or not \
                v.get("requirements") else v["requirements"]
            ids = ids or v.get("requirements") or ["(no requirement in the vectors)"]
            for rid in ids:
                keyword, label = rmap.label(rid)
                g = groups.setdefault(rid, {"requirement": rid, "keyword": keyword,
                                            "label": label, "property": v["property"],
                                            "count": 0, "examples": []})
                g["count"] += 1
                if len(g["examples"]) < 3:
                    g["examples"].append({"connection": c["index"], "detail": v["detail"],
                                          "level": v.get("level", "must"),
                                          "evidence": v.get("evidence", {})})
    return {"device": device, "vectors": rmap.source, "connections": conns,
            "violations": total, "by_requirement": [groups[k] for k in sorted(groups)]}


def render(s: dict) -> str:
    out = [f"driver check of a {s['device']} device: {len(s['connections'])} connection(s), "
           f"{s['violations']} violation(s)  [requirement ids from {s['vectors']}]"]
    for c in s["connections"]:
        out.append(f"  connection {c['index']}: {c['layout']} rings, offered {c['offered']}, "
                   f"accepted {c['accepted']}, {c['chains']} chains, {c['kicks']} kicks, "
                   f"{c['violations']} violation(s)")
        for n in c["notes"]:
            out.append(f"    note: {n}")
        for prop, n in sorted(c["dropped"].items()):
            out.append(f"    ({n} more of {prop} not kept)")
    for g in s["by_requirement"]:
        label = f"  [{g['label']}]" if g["label"] else ""
        out.append(f"{g['requirement']} {g['keyword']}: {g['property']}: {g['count']}{label}")
        for e in g["examples"]:
            ev = ", ".join(f"{k}={v}" for k, v in sorted(e["evidence"].items()))
            out.append(f"    connection {e['connection']} ({e['level']}): {e['detail']}"
                       + (f"  {{{ev}}}" if ev else ""))
    if not s["violations"]:
        out.append("no violations")
    return "\n".join(out) + "\n"
