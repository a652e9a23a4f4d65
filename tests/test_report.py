"""The report's pages: a table's CSV as an HTML table (ours with its interval, the paper, the difference; a cell
not produced greyed with its reason), a JSON file and the settings as nested tables."""

import html.parser
import json

import pytest

from darkside.errors import DarksideError
from darkside.report import CSV_COLUMNS, write_json_page, write_settings_page, write_table_pages

ROWS = [
    ("table1", "vgg16", "GeM [30]", "gem", "Tokyo", "79.4", "53.8130", "50.6612", "56.8669", "-25.5870", ""),
    ("table1", "vgg16", "GeM [30]", "gem", "ROxf", "60.9", "28.9", "27.0", "31.0", "-32.0", ""),
    ("table1", "vgg16", "CIConv [16]", "", "Tokyo", "83.3", "", "", "", "", "external model, not reproduced"),
    ("table1", "vgg16", "CIConv [16]", "", "ROxf", "", "", "", "", "", "external model, not reproduced"),
    ("table1", "paired-vgg16", "GeM [30]", "gem", "Tokyo", "", "4.3", "2.1", "6.0", "", "paired"),
    ("table1", "paired-vgg16", "GeM [30]", "gem", "Epoch (h)", "0:39", "0.0012", "", "", "", ""),
]


class Cells(html.parser.HTMLParser):
    """(class, text) of every table cell, the headings, the notes."""

    def __init__(self):
        super().__init__()
        self.cells, self.headings, self.notes, self._cell, self._in = [], [], [], None, None

    def handle_starttag(self, tag, attrs):
        if tag in ("td", "th"):
            self._cell = [dict(attrs).get("class", ""), "", dict(attrs).get("title", "")]
        elif tag in ("h2", "h3", "li"):
            self._in = [tag, ""]

    def handle_endtag(self, tag):
        if tag in ("td", "th") and self._cell is not None:
            self.cells.append(tuple(self._cell))
            self._cell = None
        elif tag in ("h2", "h3", "li") and self._in is not None:
            (self.notes if tag == "li" else self.headings).append(self._in[1])
            self._in = None

    def handle_data(self, data):
        if self._cell is not None:
            self._cell[1] += data
        if self._in is not None:
            self._in[1] += data


def _write_csv(path, rows):
    import csv

    with path.open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(CSV_COLUMNS)
        w.writerows(rows)


def test_a_table_page_shows_every_cell_and_greys_what_was_not_produced(tmp_path):
    _write_csv(tmp_path / "table1.csv", ROWS)
    [page] = write_table_pages(tmp_path, tmp_path / "out", ["table1"])
    assert page == tmp_path / "out" / "table1.html"
    p = Cells()
    p.feed(page.read_text())
    texts = [t for _, t, _ in p.cells]
    assert p.headings[0].startswith("Table 1.") and "VGG-16 backbone" in p.headings and "paired-vgg16" in p.headings
    # GeM's Tokyo cell: ours [interval], the paper, the difference
    i = texts.index("53.8 [50.7, 56.9]")
    assert texts[i + 1:i + 3] == ["79.4", "-25.6"]
    # CIConv was not produced: greyed, with the paper's value kept and the reason as a numbered note
    greyed = [(t, title) for cls, t, title in p.cells if cls == "np"]
    assert greyed == [("n/p1", "external model, not reproduced")] * 2
    assert "83.3" in texts and p.notes[0] == "external model, not reproduced"
    assert "4.30 [2.10, 6.00]1" in texts and p.notes[-1] == "paired"  # a produced cell's note is numbered too
    j = texts.index("0.0012")  # hours, and the paper's h:mm as it stands
    assert texts[j + 1:j + 3] == ["0:39", ""]


def test_a_table_page_refuses_a_file_of_another_layout(tmp_path):
    (tmp_path / "table1.csv").write_text("a,b\n1,2\n")
    with pytest.raises(DarksideError, match=r"table1\.csv: expected the columns table,block"):
        write_table_pages(tmp_path, tmp_path / "out", ["table1"])
    with pytest.raises(DarksideError, match=r"table3\.csv: no such table"):
        write_table_pages(tmp_path, tmp_path / "out", ["table3"])


def test_json_and_settings_pages_show_every_value(tmp_path):
    source = tmp_path / "calibration.json"
    source.write_text(json.dumps({"checks": {"night_gap": True}, "median_lightness": {"day": 51.5}, "seeds": [0, 1]}))
    p = Cells()
    p.feed(write_json_page(source, tmp_path / "c.html", "Calibration").read_text())
    texts = [t for _, t, _ in p.cells]
    assert p.headings == ["Calibration"]
    assert texts[texts.index("night_gap"):texts.index("night_gap") + 2] == ["night_gap", "true"]
    assert "51.5" in texts and "[0, 1]" in texts
    p = Cells()
    p.feed(write_settings_page("mini", {"finetune": {"lr": 3e-4, "epochs": 10}}, tmp_path / "s.html").read_text())
    texts = [t for _, t, _ in p.cells]
    assert p.headings == ["Settings: preset mini"] and {"lr", "0.0003", "epochs", "10"} <= set(texts)
    (tmp_path / "list.json").write_text("[1]")
    with pytest.raises(DarksideError, match="expected a JSON object"):
        write_json_page(tmp_path / "list.json", tmp_path / "l.html", "x")


def test_a_table_page_reads_the_tables_own_csv_and_marks_paired_data(tmp_path):
    """The page reads the CSV the tables verb writes (darkside.tables.render.COLUMNS, more columns than a page
    needs) and carries the paper's ! after a method trained with paired day-night data."""
    import csv

    from darkside.tables.render import COLUMNS

    with (tmp_path / "table1.csv").open("w", newline="") as f:
        w = csv.DictWriter(f, COLUMNS)
        w.writeheader()
        for block, title, method, nd in (("vgg16", "VGG16", "GeM [30]", False),
                                         ("vgg16", "VGG16", "GeM N/D [30]", True),
                                         ("paired-vgg16", "Paired difference against CLAHE CD (vgg16)", "GeM [30]",
                                          False)):
            w.writerow({"table": "table1", "block": block, "block_title": title, "method": method,
                        "recipe": "gem-nd" if nd else "gem", "extra": False, "paired_data": nd, "column": "Tokyo",
                        "paper": "79.4", "ours": "53.8", "ci_low": "50.0", "ci_high": "57.0", "diff": "-25.6",
                        "display": "", "note": ""})
    page = write_table_pages(tmp_path, tmp_path / "out", ["table1"])[0].read_text()
    assert ">GeM [30]<" in page and ">GeM N/D [30] !<" in page
    # each block is headed by the title the tables gave it, a paired block's by what it is paired against
    assert "<h3>VGG16</h3>" in page and "<h3>Paired difference against CLAHE CD (vgg16)</h3>" in page
