#!/usr/bin/env python3
"""Writes Grafana dashboards equivalent to Charcoal's own (../*.json) into this directory.

Run after changing a Charcoal dashboard:  python3 dashboards/grafana/make-grafana.py
Targets are copied unchanged (Grafana's Graphite data source sends them to Charcoal's /render);
`$name` variables become Grafana query variables over the same /metrics/find query, and the
PNG parameters map onto panel settings (areaMode=stacked -> stacking, vtitle -> axis label,
yMin/yMax -> min/max, yUnitSystem=binary -> IEC bytes, logBase -> log scale).
"""
import json
import pathlib

HERE = pathlib.Path(__file__).resolve().parent
DATASOURCE = {"type": "graphite", "uid": "charcoal"}


def grafana_time(spec):
    return "now" if spec in ("", "now") else "now" + spec if spec.startswith("-") else spec


def field_config(params):
    custom = {"lineWidth": 1, "fillOpacity": 0, "showPoints": "never", "spanNulls": False}
    defaults = {"custom": custom, "unit": "short"}
    if params.get("areaMode") == "stacked":
        custom["stacking"] = {"mode": "normal", "group": "A"}
        custom["fillOpacity"] = 70
    elif params.get("areaMode") in ("all", "first"):
        custom["fillOpacity"] = 30
    if params.get("vtitle"):
        custom["axisLabel"] = params["vtitle"]
    if params.get("logBase"):
        base = 2 if params["logBase"] == "2" else 10
        custom["scaleDistribution"] = {"type": "log", "log": base}
    if params.get("yUnitSystem") == "binary":
        defaults["unit"] = "bytes"
    for ours, theirs in (("yMin", "min"), ("yMax", "max")):
        if ours in params:
            defaults[theirs] = float(params[ours])
    colors = params.get("colorList", "").split(",")
    if len(colors) == 1 and colors[0]:
        defaults["color"] = {"mode": "fixed", "fixedColor": colors[0]}
    return {"defaults": defaults, "overrides": []}


def convert(name, d):
    columns = max(1, min(4, int(d.get("columns", 2))))
    width = 24 // columns
    panels = []
    for i, g in enumerate(d["graphs"]):
        panels.append({
            "id": i + 1,
            "type": "timeseries",
            "title": g.get("title") or ", ".join(g["targets"]),
            "datasource": DATASOURCE,
            "gridPos": {"h": 8, "w": width, "x": (i % columns) * width, "y": (i // columns) * 8},
            "targets": [
                {"refId": chr(ord("A") + j), "target": t, "datasource": DATASOURCE}
                for j, t in enumerate(g["targets"])
            ],
            "fieldConfig": field_config(g.get("params", {})),
            "options": {
                "legend": {"displayMode": "list", "placement": "bottom", "showLegend": True},
                "tooltip": {"mode": "multi", "sort": "none"},
            },
        })
    variables = [
        {
            "name": v["name"],
            "label": v["name"],
            "type": "query",
            "datasource": DATASOURCE,
            "query": v["query"],
            "definition": v["query"],
            "refresh": 1,
            "includeAll": True,
            "allValue": "*",
            "multi": True,
            "sort": 1,
            "current": {"selected": True, "text": ["All"], "value": ["$__all"]},
            "options": [],
        }
        for v in d.get("variables", [])
    ]
    refresh = d.get("refresh", "")
    return {
        "uid": f"charcoal-{name}",
        "title": d.get("title") or name,
        "description": d.get("description", ""),
        "tags": ["charcoal"],
        "timezone": "browser",
        "editable": True,
        "schemaVersion": 39,
        "version": 1,
        "time": {"from": grafana_time(d.get("from", "-6h")), "to": grafana_time(d.get("until", "now"))},
        "refresh": "" if refresh in ("", "off") else refresh,
        "templating": {"list": variables},
        "annotations": {"list": []},
        "panels": panels,
    }


def main():
    for path in sorted(HERE.parent.glob("*.json")):
        d = json.loads(path.read_text())
        out = HERE / path.name
        out.write_text(json.dumps(convert(path.stem, d), indent=2) + "\n")
        print(f"{path.name} -> {out.relative_to(HERE.parent)}")


if __name__ == "__main__":
    main()
