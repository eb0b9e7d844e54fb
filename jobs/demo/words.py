"""English vocabulary the demo prompts and reasoning are assembled from.

Real words (not "word17") so that tokenizers, language identification and
n-gram dedup behave on the demo data as they do on real generations. The
lists are large enough (>= 1,500 distinct words) that two unrelated prompts
built from them share almost no word 5-grams.
"""

from __future__ import annotations

_NOUNS_CONCRETE = """
apple bakery balcony banana basket battery beach bean bear bed bell bench bicycle bird blanket boat
book bottle box bracelet branch bread bridge brush bucket building bus butter button cabin cable cake
calendar camera candle canoe canvas car card carpet carrot castle cat ceiling chair chalk cheese cherry
chimney clock cloud coat coffee coin collar comet computer cookie corner cottage cotton cow crayon crown
cup curtain cushion desk diamond dinner dog doll door dragon drawer dress drum eagle engine envelope
eraser fabric factory farm feather fence field flag flower flute folder forest fork fountain fox frame
garden gate glass glove goat grape guitar hammer harbor hat helmet hill horse hospital hotel house
island jacket jar jewel kettle key kitchen kite ladder lake lamp lantern leaf lemon letter library
lighthouse lion lock magnet map marble market meadow medal mirror monkey moon motor mountain mug museum
napkin necklace needle nest notebook ocean office onion orange orchard oven owl paint palace pan paper
parcel park parrot pear pebble pen pencil pepper piano pillow pipe planet plate pocket pond potato
pumpkin puzzle quilt rabbit radio railway rainbow ribbon ring river road robot rocket roof rope rose
sailboat salad sand sandwich scarf school shelf shell ship shirt shoe shop shovel sign sink skirt sled
snail snake sock sofa soup spoon stadium stamp star station statue stone stove street sugar suitcase
sun table tablet teapot telescope tent theater ticket tiger tile tomato tower town toy tractor train
tree truck trumpet tunnel umbrella valley vase village violin wagon wall wallet watch wheel whistle
window wing wire wolf yard acorn anchor antenna apron arch arrow attic axe backpack badge bandage
barn barrel basin bead beam beetle belt berry blender bolt bonnet boot bouquet bowl brick broom
bubble buckle bulb bun cabbage cactus canal cannon cap cape carriage cart cathedral cave cedar chain
chapel chart chest chisel cliff cloak closet clover compass cone cord cradle crane crate creek crystal
cucumber cupboard dagger daisy dam deck dolphin donkey dove drill duck dune easel elbow elephant elm
fern ferry flask fleet flour fossil frog funnel gallery garage garlic gear glacier globe gown granite
gravel greenhouse hallway hammock harp hedge hive hook hut iceberg ink jungle kayak lagoon lawn lever
lily lobster locket loom mango mansion maple mast meadowlark melon mill mitten mosaic moth mushroom
nail nut oak oar olive orchid ostrich oyster paddle pail pantry parachute pasture peach peanut pearl
pedal penguin pier pigeon pine pitcher plank plum porch pot pottery pudding pulley quarry quartz raft
rail raisin rake ramp reef rug saddle sail salmon satchel saucer scale scooter seashell seed shed
sheep shutter sieve skate skillet slipper spade spider sponge spool squirrel stable staircase stool
strawberry submarine sunflower swan sweater sword tambourine thimble thread throne thumb timber toaster
torch towel trail tray trolley trophy tulip turtle valve vest vine violet walnut wand wardrobe wharf
whale willow windmill wreath yacht zebra
"""

_NOUNS_ABSTRACT = """
ability account action activity address advice agreement amount analysis angle answer argument
arrangement article aspect attempt attention audience average balance basis beginning behavior benefit
board border boundary budget campaign capacity category cause center challenge chance change chapter
character charge choice claim class climate collection column combination comment committee community
comparison competition condition connection consequence contest context contract contrast contribution
control conversation copy cost council courage course crowd culture current curve customer cycle damage
data deadline debate decision degree delivery demand department design detail development device
difference difficulty dimension direction discussion distance distribution division document draft duty
edge edition education effect effort election element emphasis energy entry environment error estimate
event evidence example exercise experience experiment explanation expression extent fact factor failure
feature feedback figure finding focus force format formula foundation fraction freedom frequency
function fund future gain gap generation goal grade group growth guide habit half height history hour
idea image impact improvement income increase index influence information input instance instruction
intention interest interval investment issue item journey judgment knowledge label labor language layer
lesson level limit list load location logic loss machine majority margin match material matter measure
medium member memory message method middle minute mission mistake model moment month motion network news
number object observation occasion offer opinion option order origin outcome output owner pace package
page pair panel parameter part path pattern payment peak percentage period permission perspective phase
phrase piece place plan platform point policy portion position possibility pressure price principle
priority problem procedure process product profit program progress project property proportion proposal
purpose quality quantity question range rate ratio reaction reason record region relation release report
request requirement research resource response result review reward rhythm risk role round routine rule
sample scheme score season section sector selection sense sequence series service session set share
shape signal situation size skill solution source space speed stage standard statement status step
storage strategy strength structure style subject success suggestion summary supply support surface
survey symbol system target task technique temperature tendency term test theme theory thought threshold
time title tone topic total track trade tradition transfer trend trial type unit update value variable
variety version view volume week weight width winner word world year zone accuracy adventure ambition
anniversary appetite approval assembly assumption atmosphere authority autumn awareness bargain battle
birthday blessing breakfast breeze brightness candidate celebration ceremony charity childhood
circumstance clarity comfort commitment complaint compromise concert confidence conflict confusion
contribution convention curiosity custom danger darkness decade defense delight desire destination
dignity dinnertime discipline discovery disease distinction diversity dream economy emotion empire
entertainment enthusiasm equality equation era essay ethics excitement exhibition expedition
fairness faith fame fantasy fashion fear festival fiction flavor fortune friendship frontier fuel
generosity gesture glory gratitude harmony harvest health heritage holiday honesty honor horizon
hospitality humor hunger identity illusion imagination independence industry innovation insight
inspiration integrity invitation jealousy joy justice kindness landscape laughter leadership legacy
leisure liberty lifetime loyalty luck lunch luxury majesty mercy midnight miracle mood morning mystery
nature necessity neighborhood noise nonsense nutrition obligation opportunity pain paradise passion
patience peace performance persuasion philosophy pleasure poetry popularity poverty praise prayer
presence pride privacy promise prosperity publicity quarrel reality recipe recovery reflection
relief religion reputation respect revenge revolution romance sadness safety satisfaction scenery
schedule secret security shadow silence simplicity sincerity slavery sorrow spirit splendor spring
stability storm summer sunrise sunset surprise sympathy talent tension thunder tolerance tournament
tragedy tranquility treasure triumph trust truth twilight uncertainty unity vacation victory vision
vitality warmth wealth weather wedding welfare wilderness winter wisdom wonder youth
"""

_NOUNS_PEOPLE = """
artist baker captain carpenter chef clerk coach cook dancer dentist designer doctor driver editor
engineer farmer firefighter gardener guard hunter inventor judge librarian mechanic merchant musician
nurse painter pilot plumber poet professor sailor scientist sculptor singer student surgeon tailor
teacher traveler volunteer writer architect astronaut athlete banker biologist butcher cashier chemist
composer courier detective diver economist electrician explorer fisherman florist geologist historian
jeweler journalist lawyer lecturer locksmith magician manager mathematician messenger miner navigator
neighbor novelist officer optician pharmacist photographer physicist potter programmer publisher
ranger referee reporter researcher shepherd shopkeeper surveyor translator tutor umpire waiter weaver
"""

_ADJECTIVES = """
able active actual ancient angry annual anxious automatic available aware basic beautiful big bitter
blue bold bored brave brief bright brilliant broad broken brown busy calm capable careful casual central
certain cheap chemical chief civil classic clean clear clever close cold comfortable common complete
complex confident constant cool correct creative critical crowded cultural curious current daily dark
dear decent deep definite delicate dense dependent desperate different difficult digital direct dirty
distant distinct domestic double dramatic dry eager early eastern easy economic effective efficient
elaborate electric elegant emotional empty endless enormous entire equal essential eternal even evident
exact excellent exciting expensive experienced expert external extra extreme fair faithful familiar
famous fancy fast favorite fierce final financial fine firm flat flexible fluffy foreign formal former
fortunate free frequent fresh friendly frozen full funny gentle genuine giant glad global golden good
gradual grand grateful great green grey happy hard harsh healthy heavy helpful hidden high historic
honest horizontal hot huge humble hungry ideal identical immediate important impossible independent
individual industrial inner innocent intense internal invisible joint junior keen kind large late lazy
legal level light likely limited liquid little lively local logical lonely long loose loud lovely low
loyal lucky magnetic main major manual marine massive mature maximum meaningful medical mental mild
military minimum minor missing mobile modern modest moral narrow national native natural neat necessary
negative nervous neutral new nice noble normal northern notable novel numerous obvious odd official
old open optical ordinary organic original outer overall pale parallel partial particular passive
patient peaceful perfect permanent personal physical pink plain pleasant polite popular positive
possible powerful practical precious precise present pretty previous primary prime private probable
productive professional profound proper proud public pure purple quick quiet radical rapid rare raw
ready real rear reasonable recent red regional regular relative relevant reliable remote rich right
rigid rough round royal rural sacred safe scientific secondary secret secure senior sensitive separate
serious severe shallow sharp short shy significant silent silly similar simple single slight slim slow
small smart smooth soft solar solid sour southern spare special specific splendid square stable steady
steep sticky stiff still straight strange strict strong subtle sudden sufficient suitable super sure
surprised sweet swift tall tame technical temporary tender thick thin tidy tight tiny total tough
traditional tropical true typical unique universal unknown unusual upper urban useful usual vague valid
valuable various vast verbal vertical vital vivid warm weak wealthy weekly western wet white whole wide
wild wise wooden yellow young abundant adorable agile amber ample antique aromatic artistic ashen
balmy blazing blissful breezy brisk bumpy charming cheerful chilly circular cloudy coastal colorful
cozy crimson crisp crooked dazzling dusty elderly emerald enchanted faded fearless festive fragrant
frosty generous gigantic glossy graceful grassy hilly hollow icy jolly juicy leafy lush majestic
marvelous misty muddy mysterious nimble noisy orderly ornate playful polished quaint radiant rainy
rustic salty sandy scarlet scenic shiny silky sleepy slender snowy sparkling spicy spotless stormy
striped sturdy sunny tangy thorny thrifty timid towering twisted velvet vibrant violet whimsical windy
wintry woolly zealous
"""

_VERBS_PAST = """
added adjusted admired adopted advanced agreed allowed analyzed announced answered appeared applied
arranged arrived asked assembled assigned attached attended avoided baked balanced borrowed calculated
called carried changed charged checked cleaned cleared climbed collected colored combined compared
completed computed connected considered constructed contained continued converted cooked copied
corrected counted covered crossed decorated delivered described designed divided doubled earned edited
emptied entered estimated examined exchanged expanded explained explored filled finished fixed folded
followed gathered glued guessed handled helped hung identified imagined improved included increased
inspected installed invented invited joined labeled launched listed loaded located marked measured
mended mixed moved named noticed observed obtained opened ordered organized packed painted parked
passed picked placed planned planted played polished poured prepared presented printed produced
protected pulled purchased pushed raised reached received recorded reduced removed repaired repeated
replaced reported rescued returned reviewed rolled sailed saved scanned scored searched selected
separated served shared shifted signed sketched sorted spotted stacked started stored studied supplied
surveyed tested traced traded trained treated trimmed turned typed unlocked updated used verified
visited walked washed watched weighed welcomed wrapped bought brought built caught chose drew found
gave grew held kept knew lent lost made met paid ran sold sent showed spent stood swam taught threw
took understood won wore wrote baked borrowed carved cataloged chased collapsed crafted delayed
discovered displayed distributed donated drafted dried ensured escorted evaluated exported fetched
framed gained guided harvested hosted inherited insured interviewed loaned mapped mentored merged
mounted navigated negotiated nominated painted paired patrolled photographed polled practiced
programmed promoted proposed published quoted rated rebuilt recruited refilled rehearsed renovated
rented restored rewarded rinsed rotated sampled scheduled sealed shipped simulated smoothed sponsored
squeezed stitched streamed stretched summarized surrounded sweetened tagged tallied toasted translated
trusted tuned unpacked upgraded valued varnished voted watered weaved whispered
"""

_VERBS_BASE = """
add adjust aggregate align append apply assign batch build calculate cache check chunk clean collect
combine compare compress compute convert copy count decode deduplicate detect encode estimate evaluate
expand extract filter find flatten format generate group hash index insert interleave invert join limit
load locate map mask match measure merge normalize pack pad parse partition pick rank reduce remove
rename reorder repeat replace resolve reverse rotate round sample scale score search select serialize
shift shuffle slice sort split strip sum summarize swap tokenize transform translate trim truncate
unpack update validate weigh wrap
"""

_ADVERBS = """
briefly carefully clearly closely correctly directly easily entirely equally evenly exactly finally
firmly freely fully gently gradually happily heavily honestly immediately largely lightly loosely
loudly mainly merely mostly naturally nearly neatly newly normally openly partly patiently perfectly
politely precisely properly quickly quietly rapidly rarely readily really recently regularly roughly
safely sharply simply slightly slowly smoothly softly steadily strictly strongly suddenly surely
swiftly tightly truly usually warmly widely wisely boldly calmly cheerfully eagerly faithfully
generously gracefully hastily joyfully kindly lazily nervously proudly silently warily
"""

_NAMES = """
Aaron Abigail Adam Adrian Aisha Alan Albert Alejandro Alex Alice Amara Amelia Amir Ana Andrea Andrew
Angela Anna Anton Arjun Arthur Ava Beatrice Ben Bianca Boris Brian Caleb Camila Carlos Carmen Caroline
Catherine Charles Chen Chloe Claire Clara Daniel David Diana Diego Dmitri Elena Eli Elias Elif Eliza
Emily Emma Eric Ethan Eva Farah Felix Fatima Fiona Francis Gabriel Grace Hana Hannah Harper Hassan
Helen Henry Hugo Ian Ibrahim Ingrid Irene Isaac Isabel Ivan Jack Jade James Jana Javier Jin Joel Jonas
Jorge Julia Julian Kai Karim Kate Kenji Kevin Laila Lars Laura Leo Liam Lina Lucas Lucy Luis Maya
Marco Maria Mark Marta Mateo Max Mei Mia Michael Mila Nadia Naomi Nathan Nikhil Nina Noah Nora Olga
Oliver Olivia Omar Oscar Owen Pablo Paul Pedro Petra Priya Rafael Rahul Rosa Ruby Ryan Sakura Samuel
Sara Sean Sofia Sophie Stefan Tariq Theo Thomas Tomas Uma Victor Vera Wei Will Yara Yuki Yusuf Zara Zoe
"""

_PLACES = """
Amsterdam Athens Austin Bangalore Barcelona Berlin Bogota Boston Brisbane Budapest Cairo Calgary
Chicago Copenhagen Dallas Denver Dublin Edinburgh Florence Geneva Glasgow Hamburg Helsinki Houston
Istanbul Jakarta Kyoto Lagos Lima Lisbon Lyon Madrid Manchester Marseille Melbourne Miami Milan
Montreal Mumbai Munich Nairobi Naples Oslo Ottawa Paris Perth Porto Prague Quebec Riga Rome Santiago
Seattle Seoul Sydney Tallinn Toronto Valencia Vancouver Venice Vienna Warsaw Zurich Auckland Bergen
Bordeaux Cardiff Cork Dresden Galway Ghent Granada Krakow Leeds Leipzig Malaga Nantes Seville
Split Tampere Turin Utrecht Verona
"""


def _split(block: str) -> tuple[str, ...]:
    # Order-preserving dedup: sets of str iterate in hash order, which varies per process.
    return tuple(dict.fromkeys(block.split()))


NOUNS: tuple[str, ...] = _split(_NOUNS_CONCRETE + _NOUNS_ABSTRACT + _NOUNS_PEOPLE)
ADJECTIVES: tuple[str, ...] = _split(_ADJECTIVES)
VERBS_PAST: tuple[str, ...] = _split(_VERBS_PAST)
VERBS_BASE: tuple[str, ...] = _split(_VERBS_BASE)
ADVERBS: tuple[str, ...] = _split(_ADVERBS)
NAMES: tuple[str, ...] = _split(_NAMES)
PLACES: tuple[str, ...] = _split(_PLACES)


_IRREGULAR_PLURALS = {
    "leaf": "leaves", "scarf": "scarves", "shelf": "shelves", "wolf": "wolves", "half": "halves",
    "wharf": "wharves", "sheep": "sheep", "fisherman": "fishermen", "person": "people",
    "potato": "potatoes", "tomato": "tomatoes", "volcano": "volcanoes",
}


def plural(noun: str) -> str:
    """English plural by the regular rules plus the irregular nouns in the lists."""
    if noun in _IRREGULAR_PLURALS:
        return _IRREGULAR_PLURALS[noun]
    if noun.endswith(("s", "x", "z", "ch", "sh")):
        return noun + "es"
    if noun.endswith("y") and noun[-2:-1] not in "aeiou":
        return noun[:-1] + "ies"
    return noun + "s"


def vocabulary() -> tuple[str, ...]:
    """Every distinct English word in the lists above (names and places excluded)."""
    return _split(" ".join(NOUNS + ADJECTIVES + VERBS_PAST + VERBS_BASE + ADVERBS))
