"""The book's reference pages: generated tables up to date, citations resolvable, every study's appendix section."""

import csv
import re
from pathlib import Path

import pytest

from esclib.labs import summary
from esclib.runner.book import CHAPTER_TIMES, LABS_TABLE, write_chapter_times, write_labs_table

REPO = Path(__file__).parent.parent
BIB_KEYS = set(re.findall(r"^@\w+\{([\w-]+),", (REPO / "book" / "references.bib").read_text(), re.M))


def test_committed_lab_table_is_up_to_date(tmp_path):
    assert (REPO / LABS_TABLE).read_text() == summary().to_csv(index=False), "run `esc book` to regenerate it"
    assert write_labs_table(tmp_path).read_text() == (REPO / LABS_TABLE).read_text()


def test_chapter_times_table_lists_every_chapter_and_only_measured_times(tmp_path):
    write_chapter_times(tmp_path, [("00_data", "quick", 90.0), ("01_pann_transfer", "-", None),
                                   ("99_extra", "paper", 600.0)], "x86_64, 2 CPU cores, no GPU, load 5.0")
    rows = {r["chapter"]: r for r in csv.DictReader((tmp_path / CHAPTER_TIMES).open())}
    assert rows["00_data"]["wall time (min)"] == "1.5" and rows["00_data"]["measured on"].startswith("x86_64")
    assert rows["01_pann_transfer"]["wall time (min)"] == "not measured"
    assert rows["99_extra"]["profile"] == "paper" and rows["99_extra"]["wall time (min)"] == "10.0"
    assert list(rows)[:7] == list(summary()["chapter"])
    for row in csv.DictReader((REPO / CHAPTER_TIMES).open()):  # a time only with the machine that measured it
        assert row["wall time (min)"] == "not measured" or "bench_book" not in row["measured on"]


@pytest.mark.parametrize("key", [
    "tsao2021rocling", "shah2025quaclrs", "jensen2018cae", "kong2020panns", "hornauer2021dls",  # the studies
    "code_panns", "code_panns_transfer", "sohn2020fixmatch", "code_fixmatch", "cances2022sslh", "code_sslh",
    "wang2022usb", "wu2018npid", "code_lemniscate", "guzhov2021esresnet", "susmelj2020lightly",
    "dacosta2022sololearn", "niizumi2021byola", "code_evar", "turian2022hear",  # reference implementations
    "piczak2015esc", "data_escus", "salamon2014urbansound", "stowell2015dcase", "gemmeke2017audioset",  # data
    "oliver2018realistic",
])
def test_bibliography_has_every_study_implementation_and_dataset(key):
    assert key in BIB_KEYS


def test_every_citation_of_the_pages_and_labs_resolves():
    texts = [p.read_text() for p in (REPO / "book").glob("*.md")]
    texts += [p.read_text() for p in (REPO / "esclib" / "labs").glob("ch*.py")]
    cited = {key.strip() for text in texts for keys in re.findall(r"\{cite(?::\w+)?\}`([^`]+)`", text)
             for key in keys.split(",")}
    assert cited and cited <= BIB_KEYS, sorted(cited - BIB_KEYS)


def test_appendix_covers_every_study_with_its_four_parts():
    text = (REPO / "book" / "protocols.md").read_text()
    sections = re.split(r"^\(protocols-\d{3}\)=$", text, flags=re.M)[1:]
    assert len(sections) == 5
    for section in sections:
        for part in ("**Protocol.**", "**Left unsaid.**", "**Errors and ambiguities.**", "**Decisions.**"):
            assert part in section
