"""The demo world's wikiHow content: category tree and articles with methods and steps."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class Step:
    """One numbered step: a bold summary sentence and its elaboration."""

    summary: str
    detail: str
    bullets: tuple[str, ...] = ()  # sub-points listed under the step, as wikiHow often has


@dataclass(frozen=True)
class Method:
    """One method (or part) of an article, shown under an h3 heading."""

    name: str
    steps: tuple[Step, ...]


@dataclass(frozen=True)
class Article:
    """A wikiHow article: title without "How to", its category path and methods."""

    title: str
    category_path: tuple[str, ...]  # level-1 category first, leaf category last
    intro: str
    methods: tuple[Method, ...]
    videos: int = 0  # how many demo videos show this task
    tips: tuple[str, ...] = field(default_factory=tuple)

    @property
    def leaf_category(self) -> str:
        """The category the page is filed in (the last of its path)."""
        return self.category_path[-1]

    @property
    def display_title(self) -> str:
        """wikiHow's headline: "How to X", or "N Ways to X" for multi-method articles."""
        if len(self.methods) > 1:
            return f"{len(self.methods)} Ways to {self.title}"
        return f"How to {self.title}"


def _m(name: str, *steps: tuple[str, str]) -> Method:
    return Method(name, tuple(Step(s, d, STEP_BULLETS.get(s, ())) for s, d in steps))


# Sub-bullets of a few steps (keyed by the step summary): article text only, never narrated.
STEP_BULLETS: dict[str, tuple[str, ...]] = {
    "Wash and dry the zucchini.": ("Pick firm zucchini with glossy skin.", "Trim off both ends."),
    "Mash three ripe bananas in a bowl.": ("Bananas with brown spots are the sweetest.",),
    "Loosen the lug nuts with the wrench.": ("Do not remove them yet while the tire is on the ground.",),
    "Tape the edges along the ceiling and trim.": ("Use painter's tape, not masking tape.",),
}


_PANCAKE_STEPS = (
    ("Whisk the flour, sugar and baking powder together.", "Use a large bowl so the dry mix has room."),
    ("Beat the eggs with the milk and melted butter.", "Pour the wet mix slowly into the dry one."),
    ("Stir until the batter is just combined.", "A few small lumps keep the pancakes fluffy."),
    ("Heat a greased pan over medium heat.", "Test it with a drop of water that sizzles."),
    ("Pour a ladle of batter into the pan.", "Leave space between pancakes so they spread."),
    ("Flip the pancake when bubbles form on top.", "Cook the second side until golden brown."),
)

ARTICLES: tuple[Article, ...] = (
    Article(
        "Grill Zucchini",
        ("Food and Entertaining", "Recipes", "Vegetable Recipes"),
        "Grilled zucchini is a quick summer side dish with smoky, tender flesh.",
        (
            _m(
                "Grilling Zucchini Slices",
                ("Wash and dry the zucchini.", "Rub the skin under cold water to remove grit."),
                (
                    "Slice the zucchini lengthwise into thick planks.",
                    "Keep each plank about one centimetre thick.",
                ),
                ("Brush the slices with olive oil and salt.", "Oil both sides so they do not stick."),
                ("Grill the slices for three minutes per side.", "Look for dark grill marks before turning."),
            ),
            _m(
                "Grilling Zucchini Halves",
                ("Cut the zucchini in half from end to end.", "Scoop out a little of the seedy centre."),
                ("Score the cut side in a criss-cross pattern.", "The cuts let the marinade soak in."),
                ("Marinate the halves in garlic and lemon juice.", "Leave them for ten minutes on a plate."),
                ("Grill the halves cut side down until soft.", "Move them to cooler heat if they char."),
            ),
        ),
        videos=5,
        tips=("Serve the zucchini with a squeeze of lemon.", "Thicker slices stay firmer on the grill."),
    ),
    Article(
        "Make Banana Bread",
        ("Food and Entertaining", "Baking", "Breads"),
        "Banana bread turns overripe bananas into a moist, sweet loaf.",
        (
            _m(
                "Baking the Loaf",
                ("Preheat the oven to one hundred and eighty degrees.", "Grease a loaf tin while it heats."),
                ("Mash three ripe bananas in a bowl.", "Use a fork until only small lumps remain."),
                ("Mix in the melted butter, sugar and an egg.", "Stir until the mixture looks glossy."),
                ("Fold in the flour and baking soda.", "Stop stirring as soon as no flour shows."),
                ("Pour the batter into the loaf tin.", "Smooth the top with a spatula."),
                ("Bake the bread for about an hour.", "A skewer pushed into the middle comes out clean."),
            ),
        ),
        videos=5,
        tips=("Freeze overripe bananas until you have enough for a loaf.",),
    ),
    Article(
        "Make Lemonade",
        ("Food and Entertaining", "Drinks", "Lemonade"),
        "Fresh lemonade needs only lemons, sugar and water.",
        (
            _m(
                "Making Classic Lemonade",
                ("Roll the lemons on the counter.", "Press down hard so they release more juice."),
                ("Cut the lemons in half across the middle.", "Use a sharp knife on a cutting board."),
                ("Squeeze the juice into a jug.", "Catch the seeds with a small strainer."),
                ("Dissolve the sugar in warm water.", "Stir until the syrup turns clear."),
                ("Stir the syrup into the lemon juice.", "Add cold water until it tastes right."),
                ("Serve the lemonade over ice.", "Garnish each glass with a lemon slice."),
            ),
        ),
        videos=5,
    ),
    Article(
        "Make Pancakes",
        ("Food and Entertaining", "Recipes", "Breakfast"),
        "Fluffy pancakes are an easy weekend breakfast.",
        (_m("Making Fluffy Pancakes", *_PANCAKE_STEPS),),
        videos=5,
    ),
    # A duplicate page whose title differs only in case: the task miner must de-duplicate it.
    Article(
        "Make pancakes",
        ("Food and Entertaining", "Recipes", "Breakfast"),
        "A quick pancake recipe for busy mornings.",
        (_m("Making Quick Pancakes", *_PANCAKE_STEPS[:4]),),
    ),
    Article(
        "Plant Tomatoes",
        ("Home and Garden", "Gardening", "Vegetable Gardening"),
        "Tomato seedlings grow well in a sunny bed with rich soil.",
        (
            _m(
                "Planting Seedlings",
                ("Choose a spot with full sun.", "Tomatoes need at least six hours of light a day."),
                ("Dig a hole deeper than the pot.", "Deep planting grows a stronger root system."),
                ("Remove the lower leaves from the seedling.", "Pinch them off close to the stem."),
                ("Set the seedling in the hole and fill with soil.", "Firm the soil gently around the stem."),
                ("Push a stake into the ground beside the plant.", "Tie the stem loosely to the stake."),
                ("Water the plant deeply at the base.", "Keep the leaves dry to prevent disease."),
            ),
        ),
        videos=4,
    ),
    Article(
        "Paint a Wall",
        ("Home and Garden", "Home Maintenance", "Painting"),
        "A fresh coat of paint changes a room in an afternoon.",
        (
            _m(
                "Painting the Wall",
                ("Cover the floor with a drop cloth.", "Move furniture to the middle of the room."),
                ("Tape the edges along the ceiling and trim.", "Press the tape down firmly with a card."),
                ("Cut in the corners with a small brush.", "Paint a strip a few centimetres wide."),
                ("Roll the paint on in a large W shape.", "Fill in the shape without lifting the roller."),
                ("Apply a second coat after the first dries.", "Wait at least two hours between coats."),
                ("Peel off the tape while the paint is wet.", "Pull it back slowly at an angle."),
            ),
        ),
        videos=4,
    ),
    Article(
        "Clean a Window",
        ("Home and Garden", "Housekeeping", "Cleaning Windows"),
        "Streak-free windows need a good solution and a squeegee.",
        (
            _m(
                "Washing the Glass",
                ("Mix warm water with a little dish soap.", "Fill a bucket about halfway."),
                ("Dust the frame and the sill first.", "Loose dirt turns to mud when it gets wet."),
                ("Scrub the glass with a soft sponge.", "Work from the top of the window down."),
                ("Pull a squeegee across the glass.", "Wipe the blade after every stroke."),
                ("Dry the edges with a lint-free cloth.", "Catch the drips along the bottom."),
            ),
        ),
        videos=4,
    ),
    Article(
        "Change a Tire",
        ("Cars & Other Vehicles", "Car Maintenance and Repair", "Tires"),
        "Knowing how to change a flat tire gets you back on the road safely.",
        (
            _m(
                "Changing a Flat Tire",
                ("Park on flat ground and set the parking brake.", "Turn on your hazard lights."),
                ("Loosen the lug nuts with the wrench.", "Turn them counterclockwise about half a turn."),
                ("Raise the car with the jack.", "Place the jack under the frame near the flat tire."),
                ("Remove the lug nuts and the flat tire.", "Keep the nuts together in your pocket."),
                ("Mount the spare tire on the wheel studs.", "Line up the holes with the studs."),
                ("Tighten the lug nuts in a star pattern.", "Lower the car and tighten them once more."),
            ),
        ),
        videos=5,
    ),
    Article(
        "Check Engine Oil",
        ("Cars & Other Vehicles", "Car Maintenance and Repair", "Engine Maintenance"),
        "Checking the oil level regularly protects your engine.",
        (
            _m(
                "Reading the Dipstick",
                ("Park the car and let the engine cool.", "Wait about ten minutes after driving."),
                ("Open the hood and find the dipstick.", "Its handle is usually bright yellow."),
                ("Pull out the dipstick and wipe it clean.", "Use a paper towel or a rag."),
                ("Push the dipstick back in all the way.", "Then pull it out again slowly."),
                ("Read the oil level between the two marks.", "Add oil if it is near the lower mark."),
            ),
        ),
        videos=4,
    ),
    Article(
        "Fold a Paper Airplane",
        ("Hobbies and Crafts", "Papercraft", "Paper Airplanes"),
        "A classic dart plane takes a single sheet of paper.",
        (
            _m(
                "Folding a Dart",
                ("Fold the paper in half lengthwise.", "Crease it sharply, then unfold it."),
                ("Fold the top corners to the centre line.", "The top now looks like a pointed roof."),
                ("Fold the new edges to the centre again.", "Make the nose narrow and sharp."),
                ("Fold the plane in half along the centre crease.", "Keep the folded edges on the outside."),
                ("Fold each wing down to the bottom edge.", "Make both wings the same size."),
                ("Throw the plane gently and level.", "Bend the back edges up for more lift."),
            ),
        ),
        videos=4,
    ),
    Article(
        "Apologize to a Friend",
        ("Relationships", "Friends", "Maintaining Friendships"),
        "A sincere apology can repair a friendship.",
        (
            _m(
                "Saying Sorry",
                ("Think about what went wrong.", "Understand how your friend feels."),
                ("Apologize in person if you can.", "Say clearly that you are sorry."),
                ("Listen to your friend's side.", "Do not interrupt or make excuses."),
                ("Offer to make things right.", "Ask what would help."),
            ),
        ),
    ),
)

# Level-1 categories of the world that HowTo100M dropped as not visual.
ABSTRACT_LEVEL1 = frozenset({"Relationships"})

# Spanish narration for one task so the world holds a non-English video (its only English is a
# machine translation offered with tlang=en, as YouTube does).
SPANISH_TASK = "Make Lemonade"
SPANISH_STEPS: tuple[str, ...] = (
    "Haz rodar los limones sobre la encimera y presiona fuerte para sacar más jugo.",
    "Corta los limones por la mitad con un cuchillo afilado sobre la tabla.",
    "Exprime el jugo en una jarra y atrapa las semillas con un colador pequeño.",
    "Disuelve el azúcar en agua tibia y remueve hasta que el almíbar esté claro.",
    "Mezcla el almíbar con el jugo de limón y añade agua fría al gusto.",
    "Sirve la limonada con hielo y decora cada vaso con una rodaja de limón.",
)


def level1_categories() -> list[str]:
    """Level-1 categories in first-seen order."""
    return list(dict.fromkeys(a.category_path[0] for a in ARTICLES))


def url_title(title: str) -> str:
    """wikiHow's URL form of a title: spaces become dashes."""
    return title.replace(" ", "-")
