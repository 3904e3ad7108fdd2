"""Write the dashboards' JSON from the code, or check the checked-in JSON is current.

    python -m grafana.build            # regenerate grafana/dashboards/*.json (make dashboards)
    python -m grafana.build --check    # exit 1 naming every file that is stale or missing
"""

from __future__ import annotations

import argparse
import json
import sys
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path

from grafana import campaign, moderation, pipeline
from grafana.common import Board

with warnings.catch_warnings():
    warnings.simplefilter("ignore", DeprecationWarning)
    from grafana_foundation_sdk.cog.encoder import JSONEncoder

__all__ = ["DASHBOARDS", "OUT", "main", "render", "stale"]

#: Where the provisioned file provider reads them (grafana/provisioning/dashboards/monitor.yml).
OUT = Path(__file__).parent / "dashboards"
#: file name (without .json) -> the function that builds the dashboard
DASHBOARDS: dict[str, Callable[[], Board]] = {
    "campaign-overview": campaign.build,
    "moderation": moderation.build,
    "pipeline-health": pipeline.build,
}


def render(name: str) -> str:
    """One dashboard's JSON text, stable across runs (sorted keys, two-space indent)."""
    model = DASHBOARDS[name]().build()
    return json.dumps(model, cls=JSONEncoder, indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def stale(out: Path = OUT) -> list[str]:
    """File names in ``out`` that differ from the code (or are missing, or are not generated)."""
    wrong = [f"{name}.json" for name in DASHBOARDS
             if not (out / f"{name}.json").is_file()
             or (out / f"{name}.json").read_text(encoding="utf-8") != render(name)]
    extra = sorted(p.name for p in out.glob("*.json") if p.stem not in DASHBOARDS)
    return wrong + extra


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m grafana.build", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--check", action="store_true",
                        help="do not write; exit 1 if a checked-in dashboard is out of date")
    parser.add_argument("--out", type=Path, default=OUT, help=f"folder (default {OUT})")
    args = parser.parse_args(argv)
    if args.check:
        wrong = stale(args.out)
        if wrong:
            print(f"out of date in {args.out}: {', '.join(wrong)}; run 'make dashboards' "
                  "(python -m grafana.build) and commit the result", file=sys.stderr)
            return 1
        print(f"{len(DASHBOARDS)} dashboards in {args.out} match the code")
        return 0
    args.out.mkdir(parents=True, exist_ok=True)
    for name in DASHBOARDS:
        (args.out / f"{name}.json").write_text(render(name), encoding="utf-8")
    print(f"wrote {len(DASHBOARDS)} dashboards to {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
