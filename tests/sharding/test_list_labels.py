"""List files as published: labels against class folders, and label type from the whole file."""

from __future__ import annotations

import pytest

from synapt_fast.sharding.sources import ListSource


def _tree(tmp_path, classes, per_class):
    """Empty stand-in files are enough here: labels are decided before any clip is read."""
    root = tmp_path / "videos"
    for c in classes:
        (root / c).mkdir(parents=True)
        for i in range(per_class):
            (root / c / f"v_{c}_g{i:02d}.avi").write_bytes(b"x")
    return root


# Published order (UCF101 classInd.txt): not alphabetical once letter case counts.
PUBLISHED = ["YoYo", "apply_eye_makeup", "Basketball", "archery"]


def test_class_file_in_another_order_stops_naming_lines(tmp_path):
    root = _tree(tmp_path, PUBLISHED, 50)
    lst = tmp_path / "train.txt"
    lst.write_text("".join(f"{c}/v_{c}_g{i:02d}.avi {label}\n"
                           for label, c in enumerate(PUBLISHED) for i in range(50)))
    assert len(list(ListSource(lst, root, PUBLISHED).items())) == 200  # the right class file is fine
    with pytest.raises(ValueError) as e:
        ListSource(lst, root, sorted(PUBLISHED))  # the alphabetical one would mislabel 150 of the 200 clips
    msg = str(e.value)
    assert "train.txt" in msg and "another class than its folder" in msg
    assert "line 1: YoYo/v_YoYo_g00.avi labelled 0 = 'Basketball'" in msg


def test_a_few_lines_disagreeing_with_their_folder_are_skipped(tmp_path):
    root = _tree(tmp_path, PUBLISHED, 10)
    lines = [f"{c}/v_{c}_g{i:02d}.avi {label}" for label, c in enumerate(PUBLISHED) for i in range(10)]
    lines[3] = "YoYo/v_YoYo_g03.avi 2"
    lst = tmp_path / "train.txt"
    lst.write_text("\n".join(lines) + "\n")
    items = list(ListSource(lst, root, PUBLISHED).items())
    bad = [it for it in items if it.problem]
    assert len(items) == 40 and [it.id for it in bad] == ["YoYo/v_YoYo_g03.avi"]
    assert bad[0].problem == "train.txt:4: labelled 2 = 'Basketball' but under the class folder 'YoYo'"


def test_one_odd_label_does_not_change_how_the_list_is_read(tmp_path):
    root = _tree(tmp_path, PUBLISHED, 5)
    lines = [f"{c}/v_{c}_g{i:02d}.avi {label}" for label, c in enumerate(PUBLISHED) for i in range(5)]
    lines[7] = lines[7].rsplit(" ", 1)[0] + " 1.5"
    lines[12] = lines[12].rsplit(" ", 1)[0] + " Basketball"
    lst = tmp_path / "train.txt"
    lst.write_text("\n".join(lines) + "\n")
    items = list(ListSource(lst, root, PUBLISHED).items())
    good = [it for it in items if not it.problem]
    assert len(good) == 18 and all(it.class_name == it.id.split("/")[0] for it in good)
    reasons = {it.id: it.problem for it in items if it.problem}
    assert reasons == {
        lines[7].split()[0]: "train.txt:8: label '1.5' is not an integer; this list's labels are integers (18 of 20 lines)",
        lines[12].split()[0]: "train.txt:13: label 'Basketball' is not an integer; this list's labels are "
                              "integers (18 of 20 lines)",
    }


def test_class_name_list_with_a_stray_integer(tmp_path):
    root = _tree(tmp_path, ["archery", "yoyo"], 3)
    lst = tmp_path / "train.csv"
    lst.write_text("archery/v_archery_g00.avi;archery\narchery/v_archery_g01.avi;archery\n"
                   "yoyo/v_yoyo_g00.avi;yoyo\nyoyo/v_yoyo_g01.avi;1\n")
    src = ListSource(lst, root)
    assert src.class_names == ["archery", "yoyo"]  # "1" is not made a class
    reasons = {it.id: it.problem for it in src.items() if it.problem}
    assert reasons == {"yoyo/v_yoyo_g01.avi": "train.csv:4: unknown class '1'; this list's labels are class names "
                                              "(3 of 4 lines)"}


def test_a_list_that_is_not_utf8_is_named(tmp_path):
    root = _tree(tmp_path, ["archery"], 1)
    lst = tmp_path / "train.txt"
    lst.write_bytes("archery/v_archery_g00.avi archery\ncafé/x.avi archery\n".encode("latin-1"))
    with pytest.raises(ValueError, match=r"train.txt: not UTF-8 text \(byte 37\)"):
        ListSource(lst, root)
