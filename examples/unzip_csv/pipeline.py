"""Unzip a CSV archive and read it: the smallest pipeline that moves a real file between tasks.

The first task builds a small zip archive of a CSV file itself (no downloads), the second extracts the
CSV from it, the third reads the table and reports its shape and a column total. Every component uses the
standard library only, so the pipeline runs as is on any Python image and under ``kfp.local``.

Compile::

    kfp-ci compile examples/unzip_csv/pipeline.py
"""

from typing import NamedTuple

from kfp import dsl
from kfp.dsl import Dataset, Input, Metrics, Output

IMAGE = "python:3.11-slim"


@dsl.component(base_image=IMAGE)
def make_archive(rows: int, seed: int, archive: Output[dsl.Artifact]) -> None:
    """Write ``rows`` lines of a small sales table to ``sales.csv`` inside a zip archive."""
    import csv
    import io
    import random
    import zipfile

    rng = random.Random(seed)
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(["day", "store", "units", "price"])
    for day in range(rows):
        writer.writerow([day, rng.choice(["north", "south", "east"]), rng.randint(1, 40),
                         round(rng.uniform(2.0, 9.0), 2)])
    with zipfile.ZipFile(archive.path, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("data/sales.csv", buffer.getvalue())
    archive.metadata["members"] = ["data/sales.csv"]


# Not named unzip_csv: a component sharing the pipeline's name ("unzip-csv") makes kfp load the compiled
# pipeline as that component (kfp.components.load_component_from_file, and so kfp.local, pick it by name).
@dsl.component(base_image=IMAGE)
def extract_csv(archive: Input[dsl.Artifact], member: str, table: Output[Dataset]) -> None:
    """Extract the CSV ``member`` from the archive into the ``table`` dataset."""
    import shutil
    import zipfile

    with zipfile.ZipFile(archive.path) as zf:
        names = zf.namelist()
        if member not in names:
            raise ValueError(f"{member!r} is not in the archive; it has: {', '.join(names)}")
        with zf.open(member) as src, open(table.path, "wb") as dst:
            shutil.copyfileobj(src, dst)
    table.metadata["source_member"] = member


@dsl.component(base_image=IMAGE)
def read_csv(table: Input[Dataset], metrics: Output[Metrics]) -> NamedTuple("Shape", [("rows", int), ("columns", int)]):
    """Read the table: count rows and columns, total the ``units`` column."""
    import csv
    from collections import namedtuple

    with open(table.path, newline="") as fh:
        records = list(csv.DictReader(fh))
    if not records:
        raise ValueError("the CSV file has no rows")
    columns = list(records[0])
    units = sum(int(r["units"]) for r in records)
    metrics.log_metric("rows", len(records))
    metrics.log_metric("columns", len(columns))
    metrics.log_metric("total_units", units)
    shape = namedtuple("Shape", ["rows", "columns"])
    return shape(len(records), len(columns))


@dsl.pipeline(name="unzip-csv", description="Build a zip archive of a CSV file, extract it and read the table.")
def unzip_csv_pipeline(rows: int = 50, seed: int = 7, member: str = "data/sales.csv") -> None:
    archive = make_archive(rows=rows, seed=seed)
    extracted = extract_csv(archive=archive.outputs["archive"], member=member)
    read_csv(table=extracted.outputs["table"])
