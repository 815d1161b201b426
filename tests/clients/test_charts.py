from assessments import charts


def test_bars_round_half_up_like_the_table_beside_them():
    svg = charts.pair_bars(
        chart_id="t",
        title="Scores",
        desc="Two partners",
        rows=[("Index", 52.5, 47.5, True)],
        names={"A": "A", "B": "B"},
    )
    assert "A 53" in svg and "B 48" in svg
    assert ">gap<" in svg


def test_charts_are_described_for_screen_readers():
    svg = charts.trend_chart(
        chart_id="idx",
        title="Index over time",
        desc="Both partners",
        labels=["1 Jan", "1 Apr"],
        series=[("A", "Sam", [40, 60]), ("B", "Alex", [None, 55])],
        last_notes={"A": "Reliable improvement"},
    )
    assert 'role="img" aria-labelledby="idx-title idx-desc"' in svg
    assert '<title id="idx-title">Index over time</title>' in svg
    assert "<title>Sam, 1 Apr: 60 (Reliable improvement)</title>" in svg
    assert svg.count("<polyline") == 1  # Alex has one point only: a dot, no line


def test_chart_text_is_escaped():
    svg = charts.pair_bars(
        chart_id="t", title="<b>", desc="&", rows=[("<script>", 10, None, None)], names={"A": "<i>", "B": "B"}
    )
    assert "<script>" not in svg and "&lt;script&gt;" in svg
    assert "B: not enough answers" in svg


def test_a_chart_is_drawn_once_for_its_arguments_and_anew_when_any_of_them_changes():
    charts.pair_bars.cache_clear()
    drawn = {
        "chart_id": "c",
        "title": "Scores",
        "desc": "Both",
        "rows": [("Index", 61.0, 48.0, True)],
        "names": {"A": "Sam", "B": "Alex"},
    }
    first = charts.pair_bars(**drawn)
    again = charts.pair_bars(**{**drawn, "rows": [("Index", 61.0, 48.0, True)], "names": {"B": "Alex", "A": "Sam"}})
    assert again is first  # the same values (in another dict order): drawn once
    assert charts.pair_bars.cache_info().hits == 1

    changed = charts.pair_bars(**{**drawn, "rows": [("Index", 62.0, 48.0, True)]})
    assert "A 62" in changed and "A 61" not in changed
    renamed = charts.pair_bars(**{**drawn, "names": {"A": "Jo", "B": "Alex"}})
    assert "Jo" in renamed and "Sam" not in renamed
    assert charts.pair_bars.cache_info().misses == 3
