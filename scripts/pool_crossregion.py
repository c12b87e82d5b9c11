"""Pool the per-map rows of several cross-region runs (``eval/crossregion.py`` ``.jsonl`` files)
into one summary: more sample draws on the same windows.

Runs with different ``--windows`` or ``--bands`` draw different samples on the same windows (the
draw depends on the map's index in the run), so two runs are two independent draws. The pooled
MSE gain averages every map of every run; the interval resamples whole windows, each window with
all its rows from all runs.

    python scripts/pool_crossregion.py docs/results/xregion_2to1_5750_w24_fast \\
        docs/results/xregion_2to1_all_w24 --bands 5750 --out docs/results/xregion_2to1_5750_pooled
"""

import argparse
import json
from pathlib import Path

from wifidiff_fast.eval.crossregion import summarise, to_markdown


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("runs", nargs="+", help="output stems of crossregion runs (their .jsonl and .json)")
    ap.add_argument("--bands", default="all", help="'all' or comma-separated MHz to keep")
    ap.add_argument("--out", required=True, help="output stem: writes .json and .md")
    args = ap.parse_args(argv)
    keep = None if args.bands == "all" else {int(b) for b in args.bands.split(",")}
    rows, metas = [], []
    for stem in args.runs:
        metas.append(json.loads(Path(f"{stem}.json").read_text())["meta"])
        for line in Path(f"{stem}.jsonl").read_text().splitlines():
            row = json.loads(line)
            if keep is None or int(row["freq_mhz"]) in keep:
                rows.append(row)
    pairs = {(m["fit_region"], m["score_region"]) for m in metas}
    if len(pairs) != 1:
        raise SystemExit(f"the runs must share one direction, got {sorted(pairs)}")
    meta = dict(metas[0])
    meta["windows"] = f"{meta['windows']} (pooled runs: {', '.join(Path(s).name for s in args.runs)})"
    meta["bands"] = args.bands
    report = summarise(rows, meta)
    Path(f"{args.out}.json").write_text(json.dumps(report, indent=2))
    Path(f"{args.out}.md").write_text(to_markdown(report))
    print(to_markdown(report))


if __name__ == "__main__":
    main()
