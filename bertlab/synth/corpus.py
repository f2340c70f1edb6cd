"""The bundled ``corpus``: unlabeled English documents for masked-language-model pretraining.

Short stories about a small, consistent world: each person has a trade, a workplace, tools
and things they make or tend, so the words in a sentence predict each other ("the baker
baked the bread in the oven"). A tiny BERT can learn this world in minutes, which makes
fill-mask results easy to judge. Each document is a few sentences about one person, so
consecutive sentences also belong together (for next-sentence prediction).
"""

from __future__ import annotations

import random

SEED = 20261122
NUM_DOCUMENTS = 3000

# trade: (workplace, [things made or tended], verb, [tools], [people served])
TRADES = {
    "baker": ("bakery", ["bread", "cake", "pie", "rolls"], "baked", ["oven", "tray"], ["customers", "children"]),
    "chef": ("kitchen", ["soup", "pasta", "stew", "rice"], "cooked", ["pan", "pot"], ["guests", "diners"]),
    "farmer": ("farm", ["wheat", "corn", "potatoes", "carrots"], "grew", ["tractor", "plough"], ["villagers", "neighbours"]),
    "fisher": ("harbour", ["fish", "crabs", "lobsters", "mussels"], "caught", ["net", "boat"], ["villagers", "cooks"]),
    "carpenter": ("workshop", ["table", "chair", "door", "shelf"], "built", ["saw", "hammer"], ["neighbours", "clients"]),
    "gardener": ("garden", ["roses", "tulips", "herbs", "tomatoes"], "planted", ["spade", "hose"], ["owners", "visitors"]),
    "teacher": ("school", ["lesson", "test", "story", "song"], "taught", ["chalk", "book"], ["pupils", "students"]),
    "doctor": ("hospital", ["patient", "wound", "fever", "cough"], "treated", ["stethoscope", "bandage"], ["patients", "families"]),
    "pilot": ("airport", ["plane", "jet", "glider", "helicopter"], "flew", ["map", "radio"], ["passengers", "crew"]),
    "painter": ("studio", ["portrait", "landscape", "mural", "picture"], "painted", ["brush", "easel"], ["collectors", "visitors"]),
    "tailor": ("shop", ["coat", "dress", "suit", "shirt"], "sewed", ["needle", "thread"], ["customers", "clients"]),
    "musician": ("theatre", ["song", "tune", "melody", "concert"], "played", ["violin", "piano"], ["audience", "fans"]),
}
NAMES = ["anna", "ben", "clara", "david", "emma", "felix", "grace", "henry", "ida", "jack",
         "kate", "leo", "mia", "noah", "olga", "paul", "rosa", "sam", "tina", "victor"]
PRONOUN = {n: ("she" if n in {"anna", "clara", "emma", "grace", "ida", "kate", "mia", "olga", "rosa", "tina"} else "he")
           for n in NAMES}
MORNING = ["woke up early", "got up at dawn", "had breakfast at home", "drank a cup of tea"]
WEATHER = [("it was raining", "took an umbrella"), ("it was cold", "wore a warm coat"),
           ("it was sunny", "wore a hat"), ("it was windy", "closed the window")]
EVENING = ["went home", "walked home", "cycled home", "took the bus home"]
REST = ["read a book", "slept well", "cooked dinner", "called a friend"]
FACTS = [
    "the sky is blue.", "the grass is green.", "snow is white.", "the sun rises in the east.",
    "the sun sets in the west.", "water boils at one hundred degrees.", "birds can fly.",
    "fish swim in the sea.", "cows eat grass.", "bees make honey.", "a week has seven days.",
    "a year has twelve months.", "paris is the capital of france.", "rome is the capital of italy.",
    "berlin is the capital of germany.", "madrid is the capital of spain.",
]


def document(rng: random.Random) -> list[str]:
    """One short story: a person's working day, in 4 to 7 sentences."""
    name = rng.choice(NAMES)
    he = PRONOUN[name]
    trade = rng.choice(sorted(TRADES))
    place, things, verb, tools, people = TRADES[trade]
    thing, other = rng.sample(things, 2)
    sentences = [f"{name} is a {trade}.", f"{name} {rng.choice(MORNING)}."]
    if rng.random() < 0.5:
        cause, effect = rng.choice(WEATHER)
        sentences.append(f"{cause}, so {he} {effect}.")
    sentences += [
        f"{he} went to the {place}.",
        f"the {trade} {verb} the {thing} with the {rng.choice(tools)}.",
    ]
    if rng.random() < 0.6:
        sentences.append(f"then {he} {verb} the {other} for the {rng.choice(people)}.")
    if rng.random() < 0.5:
        sentences.append(f"the {rng.choice(people)} thanked the {trade}.")
    sentences.append(f"in the evening, {he} {rng.choice(EVENING)} and {rng.choice(REST)}.")
    if rng.random() < 0.2:
        sentences.append(rng.choice(FACTS))
    return sentences


def generate(seed: int = SEED, num_documents: int = NUM_DOCUMENTS) -> list[list[str]]:
    """`num_documents` documents, each a list of lower-case sentences."""
    rng = random.Random(seed)
    return [document(rng) for _ in range(num_documents)]
