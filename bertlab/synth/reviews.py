"""The bundled ``reviews`` sentiment data: short English reviews where words alone mislead.

Every sentence comes from a *template*: a sentence frame with slots (domain, aspect,
adjective, intensifier). Groups of templates:

- ``plain``: "The plot was gripping."
- ``intensified``: "The service was absolutely dreadful."
- ``negation``: "The soup was not tasty." / "The plot was never boring." (label flips)
- ``contrast``: "Although the room was cramped, the staff were lovely." (the clause after
  the turn decides the label, and both clauses use the same kinds of words)

Templates are assigned whole to one split (80/10/10, stratified by group), so no template
leaks from train into validation or test. The ``challenge`` subset is the test examples of
the ``negation`` and ``contrast`` groups, where a bag of words cannot tell the label.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

SEED = 20261122
SIZES = {"train": 4000, "validation": 500, "test": 1000}
GROUP_SHARE = {"plain": 0.3, "intensified": 0.1, "negation": 0.3, "contrast": 0.3}
CHALLENGE_GROUPS = ("negation", "contrast")

DOMAINS = {
    "film": (
        ["the plot", "the acting", "the soundtrack", "the ending", "the dialogue", "the pacing",
         "the cast", "the script", "the camera work", "the film", "the final act", "the humour"],
        ["gripping", "moving", "clever", "funny", "beautiful", "thrilling"],
        ["dull", "boring", "tedious", "predictable", "clumsy", "confusing"],
    ),
    "restaurant": (
        ["the food", "the service", "the pasta", "the dessert", "the staff", "the menu",
         "the soup", "the coffee", "the bread", "the wine list", "the curry", "the meal"],
        ["tasty", "fresh", "delicious", "generous", "friendly", "warm"],
        ["bland", "stale", "greasy", "cold", "rude", "overpriced"],
    ),
    "book": (
        ["the story", "the writing", "the characters", "the prose", "the book", "the narrator",
         "the opening chapter", "the dialogue", "the twist", "the world building"],
        ["gripping", "moving", "clever", "vivid", "witty", "beautiful"],
        ["dull", "boring", "tedious", "predictable", "flat", "confusing"],
    ),
    "hotel": (
        ["the room", "the staff", "the breakfast", "the bed", "the location", "the view",
         "the bathroom", "the pool", "the lobby", "the check-in"],
        ["clean", "spacious", "comfortable", "quiet", "friendly", "charming"],
        ["dirty", "cramped", "noisy", "shabby", "rude", "chaotic"],
    ),
    "gadget": (
        ["the battery", "the screen", "the camera", "the design", "the speaker", "the keyboard",
         "the charger", "the app", "the build quality", "the phone"],
        ["fast", "sharp", "reliable", "sleek", "sturdy", "responsive"],
        ["slow", "fragile", "flimsy", "laggy", "clunky", "unreliable"],
    ),
}
POSITIVE = ["great", "wonderful", "excellent", "superb", "lovely", "impressive", "fantastic",
            "outstanding", "delightful", "solid", "pleasant", "brilliant"]
NEGATIVE = ["terrible", "awful", "poor", "disappointing", "mediocre", "dreadful", "weak",
            "bad", "horrible", "unpleasant", "sloppy", "forgettable"]
INTENSIFIERS = ["really", "truly", "absolutely", "incredibly", "remarkably", "very",
                "extremely", "thoroughly"]

# Clause patterns. {a} = aspect, {j} = adjective, {i} = intensifier.
AFFIRM = {
    "was": "{a} was {j}", "is": "{a} is {j}", "found": "I found {a} {j}",
    "felt": "{a} felt {j}", "turned": "{a} turned out to be {j}", "seemed": "{a} seemed {j} to me",
    "agreed": "everyone agreed that {a} was {j}", "thought": "I thought {a} was {j}",
}
INTENSE = {
    "was": "{a} was {i} {j}", "found": "I found {a} {i} {j}", "felt": "{a} felt {i} {j}",
    "thought": "I thought {a} was {i} {j}",
}
NEGATE = {
    "not": "{a} was not {j}", "never": "{a} was never {j}", "didfind": "I did not find {a} {j}",
    "farfrom": "{a} was far from {j}", "notatall": "{a} was not at all {j}",
    "nobody": "nobody would call {a} {j}", "wasnt": "{a} wasn't {j}",
    "wouldnt": "I wouldn't say {a} was {j}", "didfeel": "{a} did not feel {j}",
    "nothing": "there was nothing {j} about {a}", "hardly": "{a} was hardly {j}",
    "isnt": "{a} isn't {j}",
}
FRAMES = {
    "bare": "{c}.", "overall": "Overall, {c}.", "honest": "To be honest, {c}.",
    "opinion": "{c}, in my opinion.", "havetosay": "I have to say {c}.",
}
# Contrast connectors: {c1} is the clause that loses, {c2} the one that decides the label.
CONTRAST = {
    "but": "{c1}, but {c2}.", "although": "Although {c1}, {c2}.",
    "atfirst": "{c1} at first, but in the end {c2}.", "however": "{c1}; however, {c2}.",
    "eventhough": "{c2}, even though {c1}.", "yet": "{c1}, yet {c2}.",
    "while": "While {c1}, {c2}.", "despite": "Despite the fact that {c1}, {c2}.",
}
CONTRAST_CLAUSES = ("was", "found", "felt", "thought", "seemed")


@dataclass(frozen=True)
class Template:
    """A sentence frame: its id, group, and how to fill it."""

    id: str
    group: str
    frame: str
    patterns: tuple[str, ...]


def templates() -> list[Template]:
    """Every template, in a fixed order."""
    out: list[Template] = []
    for fid, frame in FRAMES.items():
        out += [Template(f"plain:{fid}:{p}", "plain", frame, (AFFIRM[p],)) for p in AFFIRM]
        out += [Template(f"intensified:{fid}:{p}", "intensified", frame, (INTENSE[p],)) for p in INTENSE]
        out += [Template(f"negation:{fid}:{p}", "negation", frame, (NEGATE[p],)) for p in NEGATE]
    for cid, frame in CONTRAST.items():
        for p1 in CONTRAST_CLAUSES:
            for p2 in CONTRAST_CLAUSES:
                out.append(Template(f"contrast:{cid}:{p1}+{p2}", "contrast", frame,
                                    (AFFIRM[p1], AFFIRM[p2])))
    return out


def split_templates(rng: random.Random) -> dict[str, list[Template]]:
    """Assign whole templates to splits, 80/10/10 within each group."""
    splits: dict[str, list[Template]] = {name: [] for name in SIZES}
    for group in GROUP_SHARE:
        group_templates = [t for t in templates() if t.group == group]
        rng.shuffle(group_templates)
        n = len(group_templates)
        n_val = n_test = max(1, round(n * 0.1))
        splits["validation"] += group_templates[:n_val]
        splits["test"] += group_templates[n_val:n_val + n_test]
        splits["train"] += group_templates[n_val + n_test:]
    return splits


def _adjective(rng: random.Random, domain: str, positive: bool) -> str:
    _, pos, neg = DOMAINS[domain]
    own, general = (pos, POSITIVE) if positive else (neg, NEGATIVE)
    return rng.choice(own) if rng.random() < 0.5 else rng.choice(general)


def _clause(pattern: str, aspect: str, adjective: str, rng: random.Random) -> str:
    text = pattern.format(a=aspect, j=adjective, i=rng.choice(INTENSIFIERS))
    # "the staff was" reads better as "the staff were" in British usage; keep it simple but right
    # for plural aspects.
    if aspect.endswith("s") and not aspect.endswith(("ss", "us")) and aspect not in {"the news"}:
        text = text.replace(f"{aspect} was", f"{aspect} were").replace(f"{aspect} is ", f"{aspect} are ")
        text = text.replace(f"{aspect} wasn't", f"{aspect} weren't").replace(f"{aspect} isn't", f"{aspect} aren't")
    return text


def fill(template: Template, label: int, rng: random.Random) -> str:
    """One sentence of `template` whose sentiment is `label` (1 positive, 0 negative)."""
    domain = rng.choice(sorted(DOMAINS))
    aspects = DOMAINS[domain][0]
    if template.group == "contrast":
        a1, a2 = rng.sample(aspects, 2)
        c1 = _clause(template.patterns[0], a1, _adjective(rng, domain, not label), rng)
        c2 = _clause(template.patterns[1], a2, _adjective(rng, domain, bool(label)), rng)
        text = template.frame.format(c1=c1, c2=c2)
    else:
        positive_word = bool(label) if template.group != "negation" else not label
        clause = _clause(template.patterns[0], rng.choice(aspects), _adjective(rng, domain, positive_word), rng)
        text = template.frame.format(c=clause)
    return text[0].upper() + text[1:]


def generate(seed: int = SEED) -> dict[str, list[dict]]:
    """The three splits as lists of rows: text, label, group, template, domain-free."""
    rng = random.Random(seed)
    by_split = split_templates(rng)
    seen: set[str] = set()
    out: dict[str, list[dict]] = {}
    for split, size in SIZES.items():
        rows: list[dict] = []
        for group, share in GROUP_SHARE.items():
            pool = [t for t in by_split[split] if t.group == group]
            want = round(size * share)
            for k in range(want):
                label = k % 2
                for _ in range(1000):  # draw until the sentence is new in every split
                    template = rng.choice(pool)
                    text = fill(template, label, rng)
                    if text not in seen:
                        break
                seen.add(text)
                rows.append({"text": text, "label": ["negative", "positive"][label],
                             "group": group, "template": template.id})
        rng.shuffle(rows)
        out[split] = rows
    return out
