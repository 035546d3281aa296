"""The prompt table the offline engine is held to: prompt | archetype (or "-" for an honest miss) | modifiers.

Shared by tests/unit/test_archetypes_table.py and bench/archetype_bench.py (fallback rate). It holds
the misses the issue reported ("street lamp", "castle tower", "dragon", "car" all one box; "sci-fi
crate" a panel; "office chair" a dining chair; "oak tree" a brown canopy) and everyday game-kit asks.
Modifiers listed must all be present; others may be too.
"""

from __future__ import annotations

TABLE = """
street lamp | street_lamp |
castle tower | castle_tower |
dragon | dragon |
car | car |
sci-fi crate | crate | scifi
office chair | office_chair |
oak tree | broadleaf_tree |
a fearsome dragon | dragon |
wooden crate with iron bands | crate | bands
wooden barrel with iron hoops | barrel | bands
broken barrel | barrel | broken
mossy barrel | barrel | mossy
mossy rock | rock | mossy
tall pine tree | pine | scaled
stone pillar | pillar |
sci-fi panel | scifi_panel |
sci-fi panel with vents | scifi_panel | vents
sci-fi panel with warning lights | scifi_panel | lights
sci-fi door | blast_door |
sci-fi | scifi_panel |
treasure chest | chest |
chest of drawers | dresser |
chest | chest |
dining chair | chair |
wooden chair | chair |
desk chair | office_chair |
gaming chair | office_chair |
swivel chair | office_chair |
armchair | armchair |
deck chair | deck_chair |
kitchen table | table |
picnic table | picnic_table |
office desk | desk |
table lamp | desk_lamp |
desk lamp | desk_lamp |
lamp post | street_lamp |
streetlight | street_lamp |
victorian street lamp | street_lamp | ornate
oil lamp | lantern |
lantern | lantern |
fire hydrant | fire_hydrant |
campfire | campfire |
tower | castle_tower |
watch tower | watchtower |
radio tower | antenna |
stone wall | wall |
brick wall | wall |
ruined stone wall | wall | broken
overgrown wall | wall | overgrown
archway | arch |
stone stairs | stairs |
spiral staircase | stairs |
wooden door | door |
iron gate | gate |
picket fence | fence |
wooden bridge | bridge |
cottage | house |
medieval house | house | medieval
chimney | chimney |
tent | tent |
park bench | park_bench |
bench | park_bench |
trash can | trash_bin |
garbage bin | trash_bin |
stop sign | road_sign |
road sign | road_sign |
bollard | bollard |
traffic cone | traffic_cone |
mailbox | mailbox |
traffic light | traffic_light |
phone booth | phone_booth |
red sports car | car | colour:red
police car | car |
damaged car | car | damaged
post-apocalyptic car | car | rusty damaged
crate truck | truck |
pickup truck | truck |
wooden cart | cart |
hay cart | cart |
rowboat | rowboat |
pirate ship | sailing_ship |
wheelbarrow | wheelbarrow |
tank | tank |
fuel tank | fuel_tank |
spaceship | spaceship |
drone | drone |
pine | pine |
fir tree | pine |
red oak tree | broadleaf_tree | colour:red
autumn maple tree | broadleaf_tree | colour:autumn
birch tree | broadleaf_tree |
palm tree | palm |
dead tree | dead_tree |
bush | bush |
round bush | bush | scaled
hedge | hedge |
grass clump | grass |
tall grass | grass | scaled
flowers | flowers |
blue flowers | flowers | colour:blue
mushroom | mushroom |
giant mushroom | mushroom | scaled
tree stump | stump |
mossy stump | stump | mossy
cactus | cactus |
fern | fern |
potted plant | potted_plant |
fallen log | log |
boulder | rock |
pile of rocks | rock | pile count:6
cliff face | cliff |
crystal cluster | crystal | pile
blue crystal | crystal | colour:blue
pebbles | pebbles |
stalagmite | stalagmite |
hill | hill |
cobblestone floor tile | ground_tile |
sword | sword |
ornate sword | sword | ornate
rusty sword | sword | rusty
katana | sword |
round shield | shield |
battle axe | axe |
warhammer | hammer |
spear | spear |
longbow | bow |
dagger | dagger |
mace | mace |
wizard staff | staff |
pickaxe | pickaxe |
shovel | shovel |
wrench | wrench |
pistol | pistol |
sniper rifle | rifle |
control console | console |
computer terminal | terminal |
pipes | pipe |
blast door | blast_door |
reactor | generator |
satellite dish | antenna |
cryo pod | cryo_pod |
server rack | server_rack |
robot | robot |
torch | torch |
banner | banner |
red banner | banner | colour:red
altar | altar |
cauldron | cauldron |
throne | throne |
wishing well | well |
gravestone | tombstone |
statue | statue |
totem pole | totem |
magic portal | portal |
brazier | brazier |
knight | biped |
villager | biped |
dog | dog |
wolf | dog |
cat | cat |
horse | horse |
cow | cow |
deer | deer |
bear | bear |
bird | bird |
crow | bird |
huge dragon | dragon | scaled
fish | fish |
snake | snake |
spider | spider |
slime | slime |
three barrels | barrel | count:3
stack of crates | crate | stack
two tall pine trees | pine | count:2 scaled
row of 5 bollards | bollard | count:5 row
pair of swords | sword | count:2
candle on a table | candle | on:table
table with candle | table | with:candle
knight with sword | biped | with:sword
lantern on a crate | lantern | on:crate
barrel next to a crate | barrel | with:crate
low-poly barrel | barrel |
simple chair | chair | simple
ornate throne | throne | ornate
small wooden crate | crate | scaled
huge ancient pillar | pillar | damaged scaled
squat pot | vase | scaled
long bench | park_bench | scaled
mossy overgrown statue | statue | mossy overgrown
book | book |
potion bottle | bottle |
candle | candle |
vase | vase |
bucket | bucket |
sack of grain | sack |
anvil | anvil |
coffee mug | mug |
computer monitor | monitor |
ladder | ladder |
scroll | scroll |
grandfather clock | clock |
shipping container | shipping_container |
cardboard box | cardboard_box |
basket | basket |
toolbox | toolbox |
jerrycan | jerrycan |
sofa | sofa |
double bed | bed |
bookshelf | bookshelf |
wardrobe | wardrobe |
filing cabinet | filing_cabinet |
bar stool | stool |
patio umbrella | parasol |
a fearsome xylophone | - |
xylophone | - |
spaceship engine | generator |
quantum flux capacitor | - |
teapot | - |
accordion | - |
glowing orb of zorg | - |
"""


def rows() -> list[tuple[str, str | None, list[str]]]:
    """(prompt, archetype name or None for a miss, modifiers that must be present)."""
    parsed = []
    for line in TABLE.strip().splitlines():
        prompt, archetype, modifiers = (cell.strip() for cell in line.split("|"))
        parsed.append((prompt, None if archetype == "-" else archetype, modifiers.split()))
    return parsed
