"""Text → blockout: read a prompt the way an artist writes it, then build it from the archetype table.

The point is an honest, instant blockout, not a model. A prompt whose noun the engine does not know
gets a generic blockout and a warning naming that noun (`matched: None`); it never pretends.

Reading a prompt:
- the head noun is the last archetype phrase in the subject clause ("sci-fi crate" is a crate,
  "office chair" an office chair, "tree stump" a stump); a material or style word that is also a
  noun ("stone", "sci-fi") yields to a real noun;
- modifiers: material, colour and era words (materials and styling), conditions (broken, damaged,
  rusty, mossy, overgrown, ornate, simple: they change the shape), proportions (tall, squat …),
  style (low-poly, smooth), attachments ("with iron bands", "with vents");
- counts and groups: "three barrels", "stack of crates", "pile of rocks";
- composition: "X on Y" stands X on Y; "X with Y" puts Y beside X, or on it if X is a table-like
  surface.

The seed varies proportions, optional and alternative parts, counts and colours, so ten seeds of
one prompt give ten different blockouts.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field, replace

import numpy as np

from ...imaging.glb import Material, MeshPart
from ...imaging.materials import MATERIAL_WORDS
from . import modifiers
from .catalog import ARCHETYPES, GENERIC, Archetype
from .parts import (
    ACCENT,
    CLOTH,
    DARK,
    FOLIAGE,
    GLASS,
    LIGHT,
    MAIN,
    MOSS,
    RUST,
    TRIM,
    Assembly,
    Detail,
    Piece,
    build_parts,
)
from .shapes import PartBuilder

__all__ = ["ARCHETYPES", "GENERIC", "Archetype", "TextPlan", "build", "plan"]

PROPORTION_WORDS: dict[str, tuple[float, float, float]] = {
    "tall": (1.0, 1.0, 1.5),
    "high": (1.0, 1.0, 1.4),
    "short": (1.0, 1.0, 0.65),
    "low": (1.0, 1.0, 0.7),
    "squat": (1.25, 1.25, 0.65),
    "stubby": (1.2, 1.2, 0.7),
    "wide": (1.5, 1.5, 1.0),
    "broad": (1.4, 1.4, 1.0),
    "long": (1.7, 1.0, 1.0),
    "narrow": (0.7, 0.7, 1.0),
    "thin": (0.7, 0.7, 1.0),
    "slender": (0.65, 0.65, 1.15),
    "skinny": (0.65, 0.65, 1.1),
    "round": (1.2, 1.2, 0.9),
    "fat": (1.3, 1.3, 1.0),
    "chunky": (1.3, 1.3, 1.1),
    "big": (1.4, 1.4, 1.4),
    "large": (1.4, 1.4, 1.4),
    "huge": (2.0, 2.0, 2.0),
    "giant": (2.5, 2.5, 2.5),
    "massive": (2.2, 2.2, 2.2),
    "enormous": (2.3, 2.3, 2.3),
    "small": (0.7, 0.7, 0.7),
    "little": (0.7, 0.7, 0.7),
    "tiny": (0.45, 0.45, 0.45),
    "miniature": (0.4, 0.4, 0.4),
}

STYLE_SEGMENTS = {"low-poly": 6, "lowpoly": 6, "blocky": 4, "smooth": 32, "high-poly": 32}

ATTACHMENT_WORDS = {
    "band": "bands", "bands": "bands", "banded": "bands", "strap": "bands", "straps": "bands", "hoops": "bands",
    "hoop": "bands", "vent": "vents", "vents": "vents", "grille": "vents", "grill": "vents",
    "light": "lights", "lights": "lights", "lamps": "lights", "warning": "lights", "leds": "lights",
    "moss": "moss",
}

CONDITION_WORDS = {
    "broken": "broken", "shattered": "broken", "ruined": "broken", "destroyed": "broken", "smashed": "broken",
    "collapsed": "broken", "wrecked": "broken", "ruins": "broken",
    "damaged": "damaged", "worn": "damaged", "battered": "damaged", "weathered": "damaged", "cracked": "damaged",
    "chipped": "damaged", "dented": "damaged", "beaten": "damaged", "old": "damaged", "aged": "damaged",
    "mossy": "mossy", "moss-covered": "mossy", "overgrown": "overgrown", "vines": "overgrown", "ivy": "overgrown",
    "vine-covered": "overgrown", "rusty": "rusty", "rusted": "rusty", "corroded": "rusty", "rust": "rusty",
    "ornate": "ornate", "decorated": "ornate", "fancy": "ornate", "ornamented": "ornate", "elaborate": "ornate",
    "carved": "ornate", "gilded": "ornate", "luxurious": "ornate", "simple": "simple", "plain": "simple",
    "basic": "simple", "minimal": "simple",
}

# Era words: (main material, accent material, conditions they imply, styling).
ERA_WORDS: dict[str, tuple[str | None, str | None, tuple[str, ...], str]] = {
    "sci-fi": ("metal", "black", (), "scifi"), "futuristic": ("metal", "black", (), "scifi"),
    "cyberpunk": ("black", "metal", (), "scifi"), "high-tech": ("metal", "black", (), "scifi"),
    "space": ("white", "metal", (), "scifi"),
    "medieval": (None, "iron", (), "medieval"), "rustic": ("wooden", "iron", (), "medieval"),
    "viking": (None, "iron", (), "medieval"), "pirate": (None, "iron", (), "medieval"),
    "ancient": ("stone", "stone", ("damaged",), ""), "roman": ("marble", "stone", (), ""),
    "greek": ("marble", "stone", (), ""), "egyptian": ("sandstone", "gold", (), ""),
    "modern": ("plastic", "steel", ("simple",), ""), "contemporary": ("plastic", "steel", ("simple",), ""),
    "minimalist": ("white", "steel", ("simple",), ""),
    "victorian": ("wooden", "brass", ("ornate",), ""), "gothic": ("stone", "iron", ("ornate",), ""),
    "baroque": ("marble", "gold", ("ornate",), ""), "royal": (None, "gold", ("ornate",), ""),
    "elven": (None, "silver", ("ornate",), ""), "dwarven": ("stone", "iron", (), "medieval"),
    "steampunk": ("bronze", "brass", ("ornate",), ""), "industrial": ("metal", "steel", (), ""),
    "post-apocalyptic": ("metal", "iron", ("rusty", "damaged"), ""), "abandoned": (None, None, ("damaged",), ""),
    "haunted": (None, None, ("broken",), ""), "fantasy": (None, None, ("ornate",), ""),
    "magical": (None, "crystal", ("ornate",), ""), "enchanted": (None, "crystal", ("ornate",), ""),
}

# Words Kiln's shared table does not have; the engine's own additions (same (colour, metal, rough) form).
EXTRA_MATERIALS: dict[str, tuple[tuple[float, float, float], float, float]] = {
    "yellow": ((0.85, 0.7, 0.1), 0.0, 0.6), "orange": ((0.95, 0.42, 0.08), 0.0, 0.6),
    "purple": ((0.45, 0.2, 0.6), 0.0, 0.6), "pink": ((0.9, 0.5, 0.65), 0.0, 0.6),
    "brown": ((0.4, 0.25, 0.14), 0.0, 0.8), "grey": ((0.45, 0.45, 0.47), 0.0, 0.7),
    "gray": ((0.45, 0.45, 0.47), 0.0, 0.7), "teal": ((0.1, 0.5, 0.5), 0.0, 0.6),
    "autumn": ((0.85, 0.42, 0.1), 0.0, 0.8), "wax": ((0.93, 0.9, 0.8), 0.0, 0.5),
    "brass": ((0.8, 0.62, 0.3), 1.0, 0.35), "copper": ((0.78, 0.45, 0.3), 1.0, 0.35),
    "paper": ((0.9, 0.86, 0.74), 0.0, 0.9), "wicker": ((0.7, 0.55, 0.3), 0.0, 0.9),
    "rope": ((0.62, 0.5, 0.32), 0.0, 0.95), "cardboard": ((0.65, 0.48, 0.3), 0.0, 0.9),
    "dirt": ((0.42, 0.32, 0.2), 0.0, 0.95), "bark": ((0.33, 0.22, 0.13), 0.0, 0.95),
    "fur": ((0.5, 0.36, 0.22), 0.0, 0.95), "bone": ((0.88, 0.84, 0.72), 0.0, 0.6),
    "cloth": ((0.85, 0.8, 0.7), 0.0, 0.95), "concrete": ((0.6, 0.6, 0.58), 0.0, 0.9),
    "rubber": ((0.1, 0.1, 0.1), 0.0, 0.8), "sandstone": ((0.8, 0.68, 0.48), 0.0, 0.9),
    "obsidian": ((0.06, 0.05, 0.08), 0.0, 0.15), "jade": ((0.3, 0.65, 0.45), 0.0, 0.3),
    "scales": ((0.3, 0.45, 0.2), 0.2, 0.5), "dark": ((0.12, 0.12, 0.13), 0.0, 0.7),
}
MATERIALS = {**MATERIAL_WORDS, **EXTRA_MATERIALS}
COLOUR_WORDS = frozenset({"red", "green", "blue", "black", "white", "yellow", "orange", "purple", "pink", "brown",
                          "grey", "gray", "teal", "autumn", "golden", "silver", "dark"})

NUMBER_WORDS = {"one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6, "seven": 7, "eight": 8,
                "nine": 9, "ten": 10, "eleven": 11, "twelve": 12, "pair": 2, "couple": 2, "few": 3,
                "several": 4, "many": 8, "dozen": 12}
GROUP_WORDS = {"stack": "stack", "pile": "pile", "heap": "pile", "row": "row", "line": "row", "group": "pile",
               "cluster": "pile", "set": "row", "bunch": "pile", "collection": "pile", "stacked": "stack"}
GROUP_DEFAULT_COUNT = {"stack": 6, "pile": 6, "row": 4}
MAX_COUNT = 12

RELATIONS = {"on": "on", "atop": "on", "upon": "on", "with": "with", "beside": "with", "next": "with",
             "and": "with", "holding": "with", "by": "with", "near": "with"}
GENERIC_HEADS = frozenset({"tree", "plant", "animal", "creature", "beast", "box", "container", "figure"})
STYLE_NOUNS = frozenset({"sci-fi"})
"""Archetype words that are also styles: "sci-fi crate" is a crate, "sci-fi" alone a sci-fi panel."""

_STOP = {"a", "an", "the", "of", "in", "for", "made", "new", "some", "very", "from", "to", "at", "its", "it",
         "style", "styled", "stylized", "stylised", "game", "asset", "prop", "model", "3d", "like", "that", "is",
         "covered", "looking", "ready", "top", "kind", "type", "sort", "version", "render", "lowres", "detailed"}

IRREGULAR = {"shelves": "shelf", "knives": "knife", "leaves": "leaf", "cacti": "cactus", "wolves": "wolf",
             "geese": "goose", "mice": "mouse", "people": "person", "men": "man", "women": "woman", "fungi": "fungus",
             "dice": "die", "benches": "bench", "boxes": "box", "torches": "torch", "bushes": "bush",
             "branches": "branch", "glasses": "glass", "dresses": "dress", "stairs": "stairs", "pebbles": "pebbles",
             "flowers": "flowers", "mushrooms": "mushrooms", "grass": "grass", "cypress": "cypress", "moss": "moss",
             "canvas": "canvas", "bus": "bus", "gas": "gas", "ruins": "ruins", "steps": "steps", "pants": "pants",
             "drawers": "drawers", "crystals": "crystals", "stones": "stones", "rocks": "rocks", "pipes": "pipes",
             "shelving": "shelving", "vines": "vines", "lights": "lights", "vents": "vents", "bands": "bands"}


def singular(word: str) -> str:
    if word in IRREGULAR:
        return IRREGULAR[word]
    if word.endswith("ies") and len(word) > 4:
        return word[:-3] + "y"
    if word.endswith(("ches", "shes", "xes", "sses")):
        return word[:-2]
    if word.endswith("s") and not word.endswith("ss") and len(word) > 3:
        return word[:-1]
    return word


# Phrase (tuple of singular words) → archetype. Built once from the table.
PHRASES: dict[tuple[str, ...], Archetype] = {}
for _archetype in ARCHETYPES:
    for _phrase in _archetype.words:
        PHRASES.setdefault(tuple(singular(w) for w in _phrase.split()), _archetype)
LONGEST_PHRASE = max(len(p) for p in PHRASES)


@dataclass
class TextPlan:
    """What a prompt asks for, before any seed is drawn."""

    archetype: Archetype | None
    unknown_words: list[str]
    scale: tuple[float, float, float]
    main_material: str
    accent_material: str
    segments: int
    attachments: set[str]
    noun: str | None = None
    colour: str | None = None
    conditions: set[str] = field(default_factory=set)
    styles: set[str] = field(default_factory=set)
    count: int = 1
    arrangement: str = ""
    companions: list[tuple[str, TextPlan]] = field(default_factory=list)
    ignored: list[str] = field(default_factory=list)

    @property
    def modifiers(self) -> list[str]:
        """Everything besides the noun that changed the result, for metadata and tests."""
        words = sorted(self.conditions | self.styles | self.attachments)
        if self.colour:
            words.append(f"colour:{self.colour}")
        if self.scale != (1.0, 1.0, 1.0):
            words.append("scaled")
        if self.count > 1:
            words.append(f"count:{self.count}")
        if self.arrangement:
            words.append(self.arrangement)
        words += [f"{relation}:{(c.archetype or GENERIC).name}" for relation, c in self.companions]
        return words


_WORD = re.compile(r"[a-z0-9][a-z0-9\-']*")


def _tokens(prompt: str) -> list[str]:
    text = prompt.lower().replace("sci fi", "sci-fi").replace("scifi", "sci-fi").replace("low poly", "low-poly")
    text = text.replace("next to", "next").replace("on top of", "on").replace("sitting on", "on")
    return [w.strip("'") for w in _WORD.findall(text) if w.strip("'")]


def plan(prompt: str, production: bool) -> TextPlan:
    """Read a prompt into a plan: the subject, its modifiers, and what stands on or beside it."""
    words = _tokens(prompt)
    clauses: list[tuple[str, list[str]]] = [("", [])]
    for word in words:
        relation = RELATIONS.get(word)
        # "with iron bands" and "with moss" are attachments of the subject, not a second object.
        if relation and clauses[-1][1]:
            clauses.append((relation, []))
        elif not relation:
            clauses[-1][1].append(word)
    subject = _clause(clauses[0][1], production)
    for relation, clause in clauses[1:]:
        if not clause:
            continue
        other = _clause(clause, production)
        if other.archetype is None:
            # Not an object: read its words as more modifiers of the subject ("with iron bands").
            _absorb(subject, other, clause)
        else:
            subject.companions.append((relation, other))
    if subject.archetype is None and not subject.noun and subject.companions:
        # "on a table" with nothing before it: the companion is the subject.
        _, first = subject.companions.pop(0)
        first.companions.extend(subject.companions)
        subject = first
    return subject


def _absorb(subject: TextPlan, other: TextPlan, clause: list[str]) -> None:
    subject.attachments |= other.attachments
    subject.conditions |= other.conditions
    accent = [w for w in clause if w in MATERIALS]
    if accent:
        subject.accent_material = accent[0]
    subject.ignored += other.unknown_words


def _find_noun(words: list[str]) -> tuple[Archetype | None, int, int]:
    """The head noun: the archetype phrase ending last (longest first), skipping style and material
    words while a real noun exists. Returns (archetype, start, end) or (None, -1, -1)."""
    keys = [singular(w) for w in words]
    hits: list[tuple[int, int, Archetype]] = []
    for start in range(len(keys)):
        for length in range(min(LONGEST_PHRASE, len(keys) - start), 0, -1):
            archetype = PHRASES.get(tuple(keys[start:start + length]))
            if archetype is not None:
                hits.append((start, start + length, archetype))
                break
    real = [h for h in hits if not (h[1] - h[0] == 1 and (words[h[0]] in STYLE_NOUNS or words[h[0]] in MATERIALS))]
    chosen = real or hits
    if not chosen:
        return None, -1, -1
    chosen.sort(key=lambda h: (h[1], h[1] - h[0]))
    start, end, archetype = chosen[-1]
    # A generic head names the kind of thing; a known noun right before it names which ("fir tree").
    if len(chosen) > 1 and end - start == 1 and keys[start] in GENERIC_HEADS and chosen[-2][1] == start:
        start, archetype = chosen[-2][0], chosen[-2][2]
    return archetype, start, end


def _clause(words: list[str], production: bool) -> TextPlan:
    archetype, start, end = _find_noun(words)
    rest = [w for i, w in enumerate(words) if not start <= i < end]
    scale = np.ones(3)
    segments = 24 if production else 12
    conditions: set[str] = set()
    styles: set[str] = set()
    attachments: set[str] = set()
    count, arrangement = 1, ""
    era_main: str | None = None
    era_accent: str | None = None
    materials: list[str] = []
    colours: list[str] = []
    unknown: list[str] = []
    for index, word in enumerate(rest):
        key = singular(word)
        if word in PROPORTION_WORDS:
            scale *= PROPORTION_WORDS[word]
        elif word in STYLE_SEGMENTS:
            segments = STYLE_SEGMENTS[word]
        elif word in CONDITION_WORDS:
            conditions.add(CONDITION_WORDS[word])
        elif word in ERA_WORDS:
            main, accent, implied, style = ERA_WORDS[word]
            era_main, era_accent = era_main or main, era_accent or accent
            conditions |= set(implied)
            if style:
                styles.add(style)
        elif word in ATTACHMENT_WORDS:
            attachments.add(ATTACHMENT_WORDS[word])
        elif word in COLOUR_WORDS and (word not in MATERIAL_WORDS or word in ("red", "green", "blue", "black",
                                                                             "white")):
            colours.append(word)
        elif word in MATERIALS:
            # A material right before an attachment ("iron bands") colours the attachment.
            if index + 1 < len(rest) and rest[index + 1] in ATTACHMENT_WORDS:
                era_accent = word
            else:
                materials.append(word)
        elif word.isdigit():
            count = int(word)
        elif word in NUMBER_WORDS:
            count = NUMBER_WORDS[word]
        elif key in GROUP_WORDS or word in GROUP_WORDS:
            arrangement = GROUP_WORDS.get(key, GROUP_WORDS.get(word, ""))
        elif word in _STOP:
            continue
        else:
            unknown.append(word)
    if "simple" in conditions:
        segments = min(segments, 8)
    if arrangement and count == 1:
        count = GROUP_DEFAULT_COUNT[arrangement]
    count = max(1, min(count, MAX_COUNT))
    chosen = archetype or GENERIC
    main = materials[0] if materials else era_main or chosen.default_material
    accent = materials[1] if len(materials) > 1 else era_accent or chosen.accent_material
    if "medieval" in styles and not attachments:
        attachments.add("bands")
    noun = (words[end - 1] if archetype else (unknown[-1] if unknown else None))
    return TextPlan(
        archetype=archetype,
        unknown_words=unknown if archetype is None else [],
        scale=(float(scale[0]), float(scale[1]), float(scale[2])),
        main_material=main,
        accent_material=accent,
        segments=segments,
        attachments=attachments,
        noun=noun,
        colour=colours[0] if colours else None,
        conditions=conditions,
        styles=styles,
        count=count,
        arrangement=arrangement if count > 1 else "",
        ignored=unknown if archetype is not None else [],
    )


# ------------------------------------------------------------------------------------ materials
COOL_LIGHT = frozenset({"monitor", "terminal", "console", "server_rack", "scifi_panel", "blast_door", "generator",
                        "cryo_pod", "robot", "spaceship", "drone", "portal", "staff", "antenna"})
_FIXED = {
    DARK: Material("vent_dark_metal", (0.08, 0.08, 0.09, 1.0), 1.0, 0.6),
    MOSS: Material("moss", (0.28, 0.45, 0.16, 1.0), 0.0, 0.95),
    RUST: Material("rust", (0.45, 0.2, 0.08, 1.0), 0.3, 0.9),
    TRIM: Material("gold_trim", (0.95, 0.75, 0.3, 1.0), 1.0, 0.25),
    GLASS: Material("glass", (0.6, 0.78, 0.85, 1.0), 0.0, 0.05),
}


def _material(word: str, rng: np.random.Generator, colour: str | None = None) -> Material:
    base, metallic, roughness = MATERIALS[word]
    if colour and colour != word:
        base = MATERIALS[colour][0]
    # Scaled, not offset: an added ±0.05 turns a red's 0.1 green into 0.15, which reads as salmon once
    # displayed in sRGB; a per-channel scale keeps dark channels dark, so a colour word keeps its hue.
    jitter = rng.uniform(0.88, 1.12, 3)
    r, g, b = (float(np.clip(c * j, 0.0, 1.0)) for c, j in zip(base, jitter, strict=True))
    name = f"{colour}_{word}" if colour and colour != word else word
    return Material(name, (r, g, b, 1.0), metallic, roughness)


def _foliage(rng: np.random.Generator, colour: str | None) -> Material:
    if colour:
        return _material(colour, rng)
    # Seeded greens, from yellow-green to blue-green: canopies are leaves whatever the trunk is made of.
    hue = float(rng.uniform(0, 1))
    base = (0.16 + 0.14 * hue, 0.38 + 0.14 * (1 - hue), 0.1 + 0.08 * hue)
    return Material("foliage", (base[0], base[1], base[2], 1.0), 0.0, 0.85)


def _materials(text_plan: TextPlan, rng: np.random.Generator) -> dict[int, Material]:
    chosen = text_plan.archetype or GENERIC
    colour_main = text_plan.colour if chosen.colour_slot == MAIN else None
    accent = _material(text_plan.accent_material, rng)
    if text_plan.accent_material == text_plan.main_material and not colour_main:
        accent = replace(accent, name=f"{accent.name}_accent")  # one name, one material, in Blender too
    slots = {
        MAIN: _material(text_plan.main_material, rng, colour_main),
        ACCENT: accent,
        FOLIAGE: _foliage(rng, text_plan.colour if chosen.colour_slot == FOLIAGE else None),
        CLOTH: _material("cloth", rng, text_plan.colour if chosen.colour_slot == CLOTH else None),
        **_FIXED,
    }
    cool = chosen.name in COOL_LIGHT or "scifi" in text_plan.styles
    slots[LIGHT] = Material("glow", (0.3, 0.85, 1.0, 1.0) if cool else (1.0, 0.55, 0.15, 1.0), 0.0, 0.4,
                            emissive=(0.2, 0.8, 1.0) if cool else (1.0, 0.45, 0.05))
    return slots


# ------------------------------------------------------------------------------------ building
DEFAULT_FACE_BUDGET = 12000
"""Triangles a Production blockout may use when the target sets no face budget."""


SLOTS_PER_OBJECT = 16
"""Material slots one object may use; a companion's slots are offset by this so each object keeps
its own materials (a candle's wax, the table's wood)."""


def _assemble(text_plan: TextPlan, rng: np.random.Generator, detail: Detail,
              slots: dict[int, Material]) -> Assembly:
    """One object with its conditions, counted copies, and companions placed; fills `slots` with the
    materials of it and its companions."""
    base = len(slots) and (max(slots) // SLOTS_PER_OBJECT + 1) * SLOTS_PER_OBJECT
    slots.update({base + slot: material for slot, material in _materials(text_plan, rng).items()})
    chosen = text_plan.archetype or GENERIC
    simple = "simple" in text_plan.conditions
    copies = []
    for _ in range(text_plan.count):
        copy = build_parts(chosen.parts, rng, detail, chosen.vary, simple)
        modifiers.apply(copy, text_plan.conditions, text_plan.attachments, text_plan.styles, rng, detail)
        if text_plan.scale != (1.0, 1.0, 1.0):
            copy.transform(scale=text_plan.scale)
        copies.append(copy)
    assembly = _arrange(copies, text_plan.arrangement, rng)
    if base:
        for piece in assembly.pieces:
            piece.slot += base
    for relation, companion in text_plan.companions:
        other = _assemble(companion, rng, detail, slots)
        _place(assembly, other, relation, chosen)
    return assembly


def _arrange(copies: list[Assembly], arrangement: str, rng: np.random.Generator) -> Assembly:
    if len(copies) == 1:
        return copies[0]
    result = Assembly()
    step = max(float(c.bounds()[1][0] - c.bounds()[0][0]) for c in copies) * 1.08
    if arrangement == "stack":
        rows = math.ceil((math.sqrt(8 * len(copies) + 1) - 1) / 2)
        index, z = 0, 0.0
        for row in range(rows):
            in_row = min(rows - row, len(copies) - index)
            if in_row <= 0:
                break
            heights = []
            for k in range(in_row):
                copy = copies[index]
                low, high = copy.bounds()
                copy.transform(offset=(-(low[0] + high[0]) / 2 + (k - (in_row - 1) / 2) * step,
                                       -(low[1] + high[1]) / 2, z - low[2]),
                               turn_z=float(rng.uniform(-0.08, 0.08)))
                heights.append(float(high[2] - low[2]))
                result.pieces += copy.pieces
                index += 1
            z += min(heights) * 0.995
        return result
    for k, copy in enumerate(copies):
        low, high = copy.bounds()
        if arrangement == "pile":
            angle = k * 2.39996  # golden angle: an even scatter without overlaps piling up
            reach = step * 0.62 * math.sqrt(k)
            offset = (reach * math.cos(angle), reach * math.sin(angle))
            turn = float(rng.uniform(0, 2 * math.pi))
        else:
            offset = ((k - (len(copies) - 1) / 2) * step, float(rng.uniform(-0.05, 0.05)) * step)
            turn = float(rng.uniform(-0.15, 0.15))
        centre = ((low[0] + high[0]) / 2, (low[1] + high[1]) / 2)
        copy.transform(offset=(-float(centre[0]), -float(centre[1]), 0.0))
        copy.transform(offset=(float(offset[0]), float(offset[1]), 0.0), turn_z=turn)
        result.pieces += copy.pieces
    return result


def _place(assembly: Assembly, other: Assembly, relation: str, subject: Archetype) -> None:
    """'X on Y': X stands on Y. 'X with Y': Y on X's top when X is a surface, else beside it."""
    low, high = assembly.bounds()
    other_low, other_high = other.bounds()
    centre = (low + high) / 2
    other_centre = (other_low + other_high) / 2
    if relation == "on":
        # The subject moves up onto the other object, which stays on the ground.
        assembly.transform(offset=(float(other_centre[0] - centre[0]), float(other_centre[1] - centre[1]),
                                   float(other_high[2] - low[2])))
    elif subject.surface and float(other_high[0] - other_low[0]) < float(high[0] - low[0]):
        other.transform(offset=(float(centre[0] - other_centre[0]), float(centre[1] - other_centre[1]),
                                float(high[2] - other_low[2])))
    else:
        gap = 0.1 * float(max(high[0] - low[0], other_high[0] - other_low[0]))
        other.transform(offset=(float(high[0] + gap - other_low[0]), float(centre[1] - other_centre[1]),
                                float(low[2] - other_low[2])))
    assembly.pieces += other.pieces


def build(text_plan: TextPlan, seed: int, production: bool,
          face_budget: int | None = None) -> tuple[list[MeshPart], list[Material]]:
    """Meshes and materials for the plan; materials are only those some part uses.

    Production bevels boxes and adds the table's secondary detail; if that would exceed the face
    budget it steps down (no bevels, then fewer segments, then no detail) rather than overshoot.
    """
    budget = face_budget or (DEFAULT_FACE_BUDGET if production else None)
    attempts = [(text_plan.segments, production), (text_plan.segments, False),
                (max(6, text_plan.segments // 2), False)]
    assembly = Assembly()
    for segments, bevel in attempts:
        rng = np.random.default_rng(seed)
        slots: dict[int, Material] = {}
        assembly = _assemble(text_plan, rng, Detail(segments, production, bevel), slots)
        if budget is None or assembly.triangles() <= budget:
            break
    if budget is not None and assembly.triangles() > budget:
        assembly.pieces = [p for p in assembly.pieces if not p.detail] or assembly.pieces
    builder = PartBuilder()
    for piece in _separated(assembly):
        builder.add(piece.shape, piece.slot)
    parts = builder.parts()
    used = sorted({p.material for p in parts})
    remap = {slot: i for i, slot in enumerate(used)}
    for part in parts:
        part.material = remap[part.material]
    return parts, [slots[slot] for slot in used]


def _separated(assembly: Assembly) -> list[Piece]:
    """Shells may intersect but must never share a vertex position, or an importer that merges by
    position would weld two shells along a seam into non-manifold edges. Each shell is nudged by its
    own amount, a few times Kiln's 1e-5 m weld distance apart (at most 3 mm: nobody sees it)."""
    for index, piece in enumerate(assembly.pieces):
        if index:
            nudge = 5e-5 * (index % 64)
            piece.shape = piece.shape.moved((nudge, nudge * 0.7, nudge * 0.3))
    return assembly.pieces
