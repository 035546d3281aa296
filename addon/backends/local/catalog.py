"""The archetype table: every noun the offline engine knows, written in the part grammar of `parts.py`.

One entry per archetype: its name, kit group, the words and phrases that name it (the first is its
canonical prompt), default main and accent materials, and its parts. Metres, Z up, front is -Y;
`at` is a part's bottom centre (a torus's centre). Adding an archetype is adding an entry here.
"""

from __future__ import annotations

from dataclasses import dataclass

from .parts import ACCENT, CLOTH, DARK, FOLIAGE, GLASS, LIGHT, MAIN, RUST, TRIM, Part, Vec

Turn = tuple[tuple[str, float], ...]


# Part constructors: short, because the table is read far more often than this module is changed.
def box(w: float, d: float, h: float, at: Vec = (0, 0, 0), s: int = MAIN, copies: str = "", when: str = "",
        turn: Turn = ()) -> Part:
    return Part("box", (w, d, h), at, s, turn, copies, when)


def cyl(r: float, h: float, at: Vec = (0, 0, 0), s: int = MAIN, taper: float = 1.0, copies: str = "",
        when: str = "", turn: Turn = (), ry: float | None = None) -> Part:
    return Part("cyl", (2 * r, 2 * (ry if ry is not None else r), h), at, s, turn, copies, when, taper=taper)


def ball(r: float, at: Vec = (0, 0, 0), s: int = MAIN, squash: Vec = (1, 1, 1), copies: str = "", when: str = "",
         turn: Turn = ()) -> Part:
    return Part("ball", (2 * r * squash[0], 2 * r * squash[1], 2 * r * squash[2]), at, s, turn, copies, when)


def blob(size: Vec, at: Vec = (0, 0, 0), s: int = MAIN, rough: float = 0.15, copies: str = "",
         when: str = "") -> Part:
    return Part("blob", size, at, s, (), copies, when, taper=rough)


def pill(r: float, length: float, at: Vec = (0, 0, 0), s: int = MAIN, ry: float | None = None, copies: str = "",
         when: str = "", turn: Turn = ()) -> Part:
    return Part("capsule", (2 * r, 2 * (ry if ry is not None else r), length), at, s, turn, copies, when)


def rod(a: Vec, b: Vec, r: float, s: int = MAIN, taper: float = 1.0, copies: str = "", when: str = "") -> Part:
    return Part("tube", (2 * r, 2 * r, 0.0), a, s, (), copies, when, end=b, taper=taper)


def ring(radius: float, thick: float, at: Vec = (0, 0, 0), s: int = ACCENT, turn: Turn = (), copies: str = "",
         when: str = "") -> Part:
    return Part("torus", (2 * radius, 2 * radius, 2 * thick), at, s, turn, copies, when)


def turned(profile: tuple[tuple[float, float], ...], radius: float, height: float, at: Vec = (0, 0, 0),
           s: int = MAIN, ry: float | None = None, when: str = "", turn: Turn = (), copies: str = "") -> Part:
    """A lathe: `profile` is (radius, height) fractions, bottom to top, starting and ending on the axis."""
    return Part("lathe", (radius, ry if ry is not None else radius, height), at, s, turn, copies, when,
                profile=profile)


def slab(outline: tuple[tuple[float, float], ...], w: float, depth: float, h: float, at: Vec = (0, 0, 0),
         s: int = MAIN, turn: Turn = (), copies: str = "", when: str = "") -> Part:
    """A prism: `outline` (x, z) fractions counter-clockwise seen from the front, extruded `depth` along Y."""
    return Part("prism", (w, depth, h), at, s, turn, copies, when, profile=outline)


def special(kind: str, size: Vec, at: Vec = (0, 0, 0), s: int = MAIN, count: str = "", when: str = "") -> Part:
    return Part(kind, size, at, s, (), "", when, count=count)


@dataclass(frozen=True)
class Archetype:
    """A noun the engine knows. `surface`: things put "with" it stand on its top rather than beside
    it. `colour_slot`: the slot a colour word paints (a tree's canopy, not its trunk). `vary`: how far
    the seed stretches it per axis."""

    name: str
    category: str
    words: tuple[str, ...]
    default_material: str
    accent_material: str
    parts: tuple[Part, ...]
    surface: bool = False
    colour_slot: int = MAIN
    vary: float = 0.12


# ------------------------------------------------------------------------------- shared profiles
BULGE = ((0.0, 0.0), (0.9, 0.0), (0.97, 0.12), (1.02, 0.3), (1.05, 0.5), (1.02, 0.7), (0.97, 0.88), (0.9, 1.0),
         (0.0, 1.0))
VASE = ((0.0, 0.0), (0.6, 0.0), (1.0, 0.35), (0.95, 0.6), (0.45, 0.85), (0.56, 1.0), (0.0, 1.0))
BOTTLE = ((0.0, 0.0), (1.0, 0.0), (1.0, 0.6), (0.35, 0.78), (0.3, 1.0), (0.0, 1.0))
BOWL = ((0.0, 0.0), (0.6, 0.0), (0.95, 0.3), (1.0, 0.6), (0.86, 0.92), (0.92, 1.0), (0.0, 1.0))
CAP = ((0.0, 0.0), (1.0, 0.0), (0.92, 0.35), (0.6, 0.62), (0.0, 0.72))
HULL = ((0.0, 0.0), (0.55, 0.05), (0.9, 0.4), (1.0, 1.0), (0.0, 1.0))
DISH = ((0.0, 0.0), (1.0, 0.35), (0.95, 0.4), (0.0, 0.1))
MOUND = ((0.0, 0.0), (1.0, 0.0), (0.8, 0.3), (0.45, 0.75), (0.0, 1.0))
FRUSTUM = ((0.0, 0.0), (0.8, 0.0), (1.0, 1.0), (0.0, 1.0))
GABLE = ((-0.5, 0.0), (0.5, 0.0), (0.0, 1.0))
BLADE = ((0.0, -0.3), (1.0, -0.55), (1.12, 0.0), (1.0, 0.55), (0.0, 0.3))
WING = ((-0.5, 0.0), (0.6, 0.0), (0.1, 1.0))
FIN = ((-0.5, 0.0), (0.5, -0.5), (0.5, 0.5))
KITE = ((0.0, -1.0), (0.5, 0.2), (0.45, 0.55), (-0.45, 0.55), (-0.5, 0.2))


# ------------------------------------------------------------------------------- templates
def quadruped(length: float, girth: float, leg: float, neck: float, head: float, tail: float,
              ears: bool = True) -> tuple[Part, ...]:
    """A four-legged blockout: capsule body along X, legs at the corners, neck, head, tail."""
    r, back = girth / 2, leg + girth / 2
    front = length / 2
    return (
        pill(r, length, (-front, 0, back), turn=(("y", 90),), ry=r * 0.85),
        pill(r * 0.32, leg + r * 0.6, (front - r * 0.8, r * 0.55, 0), copies="xy"),
        rod((front - r * 0.4, 0, back + r * 0.3), (front + neck * 0.45, 0, back + r * 0.3 + neck), r * 0.42,
            taper=0.85),
        pill(head * 0.32, head, (front + neck * 0.45 - head * 0.15, 0, back + r * 0.2 + neck), ry=head * 0.28,
             turn=(("y", 105),)),
        rod((-front + r * 0.3, 0, back + r * 0.3), (-front - tail * 0.9, 0, back + r * 0.3 - tail * 0.4), r * 0.16,
            taper=0.3),
        cyl(head * 0.12, head * 0.3,
            (front + neck * 0.45 - head * 0.05, head * 0.18, back + neck + r * 0.35 + head * 0.2),
            taper=0.0, copies="y", when="" if ears else "opt:0"),
        ball(head * 0.05, (front + neck * 0.45 + head * 0.25, head * 0.15, back + neck + head * 0.15), DARK, copies="y",
             when="prod"),
    )


def biped(height: float, z: float = 0.0, bulk: float = 1.0) -> tuple[Part, ...]:
    """An eight-heads humanoid: capsule legs, torso, arms, a head on a neck."""
    u = height / 8
    leg = u * 4
    return (
        pill(u * 0.3 * bulk, leg, (u * 0.45, 0, z), copies="x"),
        pill(u * 0.8 * bulk, u * 3, (0, 0, z + leg - u * 0.2), ry=u * 0.5 * bulk),
        pill(u * 0.22 * bulk, u * 3.1, (u * 1.25 * bulk, 0, z + leg + u * 0.1), copies="x"),
        cyl(u * 0.2, u * 0.5, (0, 0, z + leg + u * 2.65), ACCENT),
        ball(u * 0.5, (0, 0, z + leg + u * 3.05), squash=(0.85, 0.95, 1.1)),
        ball(u * 0.08, (u * 0.17, -u * 0.4, z + leg + u * 3.6), DARK, copies="x", when="prod"),
        box(u * 0.5, u * 0.3, u * 0.25, (u * 0.45, -u * 0.08, z), ACCENT, copies="x", when="prod"),
    )


def seat(width: float, depth: float, height: float) -> tuple[Part, ...]:
    return (box(width, depth, 0.05, (0, 0, height)),
            box(0.04, 0.04, height, (width / 2 - 0.04, depth / 2 - 0.04, 0), ACCENT, copies="xy"))


# ------------------------------------------------------------------------------- the table
A = Archetype
ARCHETYPES: tuple[Archetype, ...] = (
    # ---- props
    A("lantern", "props", ("lantern", "oil lamp", "hanging lamp"), "iron", "iron", (
        box(0.22, 0.22, 0.04, s=ACCENT), box(0.165, 0.165, 0.28, (0, 0, 0.04), LIGHT),
        box(0.025, 0.025, 0.29, (0.095, 0.095, 0.035), copies="xy"),
        cyl(0.15, 0.1, (0, 0, 0.32), ACCENT, taper=0.0),
        ring(0.04, 0.01, (0, 0, 0.46), turn=(("x", 90),)),
        box(0.24, 0.24, 0.02, (0, 0, 0.3), ACCENT, when="prod"))),
    A("book", "props", ("book", "tome", "grimoire", "spellbook", "novel"), "leather", "paper", (
        box(0.17, 0.24, 0.04), box(0.16, 0.228, 0.032, (0.008, 0, 0.004), ACCENT),
        box(0.012, 0.245, 0.044, (-0.082, 0, -0.002), TRIM, when="prod"),
        box(0.05, 0.05, 0.005, (0, -0.03, 0.04), TRIM, when="opt"))),
    A("bottle", "props", ("bottle", "potion", "flask", "vial", "wine bottle"), "glass", "wooden", (
        turned(BOTTLE, 0.05, 0.3), cyl(0.017, 0.04, (0, 0, 0.28), ACCENT),
        cyl(0.052, 0.08, (0, 0, 0.08), TRIM, when="prod"))),
    A("candle", "props", ("candle", "candlestick", "taper candle"), "wax", "brass", (
        cyl(0.06, 0.02, s=ACCENT), cyl(0.03, 0.15, (0, 0, 0.02)),
        ball(0.015, (0, 0, 0.175), LIGHT, squash=(1, 1, 1.8)),
        ring(0.03, 0.006, (0.065, 0, 0.01), turn=(("x", 90),), when="opt"))),
    A("vase", "props", ("vase", "pot", "jar", "urn", "amphora", "pottery"), "clay", "clay", (
        turned(VASE, 0.25, 0.5),
        ring(0.06, 0.015, (0.2, 0, 0.34), turn=(("x", 90),), copies="x", when="alt:handles/two"),
        cyl(0.01, 0.01, (0, 0, 0.49), when="alt:handles/none"),
        ring(0.24, 0.012, (0, 0, 0.2), TRIM, when="prod"))),
    A("bucket", "props", ("bucket", "pail"), "wooden", "iron", (
        cyl(0.14, 0.3, taper=1.25), ring(0.17, 0.006, (0, 0, 0.3), turn=(("x", 90),)),
        cyl(0.16, 0.03, (0, 0, 0.05), ACCENT, taper=1.05, when="prod"),
        cyl(0.175, 0.03, (0, 0, 0.24), ACCENT, taper=1.02, when="prod"))),
    A("anvil", "props", ("anvil",), "iron", "wooden", (
        box(0.3, 0.22, 0.08), box(0.16, 0.12, 0.18, (0, 0, 0.08)), box(0.5, 0.18, 0.12, (0, 0, 0.26)),
        cyl(0.06, 0.22, (0.25, 0, 0.32), taper=0.0, turn=(("y", 90),)),
        cyl(0.3, 0.35, (0, 0, -0.35), ACCENT, when="opt"))),
    A("desk_lamp", "props", ("desk lamp", "table lamp", "reading lamp", "lamp"), "metal", "black", (
        cyl(0.1, 0.03, s=ACCENT), rod((0, 0, 0.03), (0.1, 0, 0.3), 0.012), rod((0.1, 0, 0.3), (-0.02, 0, 0.42), 0.012),
        cyl(0.08, 0.12, (-0.02, 0, 0.45), taper=0.4, turn=(("y", 150),)),
        ball(0.03, (-0.06, 0, 0.36), LIGHT), ball(0.02, (0.1, 0, 0.28), ACCENT, when="prod"))),
    A("mug", "props", ("mug", "cup", "tankard", "stein"), "ceramic", "ceramic", (
        cyl(0.045, 0.1), ring(0.03, 0.008, (0.05, 0, 0.05), turn=(("x", 90),)),
        cyl(0.047, 0.012, (0, 0, 0.085), ACCENT, when="prod"))),
    A("monitor", "props", ("monitor", "computer", "screen", "television", "tv", "laptop"), "black", "plastic", (
        box(0.22, 0.15, 0.02, s=ACCENT), box(0.04, 0.04, 0.2, (0, 0.03, 0.02), ACCENT),
        box(0.55, 0.04, 0.33, (0, 0, 0.2)), box(0.5, 0.005, 0.28, (0, -0.021, 0.225), LIGHT),
        box(0.3, 0.06, 0.2, (0, 0.05, 0.26), when="alt:back/crt"),
        box(0.2, 0.02, 0.1, (0, 0.025, 0.3), when="alt:back/flat"))),
    A("campfire", "props", ("campfire", "bonfire", "fire pit", "fire"), "wooden", "stone", (
        ball(0.08, (0.35, 0, 0), ACCENT, squash=(1, 1, 0.7), copies="ring:7-9"),
        rod((-0.3, 0.05, 0.04), (0.3, -0.05, 0.12), 0.05, copies="ring:3-4"),
        cyl(0.15, 0.45, (0, 0, 0.05), LIGHT, taper=0.0),
        ball(0.07, (0.08, 0, 0.1), LIGHT, squash=(1, 1, 2.5), when="prod"))),
    A("ladder", "props", ("ladder",), "wooden", "wooden", (
        box(0.05, 0.05, 2.2, (0.22, 0, 0), copies="x"),
        box(0.44, 0.04, 0.04, (0, 0, 0.25), ACCENT, copies="col:7:0.28"))),
    A("scroll", "props", ("scroll", "parchment", "map"), "paper", "wooden", (
        rod((-0.15, 0, 0.04), (0.15, 0, 0.04), 0.04), rod((0.15, 0, 0.04), (0.19, 0, 0.04), 0.012, ACCENT, copies="x"),
        box(0.28, 0.2, 0.005, (0, -0.12, 0), when="opt"), ring(0.041, 0.005, (0, 0, 0.04), CLOTH, turn=(("y", 90),),
                                                              when="prod"))),
    A("clock", "props", ("grandfather clock", "clock", "longcase clock"), "wooden", "brass", (
        box(0.45, 0.3, 1.9), box(0.5, 0.34, 0.12, (0, 0, 1.9), ACCENT),
        cyl(0.16, 0.02, (0, -0.15, 1.55), TRIM, turn=(("x", 90),)),
        cyl(0.06, 0.02, (0, -0.15, 0.7), TRIM, turn=(("x", 90),), when="prod"),
        box(0.5, 0.34, 0.1, s=ACCENT, when="prod"))),
    # ---- containers
    A("crate", "containers", ("crate", "box", "wooden box", "supply crate", "loot box"), "wooden", "iron", (
        box(1.0, 1.0, 1.0),
        box(1.04, 1.04, 0.08, (0, 0, 0.11), ACCENT, copies="col:2:0.7", when="opt:0.4"),
        box(0.08, 0.08, 1.0, (0.47, 0.47, 0), ACCENT, copies="xy", when="opt:0.5"),
        box(0.9, 0.04, 0.1, (0, -0.51, 0.2), copies="col:3:0.25", when="prod"),
        box(0.04, 0.9, 0.1, (0.51, 0, 0.2), copies="col:3:0.25", when="prod"),
        box(0.08, 0.03, 1.2, (-0.4, -0.515, 0.08), ACCENT, turn=(("y", 42),), when="alt:brace/diagonal"),
        box(0.9, 0.03, 0.08, (0, -0.515, 0.46), ACCENT, when="alt:brace/middle"))),
    A("barrel", "containers", ("barrel", "keg", "cask", "drum"), "wooden", "iron", (
        turned(BULGE, 0.45, 1.2),
        cyl(0.475, 0.06, (0, 0, 0.1), ACCENT, copies="col:2:0.94"),
        cyl(0.48, 0.06, (0, 0, 0.57), ACCENT, when="prod"),
        cyl(0.38, 0.02, (0, 0, 1.2), ACCENT, when="prod"),
        box(0.03, 0.06, 0.9, (0, -0.47, 0.15), when="opt:0.3"))),
    A("basket", "containers", ("basket", "hamper"), "wicker", "wicker", (
        turned(FRUSTUM, 0.3, 0.3), ring(0.25, 0.015, (0, 0, 0.3), turn=(("x", 90),), when="opt:0.6"),
        ring(0.3, 0.015, (0, 0, 0.3), when="prod"), ring(0.27, 0.012, (0, 0, 0.15), when="prod"))),
    A("sack", "containers", ("sack", "bag", "grain sack", "sandbag"), "fabric", "rope", (
        blob((0.45, 0.35, 0.6), rough=0.08), cyl(0.06, 0.1, (0, 0, 0.55), ACCENT), ball(0.07, (0, 0, 0.63),
                                                                                       squash=(1.2, 1, 0.8)),
        ring(0.065, 0.012, (0, 0, 0.6), when="prod"))),
    A("toolbox", "containers", ("toolbox", "tool box", "tool chest"), "red", "metal", (
        box(0.5, 0.25, 0.22), box(0.51, 0.26, 0.05, (0, 0, 0.2), ACCENT),
        box(0.26, 0.03, 0.03, (0, 0, 0.33), DARK), box(0.03, 0.03, 0.09, (0.12, 0, 0.25), DARK, copies="x"),
        box(0.04, 0.02, 0.04, (0.15, -0.135, 0.18), ACCENT, copies="x", when="prod"))),
    A("shipping_container", "containers", ("shipping container", "cargo container", "container"), "red", "metal", (
        box(6.0, 2.4, 2.6),
        box(0.08, 2.46, 2.4, (0, 0, 0.1), copies="row:20:0.28", when="prod"),
        box(0.05, 2.3, 2.4, (3.0, 0, 0.1), ACCENT), box(0.04, 0.04, 2.3, (3.04, 0.3, 0.15), DARK, copies="y"),
        box(6.04, 2.44, 0.12, s=ACCENT, when="prod"))),
    A("cardboard_box", "containers", ("cardboard box", "parcel", "package", "carton"), "cardboard", "paper", (
        box(0.5, 0.4, 0.35), box(0.08, 0.41, 0.004, (0, 0, 0.35), ACCENT),
        box(0.5, 0.2, 0.01, (0, 0.1, 0.35), turn=(("x", -30),), when="opt"),
        box(0.5, 0.2, 0.01, (0, -0.2, 0.35), turn=(("x", 30),), when="opt"))),
    A("jerrycan", "containers", ("jerrycan", "fuel can", "gas can", "petrol can"), "green", "metal", (
        box(0.35, 0.16, 0.45), box(0.2, 0.04, 0.06, (-0.03, 0, 0.45), ACCENT),
        cyl(0.025, 0.08, (0.12, 0, 0.44), ACCENT, turn=(("y", 30),)),
        box(0.3, 0.17, 0.02, (0, 0, 0.2), ACCENT, when="prod"))),
    # ---- furniture
    A("table", "furniture", ("table", "dining table", "kitchen table", "wooden table"), "wooden", "wooden", (
        box(1.4, 0.8, 0.06, (0, 0, 0.69)),
        box(0.07, 0.07, 0.69, (0.62, 0.32, 0), ACCENT, copies="xy", when="alt:legs/square"),
        cyl(0.045, 0.69, (0.6, 0.3, 0), ACCENT, taper=0.6, copies="xy", when="alt:legs/turned"),
        box(0.1, 0.6, 0.69, (0.55, 0, 0), ACCENT, copies="x", when="alt:legs/trestle"),
        box(1.3, 0.7, 0.08, (0, 0, 0.61), ACCENT, when="prod")), surface=True),
    A("chair", "furniture", ("chair", "dining chair", "kitchen chair", "wooden chair"), "wooden", "wooden", (
        *seat(0.45, 0.45, 0.43),
        box(0.04, 0.04, 0.5, (0.19, 0.205, 0.48), copies="x", when="alt:back/slats"),
        box(0.38, 0.03, 0.05, (0, 0.205, 0.6), ACCENT, copies="col:3:0.12", when="alt:back/slats"),
        box(0.43, 0.04, 0.45, (0, 0.2, 0.48), when="alt:back/solid"),
        box(0.37, 0.03, 0.03, (0, 0.19, 0.15), ACCENT, when="prod"))),
    A("office_chair", "furniture", ("office chair", "desk chair", "swivel chair", "computer chair", "gaming chair"),
      "black", "metal", (
        box(0.32, 0.05, 0.04, (0.16, 0, 0.06), ACCENT, copies="ring:5"),
        ball(0.03, (0.3, 0, 0), DARK, copies="ring:5"), cyl(0.03, 0.32, (0, 0, 0.08), ACCENT),
        box(0.5, 0.48, 0.09, (0, 0, 0.4)), box(0.46, 0.07, 0.6, (0, 0.23, 0.5), turn=(("x", -10),)),
        box(0.05, 0.25, 0.04, (0.26, 0, 0.62), copies="x", when="opt:0.7"),
        box(0.04, 0.04, 0.14, (0.26, 0, 0.49), ACCENT, copies="x", when="opt:0.7"),
        box(0.3, 0.08, 0.15, (0, 0.31, 0.95), when="opt:0.4"))),
    A("desk", "furniture", ("desk", "office desk", "writing desk", "work desk", "workbench"), "wooden", "metal", (
        box(1.4, 0.7, 0.04, (0, 0, 0.72)), box(0.04, 0.66, 0.72, (0.66, 0, 0), ACCENT, copies="x"),
        box(0.4, 0.6, 0.6, (0.4, 0, 0.08), when="opt:0.6"),
        box(0.36, 0.01, 0.16, (0.4, -0.305, 0.1), ACCENT, copies="col:3:0.19", when="prod"),
        box(1.3, 0.02, 0.4, (0, 0.3, 0.3), ACCENT, when="opt")), surface=True),
    A("stool", "furniture", ("stool", "bar stool", "footstool"), "wooden", "wooden", (
        cyl(0.18, 0.05, (0, 0, 0.6)), rod((0.15, 0, 0), (0.08, 0, 0.6), 0.02, ACCENT, copies="ring:3-4"),
        ring(0.11, 0.01, (0, 0, 0.25), when="prod"))),
    A("armchair", "furniture", ("armchair", "easy chair", "recliner", "lounge chair"), "fabric", "wooden", (
        box(0.8, 0.8, 0.35, (0, 0, 0.1)), box(0.6, 0.62, 0.12, (0, -0.05, 0.45)), box(0.8, 0.2, 0.5, (0, 0.3, 0.45)),
        box(0.14, 0.8, 0.25, (0.33, 0, 0.45), copies="x"), ball(0.05, (0.34, 0.34, 0), ACCENT, copies="xy"),
        box(0.56, 0.12, 0.4, (0, 0.18, 0.55), when="prod"))),
    A("sofa", "furniture", ("sofa", "couch", "settee", "loveseat"), "fabric", "wooden", (
        box(2.0, 0.85, 0.35, (0, 0, 0.1)), box(0.62, 0.65, 0.14, (0, -0.05, 0.45), copies="row:3:0.64"),
        box(2.0, 0.22, 0.5, (0, 0.31, 0.45)), box(0.18, 0.85, 0.3, (0.91, 0, 0.45), copies="x"),
        box(0.05, 0.05, 0.1, (0.9, 0.35, 0), ACCENT, copies="xy"),
        box(0.6, 0.12, 0.38, (0, 0.2, 0.58), copies="row:3:0.64", when="prod"))),
    A("bed", "furniture", ("bed", "cot", "bunk", "double bed"), "fabric", "wooden", (
        box(1.4, 2.0, 0.3, (0, 0, 0.1), ACCENT), box(1.34, 1.94, 0.2, (0, 0, 0.4)),
        box(1.4, 0.08, 1.0, (0, 1.0, 0), ACCENT), blob((0.6, 0.35, 0.14), (0, 0.72, 0.58), rough=0.05),
        box(1.4, 0.06, 0.6, (0, -1.0, 0), ACCENT, when="opt"), box(1.36, 1.2, 0.05, (0, -0.35, 0.59), CLOTH,
                                                                    when="prod"))),
    A("bookshelf", "furniture", ("bookshelf", "bookcase", "shelf", "shelves", "shelving"), "wooden", "wooden", (
        box(0.04, 0.35, 1.8, (0.48, 0, 0), copies="x"), box(0.92, 0.02, 1.78, (0, 0.165, 0.01)),
        box(0.92, 0.33, 0.03, (0, -0.005, 0.02), ACCENT, copies="col:5:0.43"),
        box(0.035, 0.24, 0.3, (-0.2, 0, 0.05), DARK, copies="row:9:0.045", when="prod"),
        box(0.035, 0.24, 0.28, (0.1, 0, 0.48), CLOTH, copies="row:10:0.045", when="opt:0.7"),
        box(0.035, 0.24, 0.3, (-0.1, 0, 0.91), TRIM, copies="row:8:0.045", when="opt:0.7"))),
    A("wardrobe", "furniture", ("wardrobe", "cabinet", "cupboard", "armoire", "closet"), "wooden", "wooden", (
        box(1.1, 0.6, 2.0), box(1.16, 0.64, 0.06, (0, 0, 2.0), ACCENT),
        box(0.53, 0.01, 1.85, (0.27, -0.3, 0.08), ACCENT, copies="x", when="prod"),
        ball(0.02, (0.05, -0.32, 1.0), TRIM, copies="x"), box(0.06, 0.06, 0.08, (0.5, 0.25, -0.08), ACCENT,
                                                               copies="xy"))),
    A("dresser", "furniture", ("dresser", "chest of drawers", "drawers", "sideboard", "nightstand"), "wooden",
      "wooden", (
        box(1.0, 0.5, 0.9), box(1.04, 0.54, 0.04, (0, 0, 0.9), ACCENT),
        box(0.9, 0.01, 0.22, (0, -0.25, 0.08), ACCENT, copies="col:3:0.27"),
        ball(0.025, (0.25, -0.27, 0.17), TRIM, copies="col:3:0.27"),
        ball(0.025, (-0.25, -0.27, 0.17), TRIM, copies="col:3:0.27")), surface=True),
    A("filing_cabinet", "furniture", ("filing cabinet", "file cabinet", "locker"), "metal", "grey", (
        box(0.45, 0.6, 1.3), box(0.4, 0.01, 0.28, (0, -0.3, 0.08), ACCENT, copies="col:4:0.31"),
        box(0.14, 0.03, 0.03, (0, -0.32, 0.3), DARK, copies="col:4:0.31", when="prod"))),
    A("picnic_table", "furniture", ("picnic table", "garden table", "outdoor table", "patio table"), "wooden",
      "wooden", (
        box(1.8, 0.16, 0.05, (0, 0, 0.72), copies="rowy:5:0.17"),
        box(1.8, 0.25, 0.05, (0, 0.65, 0.43), copies="y"),
        rod((0.7, -0.75, 0), (0.7, -0.05, 0.72), 0.04, ACCENT, copies="xy"),
        box(0.06, 1.5, 0.06, (0.7, 0, 0.38), ACCENT, copies="x", when="prod")), surface=True),
    A("deck_chair", "furniture", ("deck chair", "sun lounger", "lounger", "beach chair", "garden chair"), "wooden",
      "fabric", (
        box(0.6, 1.2, 0.06, (0, 0, 0.3)), box(0.6, 0.06, 0.8, (0, 0.6, 0.3), turn=(("x", -35),)),
        box(0.04, 0.04, 0.3, (0.27, 0.5, 0), ACCENT, copies="xy"),
        box(0.5, 1.0, 0.02, (0, -0.05, 0.36), CLOTH, when="prod"))),
    A("parasol", "furniture", ("parasol", "patio umbrella", "umbrella", "sunshade"), "cloth", "metal", (
        cyl(0.25, 0.06, s=ACCENT), cyl(0.025, 2.2, s=ACCENT), cyl(1.2, 0.45, (0, 0, 1.8), taper=0.0),
        ball(0.04, (0, 0, 2.22), ACCENT),
        rod((0, 0, 2.2), (1.15, 0, 1.78), 0.01, ACCENT, copies="ring:8", when="prod"))),
    # ---- architecture
    A("wall", "architecture", ("wall", "rampart", "stone wall", "brick wall", "wall section"), "stone", "stone", (
        box(3.0, 0.4, 2.5, when="draft"),
        box(3.0, 0.4, 0.49, copies="col:5:0.5", when="prod"),
        box(3.1, 0.48, 0.15, (0, 0, 2.5), ACCENT),
        box(0.4, 0.3, 1.8, (1.1, -0.3, 0), copies="x", when="opt:0.35"),
        box(0.3, 0.42, 0.3, (-0.6, 0, 2.65), ACCENT, copies="row:4:0.6", when="opt:0.3"))),
    A("pillar", "architecture", ("pillar", "column", "stone pillar", "pedestal column"), "marble", "stone", (
        box(0.9, 0.9, 0.25, s=ACCENT), cyl(0.3, 2.5, (0, 0, 0.25), taper=0.9),
        box(0.9, 0.9, 0.25, (0, 0, 2.75), ACCENT),
        cyl(0.36, 0.1, (0, 0, 0.25), ACCENT, when="prod"), cyl(0.33, 0.1, (0, 0, 2.64), ACCENT, when="prod"))),
    A("arch", "architecture", ("arch", "archway", "stone arch"), "stone", "stone", (
        box(0.35, 0.4, 2.0, (1.175, 0, 0), copies="x"), special("arc", (2.0, 0.4, 0.35), (0, 0, 2.0)),
        box(0.3, 0.45, 0.42, (0, 0, 3.05), ACCENT, when="prod"),
        box(0.5, 0.5, 0.2, (1.175, 0, 0), ACCENT, copies="x", when="opt"))),
    A("stairs", "architecture", ("stairs", "staircase", "steps", "stair", "stairway"), "stone", "iron", (
        special("steps", (1.2, 2.0, 1.2), count="4-8"),
        rod((0.62, -0.95, 0.0), (0.62, -0.95, 1.0), 0.025, ACCENT, copies="x", when="prod"),
        rod((0.62, 0.95, 1.2), (0.62, 0.95, 2.1), 0.025, ACCENT, copies="x", when="prod"),
        rod((0.62, -0.95, 1.0), (0.62, 0.95, 2.1), 0.025, ACCENT, copies="x", when="prod"))),
    A("door", "architecture", ("door", "wooden door", "doorway", "front door"), "wooden", "iron", (
        box(1.0, 0.08, 2.1), box(0.1, 0.14, 2.1, (0.55, 0, 0), ACCENT, copies="x"),
        box(1.26, 0.16, 0.12, (0, 0, 2.1), ACCENT), ball(0.04, (0.38, -0.12, 0.98), ACCENT),
        box(0.02, 0.01, 2.0, (-0.375, -0.045, 0.05), copies="row:4:0.25", when="prod"),
        box(0.9, 0.02, 0.08, (0, -0.05, 0.4), ACCENT, copies="col:2:1.2", when="opt:0.4"))),
    A("fence", "architecture", ("fence", "railing", "palisade", "picket fence"), "wooden", "wooden", (
        box(0.1, 0.1, 1.0, copies="row:4:0.95"),
        box(3.0, 0.05, 0.1, (0, -0.07, 0.3), ACCENT, copies="col:2:0.4"),
        box(0.08, 0.03, 0.9, (0, -0.11, 0.05), copies="row:13:0.22", when="opt:0.5"))),
    A("gate", "architecture", ("gate", "iron gate", "garden gate", "castle gate"), "iron", "stone", (
        box(0.3, 0.3, 2.2, (1.3, 0, 0), ACCENT, copies="x"),
        box(0.04, 0.04, 1.8, (0.65, 0, 0.1), copies="row:7:0.16"),
        box(0.04, 0.04, 1.8, (-0.65, 0, 0.1), copies="row:7:0.16"),
        box(2.3, 0.05, 0.06, (0, 0, 0.3), copies="col:2:1.3"),
        ball(0.15, (1.3, 0, 2.2), ACCENT, copies="x"),
        cyl(0.02, 0.12, (0.65, 0, 1.9), taper=0.0, copies="row:13:0.09", when="prod"))),
    A("castle_tower", "architecture", ("castle tower", "tower", "keep", "turret", "fortress tower"), "stone", "stone", (
        cyl(1.6, 6.0, taper=0.92),
        cyl(1.7, 0.45, (0, 0, 5.55), ACCENT),
        box(0.5, 0.5, 0.5, (1.4, 0, 6.0), ACCENT, copies="ring:8", when="alt:top/battlements"),
        cyl(1.85, 2.6, (0, 0, 6.0), RUST, taper=0.0, when="alt:top/roof"),
        box(0.25, 0.3, 0.6, (0, -1.42, 3.5), DARK), box(0.9, 0.3, 1.6, (0, -1.48, 0), DARK),
        box(0.22, 0.3, 0.5, (1.45, 0, 2.2), DARK, copies="ring:4", when="prod"),
        cyl(1.75, 0.3, s=ACCENT, when="prod"))),
    A("bridge", "architecture", ("bridge", "footbridge", "wooden bridge", "stone bridge"), "wooden", "stone", (
        box(4.0, 1.5, 0.2, (0, 0, 1.0)), box(0.5, 1.5, 1.0, (1.5, 0, 0), ACCENT, copies="x"),
        box(4.0, 0.08, 0.08, (0, 0.7, 1.8), copies="y"),
        box(0.08, 0.08, 0.6, (0, 0.7, 1.2), copies="row:6:0.78"),
        box(0.08, 0.08, 0.6, (0, -0.7, 1.2), copies="row:6:0.78"),
        box(0.18, 1.52, 0.03, (0, 0, 1.2), copies="row:19:0.21", when="prod"))),
    A("window", "architecture", ("window", "window frame", "casement"), "wooden", "glass", (
        box(1.0, 0.15, 0.1), box(1.0, 0.15, 0.1, (0, 0, 1.1)), box(0.1, 0.15, 1.0, (0.45, 0, 0.1), copies="x"),
        box(0.8, 0.02, 1.0, (0, 0, 0.1), GLASS), box(1.1, 0.25, 0.06, (0, -0.05, -0.06), when="opt:0.6"),
        box(0.04, 0.05, 1.0, (0, 0, 0.1), when="prod"), box(0.8, 0.05, 0.04, (0, 0, 0.58), when="prod"))),
    A("house", "architecture", ("house", "cottage", "hut", "cabin", "shack", "building"), "wooden", "red", (
        box(4.0, 3.0, 2.5), slab(GABLE, 3.4, 4.4, 1.6, (0, 0, 2.5), ACCENT, turn=(("z", 90),)),
        box(0.9, 0.1, 1.8, (0, -1.52, 0), DARK), box(0.7, 0.1, 0.7, (1.2, -1.52, 1.2), GLASS, copies="x"),
        box(0.4, 0.4, 1.4, (1.2, 0.6, 2.9), DARK, when="opt:0.6"),
        box(4.1, 3.1, 0.2, s=DARK, when="prod"))),
    A("watchtower", "architecture", ("watchtower", "watch tower", "lookout tower", "guard tower"), "wooden",
      "wooden", (
        rod((1.0, 1.0, 0), (0.85, 0.85, 4.0), 0.1, copies="xy"), box(2.0, 2.0, 0.2, (0, 0, 4.0)),
        box(2.0, 0.08, 0.8, (0, 0.96, 4.2), ACCENT, copies="y"),
        box(0.08, 2.0, 0.8, (0.96, 0, 4.2), ACCENT, copies="x"),
        box(0.08, 0.08, 1.5, (0.9, 0.9, 4.2), copies="xy"),
        cyl(1.7, 1.2, (0, 0, 5.7), ACCENT, taper=0.0),
        rod((1.0, 1.0, 0.5), (-0.9, 1.0, 3.5), 0.05, ACCENT, copies="y", when="prod"))),
    A("chimney", "architecture", ("chimney", "smokestack"), "brick", "stone", (
        box(0.6, 0.6, 2.5), box(0.7, 0.7, 0.12, (0, 0, 2.5), ACCENT),
        cyl(0.1, 0.25, (0.12, 0, 2.62), RUST, copies="x", when="opt:0.7"),
        box(0.66, 0.66, 0.08, (0, 0, 1.2), ACCENT, when="prod"))),
    A("tent", "architecture", ("tent", "pavilion", "camp tent"), "fabric", "wooden", (
        slab(GABLE, 2.0, 2.2, 1.5), cyl(0.03, 1.7, (0, -1.15, 0), ACCENT, copies="y"),
        slab(GABLE, 0.7, 0.02, 1.0, (0, -1.11, 0), DARK),
        rod((0.9, -1.2, 0), (0, -1.15, 1.6), 0.008, ACCENT, copies="xy", when="prod"))),
    # ---- street and urban
    A("street_lamp", "street", ("street lamp", "streetlight", "lamppost", "lamp post", "street light"), "iron",
      "iron", (
        cyl(0.22, 0.35, s=ACCENT), cyl(0.07, 3.6, (0, 0, 0.35), taper=0.7),
        rod((0, 0, 3.8), (0.7, 0, 4.0), 0.04, when="alt:head/arm"),
        cyl(0.25, 0.2, (0.75, 0, 3.78), ACCENT, taper=0.3, when="alt:head/arm"),
        ball(0.1, (0.75, 0, 3.66), LIGHT, when="alt:head/arm"),
        box(0.3, 0.3, 0.45, (0, 0, 3.95), LIGHT, when="alt:head/lantern"),
        cyl(0.28, 0.25, (0, 0, 4.4), ACCENT, taper=0.0, when="alt:head/lantern"),
        rod((0, 0, 3.75), (0.55, 0, 3.85), 0.035, copies="x", when="alt:head/double"),
        ball(0.16, (0.55, 0, 3.7), LIGHT, copies="x", when="alt:head/double"),
        cyl(0.12, 0.3, (0, 0, 0.35), ACCENT, when="prod"))),
    A("park_bench", "street", ("bench", "park bench", "garden bench", "pew"), "wooden", "iron", (
        box(1.6, 0.1, 0.04, (0, -0.15, 0.45), copies="rowy:3:0.12"),
        box(1.6, 0.04, 0.1, (0, 0.2, 0.55), copies="col:3:0.13", when="opt:0.8"),
        box(0.06, 0.45, 0.45, (0.7, 0, 0), ACCENT, copies="x"),
        box(0.06, 0.05, 0.5, (0.7, 0.2, 0.45), ACCENT, copies="x", when="opt:0.8"),
        box(0.06, 0.4, 0.05, (0.72, -0.05, 0.62), ACCENT, copies="x", when="prod"))),
    A("trash_bin", "street", ("trash bin", "bin", "trash can", "garbage can", "wastebin", "dustbin", "litter bin",
                              "trash"), "metal", "black", (
        cyl(0.3, 0.9, taper=1.1, when="alt:body/round"), box(0.6, 0.6, 0.9, when="alt:body/square"),
        cyl(0.34, 0.08, (0, 0, 0.9), ACCENT), ball(0.06, (0, 0, 0.96), ACCENT, squash=(2, 0.5, 1)),
        cyl(0.32, 0.04, (0, 0, 0.2), ACCENT, copies="col:2:0.5", when="prod"))),
    A("fire_hydrant", "street", ("fire hydrant", "hydrant"), "red", "metal", (
        cyl(0.2, 0.06, s=ACCENT), cyl(0.15, 0.6, (0, 0, 0.06)), ball(0.16, (0, 0, 0.52)),
        cyl(0.06, 0.12, (0.14, 0, 0.44), turn=(("y", 90),), copies="x"),
        cyl(0.08, 0.14, (0, -0.14, 0.44), turn=(("x", 90),)), cyl(0.04, 0.06, (0, 0, 0.82), ACCENT),
        cyl(0.17, 0.04, (0, 0, 0.6), ACCENT, when="prod"))),
    A("road_sign", "street", ("road sign", "sign", "signpost", "street sign", "stop sign", "traffic sign"), "red",
      "metal", (
        cyl(0.04, 2.4, s=ACCENT),
        box(0.7, 0.03, 0.5, (0, -0.06, 1.8), when="alt:plate/square"),
        cyl(0.35, 0.03, (0, -0.045, 2.05), turn=(("x", 90),), when="alt:plate/round"),
        slab(GABLE, 0.8, 0.03, 0.7, (0, -0.06, 1.75), when="alt:plate/warning"),
        box(0.1, 0.05, 0.05, (0, -0.03, 1.9), ACCENT, when="prod"))),
    A("bollard", "street", ("bollard", "post", "traffic post"), "metal", "yellow", (
        cyl(0.12, 0.8), ball(0.12, (0, 0, 0.68)), cyl(0.125, 0.06, (0, 0, 0.6), ACCENT),
        cyl(0.15, 0.05, s=ACCENT, when="prod"))),
    A("traffic_cone", "street", ("traffic cone", "cone", "safety cone", "pylon"), "orange", "white", (
        box(0.4, 0.4, 0.04, s=DARK), cyl(0.16, 0.7, (0, 0, 0.04), taper=0.15),
        cyl(0.115, 0.09, (0, 0, 0.38), ACCENT, taper=0.85), cyl(0.085, 0.06, (0, 0, 0.58), ACCENT, taper=0.85,
                                                                when="prod"))),
    A("mailbox", "street", ("mailbox", "postbox", "letterbox", "post box"), "blue", "metal", (
        box(0.1, 0.1, 1.1, s=ACCENT), box(0.3, 0.45, 0.25, (0, 0, 1.1)),
        cyl(0.15, 0.45, (0, -0.225, 1.35), turn=(("x", -90),)),
        box(0.03, 0.02, 0.25, (0.16, 0.12, 1.2), RUST, when="opt"),
        box(0.12, 0.01, 0.03, (0, -0.231, 1.3), DARK, when="prod"))),
    A("traffic_light", "street", ("traffic light", "stoplight", "traffic signal"), "metal", "black", (
        cyl(0.08, 3.0), cyl(0.2, 0.1, s=ACCENT), box(0.35, 0.3, 1.0, (0, 0, 3.0), ACCENT),
        ball(0.1, (0, -0.12, 3.08), LIGHT, copies="col:3:0.3"),
        box(0.26, 0.15, 0.03, (0, -0.2, 3.3), ACCENT, copies="col:3:0.3", when="prod"))),
    A("phone_booth", "street", ("phone booth", "telephone box", "phone box", "kiosk"), "red", "red", (
        box(1.0, 1.0, 2.4), box(1.05, 1.05, 0.15, (0, 0, 2.4), ACCENT),
        box(0.7, 0.02, 1.3, (0, -0.5, 0.8), GLASS), box(0.02, 0.7, 1.3, (0.5, 0, 0.8), GLASS, copies="x"),
        box(0.8, 0.02, 0.15, (0, -0.51, 2.2), LIGHT),
        box(1.02, 1.02, 0.1, s=ACCENT, when="prod"))),
    # ---- vehicles, blocked out
    A("car", "vehicles", ("car", "sedan", "automobile", "hatchback", "taxi", "police car"), "red", "black", (
        box(4.2, 1.8, 0.7, (0, 0, 0.35)),
        box(2.2, 1.6, 0.65, (-0.2, 0, 1.05), when="alt:body/sedan"),
        box(3.0, 1.6, 0.7, (-0.5, 0, 1.05), when="alt:body/wagon"),
        box(1.5, 1.6, 0.55, (-0.1, 0, 1.05), when="alt:body/coupe"),
        box(1.4, 1.64, 0.4, (-0.2, 0, 1.15), GLASS),
        cyl(0.35, 0.25, (1.35, -0.72, 0.35), DARK, turn=(("x", 90),), copies="xy"),
        ball(0.1, (2.06, 0.6, 0.6), LIGHT, copies="y"),
        box(0.12, 1.8, 0.2, (2.12, 0, 0.28), ACCENT, copies="x", when="prod"),
        cyl(0.2, 0.27, (1.35, -0.72, 0.35), ACCENT, turn=(("x", 90),), copies="xy", when="prod"))),
    A("truck", "vehicles", ("truck", "crate truck", "lorry", "pickup truck", "delivery truck"), "blue", "black", (
        box(6.5, 2.0, 0.5, (0, 0, 0.6)), box(1.8, 2.2, 2.0, (2.4, 0, 0.7)), box(0.1, 2.0, 0.8, (3.3, 0, 1.7), GLASS),
        box(4.2, 2.3, 0.15, (-0.9, 0, 1.1), ACCENT),
        cyl(0.5, 0.35, (2.4, -0.9, 0.5), DARK, turn=(("x", 90),), copies="y"),
        cyl(0.5, 0.35, (-1.8, -0.9, 0.5), DARK, turn=(("x", 90),), copies="y"),
        box(1.0, 1.0, 1.0, (-0.9, 0, 1.25), TRIM, copies="row:3:1.2", when="opt:0.8"),
        box(4.2, 0.08, 0.6, (-0.9, 1.1, 1.25), ACCENT, copies="y", when="opt:0.5"))),
    A("cart", "vehicles", ("cart", "wagon", "handcart", "wooden cart", "hay cart"), "wooden", "iron", (
        box(1.6, 1.0, 0.1, (0, 0, 0.6)), box(1.6, 0.05, 0.4, (0, 0.5, 0.7), copies="y"),
        box(0.05, 1.0, 0.4, (0.8, 0, 0.7), copies="x"),
        cyl(0.45, 0.08, (0, -0.55, 0.45), ACCENT, turn=(("x", 90),), copies="y"),
        rod((0.8, 0.3, 0.6), (2.2, 0.3, 0.5), 0.04, copies="y", when="opt:0.7"),
        rod((0, -0.64, 0.45), (0.4, -0.64, 0.45), 0.02, ACCENT, copies="ring:6", when="prod"))),
    A("rowboat", "vehicles", ("boat", "rowboat", "rowing boat", "canoe", "dinghy"), "wooden", "wooden", (
        turned(HULL, 1.6, 0.6, ry=0.6), box(0.2, 1.1, 0.04, (0, 0, 0.45), ACCENT, copies="row:3:0.9"),
        rod((0.2, -0.9, 0.5), (0.4, 0.9, 0.5), 0.025, ACCENT, when="opt"),
        ring(1.5, 0.03, (0, 0, 0.6), turn=(), when="prod"))),
    A("sailing_ship", "vehicles", ("ship", "sailing ship", "sailboat", "galleon", "pirate ship"), "wooden", "fabric", (
        turned(HULL, 3.5, 1.4, ry=1.1), box(6.0, 1.9, 0.1, (0, 0, 1.3)), cyl(0.1, 6.0, (0, 0, 1.4), ACCENT),
        box(0.04, 2.8, 3.0, (0.1, 0, 2.6), CLOTH), box(1.5, 1.6, 0.8, (-2.4, 0, 1.4)),
        cyl(0.07, 4.0, (1.8, 0, 1.4), ACCENT, when="opt"), box(0.04, 2.0, 2.0, (1.9, 0, 3.0), CLOTH, when="opt"),
        box(6.6, 0.06, 0.3, (0, 1.0, 1.4), copies="y", when="prod"))),
    A("wheelbarrow", "vehicles", ("wheelbarrow", "barrow"), "metal", "wooden", (
        turned(FRUSTUM, 0.4, 0.3, (0, 0, 0.45), ry=0.3), cyl(0.2, 0.08, (0.55, 0.04, 0.2), DARK, turn=(("x", 90),)),
        rod((-0.2, 0.22, 0.45), (-1.0, 0.28, 0.7), 0.02, ACCENT, copies="y"),
        box(0.04, 0.04, 0.45, (-0.3, 0.22, 0), ACCENT, copies="y"))),
    A("tank", "vehicles", ("tank", "armored vehicle", "armoured vehicle", "apc"), "green", "black", (
        box(6.0, 3.0, 1.2, (0, 0, 0.6)), box(6.2, 0.8, 1.1, (0, 1.3, 0.1), DARK, copies="y"),
        cyl(1.2, 0.8, (-0.3, 0, 1.8), taper=0.85), cyl(0.1, 3.5, (0.7, 0, 2.25), ACCENT, turn=(("y", 90),)),
        cyl(0.3, 0.2, (-0.6, 0.4, 2.6), when="prod"),
        cyl(0.35, 0.1, (0, -1.73, 0.5), DARK, turn=(("x", 90),), copies="row:6:0.95", when="prod"))),
    # ---- vegetation
    A("pine", "vegetation", ("pine", "pine tree", "fir", "conifer", "spruce", "evergreen", "christmas tree"), "bark",
      "bark", (cyl(0.15, 0.9), special("tiers", (2.4, 2.4, 3.6), (0, 0, 0.6), FOLIAGE, count="3-5"),
               cyl(0.16, 0.03, (0, 0, 0.3), ACCENT, copies="col:2:0.25", when="prod")),
      colour_slot=FOLIAGE, vary=0.15),
    A("broadleaf_tree", "vegetation", ("tree", "oak tree", "oak", "maple", "birch", "broadleaf tree", "elm",
                                       "deciduous tree", "apple tree"), "bark", "bark", (
        cyl(0.22, 2.0, taper=0.7),
        rod((0, 0, 1.3), (0.7, 0.2, 2.3), 0.07, taper=0.5, copies="ring:2-3", when="opt:0.7"),
        special("cluster", (2.8, 2.8, 2.4), (0, 0, 1.8), FOLIAGE),
        cyl(0.235, 0.03, (0, 0, 0.4), ACCENT, taper=0.98, copies="col:4:0.35", when="prod")),
      colour_slot=FOLIAGE, vary=0.15),
    A("palm", "vegetation", ("palm", "palm tree", "coconut tree"), "bark", "bark", (
        rod((0, 0, 0), (0.35, 0, 2.2), 0.16, taper=0.85), rod((0.35, 0, 2.2), (0.1, 0, 4.2), 0.14, taper=0.8),
        ball(0.5, (1.05, 0, 4.0), FOLIAGE, squash=(2.4, 0.5, 0.14), turn=(("y", 18),), copies="ring:6-8"),
        ball(0.1, (0.22, 0, 3.85), ACCENT, copies="ring:3", when="opt:0.7"),
        cyl(0.17, 0.04, (0.08, 0, 0.4), ACCENT, copies="col:4:0.4", when="prod")),
      colour_slot=FOLIAGE, vary=0.15),
    A("dead_tree", "vegetation", ("dead tree", "bare tree", "leafless tree", "withered tree", "spooky tree"), "bark",
      "bark", (cyl(0.2, 2.5, taper=0.5),
               rod((0, 0, 1.5), (0.9, 0, 2.6), 0.07, taper=0.3, copies="ring:3-5"),
               rod((0, 0, 2.1), (-0.4, 0.5, 3.2), 0.05, taper=0.3, when="opt:0.7"),
               rod((0.1, 0, 0.1), (0.5, 0, 0), 0.09, taper=0.3, copies="ring:3", when="prod")), vary=0.18),
    A("bush", "vegetation", ("bush", "shrub", "shrubbery", "thicket"), "green", "green", (
        special("cluster", (1.2, 1.2, 0.9), s=FOLIAGE),
        ball(0.04, (0.45, 0, 0.5), RUST, copies="ring:7", when="opt:0.3")), colour_slot=FOLIAGE, vary=0.2),
    A("hedge", "vegetation", ("hedge", "hedgerow", "topiary"), "green", "green", (
        box(2.0, 0.7, 1.1, s=FOLIAGE), blob((0.7, 0.75, 0.4), (0, 0, 0.9), FOLIAGE, copies="row:3:0.65", when="prod")),
      colour_slot=FOLIAGE),
    A("grass", "vegetation", ("grass", "grass clump", "reeds", "weeds", "tuft"), "green", "green", (
        special("blades", (0.5, 0.5, 0.5), s=FOLIAGE),), colour_slot=FOLIAGE, vary=0.2),
    A("flowers", "vegetation", ("flowers", "flower", "flower bed", "tulips", "roses", "daisies"), "red", "green", (
        rod((0, 0, 0), (0.12, 0, 0.4), 0.01, FOLIAGE, copies="ring:6"),
        ball(0.05, (0.12, 0, 0.36), copies="ring:6", squash=(1, 1, 0.7)),
        ball(0.02, (0.12, 0, 0.39), TRIM, copies="ring:6", when="prod"),
        special("blades", (0.4, 0.4, 0.2), s=FOLIAGE)), vary=0.15),
    A("mushroom", "vegetation", ("mushroom", "toadstool", "fungus", "mushrooms"), "red", "white", (
        cyl(0.06, 0.3, s=ACCENT, taper=0.8), turned(CAP, 0.2, 0.28, (0, 0, 0.28)),
        ball(0.022, (0.12, 0, 0.43), ACCENT, copies="ring:5", when="prod"),
        ball(0.018, (0.06, 0.07, 0.48), ACCENT, copies="ring:3", when="opt")), vary=0.2),
    A("stump", "vegetation", ("stump", "tree stump", "chopping block"), "bark", "wooden", (
        cyl(0.45, 0.12, taper=0.78), cyl(0.35, 0.5), cyl(0.32, 0.02, (0, 0, 0.5), ACCENT),
        rod((0.2, 0, 0.15), (0.62, 0, 0), 0.08, taper=0.3, copies="ring:3-5"),
        cyl(0.36, 0.03, (0, 0, 0.2), copies="col:2:0.15", when="prod"),
        cyl(0.015, 0.3, (0.1, 0, 0.5), ACCENT, turn=(("y", 60),), when="opt:0.3")), vary=0.15),
    A("cactus", "vegetation", ("cactus", "saguaro", "cacti"), "green", "green", (
        pill(0.2, 1.8), pill(0.13, 0.32, (0.05, 0, 0.8), turn=(("y", 90),), when="opt:0.8"),
        pill(0.12, 0.6, (0.35, 0, 0.7), when="opt:0.8"),
        pill(0.13, 0.32, (-0.05, 0, 1.0), turn=(("y", -90),), when="opt:0.8"),
        pill(0.12, 0.5, (-0.35, 0, 0.9), when="opt:0.8"),
        ball(0.04, (0, 0, 1.78), RUST, when="prod")), vary=0.18),
    A("fern", "vegetation", ("fern", "bracken", "plant"), "green", "green", (
        ball(0.5, (0.05, 0, 0.1), FOLIAGE, squash=(1.0, 0.22, 0.06), turn=(("y", -25),), copies="ring:6-8"),
        ball(0.3, (0.0, 0, 0.1), FOLIAGE, squash=(0.7, 0.18, 0.05), turn=(("y", -50),), copies="ring:5",
             when="prod")), colour_slot=FOLIAGE, vary=0.2),
    A("potted_plant", "vegetation", ("potted plant", "houseplant", "plant pot", "flower pot", "planter"), "clay",
      "clay", (turned(FRUSTUM, 0.2, 0.35), cyl(0.18, 0.02, (0, 0, 0.34), DARK),
               special("cluster", (0.5, 0.5, 0.6), (0, 0, 0.3), FOLIAGE),
               ring(0.2, 0.015, (0, 0, 0.33), when="prod")), vary=0.15),
    A("log", "vegetation", ("log", "fallen log", "driftwood", "timber"), "bark", "wooden", (
        rod((-1.0, 0, 0.22), (1.0, 0, 0.22), 0.22), rod((1.0, 0, 0.22), (1.02, 0, 0.22), 0.19, ACCENT, copies="x"),
        rod((0.3, 0, 0.3), (0.5, 0.35, 0.5), 0.05, taper=0.4, when="opt"),
        rod((-0.6, 0, 0.22), (-0.55, 0, 0.22), 0.23, copies="row:3:0.6", when="prod")), vary=0.18),
    # ---- rocks and terrain
    A("rock", "rocks", ("rock", "boulder", "stone", "rocks"), "stone", "stone", (
        blob((1.4, 1.0, 0.8), rough=0.25), blob((0.5, 0.4, 0.35), (0.6, 0.3, 0), rough=0.25, when="opt:0.4")),
      vary=0.25),
    A("cliff", "rocks", ("cliff", "ledge", "outcrop", "crag", "rock face", "cliff face"), "stone", "stone", (
        blob((4.0, 1.6, 1.0), rough=0.1), blob((3.5, 1.3, 1.0), (0.1, 0.2, 0.8), rough=0.1),
        blob((3.0, 1.0, 1.0), (-0.2, 0.4, 1.6), rough=0.12), blob((2.2, 0.8, 0.8), (0.2, 0.5, 2.4), rough=0.12,
                                                                   when="opt:0.6"),
        blob((0.6, 0.5, 0.4), (1.6, -0.9, 0), rough=0.25, copies="row:2:1.4", when="prod")), vary=0.2),
    A("crystal", "rocks", ("crystal", "gem", "shard", "geode", "crystals"), "crystal", "crystal", (
        special("spikes", (1.0, 1.0, 1.0)), blob((0.5, 0.5, 0.15), s=ACCENT, rough=0.2, when="prod")), vary=0.2),
    A("pebbles", "rocks", ("pebbles", "stones", "gravel", "rubble", "rock pile"), "stone", "stone", (
        blob((0.35, 0.3, 0.2), rough=0.2), blob((0.25, 0.2, 0.14), (0.35, 0, 0), rough=0.2, copies="ring:5-8")),
      vary=0.2),
    A("stalagmite", "rocks", ("stalagmite", "stalactite", "rock spire", "spire"), "stone", "stone", (
        cyl(0.35, 2.0, taper=0.05), cyl(0.2, 1.1, (0.3, 0.1, 0), taper=0.0, when="opt:0.7"),
        cyl(0.15, 0.7, (-0.25, -0.15, 0), taper=0.0, when="opt:0.7")), vary=0.2),
    A("hill", "rocks", ("hill", "mound", "terrain", "dune", "hillock"), "dirt", "green", (
        turned(MOUND, 2.0, 1.5), blob((0.5, 0.4, 0.3), (0.9, -0.9, 0.2), ACCENT, rough=0.2, when="opt"),
        special("blades", (0.6, 0.6, 0.4), (0.6, 0.3, 0.9), FOLIAGE, when="prod")), vary=0.25),
    A("ground_tile", "rocks", ("ground tile", "floor tile", "paving", "cobblestones", "tile", "floor"), "stone",
      "stone", (box(2.0, 2.0, 0.25),
                box(0.45, 0.45, 0.04, (0, -0.75, 0.25), ACCENT, copies="row:4:0.5", when="prod"),
                box(0.45, 0.45, 0.04, (0, -0.25, 0.25), ACCENT, copies="row:4:0.5", when="prod"),
                box(0.45, 0.45, 0.04, (0, 0.25, 0.25), ACCENT, copies="row:4:0.5", when="prod"),
                box(0.45, 0.45, 0.04, (0, 0.75, 0.25), ACCENT, copies="row:4:0.5", when="prod")), surface=True),
    # ---- weapons and tools
    A("sword", "weapons", ("sword", "blade", "sabre", "saber", "katana", "longsword", "broadsword"), "steel",
      "leather", (
        box(0.035, 0.035, 0.2, s=ACCENT), box(0.3, 0.05, 0.04, (0, 0, 0.2), ACCENT, when="alt:guard/straight"),
        box(0.18, 0.07, 0.05, (0, 0, 0.2), ACCENT, when="alt:guard/short"),
        box(0.07, 0.015, 0.9, (0, 0, 0.24)), cyl(0.035, 0.1, (0, 0, 1.14), taper=0.0, ry=0.0075),
        ball(0.035, (0, 0, -0.06), ACCENT), box(0.015, 0.018, 0.7, (0, 0, 0.3), DARK, when="prod"))),
    A("shield", "weapons", ("shield", "buckler", "round shield", "kite shield"), "wooden", "iron", (
        cyl(0.4, 0.05, (0, 0.025, 0.4), turn=(("x", 90),), when="alt:shape/round"),
        slab(KITE, 0.8, 0.05, 0.6, (0, 0, 0.6), when="alt:shape/kite"),
        ball(0.08, (0, -0.04, 0.32), ACCENT, squash=(1, 0.5, 1)),
        ring(0.4, 0.02, (0, 0, 0.4), turn=(("x", 90),), when="prod"))),
    A("axe", "weapons", ("axe", "hatchet", "battle axe", "battleaxe"), "steel", "wooden", (
        cyl(0.02, 0.8, s=ACCENT), slab(BLADE, 0.2, 0.03, 0.25, (0.01, 0, 0.68)),
        slab(BLADE, 0.2, 0.03, 0.25, (-0.01, 0, 0.68), turn=(("z", 180),), when="opt:0.3"),
        cyl(0.024, 0.1, (0, 0, 0.05), when="prod"))),
    A("hammer", "weapons", ("hammer", "mallet", "warhammer", "sledgehammer"), "iron", "wooden", (
        cyl(0.02, 0.6, s=ACCENT), box(0.22, 0.08, 0.08, (0, 0, 0.56)),
        cyl(0.024, 0.12, (0, 0, 0.02), when="prod"), box(0.05, 0.09, 0.09, (0.1, 0, 0.555), ACCENT, copies="x",
                                                         when="prod"))),
    A("spear", "weapons", ("spear", "lance", "pike", "javelin", "halberd", "trident"), "steel", "wooden", (
        cyl(0.02, 1.8, s=ACCENT), cyl(0.035, 0.25, (0, 0, 1.8), taper=0.0, ry=0.01),
        cyl(0.025, 0.05, (0, 0, 1.76)), box(0.03, 0.06, 0.1, (0, 0, 1.7), CLOTH, when="prod"))),
    A("bow", "weapons", ("bow", "longbow", "shortbow", "crossbow"), "wooden", "leather", (
        rod((0.15, 0, 0.6), (0.0, 0, 1.2), 0.018, taper=0.5), rod((0.15, 0, 0.6), (0.0, 0, 0.0), 0.018, taper=0.5),
        rod((0.0, 0, 0.01), (0.0, 0, 1.19), 0.004, DARK), cyl(0.025, 0.16, (0.15, 0, 0.52), ACCENT),
        rod((0.02, 0, 0.6), (0.7, 0, 0.6), 0.006, when="opt:0.4"))),
    A("dagger", "weapons", ("dagger", "knife", "dirk", "shiv"), "steel", "leather", (
        box(0.025, 0.025, 0.1, s=ACCENT), box(0.12, 0.03, 0.02, (0, 0, 0.1), ACCENT),
        box(0.04, 0.01, 0.22, (0, 0, 0.12)), cyl(0.02, 0.05, (0, 0, 0.34), taper=0.0, ry=0.005),
        ball(0.02, (0, 0, -0.03), ACCENT, when="prod"))),
    A("mace", "weapons", ("mace", "morning star", "club", "flail"), "iron", "wooden", (
        cyl(0.025, 0.6, s=ACCENT), ball(0.09, (0, 0, 0.55)),
        cyl(0.02, 0.07, (0.08, 0, 0.64), taper=0.0, turn=(("y", 90),), copies="ring:6"),
        cyl(0.02, 0.07, (0, 0, 0.72), taper=0.0), cyl(0.03, 0.05, (0, 0, 0.02), when="prod"))),
    A("staff", "weapons", ("staff", "wizard staff", "magic staff", "wand", "sceptre", "scepter"), "wooden",
      "crystal", (
        cyl(0.025, 1.7, taper=0.8), ball(0.07, (0, 0, 1.72), LIGHT),
        rod((0, 0, 1.65), (0.06, 0, 1.82), 0.01, ACCENT, copies="ring:3"),
        ring(0.028, 0.008, (0, 0, 1.2), when="prod"))),
    A("pickaxe", "weapons", ("pickaxe", "pick", "mattock"), "iron", "wooden", (
        cyl(0.02, 0.9, s=ACCENT), rod((0, 0, 0.86), (0.32, 0, 0.78), 0.025, taper=0.2, copies="x"),
        cyl(0.03, 0.08, (0, 0, 0.82)))),
    A("shovel", "weapons", ("shovel", "spade"), "metal", "wooden", (
        box(0.22, 0.02, 0.3), cyl(0.02, 1.0, (0, 0, 0.3), ACCENT), box(0.14, 0.03, 0.03, (0, 0, 1.3), ACCENT),
        cyl(0.03, 0.1, (0, 0, 0.27), when="prod"))),
    A("wrench", "weapons", ("wrench", "spanner", "tool", "screwdriver"), "steel", "red", (
        box(0.03, 0.012, 0.22), box(0.08, 0.012, 0.06, (0, 0, 0.22)), box(0.02, 0.012, 0.05, (0.03, 0, 0.28),
                                                                          copies="x"),
        box(0.034, 0.016, 0.1, (0, 0, 0.02), ACCENT, when="prod"))),
    A("pistol", "weapons", ("pistol", "gun", "handgun", "revolver", "blaster"), "black", "metal", (
        box(0.03, 0.025, 0.1, turn=(("y", -15),)), box(0.18, 0.03, 0.04, (0.05, 0, 0.09)),
        cyl(0.01, 0.06, (0.14, 0, 0.11), ACCENT, turn=(("y", 90),)),
        ring(0.02, 0.004, (0.03, 0, 0.07), ACCENT, turn=(("x", 90),), when="prod"))),
    A("rifle", "weapons", ("rifle", "shotgun", "musket", "sniper rifle", "assault rifle"), "wooden", "black", (
        box(0.25, 0.04, 0.08, (-0.35, 0, 0)), box(0.4, 0.05, 0.07, (0, 0, 0.04), ACCENT),
        cyl(0.012, 0.5, (0.2, 0, 0.08), ACCENT, turn=(("y", 90),)),
        cyl(0.02, 0.18, (-0.05, 0, 0.13), ACCENT, turn=(("y", 90),), when="opt:0.5"),
        box(0.04, 0.03, 0.1, (0.05, 0, -0.06), ACCENT))),
    # ---- sci-fi kit
    A("scifi_panel", "scifi", ("sci-fi panel", "panel", "wall panel", "control panel", "scifi", "sci-fi"), "metal",
      "steel", (
        box(1.5, 0.1, 1.5), box(1.2, 0.04, 1.2, (0, -0.06, 0.15), ACCENT),
        box(0.5, 0.03, 0.04, (-0.25, -0.085, 0.35), DARK, copies="col:4:0.1", when="prod"),
        box(0.04, 0.02, 1.0, (0.55, -0.085, 0.25), LIGHT, when="opt"))),
    A("console", "scifi", ("console", "control console", "computer console", "control desk", "dashboard"), "metal",
      "steel", (
        box(1.2, 0.6, 0.9), box(1.2, 0.5, 0.06, (0, -0.05, 0.9), ACCENT, turn=(("x", 25),)),
        box(0.9, 0.35, 0.015, (0, -0.05, 0.96), LIGHT, turn=(("x", 25),)),
        box(1.22, 0.1, 0.3, (0, 0.25, 0.9), DARK, when="opt"),
        ball(0.02, (-0.45, -0.2, 0.9), LIGHT, copies="row:6:0.15", when="prod"))),
    A("terminal", "scifi", ("terminal", "computer terminal", "kiosk terminal", "data terminal"), "metal", "black", (
        box(0.4, 0.4, 1.0), box(0.6, 0.08, 0.45, (0, 0, 1.0), ACCENT, turn=(("x", 15),)),
        box(0.54, 0.01, 0.38, (0, -0.05, 1.03), LIGHT, turn=(("x", 15),)),
        box(0.5, 0.2, 0.04, (0, -0.25, 0.95), ACCENT),
        box(0.44, 0.44, 0.06, s=DARK, when="prod"))),
    A("pipe", "scifi", ("pipe", "pipes", "pipeline", "conduit", "duct"), "metal", "steel", (
        rod((-1.5, 0, 0.4), (1.5, 0, 0.4), 0.25), rod((-1.2, 0, 0.4), (-1.1, 0, 0.4), 0.3, ACCENT, copies="row:3:1.2"),
        box(0.15, 0.55, 0.15, (-1.0, 0, 0), DARK, copies="row:2:2.0"),
        rod((1.2, 0, 0.4), (1.2, 0, 1.4), 0.2, when="opt:0.4"),
        rod((-0.4, 0, 0.4), (-0.4, -0.6, 0.4), 0.08, ACCENT, when="prod"))),
    A("blast_door", "scifi", ("blast door", "sci-fi door", "scifi door", "bulkhead", "airlock", "hangar door",
                              "sliding door"), "metal", "steel", (
        box(0.3, 0.5, 3.0, (1.15, 0, 0), ACCENT, copies="x"), box(2.6, 0.5, 0.4, (0, 0, 2.6), ACCENT),
        box(1.0, 0.2, 2.6, (0.5, 0, 0), copies="x"), box(2.0, 0.05, 0.06, (0, -0.26, 2.75), LIGHT),
        box(0.08, 0.22, 2.0, (0.2, 0, 0.3), DARK, copies="x", when="prod"),
        box(0.6, 0.22, 0.1, (0.5, 0, 1.3), TRIM, copies="x", when="opt"))),
    A("generator", "scifi", ("generator", "reactor", "power core", "power generator", "engine"), "metal", "steel", (
        cyl(0.8, 0.3, s=ACCENT), cyl(0.5, 1.5, (0, 0, 0.3), GLASS), cyl(0.6, 0.3, (0, 0, 1.8), ACCENT),
        cyl(0.3, 1.45, (0, 0, 0.32), LIGHT), ring(0.52, 0.04, (0, 0, 0.8), copies="col:2:0.5"),
        rod((0.7, 0, 0.15), (0.55, 0, 2.0), 0.06, DARK, copies="ring:4", when="prod"))),
    A("antenna", "scifi", ("antenna", "radio tower", "satellite dish", "comms tower", "radar"), "metal", "white", (
        box(1.0, 1.0, 0.3, s=DARK), cyl(0.08, 3.0, (0, 0, 0.3)),
        turned(DISH, 0.9, 0.6, (0, -0.2, 3.0), ACCENT, turn=(("x", 60),)),
        ball(0.06, (0, 0, 3.3), LIGHT, when="opt"),
        rod((0.45, 0.45, 0.3), (0, 0, 2.0), 0.025, copies="xy", when="prod"))),
    A("cryo_pod", "scifi", ("cryo pod", "stasis pod", "pod", "capsule", "cryopod"), "white", "metal", (
        box(1.0, 1.2, 0.3, s=ACCENT), pill(0.45, 2.0, (0, 0, 0.3), ry=0.35),
        pill(0.3, 1.4, (0, -0.14, 0.6), GLASS, ry=0.25),
        box(0.3, 0.05, 0.06, (0, -0.6, 0.12), LIGHT, when="prod"))),
    A("server_rack", "scifi", ("server rack", "server", "computer rack", "mainframe"), "black", "metal", (
        box(0.6, 1.0, 2.0), box(0.5, 0.01, 0.02, (0, -0.5, 0.2), LIGHT, copies="col:10:0.17"),
        box(0.62, 1.02, 0.06, (0, 0, 1.97), ACCENT), box(0.04, 0.03, 1.8, (0.26, -0.51, 0.1), ACCENT, copies="x",
                                                           when="prod"))),
    A("fuel_tank", "scifi", ("fuel tank", "gas tank", "canister", "gas canister", "tank of fuel", "silo"), "metal",
      "yellow", (
        pill(0.6, 2.2, (0, 0, 0.2)), cyl(0.62, 0.12, (0, 0, 0.7), ACCENT, copies="col:2:0.8"),
        box(0.1, 0.1, 0.4, (0.45, 0.45, 0), DARK, copies="xy"),
        rod((0, 0, 2.35), (0, 0, 2.6), 0.06, DARK, when="prod"))),
    A("robot", "scifi", ("robot", "mech", "android", "droid", "cyborg"), "metal", "steel", (
        box(0.2, 0.25, 0.8, (0.18, 0, 0), copies="x"), box(0.7, 0.45, 0.8, (0, 0, 0.82)),
        box(0.35, 0.3, 0.3, (0, 0, 1.66)), box(0.25, 0.02, 0.06, (0, -0.155, 1.78), LIGHT),
        box(0.15, 0.15, 0.75, (0.45, 0, 0.85), copies="x"), ball(0.12, (0.4, 0, 1.5), ACCENT, copies="x"),
        cyl(0.01, 0.25, (0.1, 0, 1.96), ACCENT, when="opt"), box(0.3, 0.03, 0.2, (0, -0.24, 1.2), DARK,
                                                                 when="prod"))),
    A("spaceship", "scifi", ("spaceship", "starship", "space ship", "fighter", "spacecraft", "shuttle"), "white",
      "metal", (
        pill(0.6, 5.0, (0, -2.5, 1.0), turn=(("x", -90),)),
        slab(((0.0, -1.0), (2.2, -0.9), (0.0, 1.2)), 1.0, 0.1, 1.0, (0.3, 0, 1.0), turn=(("x", -90),), copies="x"),
        cyl(0.3, 0.4, (0.5, 2.1, 1.0), LIGHT, turn=(("x", -90),), copies="x"),
        ball(0.35, (0, -1.3, 1.25), GLASS, squash=(1, 2, 0.8)),
        slab(WING, 1.2, 0.08, 1.0, (0, 1.8, 1.4), ACCENT, turn=(("z", 90),), when="opt"))),
    A("drone", "scifi", ("drone", "quadcopter", "probe"), "black", "metal", (
        ball(0.25, (0, 0, 0.1), squash=(1, 1, 0.4)), rod((0.08, 0.08, 0.2), (0.5, 0.5, 0.2), 0.02, ACCENT, copies="xy"),
        cyl(0.2, 0.02, (0.5, 0.5, 0.24), DARK, copies="xy"), ball(0.04, (0, -0.22, 0.18), LIGHT),
        box(0.02, 0.02, 0.1, (0.15, 0, 0), ACCENT, copies="x", when="prod"))),
    # ---- fantasy
    A("chest", "fantasy", ("chest", "treasure chest", "treasure", "coffer", "trunk"), "wooden", "iron", (
        box(1.0, 0.6, 0.5), cyl(0.18, 1.02, (-0.51, 0, 0.5), turn=(("y", 90),), ry=0.3),
        box(0.12, 0.05, 0.16, (0, -0.32, 0.42), ACCENT),
        box(0.06, 0.64, 0.52, (0.35, 0, 0), ACCENT, copies="x", when="opt:0.5"),
        box(1.04, 0.64, 0.06, s=ACCENT, when="prod"),
        ball(0.12, (0, 0, 0.62), TRIM, squash=(2.5, 1.5, 0.8), when="opt:0.3"))),
    A("torch", "fantasy", ("torch", "wall torch", "standing torch", "flambeau"), "wooden", "iron", (
        cyl(0.03, 0.5, taper=1.3), cyl(0.045, 0.08, (0, 0, 0.45), ACCENT), ball(0.08, (0, 0, 0.52), LIGHT,
                                                                            squash=(1, 1, 1.4)),
        cyl(0.06, 0.04, (0, 0, 0.5), ACCENT, taper=1.3, when="prod"))),
    A("banner", "fantasy", ("banner", "flag", "standard", "pennant", "tapestry"), "red", "wooden", (
        cyl(0.03, 2.5, s=ACCENT), rod((-0.45, 0, 2.3), (0.45, 0, 2.3), 0.02, ACCENT),
        box(0.8, 0.02, 1.3, (0, -0.04, 1.0)), ball(0.05, (0, 0, 2.5), TRIM),
        slab(((-0.5, 0.0), (0.5, 0.0), (0.0, -1.0)), 0.8, 0.02, 0.25, (0, -0.04, 1.0), when="prod"),
        ball(0.12, (0, -0.06, 1.6), TRIM, squash=(1, 0.2, 1), when="opt"))),
    A("altar", "fantasy", ("altar", "shrine", "sacrificial altar", "offering table"), "stone", "gold", (
        box(2.0, 1.4, 0.2), box(1.6, 1.0, 0.9, (0, 0, 0.2)), box(1.8, 1.2, 0.12, (0, 0, 1.1), ACCENT),
        cyl(0.03, 0.2, (0.7, 0.4, 1.22), ACCENT, copies="xy"), ball(0.02, (0.7, 0.4, 1.43), LIGHT, copies="xy"),
        box(1.0, 0.02, 0.08, (0, -0.51, 0.6), LIGHT, when="prod")), surface=True),
    A("cauldron", "fantasy", ("cauldron", "witch cauldron", "kettle"), "iron", "iron", (
        turned(BOWL, 0.5, 0.7, (0, 0, 0.12)), cyl(0.05, 0.2, (0.35, 0, 0), copies="ring:3"),
        cyl(0.42, 0.02, (0, 0, 0.79), LIGHT), ring(0.46, 0.03, (0, 0, 0.8), when="prod"))),
    A("throne", "fantasy", ("throne", "royal chair", "king's chair"), "gold", "red", (
        box(0.8, 0.7, 0.5), box(0.8, 0.15, 1.6, (0, 0.3, 0.5)), box(0.12, 0.7, 0.35, (0.4, 0, 0.5), copies="x"),
        ball(0.08, (0.35, 0.3, 2.1), TRIM, copies="x"), box(0.65, 0.55, 0.1, (0, -0.03, 0.5), CLOTH),
        box(1.0, 1.0, 0.15, (0, 0, -0.15), ACCENT, when="opt"),
        slab(GABLE, 0.5, 0.16, 0.3, (0, 0.3, 2.1), TRIM, when="prod"))),
    A("well", "fantasy", ("well", "wishing well", "water well"), "stone", "wooden", (
        cyl(0.8, 0.9), cyl(0.62, 0.02, (0, 0, 0.9), DARK), box(0.1, 0.1, 1.6, (0.7, 0, 0.9), ACCENT, copies="x"),
        slab(GABLE, 1.8, 1.4, 0.6, (0, 0, 2.4), ACCENT),
        rod((-0.75, 0, 1.9), (0.75, 0, 1.9), 0.04, ACCENT), cyl(0.12, 0.2, (0, 0, 1.4), ACCENT, taper=1.2,
                                                                 when="opt")), surface=False),
    A("tombstone", "fantasy", ("tombstone", "gravestone", "headstone", "grave", "tomb"), "stone", "stone", (
        box(0.6, 0.15, 0.8, (0, 0, 0.1), when="alt:shape/slab"),
        cyl(0.3, 0.15, (0, 0.075, 0.9), turn=(("x", 90),), when="alt:shape/slab"),
        box(0.1, 0.1, 1.0, (0, 0, 0.1), when="alt:shape/cross"), box(0.5, 0.1, 0.1, (0, 0, 0.75),
                                                                      when="alt:shape/cross"),
        box(0.8, 0.3, 0.12, s=ACCENT), box(0.6, 1.4, 0.08, (0, -0.8, 0), ACCENT, when="opt:0.4"))),
    A("statue", "fantasy", ("statue", "sculpture", "monument", "idol"), "marble", "stone", (
        box(1.0, 1.0, 0.8, s=ACCENT), *biped(1.8, 0.8), box(1.1, 1.1, 0.1, (0, 0, 0.7), ACCENT, when="prod"))),
    A("totem", "fantasy", ("totem", "totem pole", "obelisk", "monolith"), "wooden", "red", (
        box(0.5, 0.5, 0.6), box(0.5, 0.5, 0.6, (0, 0, 0.62)), box(0.5, 0.5, 0.6, (0, 0, 1.24)),
        box(1.2, 0.15, 0.3, (0, 0, 1.5), ACCENT, when="opt"),
        box(0.1, 0.02, 0.1, (0.1, -0.26, 0.3), DARK, copies="col:3:0.62", when="prod"),
        box(0.1, 0.02, 0.1, (-0.1, -0.26, 0.3), DARK, copies="col:3:0.62", when="prod"))),
    A("portal", "fantasy", ("portal", "magic portal", "stargate", "gateway", "rift"), "stone", "stone", (
        box(2.6, 0.8, 0.3, s=ACCENT), ring(1.2, 0.15, (0, 0, 1.65), MAIN, turn=(("x", 90),)),
        cyl(1.05, 0.04, (0, 0.02, 1.65), LIGHT, turn=(("x", 90),)),
        box(0.3, 0.3, 0.5, (1.2, 0, 0.3), copies="x", when="opt"),
        ball(0.08, (1.23, 0, 1.6), GLASS, copies="x", when="prod"))),
    A("brazier", "fantasy", ("brazier", "fire bowl", "fire basket"), "iron", "iron", (
        turned(((0.0, 0.0), (0.3, 0.0), (1.0, 0.6), (0.9, 0.65), (0.0, 0.5)), 0.4, 0.4, (0, 0, 0.6)),
        rod((0.2, 0, 0.65), (0.35, 0, 0), 0.025, copies="ring:3"), ball(0.25, (0, 0, 0.8), LIGHT, squash=(1, 1, 0.6)),
        ring(0.36, 0.02, (0, 0, 0.84), when="prod"))),
    # ---- creatures, stylised blockouts
    A("biped", "creatures", ("humanoid", "biped", "mannequin", "human", "person", "man", "woman", "character",
                             "figure", "knight", "soldier", "villager", "npc", "zombie", "goblin", "orc", "troll"),
      "plastic", "plastic", biped(1.8), vary=0.1),
    A("quadruped", "creatures", ("quadruped", "animal", "beast", "creature"), "fur", "fur",
      quadruped(1.0, 0.4, 0.5, 0.3, 0.3, 0.4), vary=0.15),
    A("dog", "creatures", ("dog", "wolf", "hound", "fox", "puppy"), "fur", "fur",
      quadruped(0.7, 0.3, 0.35, 0.22, 0.24, 0.35), vary=0.15),
    A("cat", "creatures", ("cat", "kitten", "lion", "tiger", "panther", "leopard"), "fur", "fur",
      quadruped(0.5, 0.2, 0.22, 0.1, 0.14, 0.45), vary=0.15),
    A("horse", "creatures", ("horse", "pony", "donkey", "mule", "stallion", "unicorn"), "brown", "black",
      quadruped(1.5, 0.66, 0.9, 0.65, 0.55, 0.6, ears=False), vary=0.12),
    A("cow", "creatures", ("cow", "bull", "ox", "buffalo", "sheep", "pig", "goat"), "white", "black",
      quadruped(1.6, 0.9, 0.7, 0.2, 0.45, 0.5), vary=0.15),
    A("deer", "creatures", ("deer", "stag", "elk", "moose", "reindeer", "antelope"), "brown", "bone", (
        *quadruped(1.2, 0.5, 0.85, 0.5, 0.35, 0.15, ears=False),
        rod((0.9, 0.05, 2.0), (0.8, 0.35, 2.5), 0.025, ACCENT, copies="y", taper=0.4),
        rod((0.85, 0.2, 2.25), (1.05, 0.3, 2.45), 0.018, ACCENT, copies="y", taper=0.4, when="prod")), vary=0.12),
    A("bear", "creatures", ("bear", "grizzly", "polar bear"), "brown", "brown",
      quadruped(1.4, 0.9, 0.5, 0.15, 0.36, 0.08), vary=0.12),
    A("bird", "creatures", ("bird", "crow", "raven", "pigeon", "owl", "eagle", "parrot", "chicken", "duck", "hawk"),
      "black", "yellow", (
        ball(0.15, (0, 0, 0.15), squash=(1.4, 1, 1)), ball(0.08, (0.16, 0, 0.34)),
        cyl(0.03, 0.1, (0.24, 0, 0.42), ACCENT, taper=0.0, turn=(("y", 90),)),
        ball(0.15, (0, 0.14, 0.25), squash=(1.1, 1.2, 0.2), turn=(("x", -25),), copies="y"),
        rod((0, 0.04, 0), (0, 0.04, 0.17), 0.01, ACCENT, copies="y"),
        ball(0.12, (-0.22, 0, 0.25), squash=(1.2, 0.6, 0.15), turn=(("y", -20),)),
        ball(0.015, (0.22, 0.05, 0.41), DARK, copies="y", when="prod")), vary=0.15),
    A("dragon", "creatures", ("dragon", "wyvern", "drake", "wyrm"), "red", "black", (
        *quadruped(3.0, 1.1, 1.0, 1.4, 0.9, 3.0, ears=False),
        slab(WING, 2.8, 0.06, 2.8, (0.2, 0.4, 1.9), ACCENT, turn=(("x", -58),), copies="y"),
        cyl(0.08, 0.35, (1.9, 0.15, 3.25), ACCENT, taper=0.0, turn=(("y", -30),), copies="y"),
        cyl(0.1, 0.35, (0, 0, 2.05), ACCENT, taper=0.0, copies="row:6:0.45", when="prod")), vary=0.12),
    A("fish", "creatures", ("fish", "shark", "salmon", "trout", "carp"), "blue", "white", (
        ball(0.3, (0, 0, 0), squash=(1.5, 0.5, 0.8)), slab(FIN, 0.3, 0.03, 0.4, (-0.55, 0, 0.24), ACCENT),
        slab(GABLE, 0.3, 0.03, 0.2, (0, 0, 0.44), ACCENT), ball(0.03, (0.32, 0.1, 0.3), DARK, copies="y", when="prod")),
      vary=0.15),
    A("snake", "creatures", ("snake", "serpent", "python", "cobra", "worm"), "green", "yellow", (
        rod((-1.2, 0, 0.08), (-0.6, 0.3, 0.08), 0.06, taper=0.9), rod((-0.6, 0.3, 0.08), (0, 0, 0.08), 0.07),
        rod((0, 0, 0.08), (0.6, -0.3, 0.08), 0.07), rod((0.6, -0.3, 0.08), (0.9, 0, 0.35), 0.065),
        ball(0.1, (0.95, 0, 0.3), squash=(1.5, 1, 0.8)), rod((-1.6, 0.2, 0.06), (-1.2, 0, 0.08), 0.025, taper=2.4),
        ball(0.02, (1.05, 0.06, 0.4), DARK, copies="y", when="prod")), vary=0.15),
    A("spider", "creatures", ("spider", "tarantula", "scorpion", "insect", "bug", "beetle", "ant"), "black", "red", (
        ball(0.15, (0.1, 0, 0.12)), ball(0.22, (-0.25, 0, 0.1), squash=(1.2, 1, 0.9)),
        rod((0.1, 0.08, 0.25), (0.35, 0.35, 0.35), 0.02, copies="xy"),
        rod((0.35, 0.35, 0.35), (0.55, 0.55, 0.0), 0.018, copies="xy"),
        rod((0.05, 0.1, 0.25), (0.15, 0.45, 0.35), 0.02, copies="xy"),
        rod((0.15, 0.45, 0.35), (0.2, 0.7, 0.0), 0.018, copies="xy"),
        ball(0.03, (0.22, 0.05, 0.25), ACCENT, copies="y", when="prod")), vary=0.15),
    A("slime", "creatures", ("slime", "blob", "jelly", "ooze"), "green", "black", (
        blob((0.6, 0.6, 0.45), rough=0.06), ball(0.05, (0.12, -0.26, 0.25), ACCENT, copies="x")), vary=0.2),
)

GENERIC = Archetype("generic", "generic", (), "clay", "clay", (
    box(0.8, 0.65, 0.48), ball(0.28, (0, 0, 0.48))))
"""What an unknown noun gets: an honest placeholder, not a guess."""
