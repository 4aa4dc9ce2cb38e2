"""The article parser on real wikiHow pages (fixtures) and on inputs that are not articles."""

from __future__ import annotations

from pathlib import Path

import pytest

from tasks.wikihow.parser import ParseError, TruncatedPageError, decode_html, parse_article

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "wikihow"


@pytest.fixture(scope="module")
def grill_fish():
    return parse_article((FIXTURES / "grill-fish.html").read_bytes())


@pytest.fixture(scope="module")
def flank_steak():
    return parse_article((FIXTURES / "grill-flank-steak.html").read_bytes())


def test_multi_method_article(grill_fish) -> None:
    assert grill_fish.title == "Grill Fish"
    assert grill_fish.headline == "How to Grill Fish"
    assert grill_fish.categories == ("Barbecue Fish", "Barbecue", "Food and Entertaining")
    assert [m.name for m in grill_fish.methods] == [
        "Cleaning the Grill to Prevent Sticking",
        "Fillets",
        "Whole Fish",
    ]
    assert [m.kind for m in grill_fish.methods] == ["method"] * 3
    assert [len(m.steps) for m in grill_fish.methods] == [4, 7, 8]
    assert grill_fish.n_steps == 19
    assert grill_fish.article_id == "12232"
    assert grill_fish.url == "https://www.wikihow.com/Grill-Fish"


def test_step_summary_and_full_text(grill_fish) -> None:
    first = grill_fish.methods[0].steps[0]
    assert first.summary == "Turn the grill on to about 550 °F (288 °C) to burn off grime."
    assert first.text.startswith(first.summary + " Cover the grate on your grill")
    # the bullet under the step is part of the text, reference markers are not
    assert first.text.endswith("leave the vents open to feed the fire with oxygen.")
    assert "[1]" not in first.text
    # a link inside a bullet keeps its words and spacing
    buy = grill_fish.methods[2].steps[0]
    assert "ask the butcher to do it for you or do it yourself at home." in buy.text


def test_parts_article_and_ingredients_are_not_parts(flank_steak) -> None:
    assert flank_steak.title == "Grill Flank Steak"
    assert [m.kind for m in flank_steak.methods] == ["part"] * 3
    assert [m.name for m in flank_steak.methods] == [
        "Scoring and Seasoning the Meat",
        "Grilling to Perfection",
        "Serving Flank Steak",
    ]
    assert [len(m.steps) for m in flank_steak.methods] == [4, 7, 4]
    assert flank_steak.n_steps == 15  # the page title says "15 Steps"
    assert flank_steak.categories == (
        "Steak Dishes", "Beef and Lamb", "Meat", "Recipes", "Food and Entertaining",
    )  # fmt: skip
    assert flank_steak.article_id == "1345060"


def test_nested_bullets_are_read_once_with_spaces(flank_steak) -> None:
    step = flank_steak.methods[1].steps[5]
    assert step.summary == "Remove the meat when it reaches 130 to 160 °F (54 to 71 °C)."
    assert step.text.count("Medium rare") == 1
    assert "doneness: 120 °F (49 °C): Rare 130 °F (54 °C): Medium rare 140" in step.text


def test_json_shape(flank_steak) -> None:
    data = flank_steak.to_json_dict()
    assert set(data) >= {"title", "categories", "methods", "n_steps"}
    assert data["methods"][0]["steps"][1]["summary"] == "Choose a marinade or dry rub for your steak."
    assert data["n_steps"] == sum(len(m["steps"]) for m in data["methods"])


def test_single_method_page_without_breadcrumb_uses_wgcategories() -> None:
    html = """<html><head><title>How to Boil an Egg: 5 Steps (with Pictures) - wikiHow</title>
    <script>mw.config.set({"wgArticleId":42,"wgCategories":["Eggs","Recipes","Food and Entertaining",
    "Breakfast","Recipes","Food and Entertaining"]});</script></head><body>
    <div class="section steps"><div class="section_text"><ol class="steps_list_2">
    <li><div class="step"><b class="whb">Put the egg in water.</b> Cold water.</div></li>
    <li><div class="step">Boil it for nine minutes.</div></li></ol></div></div></body></html>"""
    article = parse_article(html)
    assert article.title == "Boil an Egg"
    assert article.categories == ("Eggs", "Recipes", "Food and Entertaining")
    assert article.article_id == "42"
    assert [m.kind for m in article.methods] == ["steps"]
    assert [s.summary for s in article.methods[0].steps] == [
        "Put the egg in water.",
        "Boil it for nine minutes.",
    ]


@pytest.fixture(scope="module")
def ringing_2021():
    return parse_article((FIXTURES / "stop-ringing-in-ears.html").read_bytes())


@pytest.fixture(scope="module")
def power_outage():
    return parse_article((FIXTURES / "know-power-outage.html").read_bytes())


def test_2021_page_with_qa_and_tips_after_the_steps(ringing_2021) -> None:
    """A page served in 2021 (a year after the other fixtures): same values as read off the page."""
    assert ringing_2021.title == "Stop Ringing in Ears"
    assert ringing_2021.headline == "How to Stop Ringing in Ears"
    assert ringing_2021.categories == ("Tinnitus", "Ear Health", "Health")
    assert [m.name for m in ringing_2021.methods] == [
        "Treating Momentary Ringing in the Ears",
        "Treating Chronic Ringing in the Ears",
        "Preventing Tinnitus",
    ]
    assert [m.kind for m in ringing_2021.methods] == ["method"] * 3
    assert [len(m.steps) for m in ringing_2021.methods] == [3, 5, 3]
    assert ringing_2021.step_summaries[:2] == ["Try the skull-thumping trick.", "Try waiting it out."]
    assert ringing_2021.step_summaries[-1] == "Consume less alcohol and nicotine."
    first = ringing_2021.methods[0].steps[0]
    # the step's bullets are part of its text, in order
    assert "Cover your ears with your palms. Your fingers should be pointed back" in first.text
    assert first.text.endswith("After 40 or 50 times, see if the ringing has subsided.")
    # neither the Q&A nor the Tips that follow the last method are steps
    all_text = " ".join(s.text for m in ringing_2021.methods for s in m.steps)
    assert "What is the remedy for tinnitus?" not in all_text
    assert "Boosting your immune system" not in all_text
    assert ringing_2021.article_id == "543713"
    assert ringing_2021.url == "https://www.wikihow.com/Stop-Ringing-in-Ears"


def test_single_method_page_declared_one_of_one(power_outage) -> None:
    """One method headed "Method 1 of 1", then Tips and Warnings: one method of six steps, whole."""
    assert power_outage.title == "Know when Your Power Will Go Out in California Rolling Blackouts"
    assert power_outage.categories == ("Disaster Preparedness", "Home and Garden")
    assert [(m.name, m.kind) for m in power_outage.methods] == [("Checking the Outage", "method")]
    assert power_outage.step_summaries == [
        "Open the outage look-up from the PG&E outage page.",
        "Type in an address to find a building’s specific block number.",
        "Click on the map to find the block number for an area.",
        "Combine your outage and sub outage block to get the block number.",
        "Find your block’s scheduled shutoff time on the PG&E outage table.",
        "Expect power to be out for around 1–2 hours at the estimated time.",
    ]
    last = power_outage.methods[0].steps[-1]
    assert last.text.endswith("Contact PG&E to find out if there are any other problems in your area.")
    all_text = " ".join(s.text for s in power_outage.methods[0].steps)
    assert "Your shutoff time may change without warning." not in all_text  # a warning, not a step
    assert power_outage.article_id == "12118551"


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"", "empty file"),
        (b"  \n\t ", "empty file"),
        (b"caf\xe9 <html>", "not UTF-8"),
        (b"\x89PNG\r\n\x1a\n\x00\x00", "binary data"),
        (b"just some text", "not HTML"),
        (b"<html><head><title>Cats - Wikipedia</title></head><body><p>x</p></body></html>", "not a wikiHow"),
    ],
)
def test_bad_input_raises_one_line_parse_error(data: bytes, message: str) -> None:
    with pytest.raises(ParseError) as info:
        parse_article(data)
    assert message in str(info.value)
    assert "\n" not in str(info.value)


def test_truncated_real_page_is_refused() -> None:
    data = (FIXTURES / "grill-fish.html").read_bytes()
    with pytest.raises(ParseError, match="no steps list"):
        parse_article(data[:3000])


def test_decode_strips_bom() -> None:
    assert decode_html(b"\xef\xbb\xbf<html></html>") == "<html></html>"


# --- truncated pages: flagged, never returned as a shorter article ----------------------------------


def cut_inside(data: bytes, marker: bytes, after: int = 0) -> bytes:
    """The page cut 40 bytes into the `after`-th occurrence of `marker` (a download that stopped)."""
    at = -1
    for _ in range(after + 1):
        at = data.index(marker, at + 1)
    return data[: at + 40]


@pytest.mark.parametrize(
    ("name", "marker", "after"),
    [
        pytest.param("grill-fish.html", b'<div class="step">', 6, id="inside-method-2-of-3"),
        pytest.param("grill-fish.html", b'<div class="step">', 18, id="inside-the-last-step"),
        pytest.param("grill-flank-steak.html", b'<div class="step">', 9, id="inside-part-2-of-3"),
        pytest.param("stop-ringing-in-ears.html", b'<div class="step">', 4, id="2021-inside-method-2-of-3"),
        pytest.param("know-power-outage.html", b'<div class="step">', 5, id="inside-method-1-of-1"),
    ],
)
def test_page_cut_mid_steps_is_flagged(name: str, marker: bytes, after: int) -> None:
    """Cut inside method 2 of 3, grill-fish.html used to parse as 2 methods of 4 and 3 steps (of 19)."""
    data = cut_inside((FIXTURES / name).read_bytes(), marker, after)
    with pytest.raises(TruncatedPageError) as info:
        parse_article(data)
    assert "truncated" in str(info.value) and "\n" not in str(info.value)
    assert isinstance(info.value, ParseError)  # callers that only know ParseError still refuse it


def test_page_missing_a_declared_method_is_flagged() -> None:
    """Closed properly but "Method 3 of 3" never arrives (a proxy or cache dropped a block)."""
    from selectolax.lexbor import LexborHTMLParser

    tree = LexborHTMLParser((FIXTURES / "grill-fish.html").read_text())
    tree.css("div.section.steps")[2].decompose()
    html = tree.html or ""
    assert html.rstrip().endswith("</html>")
    with pytest.raises(TruncatedPageError, match="2 of 3 methods"):
        parse_article(html)


def test_complete_pages_are_not_flagged(grill_fish, flank_steak, ringing_2021, power_outage) -> None:
    assert grill_fish.n_steps == 19 and flank_steak.n_steps == 15
    assert ringing_2021.n_steps == 11 and power_outage.n_steps == 6
    # Trailing whitespace and a comment after </html> (some caches add one) are still a complete page.
    data = (FIXTURES / "grill-fish.html").read_bytes() + b"\n<!-- cached 2020-08-15 -->\n"
    assert parse_article(data).n_steps == 19


# --- recipes: Ingredients grouped under the method names, Things You'll Need, a Video section ----------


@pytest.fixture(scope="module")
def marinate_pork():
    return parse_article((FIXTURES / "marinate-pork.html").read_bytes())


@pytest.fixture(scope="module")
def ube_halaya():
    return parse_article((FIXTURES / "make-ube-halaya.html").read_bytes())


def test_recipe_whose_ingredients_repeat_the_method_names(marinate_pork) -> None:
    """The Ingredients list is split under bold "<method name>:" lines; only the two methods are read."""
    assert marinate_pork.title == "Marinate Pork"  # <title> "How to Marinate Pork: 13 Steps (with Pictures)"
    assert marinate_pork.categories == ("Pork", "Meat", "Recipes", "Food and Entertaining")
    assert [(m.name, m.kind) for m in marinate_pork.methods] == [
        ("Make-your-own marinade", "method"),
        ("Red wine pork marinade", "method"),
    ]
    assert [len(m.steps) for m in marinate_pork.methods] == [7, 6]
    assert marinate_pork.n_steps == 13
    first = marinate_pork.methods[0].steps[0]
    assert first.summary == (
        "Begin to make a marinade by placing a flavorful liquid, such as fruit juice or red wine, in a medium bowl."
    )
    assert first.text.endswith(
        "The liquid should cover the meat when it is placed in your marinating container."
    )
    # steps with no elaboration: the text is the bold sentence alone
    last = marinate_pork.methods[1].steps[-1]
    assert last.summary == last.text == "Cook as you usually would."
    all_text = " ".join(s.text for m in marinate_pork.methods for s in m.steps)
    for not_a_step in ("60ml red wine", "Pinch ground cumin", "Gallon-size resealable plastic bag"):
        assert not_a_step not in all_text  # Ingredients and Things You'll Need
    assert marinate_pork.article_id == "1804516"
    assert marinate_pork.url == "https://www.wikihow.com/Marinate-Pork"


def test_parts_recipe_with_video_and_things_youll_need(ube_halaya) -> None:
    assert ube_halaya.title == "Make Ube Halaya"
    assert ube_halaya.categories == (
        "Philippine Dishes", "Asian Cuisine", "World Cuisines", "Recipes", "Food and Entertaining",
    )  # fmt: skip
    assert [(m.name, m.kind) for m in ube_halaya.methods] == [
        ("Making Ube Halaya", "part"),
        ("Making Latik (for Topping)", "part"),
    ]
    assert [len(m.steps) for m in ube_halaya.methods] == [10, 7]
    assert ube_halaya.step_summaries[0] == "Prepare the ube."
    assert ube_halaya.step_summaries[-1] == "Serve on top of ube halaya."
    # bold labels inside a step's bullets stay in its text, after the step's own bold summary
    first = ube_halaya.methods[0].steps[0]
    assert "get it ready for cooking: Fresh ube: Simmer whole or in large chunks" in first.text
    assert first.text.endswith("Frozen grated ube: Leave it at room temperature until it thaws, then press it "
                               "hard to squeeze out water. Pour out the water.")  # fmt: skip
    last = ube_halaya.methods[1].steps[-1]
    assert "[12]" not in last.text  # reference markers dropped, the bullet's words kept
    assert "Store latik in an airtight container in the refrigerator for up to one month." in last.text
    all_text = " ".join(s.text for m in ube_halaya.methods for s in m.steps)
    for not_a_step in ("evaporated milk 1 can", "Large pot or wok", "shared with YouTube"):
        assert not_a_step not in all_text  # Ingredients, Things You'll Need, the Video section
    assert ube_halaya.article_id == "1339947"


@pytest.mark.parametrize(
    ("name", "after"),
    [
        pytest.param("marinate-pork.html", 9, id="recipe-inside-method-2-of-2"),
        pytest.param("make-ube-halaya.html", 12, id="recipe-inside-part-2-of-2"),
    ],
)
def test_recipe_page_cut_mid_steps_is_flagged(name: str, after: int) -> None:
    data = cut_inside((FIXTURES / name).read_bytes(), b'<div class="step">', after)
    with pytest.raises(TruncatedPageError):
        parse_article(data)


# --- a parenthesised qualifier that is part of the task -------------------------------------------------


def test_title_ending_in_a_parenthesised_qualifier_keeps_it() -> None:
    """Values read off the page: "(COVID 19)" is in its headline, breadcrumb leaf and URL, so in the task too."""
    article = parse_article((FIXTURES / "information-source-reliable.html").read_bytes())
    assert article.headline == "How to Determine if an Information Source Is Reliable (COVID 19)"
    assert article.title == "Determine if an Information Source Is Reliable (COVID 19)"
    assert article.categories == ("COVID 19", "Infectious Diseases", "Health")
    assert [(m.name, m.kind) for m in article.methods] == [
        ("Vetting the Source", "method"),
        ("Looking for Signs of Misinformation", "method"),
        ("Stopping the Spread of Misinformation", "method"),
    ]
    assert [len(m.steps) for m in article.methods] == [6, 5, 4]
    assert article.methods[0].steps[4].summary == "Confirm a claim on the WHO Mythbuster or Q&A page."
    assert article.step_summaries[-1] == "Call out misinformation whenever you see it."
    # "trusted sources" is the article's own wording here, kept as written
    second = article.methods[0].steps[1]
    assert second.summary == "Check to see if the information is backed by trusted sources."
    assert second.text.endswith("In this case, sunlight does not protect you from COVID-19.")
    all_text = " ".join(s.text for m in article.methods for s in m.steps)
    assert "consider and research whether or not it’s true" not in all_text  # a tip, not a step
    assert "Never try any “cures”" not in all_text  # a warning
    assert article.article_id == "12064680"
    assert article.url == "https://www.wikihow.com/Determine-if-an-Information-Source-Is-Reliable-(COVID-19)"
