import io
import json

import pandas as pd

from tfbnn.cli import main

TINY = ["--epochs", "2", "--hidden-units", "4", "--quiet", "--seed", "0"]


def run(capsys, *argv):
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def test_encoding_and_markers_end_to_end(tmp_path, capsys):
    rows = "".join(f"{'Zürich' if i % 2 else 'Genève'},{'-' if i == 3 else i},{i * 0.5}\n"
                   for i in range(30))
    path = tmp_path / "latin.csv"
    path.write_bytes(("ville;x;y\n" + rows.replace(",", ";")).encode("latin-1"))
    model = tmp_path / "m"
    code, _, err = run(capsys, "fit", path, "--target", "y", "--out", model, *TINY)
    assert code == 1 and "--encoding latin-1" in err, err
    code, _, err = run(capsys, "fit", path, "--target", "y", "--out", model, "--encoding",
                       "latin-1", *TINY)
    assert code == 1 and "use --sep ';'" in err, err
    code, _, err = run(capsys, "fit", path, "--target", "y", "--out", model, "--encoding",
                       "latin-1", "--sep", ";", *TINY)
    assert code == 1 and "add them to --na-values" in err and "'-'" in err, err
    code, out, err = run(capsys, "fit", path, "--target", "y", "--out", model, "--encoding",
                         "latin-1", "--sep", ";", "--na-values", "-", "--impute", "mean", *TINY)
    assert code == 0, err
    meta = json.loads((model / "cli.json").read_text())
    assert meta["encoding"] == "latin-1" and meta["na_values"] == ["-"]
    code, out, err = run(capsys, "predict", model, path)  # read as at fitting
    assert code == 0, err
    assert len(pd.read_csv(io.StringIO(out))) == 30
    code, out, err = run(capsys, "evaluate", model, path, "--json")
    assert code == 0, err
    new = tmp_path / "new.csv"
    new.write_bytes(("ville;x;y\nBern;1;2\nZürich;2;1\n").encode("latin-1"))
    code, out, err = run(capsys, "predict", model, new)
    assert code == 0, err
    assert err.startswith("tfbnn: warning: Column 'ville': 1 row(s) hold a category not seen")


def test_missing_value_hint_spells_flags(tmp_path, capsys):
    path = tmp_path / "gap.csv"
    path.write_text("a,y\n" + "".join(f"{'' if i == 2 else i},{i % 5}.5\n" for i in range(30)))
    code, _, err = run(capsys, "fit", path, "--target", "y", "--out", tmp_path / "m", *TINY)
    assert code == 1 and "use --impute mean to fill" in err, err


def test_constant_target_evaluated(tmp_path, capsys):
    path = tmp_path / "d.csv"
    path.write_text("a,y\n" + "".join(f"{i},{i % 5}.5\n" for i in range(30)))
    model = tmp_path / "m"
    assert run(capsys, "fit", path, "--target", "y", "--out", model, *TINY)[0] == 0
    one = tmp_path / "one.csv"
    one.write_text("a,y\n1,2.5\n2,2.5\n")
    code, out, err = run(capsys, "evaluate", model, one, "--json")
    assert code == 0, err


def test_categories_that_look_like_numbers_are_read_as_at_fitting(tmp_path, capsys):
    codes = ["05", "07", "a1"]
    path = tmp_path / "train.csv"
    path.write_text("code,x,y\n" + "".join(
        f"{codes[i % 3]},{i % 7},{(i % 3) + 0.1 * (i % 7)}\n" for i in range(60)))
    model = tmp_path / "m"
    assert run(capsys, "fit", path, "--target", "y", "--out", model, *TINY)[0] == 0
    meta = json.loads((model / "cli.json").read_text())
    assert meta["encoder"]["columns"][0]["categories"] == codes
    # A file (and parts of one) holding only number-like codes.
    new = tmp_path / "new.csv"
    new.write_text("code,x\n05,1\n07,2\n05,4\n07,3\n")
    whole = run(capsys, "predict", model, new)
    parts = run(capsys, "predict", model, new, "--chunk-rows", "2")
    for code, out, err in (whole, parts):
        assert code == 0 and "not seen" not in err, err
        assert len(pd.read_csv(io.StringIO(out))) == 4
    code, _, err = run(capsys, "evaluate", model, path, "--chunk-rows", "3")
    assert code == 0 and "not seen" not in err, err
